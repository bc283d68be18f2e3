"""Learning-rate schedules shared by the price models and the classifiers."""

from __future__ import annotations

import keras


def learning_rate_schedule(kind: str, learning_rate: float, epochs: int, steps_per_epoch: int,
                           warmup_epochs: int = 0):
    """cosine: from learning_rate down to 0 over the training (the last epochs barely move the weights, so the
    final model is a settled one), after `warmup_epochs` rising linearly from 0 (the first steps of a fresh
    network are its largest: a warm-up keeps them from throwing the weights far); inverse-time: the tutorials'
    decay=lr/epochs, per step."""
    steps = max(1, steps_per_epoch)
    if kind == "cosine":
        warmup = min(warmup_epochs, epochs - 1) * steps
        if warmup <= 0:
            return keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=max(1, epochs * steps))
        return keras.optimizers.schedules.CosineDecay(0.0, decay_steps=max(1, epochs * steps - warmup),
                                                      warmup_target=learning_rate, warmup_steps=warmup)
    return keras.optimizers.schedules.InverseTimeDecay(learning_rate, decay_steps=1, decay_rate=learning_rate / epochs)

"""Trainer options shared by every Keras model family: a plain pydantic model (no TensorFlow import).

The price and classifier options extend `TrainerOptions`; a family with other defaults redeclares a
field through the same factory (`epochs_field(40)`), so each field's limits and help live here once.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Trainer = Literal["fit", "stream", "batch", "distributed"]
Augmentation = Literal["rotation", "zoom", "shift", "flip"]
Backbone = Literal["small", "vgg16", "vgg19", "resnet50", "inceptionv3", "xception"]
Pooling = Literal["flatten", "average"]  # how the own small CNN turns its last feature map into features
Schedule = Literal["inverse-time", "cosine"]  # tasks.training.schedules
EARLY_STOPPING_VALIDATION = 0.1  # the validation share early stopping takes when none is given


def trainer_field(default: str) -> Any:
    return Field(default, description="fit (in memory), stream (tf.data from the Parquet cache, with "
                 "augmentation), batch (a train_on_batch loop), distributed (tf.distribute).")


def epochs_field(default: int) -> Any:
    return Field(default, ge=1, le=100_000, description="Maximum number of epochs.")


def batch_size_field(default: int) -> Any:
    return Field(default, ge=1, le=65_536, description="Batch size per replica.")


def validation_field(default: float) -> Any:
    return Field(default, ge=0, lt=0.9, description="Share of the train split held out for validation (loss "
                 "curves, early stopping), by house; 0 fits on everything; with --early-stopping the default "
                 f"is {EARLY_STOPPING_VALIDATION}.")


def augment_field(default: list[str]) -> Any:
    return Field(default_factory=lambda: list(default), description="Image augmentation in training (price models: "
                 "inside the model, under any trainer; classifiers: in the stream trainer's pipeline).")


class TrainerSettings(BaseModel):
    """How to optimise, for any trainer: epochs, batches, learning rate, validation, seed, image network."""

    model_config = ConfigDict(extra="forbid")
    validation_unit: ClassVar[str] = "houses"  # what the validation share is made of, for messages

    epochs: int = epochs_field(200)
    batch_size: int = batch_size_field(8)
    learning_rate: float = Field(1e-3, gt=0, le=1, description="Adam's initial learning rate (then decayed).")
    validation_fraction: float = validation_field(0.0)
    early_stopping: int | None = Field(None, ge=1, description="Stop after this many epochs without a better "
                                       "validation loss and keep the best weights (without it, the last "
                                       "epoch's weights are kept).")
    augment: list[Augmentation] = augment_field([])
    backbone: Backbone = Field("small", description="Image network: small (this project's own CNN) or a Keras "
                               "Applications network (vgg16, vgg19, resnet50, inceptionv3, xception).")
    weights: str = Field("imagenet", description="Weights of an Applications backbone: imagenet (the file in the "
                         "Keras cache, never downloaded), none (random), or a PATH to a *_notop.h5 file.")
    fine_tune_layers: int = Field(0, ge=0, description="Train the backbone's last N layers (0: frozen, a feature "
                                  "extractor).")
    seed: int = Field(42, description="Seed of weights, shuffling and the validation split.")
    # Not part of what is trained (left out of model_dump, so of cache keys and reports): when to give up.
    time_limit: float | None = Field(None, gt=0, exclude=True, description="Seconds a training may run; past "
                                     "them it stops after the current batch, the task ends TimedOut, and a "
                                     "re-run resumes from the last finished epoch (default: no limit).")

    @classmethod
    def defaults_for(cls, values: dict) -> dict:
        """Defaults that depend on other values given; a value given explicitly always wins."""
        return {"validation_fraction": EARLY_STOPPING_VALIDATION} if values.get("early_stopping") is not None else {}

    @model_validator(mode="wrap")
    @classmethod
    def _dependent_defaults(cls, values: Any, handler: Any) -> Any:
        """Fill in defaults_for; they stay defaults (not in model_fields_set), so options derived from these for
        another strategy (flows.config.options_for) take that strategy's own."""
        injected = {} if not isinstance(values, dict) else {
            name: value for name, value in cls.defaults_for(values).items() if name not in values}
        model = handler({**injected, **values} if injected else values)
        model.__pydantic_fields_set__.difference_update(injected)
        return model

    @model_validator(mode="after")
    def _early_stopping_watches_validation(self):
        if self.early_stopping is not None and self.validation_fraction == 0:
            raise ValueError(f"early stopping watches the validation {self.validation_unit}: give a "
                             "validation_fraction above 0")
        return self


class TrainerOptions(TrainerSettings):
    """Trainer settings plus which trainer runs them: what `tasks.training.engine.run_trainer` reads."""

    trainer: Trainer = trainer_field("fit")

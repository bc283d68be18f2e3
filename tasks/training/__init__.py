"""What every Keras model family shares: trainer options, the trainer engine (fit, stream, batch,
distributed; checkpoints and resume), streams, augmentation, backbones and layers, metrics, plots."""

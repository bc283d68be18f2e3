"""Classifier training options: a plain pydantic model (no TensorFlow import), shared by CLI, UI and tasks."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tasks.label_encoding import Kind
from tasks.training_options import (
    EARLY_STOPPING_VALIDATION,
    Augmentation,
    Backbone,
    Trainer,
    check_early_stopping,
)


# Defaults chosen on the validation houses (10 % of the train houses, never the test split) of the
# house photos labelled by room and price tier (bench/classify_quality.py; room accuracy, mean of the
# last 3 epochs). The tutorials' recipe (flatten -> dense 256, their slow decay, room on the gray
# branch, 64 px): 0.63 with their augmentation (stream), 0.65 to 0.76 per epoch without (fit). Then,
# at 64 px with fit: cosine decay and batch norm momentum 0.9 0.80; global average pooling 0.83; at
# 96 px 0.85. With flip augmentation (stream, 40 epochs) 0.90 at 64 px and at 96 px; 0.93 when room
# sees the colour image and price tier the gray one (so the last column is the gray one).
class ClassifierOptions(BaseModel):
    """Which classifier to train and how."""

    model_config = ConfigDict(extra="forbid")

    kind: Kind = Field("multioutput", description="multilabel (one sigmoid per label, binary cross-entropy) or "
                       "multioutput (one softmax head per label column, each with its own branch and loss).")
    backbone: Backbone = Field("small", description="Image network: small (a VGG-like CNN) or a Keras "
                               "Applications network (vgg16, vgg19, resnet50, inceptionv3, xception).")
    weights: str = Field("imagenet", description="Weights of an Applications backbone: imagenet (the file in the "
                         "Keras cache, never downloaded), none (random), or a PATH to a *_notop.h5 file.")
    fine_tune_layers: int = Field(0, ge=0, description="Train the backbone's last N layers (0: frozen, a feature "
                                  "extractor).")
    image_size: int | None = Field(None, ge=8, le=1024, description="Side the images are resized to (default: "
                                   "96 for small, the network's own size otherwise: 224 or 299).")
    gray_output: str | None = Field(None, description="multioutput: the label column whose branch sees grayscale "
                                    "(default: category if there is one, else the last column).")
    loss_weights: dict[str, float] = Field(default_factory=dict, description="multioutput: loss weight per "
                                           "head, e.g. category=1,color=1 (others 1).")
    small_pooling: Literal["flatten", "average"] = Field("average", description="small network: flatten -> dense "
                                                         "256 (the tutorials') or global average pooling.")
    schedule: Literal["cosine", "inverse-time"] = Field("cosine", description="Learning rate: cosine decay to 0 "
                                                        "over the training, or the tutorials' lr / (1 + lr/epochs * "
                                                        "step).")
    threshold: float = Field(0.5, gt=0, lt=1, description="multilabel: a label is predicted at this probability.")
    trainer: Trainer = Field("stream", description="fit (in memory), stream (tf.data from Parquet, augmented), batch "
                             "(train_on_batch loop), distributed (tf.distribute).")
    epochs: int = Field(40, ge=1, le=100_000, description="Maximum number of epochs.")
    batch_size: int = Field(32, ge=1, le=65_536, description="Batch size per replica.")
    learning_rate: float = Field(1e-3, gt=0, le=1, description="Adam's initial learning rate.")
    validation_fraction: float = Field(0.1, ge=0, lt=0.9, description="Share of the train groups (houses) held "
                                       "out for the validation curves and early stopping.")
    early_stopping: int | None = Field(None, ge=1, description="Stop after this many epochs without a better "
                                       "validation loss and keep the best weights.")
    augment: list[Augmentation] = Field(default_factory=lambda: ["flip"], description="Augmentation for the "
                                        "stream trainer.")
    seed: int = Field(42, description="Seed of weights, shuffling and the validation split.")

    @model_validator(mode="before")
    @classmethod
    def _validation_for_early_stopping(cls, values: dict) -> dict:
        if isinstance(values, dict) and values.get("early_stopping") is not None:
            values = {"validation_fraction": EARLY_STOPPING_VALIDATION, **values}
        return values

    @model_validator(mode="after")
    def _early_stopping_watches_validation(self) -> ClassifierOptions:
        check_early_stopping(self.early_stopping, self.validation_fraction, "images")
        return self

    def size(self) -> int:
        from tasks.backbones import default_size  # imports Keras: only when a size is needed

        return self.image_size or default_size(self.backbone)

    def gray_column(self, columns: list[str]) -> str:
        return self.gray_output or ("category" if "category" in columns else columns[-1])

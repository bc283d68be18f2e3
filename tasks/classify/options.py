"""Classifier training options: a plain pydantic model (no TensorFlow import), shared by CLI, UI and tasks."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from tasks.classify.encoding import Kind
from tasks.training.options import (
    Augmentation,
    Pooling,
    Schedule,
    Trainer,
    TrainerOptions,
    augment_field,
    batch_size_field,
    epochs_field,
    trainer_field,
    validation_field,
)


# Defaults chosen on the validation houses (10 % of the train houses, never the test split) of the
# house photos labelled by room and price tier (bench/classify_quality.py; room accuracy, mean of the
# last 3 epochs). The tutorials' recipe (flatten -> dense 256, their slow decay, room on the gray
# branch, 64 px): 0.63 with their augmentation (stream), 0.65 to 0.76 per epoch without (fit). Then,
# at 64 px with fit: cosine decay and batch norm momentum 0.9 0.80; global average pooling 0.83; at
# 96 px 0.85. With flip augmentation (stream, 40 epochs) 0.90 at 64 px and at 96 px; 0.93 when room
# sees the colour image and price tier the gray one (so the last column is the gray one).
class ClassifierOptions(TrainerOptions):
    """Which classifier to train and how."""

    validation_unit: ClassVar[str] = "images"

    kind: Kind = Field("multioutput", description="multilabel (one sigmoid per label, binary cross-entropy) or "
                       "multioutput (one softmax head per label column, each with its own branch and loss).")
    image_size: int | None = Field(None, ge=8, le=1024, description="Side the images are resized to (default: "
                                   "96 for small, the network's own size otherwise: 224 or 299).")
    gray_output: str | None = Field(None, description="multioutput: the label column whose branch sees grayscale "
                                    "(default: category if there is one, else the last column).")
    loss_weights: dict[str, float] = Field(default_factory=dict, description="multioutput: loss weight per "
                                           "head, e.g. category=1,color=1 (others 1).")
    small_pooling: Pooling = Field("average", description="small network: flatten -> dense "
                                                         "256 (the tutorials') or global average pooling.")
    schedule: Schedule = Field("cosine", description="Learning rate: cosine decay to 0 "
                                                        "over the training, or the tutorials' lr / (1 + lr/epochs * "
                                                        "step).")
    threshold: float = Field(0.5, gt=0, lt=1, description="multilabel: a label is predicted at this probability.")
    trainer: Trainer = trainer_field("stream")
    epochs: int = epochs_field(40)
    batch_size: int = batch_size_field(32)
    validation_fraction: float = validation_field(0.1)
    augment: list[Augmentation] = augment_field(["flip"])

    def size(self) -> int:
        from tasks.training.backbones import default_size  # imports Keras: only when a size is needed

        return self.image_size or default_size(self.backbone)

    def gray_column(self, columns: list[str]) -> str:
        return self.gray_output or ("category" if "category" in columns else columns[-1])

"""Typed parameters of each flow: the Prefect UI renders them as forms, the CLI maps onto them."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from tasks.training_options import Strategy, Trainer, TrainingOptions

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = str(PROJECT_ROOT / "data" / "houses")


class DataOptions(BaseModel):
    """Where the houses come from and how they are filtered and tiled."""

    model_config = ConfigDict(extra="forbid")

    data: str = Field(DEFAULT_DATA, description="Houses-format folder, or URL of a zip of one "
                      "(downloaded once into the cache). Default: the compact copy in data/houses.")
    cache: Path = Field(Path(".cache"), description="Cache folder, reused across runs; entries are "
                        "keyed by input content, parameters and code version.")
    min_houses_per_zip: int = Field(25, ge=1, description="Drop zip codes with fewer houses.")
    test_size: float = Field(0.25, gt=0, lt=1, description="Fraction of houses held out for test.")
    tile_size: int = Field(32, ge=4, le=1024, description="Side of each photo's tile, in pixels; "
                           "the montage is twice that.")
    on_bad_house: Literal["fail", "skip"] = Field("fail", description="On a house with a bad line "
                                                  "or photo: stop with an error, or leave it out and "
                                                  "list it in the summary.")


class PreprocessConfig(DataOptions):
    """Ingest a Houses-format dataset and build the cached, training-ready Parquet files."""

    out: Path = Field(Path("runs/preprocess"), description="Folder for summary.json, manifest.json "
                      "and encoders.json.")
    seed: int = Field(42, description="Seed of the train/test split.")
    export_montages: Path | None = Field(None, description="Also write each kept house's montage "
                                         "as DIR/{house}.png.")


class TrainConfig(DataOptions, TrainingOptions):
    """Preprocess, train one model and evaluate it on the held-out houses."""

    out: Path = Field(Path("runs/train"), description="Folder for metrics.json, report.md, plots and "
                      "the model (model/).")
    split_seed: int = Field(42, description="Seed of the train/test split (42: the tutorials').")
    cv: int | None = Field(None, ge=2, le=20, description="Also run K-fold cross-validation by house "
                           "on the train split and report each metric's mean and spread.")

    def preprocess_config(self) -> PreprocessConfig:
        data_fields = {name: getattr(self, name) for name in DataOptions.model_fields}
        return PreprocessConfig(**data_fields, out=self.out / "preprocess", seed=self.split_seed)

    def training_options(self, **overrides) -> TrainingOptions:
        """The training options given (others take their strategy's defaults), with overrides."""
        given = {name: getattr(self, name) for name in TrainingOptions.model_fields if name in self.model_fields_set}
        return TrainingOptions(**{**given, **overrides})


class CompareConfig(TrainConfig):
    """Train several strategy x trainer configurations on the same split and rank them."""

    out: Path = Field(Path("runs/compare"), description="Folder for leaderboard.md/.csv/.png and one "
                      "sub-folder per configuration.")
    strategies: list[Strategy] = Field(["mlp", "cnn", "mixed"], min_length=1,
                                       description="Strategies to train.")
    trainers: list[Trainer] = Field(["fit"], min_length=1, description="Trainers to train each strategy with.")
    cli_skip: ClassVar[set[str]] = {"strategy", "trainer", "cv"}  # replaced by the lists above

    max_parallel: int = Field(1, ge=1, le=64, description="Configurations trained at once (threads in this "
                              "process; 1 keeps runs reproducible; use a Dask cluster to go wider).")

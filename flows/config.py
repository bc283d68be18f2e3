"""Typed parameters of each flow: the Prefect UI renders them as forms, the CLI maps onto them."""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, field_validator, model_validator

from tasks.automl.options import Budget, ImageBlock, SearchSpace, SweepTask, Tuner, parse_budgets
from tasks.classify.options import ClassifierOptions
from tasks.core import paths, storage
from tasks.core.download import is_url
from tasks.core.errors import DataError
from tasks.core.extras import require_extra
from tasks.houses.ingest import DuplicatePolicy
from tasks.price.options import PriceOptions, PriceSettings, Strategy
from tasks.training.options import Trainer

# A folder or file option: a local path, or an object-store URL (s3://bucket/prefix) that the pipeline works on
# through its local mirror (tasks.core.storage); shown, logged and recorded as the URL it was given.
Location = Annotated[Path, BeforeValidator(storage.working_path), PlainSerializer(storage.shown, return_type=str)]


def default_data() -> str:
    """`HOUSE_PIPELINE_DATA`, else `data/houses` in the working directory (where `sample-data` writes)."""
    return os.environ.get("HOUSE_PIPELINE_DATA") or "data/houses"


def default_cache() -> Path:
    """`HOUSE_PIPELINE_CACHE`, else `.cache` in the working directory."""
    return Path(os.environ.get("HOUSE_PIPELINE_CACHE") or ".cache")


Options = TypeVar("Options", bound=BaseModel)


def options_for(model: type[Options], config: BaseModel, **overrides) -> Options:
    """A stage's options from a flow's config: the fields they share that the config was given (the
    others take the stage's own defaults, e.g. a strategy's), then `overrides`. The one way every flow
    derives a stage's options."""
    given = {name: getattr(config, name) for name in model.model_fields if name in config.model_fields_set}
    return model(**{**given, **overrides})


def refresh_cache_field() -> Any:
    return Field(False, description="Recompute every cached stage of this run (montages, dataset, training, "
                 "search) instead of reusing it, also Prefect's record of it; the new entries replace the old.")


class ClusterOptions(BaseModel):
    """Where a flow's parallel work runs: in its own process, a local Dask cluster, or an existing one."""

    workers: int | None = Field(None, ge=1, le=256, description="Start a local Dask cluster of N worker processes "
                                "and run the parallel work on it: perceptual hashes and montage shards, the "
                                "classifier's images, trainings of compare and of --cv folds, sweep points (each "
                                "worker gets its share of the cores).")
    dask_address: str | None = Field(None, description="Run the parallel work on an existing Dask cluster "
                                     "(tcp://HOST:PORT of its scheduler); its workers need this package and the same "
                                     "--data and --cache (shared folders or object storage).")

    @model_validator(mode="after")
    def _one_cluster(self):
        if self.workers and self.dask_address:
            raise ValueError("give --workers (a local cluster) or --dask-address (an existing one), not both")
        return self

    def check_cluster(self) -> None:
        """The Dask extra, the scheduler that --dask-address names, the worker threads, the reading threads and
        the workers' pinning, before any work."""
        from tasks.core.read_ahead import reads_per_core
        from tasks.core.worker_cores import pinning_allowed

        reads_per_core()  # HOUSE_PIPELINE_READS_PER_CORE
        pinning_allowed()  # HOUSE_PIPELINE_PIN_WORKERS
        if self.workers or self.dask_address:
            require_extra("dask", "distributed", "prefect_dask")
        if self.dask_address:
            from tasks.core.cluster import check_dask_scheduler

            check_dask_scheduler(self.dask_address)
        if self.workers:
            from tasks.core.cluster import threads_per_worker

            threads_per_worker(self.workers)  # HOUSE_PIPELINE_WORKER_THREADS checked before any work


class DataOptions(ClusterOptions):
    """Where the houses come from and how they are filtered and tiled."""

    model_config = ConfigDict(extra="forbid")

    data: str = Field(default_factory=default_data, description="Houses-format folder, or URL of a zip of one "
                      "(downloaded once into the cache). Default: $HOUSE_PIPELINE_DATA, else data/houses in the "
                      "working directory (`house-pipeline sample-data` writes the compact sample there).")
    cache: Location = Field(default_factory=default_cache, description="Cache folder, reused across runs; entries are "
                        "keyed by input content, parameters and code version. Default: $HOUSE_PIPELINE_CACHE, "
                        "else .cache in the working directory.")
    refresh_cache: bool = refresh_cache_field()
    min_houses_per_zip: int = Field(25, ge=1, description="Drop zip codes with fewer houses.")
    test_size: float = Field(0.25, gt=0, lt=1, description="Fraction of houses held out for test.")
    tile_size: int = Field(32, ge=4, le=1024, description="Side of each photo's tile, in pixels; "
                           "the montage is twice that.")
    on_bad_house: Literal["fail", "skip"] = Field("fail", description="On a house with a bad line "
                                                  "or photo: stop with an error, or leave it out and "
                                                  "list it in the summary.")
    duplicates: DuplicatePolicy = Field("keep-one", description="Houses with the same attributes and price: keep "
                                        "the first (lowest house number) and leave the others out, or keep all. "
                                        "Either way, houses that share a photo or a record stay on one side of "
                                        "every split.")
    def data_inputs(self) -> dict[str, Path]:
        """The input folders nothing may be written into: --data when it is a local folder."""
        return {} if is_url(self.data) else {"--data": storage.working_path(self.data).expanduser()}

    def check_paths(self) -> None:
        """Every path option and the Dask cluster, before any work (see tasks.core.paths)."""
        self.check_cluster()
        for option, folder in self.data_inputs().items():
            if "data" not in self.model_fields_set:
                check_default_data(option, folder)
            paths.check_input_folder(option, folder)
        paths.check_output_folder("--cache", self.cache, self.data_inputs())


class PreprocessConfig(DataOptions):
    """Ingest a Houses-format dataset and build the cached, training-ready Parquet files."""

    out: Location = Field(Path("runs/preprocess"), description="Folder for summary.json, manifest.json "
                      "and encoders.json.")
    seed: int = Field(42, description="Seed of the train/test split.")
    export_montages: Path | None = Field(None, description="Also write each kept house's montage "
                                         "as DIR/{house}.png.")

    def check_paths(self) -> None:
        super().check_paths()
        paths.check_run_folder("--out", self.out, self.data_inputs())
        if self.export_montages is not None:
            paths.check_output_folder("--export-montages", self.export_montages, self.data_inputs())


class TrackingOptions(BaseModel):
    """Where the run's experiment record goes (MLflow)."""

    tracking: Literal["required", "optional", "off"] = Field(
        default_factory=lambda: os.environ.get("HOUSE_PIPELINE_TRACKING") or "required", validate_default=True,
        description="MLflow tracking: required (an unreachable store is an error before any work), optional (a "
                    "warning, and the run goes on untracked) or off. Default: $HOUSE_PIPELINE_TRACKING, else "
                    "required.")
    tracking_uri: str | None = Field(None, description="MLflow tracking and registry URI (http://HOST:PORT of an "
                                     "`mlflow server`, or sqlite:///PATH). Default: $MLFLOW_TRACKING_URI, else "
                                     "a SQLite store under .house-pipeline/mlflow.")

    def check_tracking(self) -> None:
        """With tracking required, an unreachable store is an error here, before any work."""
        from tasks.lifecycle.tracking import Tracking

        if self.tracking == "required":
            Tracking.resolve("required", self.tracking_uri)

    def tracker(self):
        """The resolved, checked store (None inside when tracking is off or optional and unreachable)."""
        from tasks.lifecycle.tracking import Tracking

        return Tracking.resolve(self.tracking, self.tracking_uri)


class RunOptions(DataOptions, TrackingOptions):
    """Data options plus the run's output folder, train/test split seed and experiment tracking."""

    out: Location = Field(Path("runs/run"), description="Output folder.")
    split_seed: int = Field(42, description="Seed of the train/test split (42: the tutorials').")

    def check_paths(self) -> None:
        super().check_paths()
        paths.check_run_folder("--out", self.out, self.data_inputs())
        self.check_tracking()

    def preprocess_config(self) -> PreprocessConfig:
        return options_for(PreprocessConfig, self, out=self.out / "preprocess", seed=self.split_seed)


class IntervalOptions(BaseModel):
    """How the price range every model carries is calibrated and shown."""

    interval_folds: int = Field(5, ge=2, le=20, description="Folds of the train houses whose out-of-fold errors "
                                "calibrate the price range (K more trainings, cached; the same folds and trainings "
                                "as --cv K).")
    interval_level: float = Field(0.8, gt=0, lt=1, description="Level of the price range in the report and "
                                  "metrics (0.8: a range that should hold 80 in 100 prices); predict and score "
                                  "take their own.")


class TrainConfig(RunOptions, PriceOptions, IntervalOptions):
    """Preprocess, train one model and evaluate it on the held-out houses."""

    out: Location = Field(Path("runs/train"), description="Folder for metrics.json, report.md, plots and "
                      "the model (model/).")
    cv: int | None = Field(None, ge=2, le=20, description="Also run K-fold cross-validation by house "
                           "on the train split and report each metric's mean and spread.")
    register_model: bool = Field(True, description="Register the model in the MLflow registry and make it champion if "
                           "it passes the promotion gate (needs tracking).")
    promotion_tolerance: float = Field(0.0, ge=0, le=100, description="How many MAPE points worse than the "
                                       "champion (on the same test houses) a candidate may be and still be "
                                       "promoted.")
    drift_threshold: float = Field(0.25, gt=0, description="PSI above which a column of the training data has "
                                   "drifted from the champion's; drift blocks promotion, not training.")

    def training_options(self) -> PriceOptions:
        """The training options given (others take their strategy's defaults)."""
        return options_for(PriceOptions, self)


class CompareConfig(RunOptions, PriceSettings, IntervalOptions):
    """Train several strategy x trainer configurations on the same split and rank them."""

    out: Location = Field(Path("runs/compare"), description="Folder for leaderboard.md/.csv/.png and one "
                      "sub-folder per configuration.")
    strategies: list[Strategy] = Field(["mlp", "cnn", "mixed"], min_length=1,
                                       description="Strategies to train.")
    trainers: list[Trainer] = Field(["fit"], min_length=1, description="Trainers to train each strategy with.")
    gbm_baseline: bool = Field(True, description="Put the tree baseline (scikit-learn's gradient boosting on the "
                               "attributes, fitted in a second) on the leaderboard beside the networks.")
    max_parallel: int = Field(1, ge=1, le=64, description="Configurations trained at once (threads in this "
                              "process; 1 keeps runs reproducible; use a Dask cluster to go wider).")

    def training_options(self, strategy: Strategy, trainer: str) -> PriceOptions:
        """One configuration's options: the settings given (others take the strategy's defaults)."""
        return options_for(PriceOptions, self, strategy=strategy, trainer=trainer)


class SweepConfig(RunOptions):
    """AutoKeras searches for a list of time budgets (one cached point per task x budget), with a
    leaderboard that shows the hand-built models of the train flow on the same split."""

    out: Location = Field(Path("runs/sweep"), description="Folder for leaderboard.md/.csv/.png, points/ (one "
                      "folder per task x budget: best.keras, result.json, trials.csv, plots) and hand-built/.")
    tasks: list[SweepTask] = Field(["mixed"], min_length=1, description="What AutoKeras searches: attributes "
                                   "(structured data regressor), photos (image regressor on montages), mixed "
                                   "(both inputs), classify (room type of each photo, or --classify-data).")
    budgets: list[str] = Field(["60s"], min_length=1, description="Budget points: SECONDS[s|m|h] or "
                               "SECONDS[s|m|h]:TRIALSxEPOCHS (e.g. 60s,5m:4x20), or a .json/.yaml file of them.")
    max_trials: int = Field(3, ge=1, le=10_000, description="Most trials of a budget that does not say.")
    epochs: int = Field(20, ge=1, le=100_000, description="Most epochs per trial of a budget that does not say.")
    image_block: ImageBlock = Field("vanilla", description="Image block searched: vanilla conv block (fits 2 CPU "
                                    "cores), resnet, xception, efficientnet, or any (AutoKeras chooses).")
    tuner: Tuner = Field("greedy", description="AutoKeras tuner.")
    patience: int = Field(5, ge=1, description="Early stopping patience inside each trial (epochs).")
    validation_fraction: float = Field(0.15, gt=0, lt=0.9, description="Share of the train split the search "
                                       "validates on (by house).")
    seed: int = Field(42, description="Seed of the search and its validation split.")
    classify_data: Location | None = Field(None, description="Image folder for the classify task: one sub-folder "
                                       "per class (its name is the label). Default: room type of the house photos.")
    hand_built_seed: bool = Field(True, description="Start each regression search with the train flow's "
                                  "hand-built model (its recipe, on the search's fit houses, at most half the "
                                  "budget) as its first trial: the point keeps it unless AutoKeras finds better.")
    hand_built: bool = Field(True, description="Also train (or reuse) the train flow's default model for each "
                             "regression task and show it in the leaderboard.")
    threads_per_point: int | None = Field(None, ge=1, le=256, description="TensorFlow threads per point on Dask "
                                          "workers (default: CPU cores / workers on a local cluster).")

    def budget_points(self) -> list[Budget]:
        return parse_budgets(self.budgets, self.max_trials, self.epochs)

    def check_paths(self) -> None:
        """Everything that can be checked before any search: the optional dependencies this sweep needs,
        the paths, the budgets, the classify image folder and the Dask scheduler."""
        require_extra("automl", "autokeras", "keras_tuner")
        super().check_paths()
        if self.classify_data is not None:
            paths.check_input_folder("--classify-data", self.classify_data)
            paths.check_run_folder("--out", self.out, {"--classify-data": self.classify_data})
        self.budget_points()
        if "classify" in self.tasks and self.classify_data is not None:
            from tasks.automl.data import scan_image_folder

            scan_image_folder(self.classify_data)

    def search_space(self) -> SearchSpace:
        return SearchSpace(image_block=self.image_block, tuner=self.tuner, seed=self.seed,
                           validation_fraction=self.validation_fraction, patience=self.patience,
                           hand_built_seed=self.hand_built_seed)


class ScoreConfig(TrackingOptions):
    """Price new houses with a registered model (the champion by default): predictions as Parquet and CSV,
    the model version on every row."""

    model_config = ConfigDict(extra="forbid")

    houses: Location = Field(description="CSV of the new houses: bedrooms, bathrooms, area, zipcode (and house, the "
                         "number in the photo names {house}_{room}.jpg).")
    photos: Location | None = Field(None, description="Folder with the houses' four photos each (needed by models "
                                "that see photos).")
    out: Location = Field(Path("runs/score"), description="Folder for predictions.parquet and predictions.csv.")
    model_version: int | None = Field(None, ge=1, description="Registry version to use (default: the champion).")
    interval_level: float = Field(0.8, gt=0, lt=1, description="Level of each price's range (price_low, "
                                  "price_high; 0.8: a range that should hold 80 in 100 prices).")
    explain: bool = Field(False, description="Also give, per house, how much each attribute group and photo moved "
                          "its price (effect_* columns, dollars, from base_price: the average train house's).")
    cache: Location = Field(default_factory=default_cache, description="Cache folder: a scoring of the same houses, "
                        "photos and model is reused.")
    refresh_cache: bool = refresh_cache_field()

    def check_paths(self) -> None:
        paths.check_input_file("--houses", self.houses)
        inputs = {}
        if self.photos is not None:
            paths.check_input_folder("--photos", self.photos)
            inputs["--photos"] = self.photos
        paths.check_run_folder("--out", self.out, inputs)
        paths.check_output_folder("--cache", self.cache, inputs)
        self.registry_version()

    def registry_version(self):
        """The registry version to score with, checked before any work (a clear error when there is none)."""
        from tasks.lifecycle import registry

        tracker = self.tracker()
        if not tracker.enabled:
            raise DataError(f"--tracking {self.tracking}: scoring reads the model registry, so it needs a reachable "
                            "tracking store; pass --tracking required")
        return registry.version(tracker, self.model_version)


class ClassifyConfig(ClassifierOptions, TrackingOptions, ClusterOptions):
    """Train an image classifier (multilabel or multioutput) and evaluate it on held-out images. Without
    --data: each house photo of --houses labelled with its room and its house's price tier, split by house."""

    data: Location | None = Field(None, description="Image folder whose sub-folders name the labels joined by _ "
                              "(red_dress/, blue_jeans/), or a CSV manifest (path + one column per label; optional "
                              "group, split). Default: the room + price tier labels of the --houses photos.")
    houses: str = Field(default_factory=default_data, description="Houses-format folder the default labels come "
                        "from. Default: $HOUSE_PIPELINE_DATA, else data/houses in the working directory.")
    label_names: list[str] = Field(["color", "category"], min_length=1, description="Names of the parts of a "
                                   "sub-folder name (folder layout only).")
    test_size: float = Field(0.25, gt=0, lt=1, description="Share held out for test (by group/house when the "
                             "manifest has one; ignored when it has a split column).")
    split_seed: int = Field(42, description="Seed of the train/test split.")
    on_bad_image: Literal["fail", "skip"] = Field("fail", description="On an unreadable image: stop with an "
                                                  "error, or leave it out and list it in the log.")
    cache: Location = Field(default_factory=default_cache, description="Cache folder, reused across runs.")
    refresh_cache: bool = refresh_cache_field()
    out: Location = Field(Path("runs/classify"), description="Folder for metrics.json, report.md, plots/ and the "
                      "model (model/: model.keras + labels.json).")

    def classifier_options(self) -> ClassifierOptions:
        return options_for(ClassifierOptions, self)

    def check_paths(self) -> None:
        inputs = {}
        if self.data is not None:
            if self.data.suffix.lower() == ".csv":
                paths.check_input_file("--data", self.data)
            else:
                paths.check_input_folder("--data", self.data)
                inputs["--data"] = self.data
        elif not is_url(self.houses):
            if "houses" not in self.model_fields_set:
                check_default_data("--houses", storage.working_path(self.houses))
            paths.check_input_folder("--houses", storage.working_path(self.houses))
            inputs["--houses"] = storage.working_path(self.houses)
        paths.check_output_folder("--cache", self.cache, inputs)
        paths.check_run_folder("--out", self.out, inputs)
        self.check_tracking()
        self.check_cluster()



def check_default_data(option: str, folder: Path) -> None:
    """The default data folder exists, or one line saying how to get it."""
    if not folder.exists():
        raise DataError(f"{option} {folder}: no such folder (the default: $HOUSE_PIPELINE_DATA, else data/houses in "
                        f"the working directory); write the sample there with `house-pipeline sample-data {folder}`, "
                        f"or pass {option} DIR")


def default_images() -> str:
    """The frontal photos of the default data."""
    return str(Path(default_data()) / "*_frontal.jpg")

Backend = Literal["default", "opencv", "cuda"]
Target = Literal["cpu", "cuda", "cuda_fp16", "opencl"]


class DnnRunOptions(BaseModel):
    """Options shared by the OpenCV DNN flows (stylize, colorize)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    input: str = Field(default_factory=default_images, description="One image, a folder of images, or a glob (quote "
                       "it). Default: the frontal house photos of the default --data (data/houses).")
    model: Location | None = Field(None, description="Network file for cv2.dnn.readNet (Torch .t7, .onnx, .pb, "
                                   ".tflite; Caffe .caffemodel weights with --prototxt); `python -m flows models "
                                   "fetch NAME` gets the published ones.")
    cache: Location = Field(default_factory=default_cache, description="Cache folder: one entry per image x model x "
                        "settings.")
    backend: Backend = Field("default", description="OpenCV DNN backend (cuda needs an OpenCV built with CUDA).")
    target: Target = Field("cpu", description="OpenCV DNN target device.")
    workers: int = Field(2, ge=1, le=64, description="Images processed at once (threads, one network each); "
                         "1 runs them one after another.")
    on_bad_image: Literal["skip", "fail"] = Field("skip", description="On an image that cannot be read or "
                                                  "decoded: report and skip it, or stop with an error.")
    limit: int | None = Field(None, ge=1, description="Process only the first N images (sorted by path).")
    sheet_images: int = Field(12, ge=1, le=200, description="Images shown on the contact sheet (the first N).")

    def input_folder(self) -> Path | None:
        """The folder the input images are in (a folder given, a glob's fixed part, a file's folder)."""
        spec = Path(self.input).expanduser()
        if glob.has_magic(self.input):
            fixed = next((p for p in spec.parents if not glob.has_magic(str(p))), Path("."))
            return fixed if fixed.is_dir() else None
        return spec if spec.is_dir() else spec.parent if spec.is_file() else None

    @field_validator("input", mode="before")
    @classmethod
    def _remote_input(cls, value: Any) -> Any:
        """An image or folder on object storage is read from its mirror."""
        return str(storage.working_path(value)) if isinstance(value, str) and storage.is_remote(value) else value

    def check_paths(self) -> None:
        if remote := storage.remote_of(self.input):
            (storage.fetch_folder if "." not in remote.rsplit("/", 1)[-1] else storage.fetch_file)(remote)
        spec = Path(self.input).expanduser()
        if not glob.has_magic(self.input) and not spec.exists():
            raise DataError(f"--input {self.input}: no such file or folder; pass an image, a folder of images "
                            "or a quoted glob like 'photos/*.jpg'")
        for option in ("model", "prototxt", "points"):  # the last two: colorize only
            if getattr(self, option, None) is not None:
                paths.check_input_file(f"--{option}", getattr(self, option))
        folder = self.input_folder()
        inputs = {"--input": folder} if folder is not None else {}
        paths.check_output_folder("--cache", self.cache, inputs)
        paths.check_run_folder("--out", self.out, inputs)


class StylizeConfig(DnnRunOptions):
    """Fast neural style transfer (Johnson et al.) over a batch of images with an OpenCV DNN network."""

    out: Location = Field(Path("runs/stylize"), description="Folder for the styled images (same names), "
                      "contact_sheet.png, timing.csv/.md and summary.json.")
    width: int = Field(600, ge=8, le=8192, description="Width the images are resized to (aspect kept).")
    mean: list[float] = Field([103.939, 116.779, 123.680], min_length=3, max_length=3,
                              description="Per-channel means subtracted before and added back after the network, "
                              "in the network's channel order (ImageNet BGR for the Torch models; 0,0,0 for the "
                              "ONNX-zoo models).")
    swap_rb: bool = Field(False, description="Feed RGB instead of BGR (the ONNX-zoo models want RGB).")


class ColorizeConfig(DnnRunOptions):
    """Black-and-white colorization (Zhang et al., or our own colorizer) over a batch of images."""

    out: Location = Field(Path("runs/colorize"), description="Folder for the colorized images (same names), "
                      "contact_sheet.png, timing.csv/.md and summary.json.")
    prototxt: Location | None = Field(None, description="Caffe network definition, with --model WEIGHTS.caffemodel.")
    points: Location | None = Field(None, description="The ab cluster centres (pts_in_hull.npy) installed in "
                                    "class8_ab.")
    size: int | None = Field(None, ge=8, le=4096, description="Side of the square L input (default: the size "
                             "recorded beside our colorizer's .onnx, else 224 as the published model).")


class TrainColorizerConfig(BaseModel):
    """Train a small Keras colorizer (L in, ab out) on colour photos, export it to ONNX for cv2.dnn, and
    report its quality on held-out photos next to leaving them gray."""

    model_config = ConfigDict(extra="forbid")

    data: Location = Field(default_factory=lambda: Path(default_data()), description="Folder of colour photos. "
                       "Default: the house photos of the default --data (data/houses).")
    out: Location = Field(Path("runs/colorizer"), description="Folder for colorizer.onnx (+ .json, .keras), "
                      "quality.json, quality.md and contact_sheet.png.")
    cache: Location = Field(default_factory=default_cache, description="Cache folder: a trained colorizer is reused.")
    refresh_cache: bool = refresh_cache_field()
    size: int = Field(96, ge=16, le=512, description="Training input side in pixels (a multiple of 8).")
    epochs: int = Field(40, ge=1, le=1000, description="Training epochs (about 5 s each on 2 CPU cores at 96 px).")
    batch_size: int = Field(32, ge=1, le=1024, description="Photos per training step.")
    test_fraction: float = Field(0.1, gt=0, lt=0.9, description="Share of photos held out for the quality report.")
    seed: int = Field(42, description="Seed of the split and the training.")
    max_images: int | None = Field(None, ge=4, description="Use only the first N photos (sorted by name).")

    def check_paths(self) -> None:
        """The paths, and the ONNX exporter's optional dependency, before any training."""
        require_extra("dnn", "onnx")
        paths.check_input_folder("--data", self.data)
        paths.check_output_folder("--cache", self.cache, {"--data": self.data})
        paths.check_run_folder("--out", self.out, {"--data": self.data})

    @model_validator(mode="after")
    def _multiple_of_8(self) -> TrainColorizerConfig:
        if self.size % 8:
            raise ValueError(f"size must be a multiple of 8 (three stride-2 steps), got {self.size}")
        return self


def run_parameter(name: str, default: object = "?") -> object:
    """A field of the running flow's `config` parameter (a model, or a dict when started from the API)."""
    from prefect.runtime import flow_run

    config = flow_run.parameters.get("config")
    if isinstance(config, BaseModel):
        return getattr(config, name, default)
    return (config or {}).get(name, default)

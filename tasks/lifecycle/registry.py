"""The model registry: price models as versions of one registered model, `champion` by alias.

One registered model, `house-price`, for every strategy (the strategy is a tag of each version):
users want *the* model in use, at one stable URI (`models:/house-price@champion`), and a
candidate of any strategy must beat it to replace it. A version is logged as models-from-code
(`price_pyfunc.py` + the model folder as an artifact): loading it unpickles nothing. Each version
records the sha256 of its files; a version whose files are missing or changed is reported and never
served. Promotion (gate + alias) runs under a lock, so two runs promoting at once leave one champion.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from tasks.core.errors import DataError
from tasks.core.hashing import file_sha256
from tasks.core.locks import exclusive
from tasks.core.state import state_dir
from tasks.lifecycle.tracking import Tracking

MODEL_NAME = "house-price"
CHAMPION = "champion"
NOT_PROMOTED_EVENT = "house-pipeline.model.not-promoted"  # the gate emits it; flows.alerts notifies on it
MODEL_FILES = ("model.keras", "encoders.json", "training.json")
OPTIONAL_FILES = ("interval.json", "baseline.json")  # the price range and the explanations' baseline: absent in
# versions registered before them (those price without a range or explanation)
PYFUNC_CODE = Path(__file__).with_name("price_pyfunc.py")
LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class Version:
    number: int
    run_id: str | None
    source: str
    tags: dict
    aliases: list[str]

    @property
    def is_champion(self) -> bool:
        return CHAMPION in self.aliases


def _version(found) -> Version:
    return Version(int(found.version), found.run_id, found.source, dict(found.tags or {}), list(found.aliases or []))


def log_price_model(tracking: Tracking, run_id: str, model_dir: Path) -> str:
    """Save the model folder as an MLflow pyfunc model (models-from-code) under the run's `model/`; its URI."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    import mlflow.pyfunc

    try:
        requirement = f"house-pipeline=={installed('house-pipeline')}"
    except PackageNotFoundError:
        requirement = "house-pipeline"
    client = tracking.client()
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        # MLflow asks for an input example; ours would hold photo paths of this machine, so none is given
        warnings.filterwarnings("ignore", message=".*input example was not provided")
        saved = Path(tmp) / "model"
        mlflow.pyfunc.save_model(path=str(saved), python_model=str(PYFUNC_CODE), artifacts={"model": str(model_dir)},
                                 pip_requirements=[requirement], signature=_signature())
        client.log_artifacts(run_id, str(saved), "model")
    return f"{client.get_run(run_id).info.artifact_uri}/model"


def _signature():
    """Attributes as numbers, each photo a path or data URI (optional: models without photos ignore them); the
    params `interval_level` (the range's level) and `explain` (add each input's effect)."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

    from tasks.lifecycle.scoring import PHOTO_COLUMNS
    from tasks.price.explain import player_names
    from tasks.price.interval import DEFAULT_LEVEL

    inputs = [ColSpec("double", name) for name in ("bedrooms", "bathrooms", "area")] + [ColSpec("long", "zipcode")]
    inputs += [ColSpec("string", name, required=False) for name in PHOTO_COLUMNS]
    outputs = [ColSpec("double", name) for name in ("predicted_price", "price_low", "price_high")]
    outputs += [ColSpec("double", name, required=False)
                for name in ("base_price", *(f"effect_{p}" for p in player_names(("attributes", "montage"))))]
    params = ParamSchema([ParamSpec("interval_level", "double", DEFAULT_LEVEL), ParamSpec("explain", "boolean", False)])
    return ModelSignature(inputs=Schema(inputs), outputs=Schema(outputs), params=params)


def register(tracking: Tracking, run_id: str, model_dir: Path, tags: dict[str, str]) -> Version:
    """A new version of `house-price` from the run's logged model, with the sha256 of its files."""
    from mlflow.exceptions import MlflowException

    client = tracking.client()
    source = log_price_model(tracking, run_id, model_dir)
    try:
        client.create_registered_model(MODEL_NAME, description="House prices from attributes and photos.")
    except MlflowException:  # already there
        pass
    hashes = {f"sha256.{name}": file_sha256(model_dir / name) for name in (*MODEL_FILES, *OPTIONAL_FILES)
              if name in MODEL_FILES or (model_dir / name).is_file()}
    created = client.create_model_version(MODEL_NAME, source=source, run_id=run_id, tags={**tags, **hashes})
    return _version(created)


def versions(tracking: Tracking) -> list[Version]:
    """Every version, newest first (none when nothing is registered yet)."""
    client = tracking.client()
    found = client.search_model_versions(f"name = '{MODEL_NAME}'")
    return sorted((_version(client.get_model_version(MODEL_NAME, v.version)) for v in found),
                  key=lambda v: -v.number)


def with_model(tracking: Tracking, model_sha256: str) -> Version | None:
    """The version whose model.keras has this sha256, if one is registered."""
    return next((v for v in versions(tracking) if v.tags.get("sha256.model.keras") == model_sha256), None)


def champion(tracking: Tracking) -> Version | None:
    from mlflow.exceptions import MlflowException

    try:
        return _version(tracking.client().get_model_version_by_alias(MODEL_NAME, CHAMPION))
    except MlflowException:
        return None


def version(tracking: Tracking, number: int | None, option: str = "--model-version") -> Version:
    """Version `number`, or the champion when None; a clear error when there is none."""
    from mlflow.exceptions import MlflowException

    if number is None:
        found = champion(tracking)
        if found is None:
            raise DataError(f"no {CHAMPION} in the registry ({MODEL_NAME} at {tracking.uri}): train one with "
                            "`python -m flows train` (a model that passes the gate becomes champion), or promote "
                            "a version with `python -m flows models registry promote N`")
        return found
    try:
        return _version(tracking.client().get_model_version(MODEL_NAME, str(number)))
    except MlflowException:
        known = ", ".join(str(v.number) for v in versions(tracking)) or "none"
        raise DataError(f"{option} {number}: no such version of {MODEL_NAME} (versions: {known})") from None


def model_folder(tracking: Tracking, found: Version, into: Path) -> Path:
    """The version's model folder (model.keras, encoders.json, training.json), downloaded and verified."""
    import mlflow.artifacts

    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"{found.source}/artifacts/model",
                                                         dst_path=str(into), tracking_uri=tracking.uri))
    except Exception as error:  # noqa: BLE001 - any store error means the files cannot be served
        raise DataError(f"registry version {found.number} of {MODEL_NAME}: its files cannot be read from "
                        f"{found.source} ({type(error).__name__}); it is not served. Promote another version "
                        "or train again") from None
    for name in (*MODEL_FILES, *OPTIONAL_FILES):
        expected = found.tags.get(f"sha256.{name}")
        if name in OPTIONAL_FILES and not expected:
            continue
        path = local / name
        if not path.is_file() or (expected and file_sha256(path) != expected):
            raise DataError(f"registry version {found.number} of {MODEL_NAME}: {name} is "
                            f"{'missing' if not path.is_file() else 'changed since it was registered'} in "
                            f"{found.source}; it is not served. Promote another version or train again")
    return local


def promotion_lock(log: logging.Logger | logging.LoggerAdapter):
    """Held while a run reads the champion, compares and moves the alias (one promotion at a time)."""
    return exclusive(state_dir() / "locks" / "promotion.lock", f"the {CHAMPION} of {MODEL_NAME}", log)


def crown(tracking: Tracking, number: int, previous: Version | None) -> None:
    """Version `number` becomes champion; it remembers the one it replaced (for rollback)."""
    client = tracking.client()
    if previous is not None and previous.number != number:
        client.set_model_version_tag(MODEL_NAME, str(number), "previous_champion", str(previous.number))
    client.set_registered_model_alias(MODEL_NAME, CHAMPION, str(number))


def _checked(tracking: Tracking, found: Version) -> Version:
    with tempfile.TemporaryDirectory() as tmp:
        model_folder(tracking, found, Path(tmp))
    return found


def promote(tracking: Tracking, number: int, log: logging.Logger | logging.LoggerAdapter = LOG) -> Version:
    """Make version `number` the champion by hand (its files are checked first)."""
    found = _checked(tracking, version(tracking, number, "VERSION"))
    with promotion_lock(log):
        crown(tracking, found.number, champion(tracking))
    return version(tracking, number)


def rollback(tracking: Tracking, log: logging.Logger | logging.LoggerAdapter = LOG) -> Version:
    """The champion before the current one becomes champion again (repeat to go further back)."""
    with promotion_lock(log):
        current = version(tracking, None)
        previous = current.tags.get("previous_champion")
        if not previous:
            raise DataError(f"version {current.number} is the first {CHAMPION}: there is nothing to roll back to; "
                            "promote a version by number instead")
        _checked(tracking, version(tracking, int(previous)))
        tracking.client().set_registered_model_alias(MODEL_NAME, CHAMPION, previous)
    return version(tracking, int(previous))

"""Registering and gating against a real MLflow store (SQLite, in this process), on models trained for seconds:
the champion alias moves only when the gate promotes, whatever the other versions' figures; the gate reads the
candidate's metrics as given, so each outcome is chosen here, not left to where a training lands."""

from __future__ import annotations

import logging

import pytest

from tasks.lifecycle import registry
from tasks.lifecycle.promotion import register_and_gate
from tasks.lifecycle.tracking import Tracking, experiment_id
from tasks.price.evaluate import export_model
from tasks.price.options import PriceOptions
from tasks.price.train import train_model
from tests.fixtures import make_houses, run_stages

LOG = logging.getLogger(__name__)
NO_DRIFT = {"blocked": False, "reasons": []}
DRIFT = {"blocked": True, "reasons": ["area drifted (PSI 0.91 > 0.25)"]}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Four exported model folders (seeds 1-4, so four different model.keras) and the dataset's test split."""
    folder = tmp_path_factory.mktemp("promotion")
    houses = make_houses(folder / "houses", [90000 + n % 3 for n in range(24)], photo_size=(24, 20))
    _, dataset = run_stages(houses, folder / "cache", tile_size=8)
    exported = []
    for seed in range(1, 5):
        options = PriceOptions(strategy="mlp", epochs=2, batch_size=4, seed=seed)
        result = train_model(dataset.train_path, dataset.encoders(), options, folder / f"work-{seed}")
        exported.append(export_model(result.model_path, dataset, options, folder / f"model-{seed}"))
    return exported, dataset.test_path


def _metrics(mape: float, baseline: float = 30.0) -> dict:
    return {"mape_mean": mape, "baseline": {"mape_mean": baseline}, "strategy": "mlp"}


def test_the_champion_alias_moves_only_when_the_gate_promotes(models, tmp_path, monkeypatch):
    monkeypatch.setenv("HOUSE_PIPELINE_HOME", str(tmp_path / "home"))  # the promotion lock's folder
    folders, test_path = models
    tracker = Tracking(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client = tracker.client()
    experiment = experiment_id(client, "house-prices")

    def gate(folder, metrics, drift=NO_DRIFT, tolerance=1000.0):
        run_id = client.create_run(experiment).info.run_id
        return register_and_gate(tracker, run_id, folder, test_path, metrics, drift, tolerance, {}, LOG)

    first = gate(folders[0], _metrics(10.0))
    assert first["promoted"] and registry.champion(tracker).number == first["version"] == 1

    no_better_than_naive = gate(folders[1], _metrics(35.0))
    drifted = gate(folders[2], _metrics(5.0), DRIFT)
    for verdict in (no_better_than_naive, drifted):
        assert not verdict["promoted"] and verdict["champion"] == 1
    assert registry.champion(tracker).number == 1  # two rejected versions later, the alias has not moved
    assert [client.get_model_version(registry.MODEL_NAME, str(v)).tags["gate"] for v in (2, 3)] == ["rejected"] * 2

    better = gate(folders[3], _metrics(8.0))
    assert better["promoted"] and better["version"] == 4
    champion = registry.champion(tracker)
    assert champion.number == 4 and champion.tags["previous_champion"] == "1"

"""Prove that the suite's key checks can fail: break the code on purpose, one mutant at a time, in a copy of
the checkout, and run the tests that guard that promise. Every mutant must make its tests fail; a mutant
that passes means a check that cannot see the breakage it claims to catch.

    .venv/bin/python tools/prove_checks.py            # all mutants (about ten minutes on 2 cores)
    .venv/bin/python tools/prove_checks.py augment    # the mutants whose name contains "augment"
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]


MUTANTS = [
    Mutant("predict returns NaN", "tasks/price/predict.py",
           "return houses.assign(predicted_price=np.round(prices, 0))",
           "return houses.assign(predicted_price=np.round(prices, 0) * np.nan)",
           ("tests/price/test_predict.py::test_predict_gives_the_dataset_prices",)),
    Mutant("augmentation switched off", "tasks/training/streams.py",
           "augmenter = image_augmenter(augment or [], seed) if image_input else None", "augmenter = None",
           ("tests/price/test_train.py::test_stream_with_augmentation_trains_on_changed_images",)),
    Mutant("colorizer no better than gray", "tasks/dnn/colorizer.py",
           "colorized, gray = colorize(net, image, size), gray_baseline(image)",
           "colorized, gray = gray_baseline(image), gray_baseline(image)",
           ("tests/dnn/test_dnn_models.py::test_a_short_colorizer_training_beats_leaving_the_photos_gray",)),
    Mutant("cache: the loser of a rename race fails", "tasks/core/cache.py",
           "                if self.lookup(stage, key) is None:  # not a concurrent twin: a real failure\n"
           "                    raise\n",
           "                raise\n",
           ("tests/core/test_cache.py::test_concurrent_writers_of_one_key_leave_one_complete_entry",)),
    Mutant("classification accuracy miscounted", "tasks/training/metrics.py",
           '"accuracy": float(np.mean(np.asarray(actual) == np.asarray(predicted))),',
           '"accuracy": float(np.mean(np.asarray(actual) == np.asarray(actual))),',
           ("tests/automl/test_sweep.py::test_each_task_runs_a_real_search_scores_it_and_exports_a_safe_model",)),
    Mutant("plots saved blank", "tasks/core/figures.py",
           "    fig.tight_layout()\n", "    fig.clf()\n",
           ("tests/flows/test_train_flow.py::test_train_writes_metrics_report_plots_model_and_artifacts",)),
    Mutant("a finished model is trained again", "tasks/training/progress.py",
           "            return folder, summary\n        if damage is not None:",
           "            pass\n        if damage is not None:",
           ("tests/flows/test_train_flow.py::test_a_rerun_reuses_the_trained_model_and_a_changed_option_trains_anew",)),
    Mutant("compare trains one at a time", "flows/compare.py",
           "runner = ThreadPoolTaskRunner(max_workers=config.max_parallel)",
           "runner = ThreadPoolTaskRunner(max_workers=1)",
           ("tests/flows/test_train_flow.py::test_compare_trains_in_parallel_and_writes_a_leaderboard",)),
    Mutant("Dask cluster with one worker", "tasks/automl/cluster.py",
           'cluster_kwargs={"n_workers": workers,', 'cluster_kwargs={"n_workers": 1,',
           ("tests/automl/test_sweep.py::test_sweep_runs_points_on_a_local_dask_cluster",)),
    Mutant("downloads not retried", "tasks/houses/prefect_tasks.py",
           '@task(name="resolve-data", cache_policy=NO_CACHE, retries=2,',
           '@task(name="resolve-data", cache_policy=NO_CACHE, retries=0,',
           ("tests/flows/test_preprocess_flow.py::test_data_from_a_url_is_retried_downloaded_once_and_unpacked",)),
    Mutant("report plots linked, not embedded", "tasks/core/artifacts.py",
           "    return IMAGE_REFERENCE.sub(embed, markdown)", "    return markdown",
           ("tests/flows/test_operations.py::test_the_ui_shows_the_run_and_its_report_with_the_plots_in_the_page",)),
    Mutant("training task outside the concurrency limit", "tasks/price/prefect_tasks.py",
           '@task(name="train", cache_policy=NO_CACHE, timeout_seconds=24 * 3600, tags=["training"])',
           '@task(name="train", cache_policy=NO_CACHE, timeout_seconds=24 * 3600, tags=[])',
           ("tests/flows/test_operations.py::test_two_training_runs_started_together_take_turns",)),
    Mutant("train key ignores the code", "tasks/price/prefect_tasks.py",
           "code_version(models, backbones, train, data, engine, streams),", '"same code",',
           ("tests/test_cache_keys.py",)),
]


def tracked_copy(target: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.splitlines()
    for name in files:
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def run_mutant(mutant: Mutant) -> tuple[bool, float, str]:
    """(killed: the tests failed, seconds, the last line pytest printed)."""
    with tempfile.TemporaryDirectory(prefix="mutant-") as folder:
        copy = Path(folder) / "checkout"
        tracked_copy(copy)
        path = copy / mutant.file
        text = path.read_text()
        if text.count(mutant.old) != 1:
            raise SystemExit(f"error: mutant {mutant.name!r}: the code to break was not found once in {mutant.file}")
        path.write_text(text.replace(mutant.old, mutant.new))
        env = {**os.environ, "PYTHONPATH": str(copy), "TF_CPP_MIN_LOG_LEVEL": "3"}
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                               "-o", "addopts=", *mutant.tests], cwd=copy, env=env, capture_output=True, text=True)
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        return done.returncode != 0, time.perf_counter() - started, lines[-1] if lines else done.stderr[-200:]


def main(argv: list[str]) -> int:
    chosen = [m for m in MUTANTS if not argv or any(word in m.name for word in argv)]
    survivors = []
    for mutant in chosen:
        killed, seconds, last = run_mutant(mutant)
        print(f"{'caught ' if killed else 'MISSED '} {mutant.name:<42} {seconds:6.1f} s  {last}", flush=True)
        if not killed:
            survivors.append(mutant.name)
    print(f"{len(chosen) - len(survivors)} of {len(chosen)} deliberate breakages caught by the tests")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

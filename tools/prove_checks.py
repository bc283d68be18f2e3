"""Prove that the suite's checks can fail: break the code on purpose, one mutant at a time, in a copy of the
checkout, and run the tests that guard that rule. Every mutant must make its tests fail; a mutant that passes
means a check that cannot see the breakage it claims to catch.

Each mutant names the rule the product promises, the code that keeps it (found exactly once, or the tool
stops: `tests/test_mutants.py` checks that on every test run, so a refactor that moves the code must move the
mutant with it), what the break does, and the tests that must fail. `fast` mutants have tests that take
seconds; CI runs them on every run (`make prove-fast`, also `tests/test_mutants.py`); `make prove` runs all.

    .venv/bin/python tools/prove_checks.py             # every mutant (about 25 minutes on 2 cores)
    .venv/bin/python tools/prove_checks.py --fast      # the fast tier (about two minutes)
    .venv/bin/python tools/prove_checks.py gate cache  # the mutants whose name contains "gate" or "cache"
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 900  # seconds a mutant's tests may take


@dataclass(frozen=True)
class Mutant:
    name: str
    rule: str  # what the product promises
    file: str
    old: str  # the code that keeps the rule: found exactly once in `file`
    new: str  # the break
    tests: tuple[str, ...]
    fast: bool = False  # its tests take seconds: CI runs it on every run


MUTANTS = [
    # --- data: the tutorials' recipe -------------------------------------------------------------------------
    Mutant("zip-code filter: more than N instead of at least N",
           "zip codes with at least --min-houses-per-zip houses are kept", "tasks/houses/encoders.py",
           "keep = counts[counts >= min_houses].index", "keep = counts[counts > min_houses].index",
           ("tests/houses/test_preprocess.py::test_filter_keeps_a_zipcode_with_exactly_the_minimum",), fast=True),
    Mutant("encoders fitted on every house, test ones included",
           "min-max ranges are fitted on the train houses only", "tasks/houses/encoders.py",
           "    minimum = train[list(CONTINUOUS_COLUMNS)].min()\n    maximum = train[list(CONTINUOUS_COLUMNS)].max()",
           "    minimum = kept[list(CONTINUOUS_COLUMNS)].min()\n    maximum = kept[list(CONTINUOUS_COLUMNS)].max()",
           ("tests/houses/test_preprocess.py::test_features_match_scikit_learn_minmax_and_label_binarizer",),
           fast=True),
    Mutant("another split than the tutorials'", "the split is train_test_split(test_size, random_state=seed)",
           "tasks/houses/encoders.py", "train_test_split(houses, test_size=test_size, random_state=seed)",
           "train_test_split(houses, test_size=test_size, random_state=seed + 1)",
           ("tests/houses/test_preprocess.py::test_split_is_the_tutorials_train_test_split",), fast=True),
    Mutant("price scale from every house", "prices are divided by the train houses' maximum",
           "tasks/houses/encoders.py", '"price_max": float(train["price"].max()),',
           '"price_max": float(kept["price"].max()),',
           ("tests/houses/test_preprocess.py::test_prices_scaled_by_the_train_maximum_and_back",), fast=True),
    Mutant("tiles in another order", "bathroom top-left, bedroom top-right, frontal bottom-right, kitchen bottom-left",
           "tasks/houses/montage.py", "TILE_POSITIONS = ((0, 0), (0, 1), (1, 1), (1, 0))",
           "TILE_POSITIONS = ((0, 0), (0, 1), (1, 0), (1, 1))",
           ("tests/houses/test_montage.py::test_montage_layout_matches_the_tutorials",), fast=True),
    # --- the cache: verified reads, atomic entries, one worker per piece of work -----------------------------
    Mutant("cache reads check sizes only", "a cache entry is used only when every file's sha256 matches",
           "tasks/core/cache.py", "            if file_sha256(path) != sha256:", "            if False:",
           ("tests/core/test_cache.py::test_damaged_entry_is_never_a_hit",), fast=True),
    Mutant("cache: the loser of a rename race fails", "two writers of one key leave one complete entry",
           "tasks/core/cache.py", "            elif self._verified(stage, key) is None:  # not a concurrent twin",
           "            elif True:  # not a concurrent twin",
           ("tests/core/test_cache.py::test_concurrent_writers_of_one_key_leave_one_complete_entry",), fast=True),
    Mutant("no lock around expensive work", "one run computes a piece of expensive work, the others reuse it",
           "tasks/core/locks.py", "        lock.acquire(timeout=0)\n", "        pass\n",
           ("tests/training/test_progress.py",), fast=True),
    Mutant("Cached without a verified entry", "Prefect shows Cached only while the stage's entry is verified",
           "tasks/core/prefect_cache.py", "        if not complete or not _readable_record(record):",
           "        if False:",
           ("tests/core/test_prefect_cache.py::test_a_hit_needs_a_complete_entry_and_a_record_written_as_plain_json",)),
    Mutant("a finished model is trained again", "a finished training with the same key is reused",
           "tasks/training/progress.py", "            return folder, summary\n        if damage is not None:",
           "            pass\n        if damage is not None:",
           ("tests/training/test_progress.py",), fast=True),
    Mutant("train key ignores the code", "a training's key holds the code that trains it",
           "tasks/price/prefect_tasks.py",
           "return code_version(models, backbones, train, data, engine, streams, augment, layers, schedules)",
           'return "same code"', ("tests/test_cache_keys.py",)),
    # --- training ------------------------------------------------------------------------------------------------
    Mutant("no time limit", "--time-limit stops a training after the batch that crosses it",
           "tasks/training/engine.py", "if self.ends is not None and time.monotonic() > self.ends:", "if False:",
           ("tests/training/test_engine.py::test_a_training_stops_at_its_time_limit_and_says_after_which_epoch",),
           fast=True),
    Mutant("trainings deaf to Ctrl-C", "Ctrl-C and SIGTERM stop a training in any thread after its batch",
           "tasks/training/engine.py", "        interrupt.check()\n        if self.ends", "        if self.ends",
           ("tests/training/test_engine.py::test_a_stop_request_ends_a_training_in_any_thread_after_its_batch_keeping_"
            "the_last_epoch",), fast=True),
    Mutant("augmentation switched off", "--augment changes the images a price model trains on",
           "tasks/price/models.py", "augmenter = image_augmenter(list(recipe.augment), recipe.seed)",
           "augmenter = None", ("tests/price/test_train.py::test_stream_with_augmentation_trains_on_changed_images",)),
    Mutant("predict returns NaN", "predict prices houses as the dataset does", "tasks/price/predict.py",
           "table = houses.assign(predicted_price=np.round(prices, 0),",
           "table = houses.assign(predicted_price=np.round(prices, 0) * np.nan,",
           ("tests/price/test_predict.py::test_predict_gives_the_dataset_prices",)),
    Mutant("classification accuracy miscounted", "accuracy counts the predictions equal to the labels",
           "tasks/training/metrics.py", '"accuracy": float(np.mean(np.asarray(actual) == np.asarray(predicted))),',
           '"accuracy": float(np.mean(np.asarray(actual) == np.asarray(actual))),',
           ("tests/automl/test_sweep.py::test_each_task_runs_a_real_search_scores_it_and_exports_a_safe_model",)),
    Mutant("colorizer no better than gray", "the colorizer's quality is measured against leaving photos gray",
           "tasks/dnn/colorizer.py", "colorized, gray = colorize(net, image, size), gray_baseline(image)",
           "colorized, gray = gray_baseline(image), gray_baseline(image)",
           ("tests/dnn/test_dnn_models.py::test_a_short_colorizer_training_beats_leaving_the_photos_gray",), fast=True),
    # --- runs: run folders, faults ---------------------------------------------------------------------------
    Mutant("run folder written in place", "a failed run leaves the earlier run folder exactly as it was",
           "tasks/core/files.py", "    if final_path(target) != target:\n        target.mkdir",
           "    if True:\n        target.mkdir",
           ("tests/core/test_run_folders.py::test_a_failed_run_leaves_the_earlier_folder_exactly_as_it_was",),
           fast=True),
    Mutant("a full disk blamed on the wrong place", "a write fault names the place it happened in",
           "tasks/core/faults.py", "    return file == folder or folder in file.parents", "    return True",
           ("tests/core/test_run_folders.py::test_write_faults_are_one_line_and_other_errors_pass_through",),
           fast=True),
    Mutant("plots saved blank", "report plots show the figures", "tasks/core/figures.py",
           "    fig.tight_layout()\n", "    fig.clf()\n",
           ("tests/flows/test_train_flow.py::test_train_writes_metrics_report_plots_model_and_artifacts",)),
    Mutant("compare trains one at a time", "compare --max-parallel N trains N configurations at once",
           "flows/compare.py", "                                     threads=config.max_parallel)",
           "                                     threads=1)",
           ("tests/flows/test_train_flow.py::test_compare_trains_in_parallel_and_writes_a_leaderboard",)),
    Mutant("Dask cluster with one worker", "sweep --workers N starts N Dask workers", "tasks/core/cluster.py",
           'return {"n_workers": workers,', 'return {"n_workers": 1,',
           ("tests/automl/test_sweep.py::test_sweep_runs_points_on_a_local_dask_cluster",)),
    Mutant("OpenCV threads unlimited on a worker", "each cluster worker keeps to its share of the cores",
           "tasks/core/cluster.py", '           "OPENCV_FOR_THREADS_NUM": share,', "",
           ("tests/core/test_cluster.py",), fast=True),
    Mutant("downloads not retried", "a download retries network trouble", "tasks/houses/prefect_tasks.py",
           '@task(name="resolve-data", cache_policy=NO_CACHE, retries=2,',
           '@task(name="resolve-data", cache_policy=NO_CACHE, retries=0,',
           ("tests/flows/test_preprocess_flow.py::test_data_from_a_url_is_retried_downloaded_once_and_unpacked",)),
    Mutant("report plots linked, not embedded", "the UI shows report plots in the page", "tasks/core/artifacts.py",
           "    return IMAGE_REFERENCE.sub(embed, markdown)", "    return markdown",
           ("tests/flows/test_operations.py::test_the_ui_shows_the_run_and_its_report_with_the_plots_in_the_page",)),
    Mutant("training task outside the concurrency limit", "trainings take a slot of the 'training' limit",
           "tasks/price/prefect_tasks.py",
           '@task(**cached("train", _train_entry), timeout_seconds=24 * 3600, tags=["training"])',
           '@task(**cached("train", _train_entry), timeout_seconds=24 * 3600, tags=[])',
           ("tests/flows/test_operations.py::test_two_training_runs_started_together_take_turns",)),
    # --- trust: duplicates kept on one side, calibrated ranges, explanations -----------------------------------
    Mutant("duplicate groups not kept whole", "houses that share a photo or a record are on one side of every split",
           "tasks/core/splits.py", "        sides[members] = int(np.argmax(held))  # argmax: the first of the largest",
           "        pass", ("tests/houses/test_duplicates.py",), fast=True),
    Mutant("photo digests placed in listing order, not at their house and kind", "each photo's sha256 is its own "
           "file's", "tasks/houses/ingest.py", "    shas[listing.rows, listing.kinds] = digests",
           "    shas.ravel()[:len(digests)] = digests", ("tests/houses/test_ingest.py",), fast=True),
    Mutant("photos read ahead handed back last first", "each photo's hash and montage tile are its own file's",
           "tasks/core/read_ahead.py", "            decoding, expected = works.popleft()",
           "            decoding, expected = works.pop()", ("tests/core/test_read_ahead.py",), fast=True),
    Mutant("a failed item leaves the other chunks running to their end",
           "work not started is dropped when a call fails",
           "tasks/core/read_ahead.py", "        return number > first_failed[0]", "        return False",
           ("tests/core/test_read_ahead.py",), fast=True),
    Mutant("a failed item cuts short the chunks before it", "every result before a failure is handed back, in order",
           "tasks/core/read_ahead.py", "        return number > first_failed[0]",
           "        return first_failed[0] != math.inf", ("tests/core/test_read_ahead.py",), fast=True),
    Mutant("montage batches of 32 shards whatever the workers", "montage batches fill whole rounds of the workers",
           "tasks/houses/montages.py", "    count = min(len(groups), rounds * workers)",
           "    count = min(len(groups), -(-len(groups) // 32))", ("tests/houses/test_montage.py",), fast=True),
    Mutant("every worker of a full machine pinned to the first cores", "each worker of a local cluster that takes "
           "every core keeps to cores of its own", "tasks/core/worker_cores.py", "    start = worker * cores_each",
           "    start = 0", ("tests/core/test_cluster.py",), fast=True),
    Mutant("malloc arenas never limited", "the flow's process keeps to two malloc arenas",
           "tasks/core/allocator.py", "    return ctypes.CDLL(None).mallopt(M_ARENA_MAX, arenas) == 1",
           "    return True",
           ("tests/core/test_allocator.py",), fast=True),
    Mutant("flow commands leave their malloc arenas unlimited", "the flow's process keeps to two malloc arenas",
           "flows/__main__.py", "        limit_malloc_arenas()  # before Prefect's and Dask's threads start",
           "        pass", ("tests/core/test_allocator.py",), fast=True),
    Mutant("photo hashes looked up by position, not by sha256", "each photo is compared by its own perceptual hash",
           "tasks/houses/duplicates.py", "        return self.phash[at]",
           "        return np.resize(self.phash, len(shas))",
           ("tests/houses/test_duplicates.py",), fast=True),
    Mutant("the range from the wrong tail of the scores", "the level's range covers that share of new houses",
           "tasks/price/interval.py", "        return math.inf if rank > n else float(self.scores[rank - 1])",
           "        return math.inf if rank > n else float(self.scores[n - rank])",
           ("tests/price/test_interval.py",), fast=True),
    Mutant("the range calibrated on signed errors", "the level's range covers that share of new houses",
           "tasks/price/interval.py",
           "        scores = np.abs(np.log(np.asarray(actual, np.float64) / np.asarray(predicted, np.float64)))",
           "        scores = np.log(np.asarray(actual, np.float64) / np.asarray(predicted, np.float64))",
           ("tests/price/test_interval.py",), fast=True),
    Mutant("explanations occlude the wrong tile", "each photo's effect is that photo's",
           "tasks/price/explain.py", "                row, col = TILE_POSITIONS[PHOTO_KINDS.index(name)]",
           "                row, col = TILE_POSITIONS[PHOTO_KINDS.index(name) - 1]",
           ("tests/price/test_explain.py",), fast=True),
    # --- the model lifecycle -------------------------------------------------------------------------------------
    Mutant("gate: the naive baseline not checked", "a champion beats the naive baseline", "tasks/lifecycle/gate.py",
           '    if metrics["mape_mean"] >= metrics["baseline"]["mape_mean"]:', "    if False:",
           ("tests/lifecycle/test_gate.py",), fast=True),
    Mutant("gate: the champion not compared", "a candidate is no worse than the champion on the same houses",
           "tasks/lifecycle/gate.py", "            if new > old + tolerance:", "            if False:",
           ("tests/lifecycle/test_gate.py",), fast=True),
    Mutant("gate: the tolerance counted twice", "the champion comparison allows --promotion-tolerance points",
           "tasks/lifecycle/gate.py", "            if new > old + tolerance:",
           "            if new > old + 2 * tolerance:", ("tests/lifecycle/test_gate.py",), fast=True),
    Mutant("gate: drift ignored", "drifted training data blocks promotion", "tasks/lifecycle/gate.py",
           '    if drift.get("blocked"):', "    if False:", ("tests/lifecycle/test_gate.py",), fast=True),
    Mutant("the champion alias moved without the gate", "the champion alias moves only on promotion",
           "tasks/lifecycle/promotion.py", "        if promoted:\n            registry.crown(",
           "        if True:\n            registry.crown(",
           ("tests/lifecycle/test_promotion.py",), fast=True),
    Mutant("a record lost when the tracking store goes away", "a run's record waits in the outbox and is synced",
           "tasks/lifecycle/prefect_tasks.py", "        return Recorded(waiting=entry)", "        return Recorded()",
           ("tests/flows/test_faults.py::test_a_tracking_server_that_goes_away_costs_seconds_and_its_record_waits_for_"
            "sync",)),
]


def tracked_copy(target: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.splitlines()
    for name in files:
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def check_target(mutant: Mutant, root: Path = ROOT) -> str | None:
    """Why the mutant cannot be applied to the code at `root` (its code not found exactly once), or None."""
    path = root / mutant.file
    count = path.read_text().count(mutant.old) if path.is_file() else 0
    return None if count == 1 else f"mutant {mutant.name!r}: the code to break was found {count} times in {mutant.file}"


def run_mutant(mutant: Mutant) -> tuple[bool, float, str]:
    """(killed: the tests failed, seconds, the last line pytest printed)."""
    problem = check_target(mutant)
    if problem is not None:
        raise SystemExit(f"error: {problem}")
    with tempfile.TemporaryDirectory(prefix="mutant-") as folder:
        copy = Path(folder) / "checkout"
        tracked_copy(copy)
        path = copy / mutant.file
        path.write_text(path.read_text().replace(mutant.old, mutant.new))
        env = {**os.environ, "PYTHONPATH": str(copy), "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONDONTWRITEBYTECODE": "1"}
        started = time.perf_counter()
        try:
            done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-o",
                                   "addopts=", *mutant.tests], cwd=copy, env=env, capture_output=True, text=True,
                                  timeout=TIMEOUT)
        except subprocess.TimeoutExpired:  # a test that never ends does not pass either
            return True, time.perf_counter() - started, f"the tests did not finish within {TIMEOUT} s"
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        return done.returncode != 0, time.perf_counter() - started, lines[-1] if lines else done.stderr[-200:]


def chosen(words: list[str], fast_only: bool) -> list[Mutant]:
    return [m for m in MUTANTS if (not fast_only or m.fast) and (not words or any(w in m.name for w in words))]


def main(argv: list[str]) -> int:
    if {"-h", "--help"} & set(argv):
        print(__doc__)
        return 0
    fast_only = "--fast" in argv
    mutants = chosen([a for a in argv if a != "--fast"], fast_only)
    if not mutants:
        print(f"error: no mutant's name contains {' or '.join(map(repr, argv))}; names: "
              f"{', '.join(m.name for m in MUTANTS)}", file=sys.stderr)
        return 2
    for mutant in mutants:  # every target first: a stale mutant stops the run before any work
        if problem := check_target(mutant):
            print(f"error: {problem}", file=sys.stderr)
            return 2
    started, survivors = time.perf_counter(), []
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # most mutants' tests use one core
        for mutant, (killed, seconds, last) in zip(mutants, pool.map(run_mutant, mutants)):
            print(f"{'caught ' if killed else 'MISSED '} {mutant.name:<52} {seconds:6.1f} s  {last}", flush=True)
            if not killed:
                survivors.append(mutant.name)
    print(f"{len(mutants) - len(survivors)} of {len(mutants)} deliberate breakages caught by the tests "
          f"({'fast tier, ' if fast_only else ''}{time.perf_counter() - started:.0f} s)")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

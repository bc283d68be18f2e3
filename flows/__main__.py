"""`house-pipeline <command> --help` (or `python -m flows <command> --help`) lists each command's options."""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import sys
from pathlib import Path

from flows.cli import Parser, add_config_arguments, config_from_args, prepare_flow_logging, run_command
from flows.config import (
    ClassifyConfig,
    ColorizeConfig,
    CompareConfig,
    PreprocessConfig,
    ScoreConfig,
    StylizeConfig,
    SweepConfig,
    TrainColorizerConfig,
    TrainConfig,
    default_data,
)
from tasks.core import paths, storage
from tasks.core.allocator import limit_malloc_arenas
from tasks.core.errors import DataError
from tasks.core.extras import require_extra
from tasks.core.faults import EXIT_DEFERRED, Unreachable
from tasks.core.storage import shown


def run_flow(flow, config):
    """Run a flow whose config was checked: against PREFECT_API_URL, or a temporary server started now (after
    the checks, so bad input costs no server start)."""
    from flows.temporary_server import prefect_api

    with prefect_api():
        return flow(config)


def _preprocess(args: argparse.Namespace) -> None:
    from flows.preprocess import preprocess_flow  # Prefect is imported only when needed

    config = config_from_args(PreprocessConfig, args)
    run_flow(preprocess_flow, config)
    print(f"Summary: {shown((config.out / 'summary.json').resolve())}")


def _train(args: argparse.Namespace) -> None:
    from flows.train import train_flow

    config = config_from_args(TrainConfig, args)
    metrics = run_flow(train_flow, config)
    print(f"Test MAPE {metrics['mape_mean']:.2f} % (median {metrics['mape_median']:.2f} %), "
          f"R^2 {metrics['r2']:.3f}")
    if metrics.get("warning"):
        print(f"Warning: this model is worse than no model: {metrics['warning']}")
    print(f"Report: {shown((config.out / 'report.md').resolve())}; "
          f"each test house: {shown((config.out / 'predictions.csv').resolve())}")
    gate = metrics.get("gate")
    if gate and gate.get("waiting"):
        print(f"Registry: not yet: {gate['reasons'][0]}")
    elif gate and gate.get("unchanged"):
        print(f"Registry: unchanged, the same model as version {gate['version']} of house-price")
    elif gate and gate.get("registered"):
        print(f"Registry: version {gate['version']} of house-price "
              + ("promoted to champion" if gate["promoted"] else
                 f"not promoted (champion stays version {gate['champion']}): {'; '.join(gate['reasons'])}"))


def _compare(args: argparse.Namespace) -> None:
    from flows.compare import compare_flow

    config = config_from_args(CompareConfig, args)
    rows = run_flow(compare_flow, config)
    for row in sorted(rows, key=lambda r: r["mape_mean"]):
        print(f"{row['name']:>20}: test MAPE {row['mape_mean']:.2f} %")
    print(f"Leaderboard: {shown((config.out / 'leaderboard.md').resolve())}")


def _sweep(args: argparse.Namespace) -> None:
    from flows.sweep import sweep_flow

    config = config_from_args(SweepConfig, args)
    rows = run_flow(sweep_flow, config)
    for row in sorted(rows, key=lambda r: (r["task"], r["kind"], r.get("seconds_limit") or 0)):
        label = f"{row['task']} {row['kind']} {row['budget']}"
        print(f"{label:>36}: test {row['metric']} {row['score']:.4g} ({row['seconds']:.0f} s)")
    print(f"Leaderboard: {shown((config.out / 'leaderboard.md').resolve())}")


def _serve(args: argparse.Namespace) -> int:
    import signal

    from flows.deployments import serve_all

    number = serve_all(args.file, limit=args.limit)
    print(f"stopped ({signal.Signals(number).name}): the flow runs this process was running are cancelled (Cancelled "
          "in the UI); start `serve` again to serve the deployments and their schedules", file=sys.stderr)
    return 128 + number


def _worker(args: argparse.Namespace) -> None:
    from flows.deployments import start_worker

    start_worker(args.file, args.pool, args.limit, args.deploy)  # becomes Prefect's worker process


def _predict(args: argparse.Namespace) -> None:
    import time

    from tasks.price.explain import format_explanation
    from tasks.price.interval import check_level
    from tasks.price.predict import PriceModel, predict_new_houses

    model, house = storage.working_path(args.model), storage.working_path(args.house)
    photos = None if args.photos is None else storage.working_path(args.photos)
    check_level(args.interval_level)
    paths.check_input_folder("--model", model)
    paths.check_input_file("--house", house)
    if photos is not None:
        paths.check_input_folder("--photos", photos)
    price_model = PriceModel.load(model)
    started = time.perf_counter()
    table, explanation = predict_new_houses(model, house, photos, args.interval_level, args.explain, price_model)
    seconds = time.perf_counter() - started
    dollars = "${:,.0f}".format
    print(table.to_string(index=False, formatters={c: dollars for c in ("predicted_price", "price_low", "price_high")}))
    level = f"{args.interval_level * 100:g} %"
    if price_model.interval is None:
        print(f"No {level} range: this model folder has no interval.json (trained before intervals)")
    else:
        print(f"price_low .. price_high: the {level} range (calibrated out of fold on the train houses)")
    if explanation is not None:
        for i, number in enumerate(table["house"]):
            print()
            print(format_explanation(explanation, i, f"house {number}: why {dollars(explanation.prices[i])}"))
        print(f"\nPriced and explained {len(table)} house(s) in {seconds:.2f} s (model loaded before)")


def _compact(args: argparse.Namespace) -> None:
    from tasks.houses.compact import compact_dataset

    paths.check_input_folder("SOURCE", args.source)
    if args.target.exists():
        raise DataError(f"TARGET {args.target}: already exists; choose a new folder")
    paths.check_output_folder("TARGET", args.target, {"SOURCE": args.source})
    count = compact_dataset(args.source, args.target, args.max_side)
    print(f"Wrote {count} photos to {args.target}")


def _classify(args: argparse.Namespace) -> None:
    from flows.classify import classify_flow

    config = config_from_args(ClassifyConfig, args)
    metrics = run_flow(classify_flow, config)
    for name, column in metrics["columns"].items():
        print(f"Test accuracy {name}: {column['accuracy']:.3f} (chance {column['chance']:.3f}, "
              f"majority class {column['majority']:.3f})")
    if "multilabel" in metrics:
        print(f"Exact match: {metrics['multilabel']['exact_match']:.3f}")
    print(f"Report: {shown((config.out / 'report.md').resolve())}")


def _score(args: argparse.Namespace) -> None:
    from flows.score import score_flow

    summary = run_flow(score_flow, config_from_args(ScoreConfig, args))
    print(f"Priced {summary['houses']} houses with house-price version {summary['version']}: {summary['csv']}")


def _registry(args: argparse.Namespace) -> None:
    from tasks.lifecycle import registry
    from tasks.lifecycle.tracking import Tracking

    tracker = Tracking.resolve("required", args.tracking_uri)
    if args.registry_action == "list":
        found = registry.versions(tracker)
        if not found:
            print(f"No versions of {registry.MODEL_NAME} in {tracker.uri} yet: train one with `python -m flows train`")
        for v in found:
            print(f"{v.number:>4}  {'champion' if v.is_champion else '':<9} {v.tags.get('strategy', '?'):<6} "
                  f"test MAPE {v.tags.get('test_mape', '?'):>8}  coverage {v.tags.get('test_coverage', '-'):>6}  "
                  f"gate: {v.tags.get('gate', '-'):<9} "
                  f"{v.tags.get('gate_reasons', '')}")
    elif args.registry_action == "sync":
        _sync(tracker)
    elif args.registry_action == "promote":
        print(f"Version {registry.promote(tracker, args.version).number} is now the champion")
    else:
        print(f"Rolled back: version {registry.rollback(tracker).number} is the champion again")


def _sync(tracker) -> None:
    """Write the records (and registrations and gates) that waited in the outbox for this store."""
    import logging

    from tasks.lifecycle import outbox
    from tasks.lifecycle.promotion import verdict_line
    from tasks.lifecycle.tracking import TrackingUnavailable

    waiting = outbox.entries(tracker.uri)
    if not waiting:
        print(f"Nothing waits for {tracker.uri} in {outbox.folder()}")
        return
    log = logging.getLogger("house_pipeline.sync")
    for entry in waiting:
        try:
            done = outbox.replay(tracker, entry, log)
        except TrackingUnavailable as error:
            raise Unreachable(f"the tracking store at {tracker.uri} does not answer ({error.reason}); "
                              f"{len(outbox.entries(tracker.uri))} record(s) still wait in {outbox.folder()}") from None
        print(f"Recorded {done['experiment']} {done['run_name']} as MLflow run {done['run_id']}" if done["run_name"]
              else f"Gated the model of MLflow run {done['run_id']}",
              "" if done["verdict"] is None else f"; registry: {verdict_line(done['verdict'])}", sep="")


def _waiting_records() -> int:
    """After a tracked command: one line when its record waits in the outbox; exit code 75 if tracking was
    required (the run's files are written; its record is not yet), else 0."""
    from tasks.lifecycle import outbox

    waiting = outbox.made_by_this_process()
    if not waiting:
        return 0
    required = any(entry["mode"] == "required" for entry in waiting)
    print(f"{'error' if required else 'warning'}: the MLflow tracking store at {waiting[0]['uri']} did not answer "
          f"({waiting[0]['reason']}); the run's files are written, its record waits in {outbox.folder()}: "
          "`house-pipeline models registry sync` writes it (the next tracked run does too)", file=sys.stderr)
    return EXIT_DEFERRED if required else 0


def _house_labels(args: argparse.Namespace) -> None:
    from tasks.classify.house_labels import write_house_labels

    paths.check_input_folder("--data", args.data)
    paths.check_output_file("--out", args.out, {"--data": args.data})
    summary = write_house_labels(args.data, args.out, args.test_size, args.seed)
    print(f"Wrote {summary['photos']} labelled photos of {summary['houses']} houses ({summary['train_houses']} train, "
          f"{summary['test_houses']} test) to {args.out}; price tiers split at "
          + " and ".join(f"${t:,.0f}" for t in summary["tier_thresholds"]))


def _predict_labels(args: argparse.Namespace) -> None:
    from tasks.classify.predict import draw_labels, format_prediction, predict_labels

    paths.check_input_folder("--model", args.model)
    for image in args.images:
        paths.check_input_file("IMAGE", image)
    if args.draw:
        paths.check_output_folder("--draw", args.draw, {"--model": args.model})
    for result in predict_labels(args.model, args.images):
        print(format_prediction(result))
        if args.draw:
            print(f"  drawn: {draw_labels(result['image'], result, args.draw / (result['image'].stem + '.png'))}")
def _dnn_batch(args: argparse.Namespace) -> None:
    from flows.dnn import colorize_flow, stylize_flow

    flow, model = (stylize_flow, StylizeConfig) if args.command == "stylize" else (colorize_flow, ColorizeConfig)
    config = config_from_args(model, args)
    summary = run_flow(flow, config)
    print(f"{summary['images']} images: {summary['done']} new, {summary['reused']} reused, {summary['skipped']} "
          f"skipped in {summary['seconds']:.1f} s ({summary['images_per_second']} images/s)")
    print(f"Contact sheet: {summary['contact_sheet']}")


def _train_colorizer(args: argparse.Namespace) -> None:
    from flows.dnn import train_colorizer_flow

    result = run_flow(train_colorizer_flow, config_from_args(TrainColorizerConfig, args))
    print(f"Held-out photos: {result['photos']}; PSNR {result['psnr']:.2f} dB (gray {result['psnr_gray']:.2f}), "
          f"mean Lab colour error {result['lab_error']:.2f} (gray {result['lab_error_gray']:.2f})")
    print(f"Model: {result['model'] if '://' in result['model'] else Path(result['model']).resolve()}")


def _models(args: argparse.Namespace) -> None:
    from tasks.dnn.registry import PUBLISHED, fetch_model
    from tasks.dnn.toy_networks import TOY_NETWORKS

    if args.action == "registry":
        _registry(args)
    elif args.action == "list":
        for name, model in sorted(PUBLISHED.items()):
            print(f"{name:>20}  {model.kind:<8} {', '.join(model.files)}  {model.options}  ({model.note})")
    elif args.action == "fetch":
        paths.check_output_folder("--dir", args.dir)
        for path in fetch_model(args.name, args.dir, args.base_url):
            print(f"{path}  (sha256 recorded in {args.dir / 'models.lock.json'})")
    else:
        require_extra("dnn", "onnx")
        paths.check_output_file("PATH", args.path)
        print(TOY_NETWORKS[args.name](args.path))


def _sample_data(args: argparse.Namespace) -> None:
    from tasks.houses.sample_data import write_sample

    paths.check_output_folder("DIR", args.dir)
    count = write_sample(args.dir)
    print(f"Wrote the sample Houses data ({count} files) to {args.dir.resolve()}")


def _synthetic_data(args: argparse.Namespace) -> None:
    from tasks.houses.synthetic import write_generated

    source = Path(args.source)
    paths.check_input_folder("--source", source)
    if args.target.exists():
        raise DataError(f"OUT {args.target}: already exists; choose a new folder")
    paths.check_output_folder("OUT", args.target, {"--source": source})
    count = write_generated(source, args.target, args.houses, args.seed)
    print(f"Wrote {count} generated houses ({4 * count} photos) to {args.target.resolve()}")


def _version() -> str:
    try:
        return importlib.metadata.version("house-pipeline")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed: run from a checkout without `pip install`)"


def _first_sentence(doc: str) -> str:
    return " ".join(doc.split()).split(". ")[0].rstrip(".") + "."


FLOW_COMMANDS = {"preprocess", "train", "compare", "sweep", "serve", "worker", "classify", "stylize", "colorize",
                 "train-colorizer", "score"}


def build_parser(prog: str = "house-pipeline") -> argparse.ArgumentParser:
    parser = Parser(prog=prog, description=__doc__)
    parser.add_argument("--version", action="version", version=f"house-pipeline {_version()}")
    parser.add_argument("--debug", action="store_true", help="show the Python traceback of an unexpected error on "
                        "the screen (it always goes to the error log, .house-pipeline/logs/errors.log)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    preprocess = commands.add_parser(
        "preprocess", help=PreprocessConfig.__doc__, description=PreprocessConfig.__doc__,
        )
    add_config_arguments(preprocess, PreprocessConfig)
    preprocess.set_defaults(handler=_preprocess)

    train = commands.add_parser("train", help=TrainConfig.__doc__, description=TrainConfig.__doc__)
    add_config_arguments(train, TrainConfig)
    train.set_defaults(handler=_train)

    compare = commands.add_parser("compare", help=CompareConfig.__doc__, description=CompareConfig.__doc__)
    add_config_arguments(compare, CompareConfig)
    compare.set_defaults(handler=_compare)

    sweep = commands.add_parser("sweep", help=_first_sentence(SweepConfig.__doc__), description=SweepConfig.__doc__)
    add_config_arguments(sweep, SweepConfig)
    sweep.set_defaults(handler=_sweep)

    serve = commands.add_parser(
        "serve", help="Serve every deployment of prefect.yaml from this process (no work pool needed).",
        description="Serve the deployments declared in prefect.yaml (train, compare, sweep, preprocess, with "
                    "their schedules) from this process, reporting to PREFECT_API_URL; runs started from the "
                    "UI or on schedule execute here. Start a server first: make ui.")
    serve.add_argument("--file", type=Path, default=Path("prefect.yaml"), metavar="PATH",
                       help="deployments file (default: prefect.yaml in the working directory)")
    serve.add_argument("--limit", type=int, default=None, help="most flow runs at once (default: no limit)")
    serve.set_defaults(handler=_serve)

    worker = commands.add_parser(
        "worker", help="Run deployments on a work pool: create the pool if missing, deploy, start a worker.",
        description="Create the Prefect work pool (type process) if it is missing, register the deployments of "
                    "prefect.yaml on it, and start Prefect's worker, which runs each flow run of the pool in a "
                    "process of its own. Start one per machine (each with this checkout at the same path and the "
                    "same PREFECT_API_URL; --data/--cache/--out on shared folders or object storage): a run goes "
                    "to whichever worker polls first. Runs send heartbeats; one whose worker or machine dies is "
                    "marked Crashed after 3 missed heartbeats (90 s), and running it again resumes from its "
                    "checkpoint. Ctrl-C or SIGTERM stops the worker and its runs, which are marked Crashed the same "
                    "way.")
    worker.add_argument("--pool", default="local", metavar="NAME", help="work pool (default: local, the pool of "
                        "prefect.yaml's deployments)")
    worker.add_argument("--file", type=Path, default=Path("prefect.yaml"), metavar="PATH",
                        help="deployments file (default: prefect.yaml in the working directory)")
    worker.add_argument("--limit", type=int, default=None, metavar="N",
                        help="most flow runs this worker runs at once (default: no limit)")
    worker.add_argument("--no-deploy", dest="deploy", action="store_false",
                        help="start the worker only (the deployments are registered already, by another worker)")
    worker.set_defaults(handler=_worker)

    predict = commands.add_parser(
        "predict", help="Price new houses with a trained model.",
        description="Print a predicted price for each house of a CSV file (columns bedrooms, bathrooms, area, "
                    "zipcode; optional house, the number in the photo names {house}_{room}.jpg).")
    predict.add_argument("--model", required=True, help="model/ folder of a train run (a path or an s3:// URL)")
    predict.add_argument("--house", required=True, metavar="ATTRS_CSV", help="CSV of the new houses (path or URL)")
    predict.add_argument("--photos", help="folder with the houses' four photos each (path or URL)")
    predict.add_argument("--interval-level", type=float, default=0.8, metavar="X",
                         help="level of the price range (default: 0.8, an 80 %% range)")
    predict.add_argument("--explain", action="store_true", help="also print, per house, how much each attribute "
                         "group and each photo moved the price from the average train house's (dollars)")
    predict.set_defaults(handler=_predict)

    classify = commands.add_parser("classify", help=_first_sentence(ClassifyConfig.__doc__),
                                   description=ClassifyConfig.__doc__)
    add_config_arguments(classify, ClassifyConfig)
    classify.set_defaults(handler=_classify)

    house_labels = commands.add_parser(
        "house-labels", help="Write the room + price tier labels of the house photos as a CSV manifest.",
        description="Label each photo of a Houses-format folder with its room and its house's price tier (low, "
                    "mid, high: terciles of the train houses' prices), split by house; write a manifest that "
                    "`classify --data` reads (photos are referenced, not copied).")
    house_labels.add_argument("--data", type=Path, default=Path(default_data()), help="Houses-format folder "
                              f"(default: $HOUSE_PIPELINE_DATA, else data/houses: {default_data()})")
    house_labels.add_argument("--out", type=Path, default=Path("runs/house-labels/labels.csv"),
                              help="manifest to write (default: runs/house-labels/labels.csv)")
    house_labels.add_argument("--test-size", type=float, default=0.25, help="share of houses held out (default 0.25)")
    house_labels.add_argument("--seed", type=int, default=42, help="seed of the split by house (default 42)")
    house_labels.set_defaults(handler=_house_labels)

    predict_labels = commands.add_parser(
        "predict-labels", help="Print each image's labels with their probabilities.",
        description="Label images with a trained classifier: each image's labels (multilabel: those above the "
                    "threshold) with their probabilities, and the most probable label of each label column.")
    predict_labels.add_argument("--model", type=Path, required=True, help="model/ folder of a classify run")
    predict_labels.add_argument("images", type=Path, nargs="+", metavar="IMAGE", help="image files")
    predict_labels.add_argument("--draw", type=Path, metavar="DIR", help="also write each image with its labels "
                                "drawn on it as DIR/NAME.png")
    predict_labels.set_defaults(handler=_predict_labels)

    for name, model in (("stylize", StylizeConfig), ("colorize", ColorizeConfig),
                        ("train-colorizer", TrainColorizerConfig)):
        sub = commands.add_parser(name, help=_first_sentence(model.__doc__), description=model.__doc__)
        add_config_arguments(sub, model)
        sub.set_defaults(handler=_train_colorizer if name == "train-colorizer" else _dnn_batch)

    models = commands.add_parser("models", help="The price model registry (MLflow); networks for the OpenCV DNN "
                                 "flows.", description="`models registry`: the registered price models and their "
                                 "champion. list, fetch, toy: networks for stylize and colorize.")
    actions = models.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("list", help="The published networks, their files and the options they need.")
    fetch = actions.add_parser("fetch", help="Download a published network's files (progress bar), recording "
                               "each file's sha256 in models.lock.json and refusing a file that no longer matches.")
    fetch.add_argument("name", help="a name from `models list`")
    fetch.add_argument("--dir", type=Path, default=Path("models"), help="models folder (default: models)")
    fetch.add_argument("--base-url", default=None, help="fetch the files from this folder URL instead (a mirror)")
    toy = actions.add_parser("toy", help="Write a small ONNX network with known weights (tests, benchmarks, smoke "
                             "runs): sepia (1x1 conv: sepia tone through the style flow) or conv (3x3 convs).")
    toy.add_argument("name", choices=["sepia", "conv"])
    toy.add_argument("path", type=Path, help="the .onnx file to write")
    kept = actions.add_parser("registry", help="The MLflow model registry of price models: list the versions, "
                              "promote one to champion, or roll back to the previous champion.")
    registry_actions = kept.add_subparsers(dest="registry_action", required=True, metavar="ACTION")
    listing = registry_actions.add_parser("list", help="Every version, newest first, with its gate verdict.")
    promote = registry_actions.add_parser("promote", help="Make a version the champion (its files are checked).")
    promote.add_argument("version", type=int, help="version number (see `models registry list`)")
    rollback = registry_actions.add_parser("rollback", help="The previous champion becomes champion again.")
    sync = registry_actions.add_parser("sync", help="Write the records, registrations and gates that waited for the "
                                       "tracking store (it did not answer during their runs), oldest first.")
    for action in (listing, promote, rollback, sync):
        action.add_argument("--tracking-uri", default=None, help="MLflow tracking and registry URI (default: "
                            "$MLFLOW_TRACKING_URI, else the SQLite store under .house-pipeline/mlflow)")
    models.set_defaults(handler=_models)

    score = commands.add_parser("score", help=_first_sentence(ScoreConfig.__doc__), description=ScoreConfig.__doc__)
    add_config_arguments(score, ScoreConfig)
    score.set_defaults(handler=_score)

    compact = commands.add_parser(
        "compact-dataset", help="Write a copy of a Houses-format folder with shrunk photos.",
        description="Copy a Houses-format folder, shrinking photos so the long side is at most "
                    "--max-side pixels (JPEG quality 90). The attributes file is copied as is.")
    compact.add_argument("source", type=Path, help="Houses-format folder")
    compact.add_argument("target", type=Path, help="new folder (must not exist)")
    compact.add_argument("--max-side", type=int, default=160, help="longest side in pixels (default: 160)")
    compact.set_defaults(handler=_compact)

    synthetic = commands.add_parser(
        "synthetic-data", help="Write a large generated Houses-format dataset (for scale tests and benchmarks).",
        description="Write N generated houses: attributes drawn from a real dataset's houses (area and price moved "
                    "together by up to 15 %), each photo a real photo of the same room kind, cropped, flipped and "
                    "brightened at random and re-encoded, so that decoding costs what real photos cost. "
                    "Deterministic from --seed. Never mix it with real data.")
    synthetic.add_argument("target", type=Path, metavar="OUT", help="new folder to write")
    synthetic.add_argument("--houses", type=int, required=True, help="number of houses to generate")
    synthetic.add_argument("--source", default=default_data(), help="real Houses-format folder drawn from "
                           f"(default: $HOUSE_PIPELINE_DATA, else data/houses: {default_data()})")
    synthetic.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    synthetic.set_defaults(handler=_synthetic_data)

    sample = commands.add_parser(
        "sample-data", help="Write the compact Houses sample that ships with the package to a folder.",
        description="Copy the compact Houses sample (535 houses, photos at most 160 px, 18 MB; see its README.md "
                    "for the source and citation) into DIR, the default --data when run from the folder it is in.")
    sample.add_argument("dir", type=Path, nargs="?", default=Path("data/houses"), metavar="DIR",
                        help="new or empty folder (default: data/houses)")
    sample.set_defaults(handler=_sample_data)
    return parser


def main(argv: list[str] | None = None) -> int:
    # TensorFlow's C++ log lines, errors included, are hidden unless asked for (TF_CPP_MIN_LOG_LEVEL=0): on a
    # healthy run TF 2.20 prints an error line ("NodeDef mentions attribute use_unbounded_threadpool") whenever
    # op determinism rewrites Keras's parallel map for a last partial batch. Real failures still raise.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # no usage reports leave the machine
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # not "Creating initial MLflow database tables..."
    # Without PREFECT_API_URL each run starts a temporary Prefect server; its first start on a new machine
    # creates and migrates the SQLite database, which takes longer than Prefect's default 20 s on 2 cores.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # accepted anywhere on the line, before or after the command
    prog = "python -m flows" if Path(sys.argv[0]).name == "__main__.py" else "house-pipeline"
    args = build_parser(prog).parse_args([a for a in argv if a != "--debug"])

    def run() -> int:
        if args.command not in FLOW_COMMANDS:
            args.handler(args)
            return 0
        limit_malloc_arenas()  # before Prefect's and Dask's threads start
        prepare_flow_logging(debug)
        if args.command == "serve":  # serves to a running server only (it says so when there is none)
            return args.handler(args)
        args.handler(args)
        return _waiting_records()

    return run_command(run, debug)


if __name__ == "__main__":
    sys.exit(main())

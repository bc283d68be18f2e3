"""Every command's error paths, table-driven: each bad argument or input gives exit code 2 (1 for an
unexpected failure) and one line naming the problem, no traceback, and nothing written. All cases run
in one subprocess that calls `main(argv)` in a loop (one import of TensorFlow for all of them)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.fixtures import make_houses

RUNNER = r"""
import json, os, sys, tempfile
cases = json.loads(open(sys.argv[1]).read())
from flows.__main__ import main
results = []
for case in cases:
    if case.get("inject"):
        import tasks.houses.encoders as target
        def broken(*args, **kwargs):
            raise RuntimeError("an injected fault")
        target.fit_encoders = broken
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        sys.stdout.flush(); sys.stderr.flush()
        os.dup2(out.fileno(), 1); os.dup2(err.fileno(), 2)
        try:
            code = main(case["argv"])
        except SystemExit as stop:  # argparse
            code = stop.code
        finally:
            sys.stdout.flush(); sys.stderr.flush()
            os.dup2(saved[0], 1); os.dup2(saved[1], 2)
        out.seek(0); err.seek(0)
        results.append({"code": code, "out": out.read().decode(errors="replace"),
                        "err": err.read().decode(errors="replace")})
print("RESULTS", json.dumps(results))
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Inputs good and bad: a houses folder, files where folders belong, damaged model folders."""
    root = tmp_path_factory.mktemp("errors")
    houses = make_houses(root / "houses", [90000 + n % 3 for n in range(12)], photo_size=(24, 20))
    (root / "a-file").write_text("not a folder")
    (root / "flat").mkdir()  # images but no class sub-folders
    (root / "flat" / "a.jpg").write_bytes((houses / "1_frontal.jpg").read_bytes())
    (root / "new.csv").write_text("house,bedrooms,bathrooms,area,zipcode\n1,3,2,1800,90001\n")
    (root / "bad.csv").write_text("house,bedrooms,bathrooms,area,zipcode\n1,three,2,1800,90001\n")
    (root / "no-area.csv").write_text("house,bedrooms,bathrooms,zipcode\n1,3,2,90001\n")
    (root / "empty.csv").write_text("")
    model = root / "model"  # a price model folder, made by hand: an mlp with the names the pipeline uses
    model.mkdir()
    import keras

    inputs = keras.Input((5,), name="attributes")
    keras.Model({"attributes": inputs}, keras.layers.Dense(1, name="price")(inputs)).save(model / "model.keras")
    encoders = {"continuous": {c: {"min": 0.0, "max": 1.0} for c in ("bedrooms", "bathrooms", "area")},
                "zipcodes": [90000, 90001], "price_max": 1.0, "tile_size": 8,
                "feature_names": ["zipcode_90000", "zipcode_90001", "bedrooms", "bathrooms", "area"]}
    (model / "encoders.json").write_text(json.dumps(encoders))
    (model / "training.json").write_text(json.dumps({"options": {"strategy": "mlp"},
                                                     "target": {"kind": "log", "price_max": 1.0}}))
    variants = {}
    for name, damage in {
        "truncated": lambda m: (m / "model.keras").write_bytes((m / "model.keras").read_bytes()[:500]),
        "foreign": lambda m: (m / "model.keras").write_bytes(b"PK\x03\x04 not really a keras file" * 10),
        "wrong-strategy": lambda m: (m / "training.json").write_text(json.dumps(
            {"options": {"strategy": "mixed"}, "target": {"kind": "log", "price_max": 1.0}})),
        "bad-json": lambda m: (m / "training.json").write_text("{ not json"),
        "no-encoders": lambda m: (m / "encoders.json").unlink(),
        "lambda": lambda m: _lambda_model(m / "model.keras"),
    }.items():
        variants[name] = root / f"model-{name}"
        shutil.copytree(model, variants[name])
        damage(variants[name])
    classifier = root / "classifier"
    shutil.copytree(model, classifier)
    (classifier / "labels.json").write_text("{ broken")
    return {"root": root, "houses": houses, "model": model, "classifier": classifier, **variants}


def _lambda_model(path: Path) -> None:
    import keras

    inputs = keras.Input((5,), name="attributes")
    keras.Model({"attributes": inputs}, keras.layers.Lambda(lambda x: x * 2, name="price")(inputs)).save(path)


def cases(w: dict) -> list[tuple[str, list[str], int, str]]:
    """(name, argv, exit code, what the error line must say)."""
    r, h = w["root"], w["houses"]
    out, cache = str(r / "out"), str(r / "cache")
    registry = f"sqlite:///{r / 'registry' / 'mlflow.db'}"  # an MLflow store with nothing registered
    return [
        ("preprocess: --data missing", ["preprocess", "--data", str(r / "none"), "--out", out], 2,
         f"--data {r / 'none'}: no such folder"),
        ("preprocess: --data is a file", ["preprocess", "--data", str(r / "a-file"), "--out", out], 2,
         "is a file, not a folder"),
        ("preprocess: --out inside --data", ["preprocess", "--data", str(h), "--out", str(h / "out")], 2,
         "is inside the input data (--data"),
        ("preprocess: --out is a file", ["preprocess", "--data", str(h), "--out", str(r / "a-file")], 2,
         f"--out {r / 'a-file'}: is a file; give a folder"),
        ("preprocess: --cache under a file", ["preprocess", "--data", str(h), "--out", out, "--cache",
                                              str(r / "a-file" / "cache")], 2, "is a file, so nothing can be created"),
        ("preprocess: --out unwritable", ["preprocess", "--data", str(h), "--out", "/proc/house-pipeline-out"], 2,
         "--out /proc/house-pipeline-out: cannot write in /proc"),
        ("preprocess: --export-montages in --data", ["preprocess", "--data", str(h), "--out", out,
                                                     "--export-montages", str(h / "m")], 2, "--export-montages"),
        ("preprocess: --test-size out of range", ["preprocess", "--data", str(h), "--out", out, "--test-size", "1.5"],
         2, "--test-size: Input should be less than 1"),
        ("train: unknown strategy", ["train", "--strategy", "bogus"], 2, "invalid choice: 'bogus'"),
        ("train: epochs 0", ["train", "--data", str(h), "--out", out, "--epochs", "0"], 2, "--epochs"),
        ("train: early stopping without validation", ["train", "--data", str(h), "--out", out, "--early-stopping",
                                                      "3", "--validation-fraction", "0"], 2,
         "early stopping watches the validation houses"),
        ("compare: no strategies", ["compare", "--data", str(h), "--out", out, "--strategies", ""], 2, "--strategies"),
        ("sweep: budget not understood", ["sweep", "--data", str(h), "--out", out, "--budgets", "ten minutes"], 2,
         "budget 'ten minutes' not understood"),
        ("sweep: two clusters", ["sweep", "--workers", "2", "--dask-address", "tcp://127.0.0.1:1"], 2, "not both"),
        ("sweep: zero budget", ["sweep", "--data", str(h), "--out", out, "--cache", cache, "--budgets", "0s"], 2,
         "above zero"),
        ("sweep: unknown task", ["sweep", "--data", str(h), "--out", out, "--cache", cache, "--tasks", "regress"], 2,
         "--tasks: Input should be 'attributes'"),
        ("sweep: no scheduler answers", ["sweep", "--data", str(h), "--out", out, "--cache", cache,
                                         "--dask-address", "tcp://127.0.0.1:9"], 2, "no Dask scheduler answers"),
        ("sweep: image folder without classes", ["sweep", "--data", str(h), "--out", out, "--cache", cache,
                                                 "--tasks", "classify", "--classify-data", str(r / "flat")], 2,
         "no labels"),
        ("sweep: --classify-data missing", ["sweep", "--data", str(h), "--out", out, "--classify-data",
                                            str(r / "none")], 2, "--classify-data"),
        ("classify: --data manifest missing", ["classify", "--data", str(r / "none.csv"), "--out", out], 2,
         "no such file"),
        ("classify: --houses is a file", ["classify", "--houses", str(r / "a-file"), "--out", out], 2,
         "--houses"),
        ("classify: --out inside --houses", ["classify", "--houses", str(h), "--out", str(h / "run")], 2,
         "is inside the input data (--houses"),
        ("predict: --model missing", ["predict", "--model", str(r / "none"), "--house", str(r / "new.csv")], 2,
         "--model"),
        ("predict: --house missing", ["predict", "--model", str(w["model"]), "--house", str(r / "none.csv")], 2,
         "--house"),
        ("predict: truncated model", ["predict", "--model", str(w["truncated"]), "--house", str(r / "new.csv")], 2,
         "not a Keras .keras file"),
        ("predict: foreign file", ["predict", "--model", str(w["foreign"]), "--house", str(r / "new.csv")], 2,
         "model.keras"),
        ("predict: model of another strategy", ["predict", "--model", str(w["wrong-strategy"]), "--house",
                                                str(r / "new.csv")], 2, "the folder's files come from different runs"),
        ("predict: unreadable training.json", ["predict", "--model", str(w["bad-json"]), "--house",
                                               str(r / "new.csv")], 2, "training.json is unreadable"),
        ("predict: companion file missing", ["predict", "--model", str(w["no-encoders"]), "--house",
                                             str(r / "new.csv")], 2, "encoders.json is missing"),
        ("predict: unsafe Lambda layer", ["predict", "--model", str(w["lambda"]), "--house", str(r / "new.csv")], 2,
         "refused"),
        ("predict: bad new-house CSV", ["predict", "--model", str(w["model"]), "--house", str(r / "bad.csv")], 2,
         "bedrooms is not a number"),
        ("predict: new-house CSV without a column", ["predict", "--model", str(w["model"]), "--house",
                                                     str(r / "no-area.csv")], 2,
         "no-area.csv:1: CSV header lacks column(s) area"),
        ("predict: empty new-house CSV", ["predict", "--model", str(w["model"]), "--house", str(r / "empty.csv")], 2,
         "empty.csv: not a readable CSV file"),
        ("predict-labels: a price model", ["predict-labels", "--model", str(w["model"]),
                                           str(h / "1_frontal.jpg")], 2, "labels.json"),
        ("predict-labels: broken labels.json", ["predict-labels", "--model", str(w["classifier"]),
                                                str(h / "1_frontal.jpg")], 2, "labels file"),
        ("predict-labels: image missing", ["predict-labels", "--model", str(w["classifier"]), str(r / "none.jpg")], 2,
         "no such file"),
        ("house-labels: --out is a folder", ["house-labels", "--data", str(h), "--out", str(r)], 2,
         "is a folder; give a file name"),
        ("house-labels: --out inside --data", ["house-labels", "--data", str(h), "--out", str(h / "l.csv")], 2,
         "inside the input data"),
        ("compact-dataset: target exists", ["compact-dataset", str(h), str(r)], 2, "already exists"),
        ("stylize: --model missing", ["stylize", "--input", str(h), "--model", str(r / "none.onnx"), "--out", out], 2,
         "--model"),
        ("stylize: --out is the input folder", ["stylize", "--input", str(h), "--model", str(r / "a-file"), "--out",
                                                str(h)], 2, "inside the input data (--input"),
        ("colorize: --points missing", ["colorize", "--input", str(h), "--model", str(r / "a-file"), "--points",
                                        str(r / "none.npy"), "--out", out], 2, "--points"),
        ("train-colorizer: size not a multiple of 8", ["train-colorizer", "--size", "20"], 2, "multiple of 8"),
        ("models fetch: unknown network", ["models", "fetch", "nope", "--dir", out], 2, "unknown model 'nope'"),
        ("models toy: path is a folder", ["models", "toy", "sepia", str(r)], 2, "is a folder; give a file name"),
        ("preprocess: default data missing here", ["preprocess", "--out", out], 2,
         "write the sample there with `house-pipeline sample-data data/houses`"),
        ("serve: no prefect.yaml here", ["serve"], 2, "no deployments file: looked for"),
        ("serve: --file missing", ["serve", "--file", str(r / "none.yaml")], 2, f"looked for {r / 'none.yaml'}"),
        ("sample-data: DIR not empty", ["sample-data", str(r)], 2, "already exists and is not an empty folder"),
        ("train: tracking server unreachable", ["train", "--data", str(h), "--out", out, "--cache", cache,
                                                "--tracking-uri", "http://127.0.0.1:9"], 2,
         "cannot reach the MLflow tracking server at http://127.0.0.1:9"),
        ("compare: tracking URI not understood", ["compare", "--data", str(h), "--out", out, "--cache", cache,
                                                  "--tracking-uri", "ftp://host/x"], 2, "unknown tracking URI scheme"),
        ("score: no champion yet", ["score", "--houses", str(r / "new.csv"), "--out", out, "--cache", cache,
                                    "--tracking-uri", registry], 2, "no champion in the registry"),
        ("score: tracking off", ["score", "--houses", str(r / "new.csv"), "--out", out, "--tracking", "off"], 2,
         "scoring reads the model registry"),
        ("models registry: unknown version", ["models", "registry", "promote", "7", "--tracking-uri", registry], 2,
         "VERSION 7: no such version of house-price"),
        ("models registry: rollback without a champion", ["models", "registry", "rollback", "--tracking-uri",
                                                          registry], 2, "no champion in the registry"),
    ]


def run_cases(argvs: list[dict], tmp_path: Path, env: dict) -> list[dict]:
    spec = tmp_path / "cases.json"
    spec.write_text(json.dumps(argvs))
    done = subprocess.run([sys.executable, "-c", RUNNER, str(spec)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=900, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.split("RESULTS ", 1)[1])


@pytest.mark.slow
def test_every_command_refuses_bad_input_in_one_line(world, tmp_path):
    table = cases(world)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT), "HOUSE_PIPELINE_HOME": str(tmp_path)}
    env.pop("PREFECT_API_URL", None)  # no flow may start: every case is refused before any work
    results = run_cases([{"argv": argv} for _, argv, _, _ in table], tmp_path, env)
    problems = []
    for (name, _, code, expected), result in zip(table, results, strict=True):
        text = result["out"] + result["err"]
        error_lines = [line for line in result["err"].splitlines() if line.startswith("error:")]
        if result["code"] != code or expected not in text or "Traceback" in text or len(error_lines) != 1:
            problems.append(f"{name}: exit {result['code']}, stderr {result['err'][-600:]!r}")
    assert problems == []
    assert not (world["root"] / "out").exists() and not (world["houses"] / "out").exists()
    assert not (world["root"] / "cache").exists()
    assert not (tmp_path / ".cache").exists()  # no default cache was created either


@pytest.mark.slow
def test_an_unexpected_failure_in_a_flow_is_one_line_and_the_traceback_goes_to_the_log(world, prefect_api, tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT), "PREFECT_API_URL": prefect_api,
           "HOUSE_PIPELINE_HOME": str(tmp_path / "home")}
    argv = ["preprocess", "--data", str(world["houses"]), "--out", str(tmp_path / "out"), "--cache",
            str(tmp_path / "cache"), "--min-houses-per-zip", "3"]
    plain, debug = run_cases([{"argv": argv, "inject": True}, {"argv": ["--debug", *argv]}], tmp_path, env)
    assert plain["code"] == 1 and "Traceback" not in plain["out"] + plain["err"]
    assert "error: unexpected RuntimeError: an injected fault (the traceback is in" in plain["err"]
    log = (tmp_path / "home" / "logs" / "errors.log").read_text()
    assert "Traceback (most recent call last)" in log and "RuntimeError: an injected fault" in log
    assert debug["code"] == 1 and "Traceback (most recent call last)" in debug["err"]  # --debug shows it

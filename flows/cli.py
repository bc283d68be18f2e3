"""Command line: `python -m flows <command> [options]`, options generated from each flow's
config model, so the CLI and the Prefect UI form always agree."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import traceback
import types
import typing
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ValidationError

from tasks.core import interrupt
from tasks.core.errors import DataError, TimeLimitReached
from tasks.core.faults import Fault, Unreachable, cause_chain, error_number, write_failure
from tasks.core.state import error_log


class Parser(argparse.ArgumentParser):
    """argparse with one line for a bad command line (not the whole usage): what is wrong, where to look."""

    def error(self, message: str):
        print(f"error: {self.prog}: {message}; see `{self.prog} --help`", file=sys.stderr)
        sys.exit(2)


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_config_arguments(parser: argparse.ArgumentParser, model: type[BaseModel]) -> None:
    """One option per field: its description is the help, a Literal gives the choices."""
    for name, field in model.model_fields.items():
        annotation = field.annotation
        args = typing.get_args(annotation)
        if typing.get_origin(annotation) in (typing.Union, types.UnionType):
            annotation = next(a for a in args if a is not type(None))
            args = typing.get_args(annotation)
        kwargs: dict = {"dest": name, "default": argparse.SUPPRESS}
        default = field.get_default(call_default_factory=True)  # e.g. the default data, from the environment
        shown = "none" if default is None else str(default)
        if typing.get_origin(annotation) is list:
            item = args[0]
            choices = typing.get_args(item) if typing.get_origin(item) is typing.Literal else None
            kwargs["type"] = _comma_list(int if item is int else str)
            kwargs["metavar"] = "A,B,..." if choices is None else "{" + ",".join(choices) + "},..."
            shown = (",".join(map(str, default)) or "none") if isinstance(default, list) else "none"
        elif typing.get_origin(annotation) is dict:
            kwargs["type"] = _key_values
            kwargs["metavar"] = "NAME=X,..."
            shown = ",".join(f"{k}={v}" for k, v in (default or {}).items()) or "none"
        elif typing.get_origin(annotation) is typing.Literal:
            kwargs["choices"] = list(args)
            kwargs["type"] = type(args[0])
        elif annotation is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif annotation in (int, float, str, Path):
            kwargs["type"] = str if annotation is Path else annotation  # a URL stays whole: the model reads it
            kwargs["metavar"] = {Path: "PATH", str: "TEXT", int: "N", float: "X"}[annotation]
        description = field.description or ""
        kwargs["help"] = description if "(default:" in description else f"{description} (default: {shown})"
        parser.add_argument(_option(name), **kwargs)


def _comma_list(convert: type) -> Callable[[str], list]:
    def parse(text: str) -> list:
        return [convert(part) for part in text.split(",") if part.strip()]

    return parse


def _key_values(text: str) -> dict[str, float]:
    """"category=1,color=0.5" -> {"category": 1.0, "color": 0.5}."""
    values = {}
    for part in filter(str.strip, text.split(",")):
        name, sep, number = part.partition("=")
        try:
            values[name.strip()] = float(number)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected NAME=NUMBER, got {part!r}") from None
        if not sep or not name.strip():
            raise argparse.ArgumentTypeError(f"expected NAME=NUMBER, got {part!r}")
    return values


def config_from_args(model: type[BaseModel], args: argparse.Namespace) -> BaseModel:
    """The flow's config from the command line, its paths checked before any work."""
    values = {name: getattr(args, name) for name in model.model_fields if hasattr(args, name)}
    config = model(**values)
    config.check_paths()
    return config


class _ShortenBadInputLogs(logging.Filter):
    """Prefect logs a failed run's exception (with traceback) and its final state, each with the
    whole error text. For bad input the CLI prints that text once, as `error: ...`; the logs keep
    one line each. The full text stays in the run's final state message."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, DataError):
            record.msg, record.args = f"Stopped on bad input: {str(error).splitlines()[0]}", ()
            record.exc_info = record.exc_text = None
        elif "DataError" in record.getMessage() and "Finished in state" in record.getMessage():
            record.msg, record.args = "Finished in state Failed: bad input (see the error message)", ()
        return True


def _shorten_bad_input_logs() -> None:
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        logging.getLogger(name).addFilter(_ShortenBadInputLogs())


class _TracebacksToTheLog(logging.Filter):
    """On the console, an error's traceback is replaced by where it was written (the error log and the
    run's logs in the Prefect UI keep it whole)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info or record.exc_text:
            record.msg, record.args = f"{record.getMessage()} (traceback in {error_log()})", ()
            record.exc_info = record.exc_text = None
        return True


def prepare_flow_logging(debug: bool) -> None:
    """For a flow command: Prefect's console shows one line per error unless --debug; every warning and
    error, tracebacks included, also goes to the error log."""
    import prefect.main  # noqa: F401  (sets up Prefect's logging now: its console handler is filtered here, and a
    #                                   handler already on the root logger would make Prefect drop its console)

    root = logging.getLogger()
    if any(getattr(handler, "house_pipeline", False) for handler in root.handlers):
        return  # prepared already (several commands in one process)
    # A hint for TensorFlow developers, not users: the gate and scoring load several models in one process.
    logging.getLogger("tensorflow").addFilter(lambda record: "triggered tf.function retracing" not in
                                              record.getMessage())
    to_file = logging.FileHandler(error_log())
    to_file.house_pipeline = True
    to_file.setLevel(logging.WARNING)
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.handlers.insert(0, to_file)  # before the console, which drops the traceback from the record
    if not debug:
        for handler in root.handlers[1:]:
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
                handler.addFilter(_TracebacksToTheLog())


def _record_crash(error: BaseException) -> Path:
    path = error_log()
    with open(path, "a") as handle:
        handle.write(f"{datetime.now():%Y-%m-%d %H:%M:%S} {' '.join(sys.argv)}\n")
        handle.write("".join(traceback.format_exception(error)) + "\n")
    return path


INTERRUPTED = ("the run stopped: finished stages stay in the cache and a training resumes from its last finished "
               "epoch when you run the same command again; the output folder is as it was before this run")


def expected_fault(error: BaseException) -> Fault | None:
    """The expected fault behind an error (a full disk, a refused write, a service that does not answer), if
    it is one, as one line: the error itself or one of its causes."""
    for cause in cause_chain(error):
        if isinstance(cause, Fault):
            return cause
        if isinstance(cause, OSError) and error_number(cause) is not None:
            fault = write_failure(cause, getattr(cause, "filename", None) or "a file")
            if fault is not None:
                return fault
        unreachable = _unreachable(cause)
        if unreachable is not None:
            return unreachable
    return None


def _unreachable(error: BaseException) -> Unreachable | None:
    """A connection refused or timed out (httpx: the Prefect API; requests: MLflow, object stores)."""
    kind = type(error).__module__.split(".")[0] + "." + type(error).__name__
    if kind in {"httpx.ConnectError", "httpx.ConnectTimeout", "httpx.ReadTimeout", "httpx.RemoteProtocolError",
                "requests.ConnectionError", "requests.ConnectTimeout", "requests.ReadTimeout",
                "urllib3.MaxRetryError"}:
        url = getattr(getattr(error, "request", None), "url", None) or ""
        return Unreachable(f"the service at {url or 'its address'} does not answer ({error}); start it, or check "
                           "PREFECT_API_URL / --tracking-uri")
    return None


def run_command(run: Callable[[], int | None], debug: bool = False) -> int:
    """Run a command. Bad input and invalid parameters become one line and exit code 2; expected faults (a full
    disk, a service that does not answer, Ctrl-C) one line each with their own exit code; anything unexpected
    one line naming the error and where its traceback is, and exit code 1."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    _shorten_bad_input_logs()
    interrupt.install()
    try:
        code = run()
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except ValidationError as error:
        problems = "; ".join(
            f"{_option(str(e['loc'][0]))}: {e['msg']} (got {e['input']!r})" if e["loc"] else e["msg"]
            for e in error.errors())
        print(f"error: invalid parameters: {problems}", file=sys.stderr)
        return 2
    except TimeLimitReached as error:  # the run's own --time-limit: expected, said in one line
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as error:  # Ctrl-C, SIGTERM
        return _interrupted(interrupt.received() or getattr(error, "signal_number", signal.SIGINT))
    except Exception as error:  # the last line of defence: a bug or the environment, never a traceback
        fault = expected_fault(error)
        if fault is not None:
            _record_crash(error)
            print(f"error: {fault}", file=sys.stderr)
            return fault.exit_code
        if debug:
            traceback.print_exception(error)
        where = _record_crash(error)
        first = (str(error).strip().splitlines() or [""])[0][:300]
        print(f"error: unexpected {type(error).__name__}: {first}" + ("" if debug else
              f" (the traceback is in {where}; run again with --debug to see it here)"), file=sys.stderr)
        return 1
    except BaseException as error:
        if isinstance(getattr(error, "signal", None), int):  # Prefect's TerminationSignal (SIGTERM in a flow run)
            return _interrupted(error.signal)
        raise
    return code or 0


def _interrupted(number: int) -> int:
    print(f"interrupted ({signal.Signals(number).name}): {INTERRUPTED}", file=sys.stderr)
    return 128 + number

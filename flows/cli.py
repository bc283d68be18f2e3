"""Command line: `python -m flows <command> [options]`, options generated from each flow's
config model, so the CLI and the Prefect UI form always agree."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import types
import typing
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ValidationError

from tasks.core.errors import DataError


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
        default = field.default
        shown = "none" if default is None else str(default)
        if typing.get_origin(annotation) is list:
            item = args[0]
            choices = typing.get_args(item) if typing.get_origin(item) is typing.Literal else None
            kwargs["type"] = _comma_list(int if item is int else str)
            kwargs["metavar"] = "A,B,..." if choices is None else "{" + ",".join(choices) + "},..."
            shown = ",".join(map(str, default)) if isinstance(default, list) else "none"
            if field.default_factory is not None:
                shown = ",".join(map(str, field.default_factory())) or "none"
        elif typing.get_origin(annotation) is dict:
            kwargs["type"] = _key_values
            kwargs["metavar"] = "NAME=X,..."
            value = field.default_factory() if field.default_factory is not None else default
            shown = ",".join(f"{k}={v}" for k, v in (value or {}).items()) or "none"
        elif typing.get_origin(annotation) is typing.Literal:
            kwargs["choices"] = list(args)
            kwargs["type"] = type(args[0])
        elif annotation is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif annotation in (int, float, str, Path):
            kwargs["type"] = annotation
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
    values = {name: getattr(args, name) for name in model.model_fields if hasattr(args, name)}
    return model(**values)


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


def run_command(run: Callable[[], object]) -> int:
    """Run a command; bad input and invalid parameters become a message and exit code 2."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    _shorten_bad_input_logs()
    try:
        run()
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except ValidationError as error:
        problems = "; ".join(
            f"{_option(str(e['loc'][0]))}: {e['msg']} (got {e['input']!r})" if e["loc"] else e["msg"]
            for e in error.errors())
        print(f"error: invalid parameters: {problems}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0

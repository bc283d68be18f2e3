"""`python -m flows <command> --help` lists each command's options."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from flows.cli import add_config_arguments, config_from_args, run_command
from flows.config import PreprocessConfig


def _preprocess(args: argparse.Namespace) -> None:
    from flows.preprocess import preprocess_flow  # Prefect is imported only when needed

    config = config_from_args(PreprocessConfig, args)
    preprocess_flow(config)
    print(f"Summary: {(config.out / 'summary.json').resolve()}")


def _compact(args: argparse.Namespace) -> None:
    from tasks.compact_dataset import compact_dataset

    count = compact_dataset(args.source, args.target, args.max_side)
    print(f"Wrote {count} photos to {args.target}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m flows", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    preprocess = commands.add_parser(
        "preprocess", help=PreprocessConfig.__doc__, description=PreprocessConfig.__doc__,
        )
    add_config_arguments(preprocess, PreprocessConfig)
    preprocess.set_defaults(handler=_preprocess)

    compact = commands.add_parser(
        "compact-dataset", help="Write a copy of a Houses-format folder with shrunk photos.",
        description="Copy a Houses-format folder, shrinking photos so the long side is at most "
                    "--max-side pixels (JPEG quality 90). The attributes file is copied as is.")
    compact.add_argument("source", type=Path, help="Houses-format folder")
    compact.add_argument("target", type=Path, help="new folder (must not exist)")
    compact.add_argument("--max-side", type=int, default=160, help="longest side in pixels (default: 160)")
    compact.set_defaults(handler=_compact)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(lambda: args.handler(args))


if __name__ == "__main__":
    sys.exit(main())

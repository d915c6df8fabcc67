"""The ``convscope`` command line: scan, train, evaluate, predict, inspect.

Each command group lives in ``engine/commands/<group>.py`` with a ``register(subparsers)``
function that adds its sub-commands; a sub-command's ``func(args) -> int`` does the work.
User errors (:class:`engine.errors.ConvScopeError`) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from engine import __version__
from engine.errors import ConvScopeError

COMMAND_MODULES = ("data", "training", "study", "bases", "inspect", "explain", "export")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's default prints usage over several lines
        self.exit(2, f"convscope: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="convscope", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"convscope {__version__}")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's own log output")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"engine.commands.{name}")
        except ModuleNotFoundError as error:
            if error.name == f"engine.commands.{name}":
                continue  # a command group not written yet
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verbose:
        os.environ["CONVSCOPE_VERBOSE"] = "1"
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except ConvScopeError as error:
        if sys.stderr is not None:
            sys.stderr.write(f"convscope: {error}\n")
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

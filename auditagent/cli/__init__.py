"""The `auditagent` command. Each command group lives in its own module and registers itself."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from importlib import import_module

from pydantic import ValidationError

from ..errors import AuditagentError
from ..settings import Settings

# Modules that add a command group with `register(subparsers)`; missing ones are skipped so a
# partial install still gives a working CLI for what it has.
COMMAND_MODULES = ("db", "keys", "apikey", "verify", "serve", "retention", "demo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="auditagent",
        description="Compliance transcript and audit recorder for LiveKit voice agents.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{name}":
                continue
            raise
        register: Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None] = (
            module.register
        )
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        settings = Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        print(
            f"auditagent: invalid setting AUDITAGENT_{field.upper()}: {first['msg']}",
            file=sys.stderr,
        )
        return 2
    try:
        code: int = func(args, settings)
        return code
    except AuditagentError as exc:
        print(f"auditagent: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("auditagent: interrupted", file=sys.stderr)
        return 130


def run() -> None:
    sys.exit(main())

"""The `auditagent` command. Each command group lives in its own module and registers itself."""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from importlib import import_module
from types import FrameType

from pydantic import ValidationError

from ..errors import AuditagentError
from ..settings import Settings

# Modules that add a command group with `register(subparsers)`; missing ones are skipped so a
# partial install still gives a working CLI for what it has.
COMMAND_MODULES = (
    "db",
    "keys",
    "apikey",
    "verify",
    "serve",
    "expire",
    "holds",
    "checkpoint",
    "search",
    "demo",
)


class _CurrentStderr(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at emit time, so calling ``main()`` in-process (tests,
    embedding) never leaves a handler bound to a stream that has since been closed."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


def _configure_logging(*, verbose: bool) -> None:
    root = logging.getLogger()
    if not root.handlers:
        handler = _CurrentStderr()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(logging.INFO if verbose else logging.WARNING)


def _version() -> str:
    # the installed distribution's version; the package's own when run from a source tree
    try:
        return importlib.metadata.version("auditagent")
    except importlib.metadata.PackageNotFoundError:
        from .. import __version__

        return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="auditagent",
        description="Compliance transcript and audit recorder for LiveKit voice agents.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    parser.add_argument("--version", action="version", version=f"auditagent {_version()}")
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
    _configure_logging(verbose=args.verbose)
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
    except Terminated as exc:
        print("auditagent: terminated", file=sys.stderr)
        return int(exc.code or 143)


class Terminated(SystemExit):
    """SIGTERM, raised where the command happens to be, so that it unwinds like Ctrl-C."""


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Terminated(128 + signum)


def run() -> None:
    # A service manager, `kill` or a CI timeout sends SIGTERM. Its default action ends the
    # process without exit handlers, which would orphan an embedded Postgres this command
    # started (the demo records for half a minute before uvicorn, which has handlers of its
    # own, takes over). Only the console entry point: `main()` called in-process (tests,
    # embedding) leaves the host's signal handling alone.
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    ):
        signal.signal(signal.SIGTERM, _terminate)
    sys.exit(main())

"""Compatibility re-exports: the `retention` command group moved to cli/expire.py (with
cli/report.py and cli/policies.py), the shared helpers to cli/_common.py. Removed once every
caller moved; the command names and flags are unchanged."""

from __future__ import annotations

import argparse

from . import checkpoint, expire, holds
from ._common import (
    Operator,
    add_operator,
    checkpoint_sink,
    cli_user,
    engine_for,
    log_action,
    operator,
    parse_now,
    parse_time,
)

__all__ = [
    "Operator",
    "add_operator",
    "checkpoint_sink",
    "cli_user",
    "engine_for",
    "log_action",
    "operator",
    "parse_now",
    "parse_time",
    "register",
]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """What this module registered before the split: `retention`, `holds`, `erasure` and
    `checkpoint`."""
    expire.register(sub)
    holds.register(sub)
    checkpoint.register(sub)

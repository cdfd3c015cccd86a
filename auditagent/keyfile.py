"""The keyring file on disk: read only if private (0600, a regular file), written atomically
(fsynced temp file, then moved into place), writers serialised by a directory lock.

Split from :mod:`auditagent.keys`, which decides what the file holds.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from auditagent.errors import KeyringError

__all__ = ["dir_lock", "fsync_dir", "make_private_dirs", "read_document", "write_atomic"]


def _malformed(path: Path, what: str) -> KeyringError:
    return KeyringError(f"keyring {path} is malformed ({what})", fix="restore it from a backup")


def read_document(path: Path) -> dict[str, Any]:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise KeyringError(f"no keyring at {path}", fix="run `auditagent keys init`") from None
    except OSError as exc:
        raise KeyringError(
            f"cannot open keyring {path}: {exc.strerror}",
            fix="check the path and that it is a regular file owned by you",
        ) from None
    try:
        # fstat on the open descriptor, not the path, so the checked file is the one read.
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise KeyringError(f"keyring {path} is not a regular file", fix="check the path")
        if os.name == "posix" and st.st_mode & 0o077:
            raise KeyringError(
                f"keyring {path} is accessible by group or others "
                f"(mode {stat.S_IMODE(st.st_mode):04o})",
                fix=f"chmod 600 {path}",
            )
        with os.fdopen(fd, "rb", closefd=False) as fh:
            raw = fh.read()
    except OSError as exc:
        raise KeyringError(
            f"cannot read keyring {path}: {exc.strerror}", fix="check the file and its disk"
        ) from None
    finally:
        os.close(fd)
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
        raise _malformed(path, f"invalid JSON: {reason}") from None
    if not isinstance(document, dict):
        raise _malformed(path, "not a JSON object")
    return document


def make_private_dirs(directory: Path) -> None:
    """Create missing directories 0700 (``mkdir(parents=True)`` ignores mode for parents)."""
    missing: list[Path] = []
    d = directory
    while not d.exists():
        missing.append(d)
        d = d.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):
            d.mkdir(mode=0o700)
            # mkdir's mode is filtered by the umask; chmod is not.
            d.chmod(0o700)


@contextlib.contextmanager
def dir_lock(directory: Path) -> Iterator[None]:
    """Serialise keyring writers across processes; a no-op where flock is unavailable."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: Path, document: dict[str, Any], *, replace: bool) -> None:
    """Write a 0600 temp file, fsync it, then move it into place; never a half-written keyring.

    Without ``replace`` the move is a hard link, which fails rather than overwrite a keyring
    another process created in the meantime.
    """
    data = (json.dumps(document, indent=2) + "\n").encode()
    # mkstemp creates the file 0600 regardless of umask.
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise KeyringError(
                    f"keyring {path} already exists", fix="use `auditagent keys rotate`"
                ) from None
            except OSError:
                # Filesystems without hard links: the existence check in init has to do.
                if path.exists():
                    raise KeyringError(
                        f"keyring {path} already exists", fix="use `auditagent keys rotate`"
                    ) from None
                os.replace(tmp, path)
        fsync_dir(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()

"""Atomic file writes: the one writer every output of `ide` goes through (PNG, JSON, checkpoints, caches).

A file appears whole or not at all: it is written to a hidden temp file in the same folder, then
renamed over the target (`os.replace` is atomic within one file system). The temp file is created
with mode 0666 minus the umask, like any file `open(path, "w")` makes (typically 0644), not the
0600 of `tempfile.mkstemp`. A crash between create and rename can leave `.<name>.<hex>.tmp`
behind; `remove_orphans` deletes those of a target, and `atomic_write` calls it first.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")


def remove_orphans(path: str | Path) -> int:
    """Delete leftover temp files `.<name>.*.tmp` of target `path` (from a killed writer).

    Returns how many were removed. Only one process writes a given target (rank 0 in DDP runs),
    so a temp file that exists before a write starts belongs to no live writer."""
    path = Path(path)
    removed = 0
    for orphan in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            orphan.unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Create `path` by calling `write(f)` on a binary file object, atomically; returns `path`.

    The parent folder is created when missing; orphaned temp files of `path` are removed first.
    On any exception (or KeyboardInterrupt) the temp file is deleted and `path` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_orphans(path)
    tmp = _temp_name(path)
    # O_EXCL: never follow or reuse an existing name; mode 0o666 is then reduced by the umask
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_bytes(path: str | Path, data: bytes) -> Path:
    """`atomic_write` of a bytes object."""
    return atomic_write(path, lambda f: f.write(data))


def write_text(path: str | Path, text: str) -> Path:
    """`atomic_write` of UTF-8 text (JSON, YAML, CSV)."""
    return write_bytes(path, text.encode("utf-8"))

"""Provenance of a result: which code, command, settings, weights and machine produced it.

Every JSON that `ide metrics` and `ide test` write carries it under the key "provenance", so a
number can be traced back and re-run.
"""

from __future__ import annotations

import hashlib
import platform
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import torch

import ide

PACKAGE_ROOT = Path(ide.__file__).resolve().parent.parent  # the checkout holding the ide package


def _git(*args: str) -> str | None:
    """stdout of `git args` run in the package's checkout, stripped, or None when git fails."""
    try:
        done = subprocess.run(
            ["git", *args], cwd=PACKAGE_ROOT, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def git_commit() -> str | None:
    """The commit of the checkout the ide package runs from, with "-dirty" appended when tracked files
    other than results/ changed (rewriting a result file does not change the code that made it);
    None outside a git checkout (an installed package)."""
    top = _git("rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() != PACKAGE_ROOT:  # ide installed inside another repository
        return None
    commit = _git("rev-parse", "HEAD")
    if not commit:
        return None
    changes = _git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results")
    return f"{commit}-dirty" if changes else commit


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cpu_model() -> str | None:
    """The "model name" line of /proc/cpuinfo, else platform.processor(), else None."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def machine() -> dict:
    """{"platform", "cpu", "torch_threads", "gpu"}: gpu is the first CUDA device's name or None."""
    return {
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def provenance(config: dict | None = None, checkpoint: str | Path | None = None) -> dict:
    """What produced a result, as a JSON-ready dict.

    Args:
        config: the resolved config (`ide.config.to_dict`) in effect, or None where none applies.
        checkpoint: the checkpoint file used, or None.
    Returns:
        {"ide_version", "git_commit" (None outside a git checkout, "-dirty" suffix with changes),
         "command" (this process's argv, shell-quoted), "config", "checkpoint_sha256" (or None),
         "machine" (`machine()`), "date" (UTC, ISO 8601)}.
    """
    return {
        "ide_version": ide.__version__,
        "git_commit": git_commit(),
        "command": shlex.join(sys.argv),
        "config": config,
        "checkpoint_sha256": None if checkpoint is None else file_sha256(checkpoint),
        "machine": machine(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }

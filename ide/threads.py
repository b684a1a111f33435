"""How many CPU threads PyTorch uses: --threads, else $IDE_THREADS, else one per core that is not busy.

Why not every core: OpenMP splits each op evenly over its threads and waits for the slowest, so
a thread that shares its core with another process slows every op down. Measured with
bench/threads.py (the CUFS CPU recipe's training step) on 2 cores already running ~12 other
processes: 0.90-0.94 steps/s with 1 thread, 0.05 (spinning wait) or 0.24 (passive wait) with 2;
with one more core held by a spinning process, 0.43-0.47 against 0.03-0.07. So the default is
the cores that are free when the command starts (all of them on an idle machine), and idle
OpenMP threads wait passively. Nothing here imports torch: the count goes to OMP_NUM_THREADS,
which torch reads when it loads, so a command that stops at a config error stays fast.
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from pathlib import Path

from ide.errors import UserError


def default_threads(cores: int, load: float) -> int:
    """One thread per core not taken by the `load` runnable processes (1-minute load average)
    on `cores` usable cores; at least one."""
    return max(1, min(cores, cores - int(load + 0.5)))


@lru_cache(maxsize=1)
def usable_cores() -> int:
    """Physical cores this process may run on (its CPU affinity, SMT siblings counted once)."""
    logical = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        return max(1, logical)
    cores, phys = set(), "0"
    for line in cpuinfo.read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "physical id":
            phys = value.strip()
        elif key.strip() == "core id":
            cores.add((phys, value.strip()))
    return max(1, min(logical, len(cores) or logical))


def set_threads(flag: int | None) -> int:
    """Choose the thread count (--threads `flag`, else $IDE_THREADS, else $OMP_NUM_THREADS when
    set, else `default_threads`), put it in OMP_NUM_THREADS for torch to read at import (and set
    it directly when torch is already loaded); returns it. Bad values are a UserError."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read when OpenMP loads with torch
    raw = str(flag) if flag is not None else os.environ.get("IDE_THREADS", "").strip()
    if raw and (not raw.isdigit() or int(raw) < 1):
        source = "--threads" if flag is not None else "IDE_THREADS"
        raise UserError(f"{source} must be a whole number >= 1, got {raw!r}")
    omp = os.environ.get("OMP_NUM_THREADS", "")
    if raw:
        n = int(raw)
    elif omp.isdigit() and int(omp) >= 1:
        n = int(omp)
    else:
        n = default_threads(usable_cores(), os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0)
    os.environ["OMP_NUM_THREADS"] = str(n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    return n

"""Training steps per second against CPU threads, on an idle machine and with one core held by another process.

Each measurement runs in a fresh process (OpenMP reads OMP_WAIT_POLICY once, when torch loads):
the product's `ide.train.train_step` on the networks of a recipe (default: the CUFS CPU recipe,
random crops of its size), `--warmup` steps untimed, then as many steps as fit in `--seconds`.
"One core busy" starts a process that spins on one core for the whole measurement, as another
user's job would. Each combination of threads (1, all cores), OpenMP wait policy (active: spin
then sleep, libgomp's default; passive: sleep at once) and load is measured, in that order.

    python bench/threads.py                          # ~3 minutes
    python bench/threads.py --seconds 20 --config configs/cufsf_cpu.yaml

Ends with one JSON line: {"cores", "rows": [{"threads", "wait", "busy", "steps_per_s"}, ...]}.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time


def spin(stop_at: float) -> None:
    """Hold one core until `stop_at` (time.time())."""
    while time.time() < stop_at:
        pass


def child(config: str, threads: int, seconds: float, warmup: int) -> None:
    import torch

    from ide.config import load_config
    from ide.precision import autocast, grad_scaler
    from ide.train import train_step
    from ide.train_setup import build

    torch.set_num_threads(threads)
    cfg = load_config(config, ["data.root=synthetic", "train.device=cpu"])
    device = torch.device("cpu")
    nets, _ = build(cfg, device)
    m, t = cfg.model, cfg.train
    x = torch.rand(t.batch_size, m.in_channels + m.photo_condition, t.crop // m.scale, t.crop // m.scale)
    y = torch.rand(t.batch_size, 1, t.crop, t.crop)
    x, y = (v.contiguous(memory_format=torch.channels_last) for v in (x, y))
    scaler = grad_scaler(device, t.precision)
    step = lambda: train_step(nets, x, y, cfg.loss, lambda: autocast(device, t.precision), scaler)  # noqa: E731
    for _ in range(warmup):
        step()
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        step()
        n += 1
    print(json.dumps({"steps_per_s": n / (time.perf_counter() - start), "steps": n}))


def measure(config: str, threads: int, wait: str, busy: bool, seconds: float, warmup: int) -> float:
    env = dict(os.environ, OMP_WAIT_POLICY=wait.upper(), OMP_NUM_THREADS=str(threads))
    spinner = None
    if busy:
        spinner = mp.Process(target=spin, args=(time.time() + 10 * seconds + 120,), daemon=True)
        spinner.start()
    try:
        cmd = [sys.executable, __file__, "--child", "--config", config, "--threads", str(threads)]
        cmd += ["--seconds", str(seconds), "--warmup", str(warmup)]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    finally:
        if spinner is not None:
            spinner.terminate()
            spinner.join()
    return json.loads(out.strip().splitlines()[-1])["steps_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/cufs_cpu.yaml")
    parser.add_argument("--seconds", type=float, default=15.0, help="timed seconds per measurement")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="(child) threads; 0: 1 and all cores")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.config, args.threads, args.seconds, args.warmup)
        return
    cores = os.cpu_count() or 1
    counts = [args.threads] if args.threads else sorted({1, cores})
    rows = []
    for busy in (False, True):
        for wait in ("active", "passive"):
            for threads in counts:
                rate = measure(args.config, threads, wait, busy, args.seconds, args.warmup)
                row = {"threads": threads, "wait": wait, "busy": busy, "steps_per_s": round(rate, 2)}
                row["load_average"] = round(os.getloadavg()[0], 2)
                print(json.dumps(row), flush=True)
                rows.append(row)
    print(json.dumps({"cores": cores, "config": args.config, "rows": rows}))


if __name__ == "__main__":
    main()

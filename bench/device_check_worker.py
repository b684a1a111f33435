"""The child processes of bench/device_check.py, each in the interpreter under test.

    python bench/device_check_worker.py env RESULT.json     # versions, GPU, CPU
    python bench/device_check_worker.py recipe SPEC.json    # train one recipe → SPEC.result.json

SPEC.json: {"config": YAML path, "overrides": ["key=value", ...], "warmup": steps left out of it/s}.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import torch


def _cpu_model() -> str | None:
    info = Path("/proc/cpuinfo")
    lines = info.read_text().splitlines() if info.is_file() else []
    return next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), None)


def environment() -> dict:
    """Versions of Python, PyTorch and the libraries ide uses; the GPU when there is one."""
    import cv2
    import numpy
    import scipy
    import torchvision

    import ide

    env = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "opencv": cv2.__version__,
        "torch_cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
        "ide": ide.__version__,
        "ide_file": ide.__file__,  # the installed copy, or the checkout
    }
    if env["cuda"]:
        p = torch.cuda.get_device_properties(0)
        env.update(
            gpu=p.name,
            gpu_count=torch.cuda.device_count(),
            gpu_memory_gib=round(p.total_memory / 2**30, 1),
            capability=f"{p.major}.{p.minor}",
        )
        if torch.distributed.is_nccl_available():
            v = torch.cuda.nccl.version()  # a tuple in recent PyTorch, an int in old ones
            env["nccl"] = ".".join(map(str, v)) if isinstance(v, tuple) else str(v)
    return env


def run_recipe(spec: dict) -> dict:
    """Train one recipe with `ide.train.train`, timing every step (after a CUDA sync).

    it_per_s: steps per second between the end of step `warmup` and the end of the last step (data
    sampling and the optimiser included; the single validation comes after the last step).
    Memory figures: peak of training and validation; stage 1's own peak is under "stage1".
    """
    import ide.train as tr
    from ide.checkpoint import load_checkpoint
    from ide.config import load_config
    from ide.precision import resolve_device, resolve_precision

    cfg = load_config(spec["config"], spec["overrides"])
    dev = resolve_device(cfg.train.device)
    cuda = dev.type == "cuda"
    stamps, scores, stage1 = [], [], {}
    real_step, real_prepare, real_score = tr.train_step, tr.prepare_data, tr.score_arrays

    def timed_step(*a, **k):  # every argument passes through, whatever train_step's signature
        out = real_step(*a, **k)
        if cuda:
            torch.cuda.synchronize(dev)
        stamps.append(time.perf_counter())
        return out

    def timed_prepare(*a, **k):
        t = time.perf_counter()
        out = real_prepare(*a, **k)
        stage1["seconds"] = round(time.perf_counter() - t, 2)
        if cuda:
            stage1["max_memory_allocated_mib"] = round(torch.cuda.max_memory_allocated(dev) / 2**20, 1)
            torch.cuda.reset_peak_memory_stats(dev)
        return out

    def kept_score(*a, **k):  # the first call scores stage 1's sketches, the last the validation
        scores.append(real_score(*a, **k))
        return scores[-1]

    tr.train_step, tr.prepare_data, tr.score_arrays = timed_step, timed_prepare, kept_score
    t0 = time.perf_counter()
    run = tr.train(cfg)
    w = spec["warmup"]
    timed = len(stamps) - 1 - w
    res = {
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if cuda else "cpu",
        "precision": resolve_precision(cfg.train.precision, dev),
        "torch_threads": torch.get_num_threads(),
        "steps": len(stamps),
        "timed_steps": timed,
        "it_per_s": round(timed / (stamps[-1] - stamps[w]), 3) if timed > 0 else None,
        "batch_size": cfg.train.batch_size,
        "crop": cfg.train.crop,
        "stage1": stage1,
        "total_seconds": round(time.perf_counter() - t0, 1),
        "val_fsim_stage1": scores[0]["fsim"] if len(scores) > 1 else None,
        "val_fsim": load_checkpoint(run / "checkpoints" / "last.pt")["best_fsim"],
        "val_scores": scores[-1] if scores else None,
        "max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    if cuda:
        res["max_memory_allocated_mib"] = round(torch.cuda.max_memory_allocated(dev) / 2**20, 1)
        res["max_memory_reserved_mib"] = round(torch.cuda.max_memory_reserved(dev) / 2**20, 1)
    return res


if __name__ == "__main__":
    kind, path = sys.argv[1], Path(sys.argv[2])
    if kind == "env":
        path.write_text(json.dumps(environment()))
    else:
        path.with_suffix(".result.json").write_text(json.dumps(run_recipe(json.loads(path.read_text()))))

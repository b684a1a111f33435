"""The CUDA paths: stage-1 search, fp16/bf16 training steps, GPU checkpoints on CPU, torchrun, `ide test`.

Every test here carries the `cuda` marker and is skipped, with the reason, where PyTorch sees no
CUDA device (`pytest -m cuda -rs` prints it). `bench/device_check.py` runs them on a GPU machine.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from test_train import TINY

from ide.checkpoint import load_checkpoint
from ide.cli import main
from ide.config import dump_config, load_config
from ide.data.io import read_image
from ide.data.synthetic import make_split
from ide.models import build_discriminator, build_generator
from ide.pgm.grid import PatchGrid, PatchMetric
from ide.pgm.search import knn_search
from ide.pipeline import Synthesizer
from ide.precision import autocast, grad_scaler
from ide.train import train, train_step

ROOT = Path(__file__).resolve().parents[1]
NO_CUDA = f"CUDA is not available (torch {torch.__version__}, built for CUDA {torch.version.cuda})"
pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)]


def step(g, d, opt_g, opt_d, x, y, cfg, device, precision: str) -> dict[str, float]:
    """One `train_step` under `precision` on `device`, as `ide.train.train` calls it (the one
    place this file calls it). Returns the named losses."""
    scaler = grad_scaler(device, precision)
    return train_step(
        g, d, None, opt_g, opt_d, x, y, cfg.loss, lambda: autocast(device, precision), scaler, False
    )


def tiny_cfg(tmp: Path, *extra: str):
    return load_config(None, [*TINY, f"log.dir={tmp / 'runs'}", f"data.cache_dir={tmp / 'cache'}", *extra])


def _bank(seed: int = 0, n: int = 12, h: int = 60, w: int = 48):
    """Random uint8 bank [n,h,w] with flat regions (the tie rule) and queries [3,h,w], one a bank photo."""
    rng = np.random.default_rng(seed)
    bank = rng.integers(0, 256, (n, h, w), dtype=np.uint8)
    bank[:4, :15] = rng.integers(0, 256, (4, 1, 1))
    photos = rng.integers(0, 256, (3, h, w), dtype=np.uint8)
    photos[0, :12] = 9
    photos[1] = bank[6]
    return bank, photos


@pytest.mark.parametrize("norm,brightness", [("none", 0.0), ("mean", 0.1), ("meanstd", 0.0)])
def test_stage1_search_on_cuda_finds_the_cpu_neighbours(norm, brightness):
    bank, photos = _bank()
    grid = PatchGrid(bank.shape[1], bank.shape[2], 6, 3)
    metric = PatchMetric(norm, 4.0, brightness)
    found = {}
    for dev in ("cpu", "cuda"):
        found[dev] = knn_search(
            torch.from_numpy(bank).to(dev),
            torch.from_numpy(photos).to(dev),
            grid,
            3,
            5,
            metric,
            torch.tensor([4, -1, 6], device=dev),
            batch=2,
        )
    cpu, gpu = found["cpu"], found["cuda"]
    assert gpu.index.device.type == "cuda"
    torch.testing.assert_close(gpu.index.cpu(), cpu.index, rtol=0, atol=0)
    torch.testing.assert_close(gpu.dist.cpu(), cpu.dist, rtol=0, atol=1e-6)


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_train_step_on_cuda_changes_weights_and_stays_finite(tmp_path, precision, channels_last):
    cfg = tiny_cfg(tmp_path)
    dev = torch.device("cuda")
    torch.manual_seed(0)
    g, d = build_generator(cfg.model).to(dev), build_discriminator(cfg.model).to(dev)
    x, y = torch.rand(2, 1, 16, 16, device=dev), torch.rand(2, 1, 32, 32, device=dev)
    if channels_last:
        g, d = g.to(memory_format=torch.channels_last), d.to(memory_format=torch.channels_last)
        x, y = (
            x.contiguous(memory_format=torch.channels_last),
            y.contiguous(memory_format=torch.channels_last),
        )
    opt_g, opt_d = torch.optim.Adam(g.parameters(), 1e-3), torch.optim.Adam(d.parameters(), 1e-3)
    g0 = [p.detach().clone() for p in g.parameters()]
    d0 = [p.detach().clone() for p in d.parameters()]
    for _ in range(3):  # fp16: the scaler may skip a first step whose gradients overflow
        losses = step(g, d, opt_g, opt_d, x, y, cfg, dev, precision)
    assert all(np.isfinite(v) for v in losses.values()), losses
    for net, before in ((g, g0), (d, d0)):
        assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters()))
        assert all(torch.isfinite(p).all() and p.dtype == torch.float32 for p in net.parameters())


@pytest.fixture(scope="module")
def cuda_run(tmp_path_factory) -> Path:
    """Two steps of the tiny recipe trained on CUDA (stage 1 there too); its best.pt."""
    tmp = tmp_path_factory.mktemp("cuda_run")
    cfg = tiny_cfg(
        tmp,
        "train.device=cuda",
        "stage1.device=cuda",
        "train.iterations=2",
        "eval.every=2",
        "train.save_every=2",
    )
    return train(cfg) / "checkpoints" / "best.pt"


def test_cuda_checkpoint_loads_on_a_cpu_only_process_and_synthesises_the_same(cuda_run, tmp_path):
    raw = torch.load(cuda_run, map_location=None, weights_only=True)
    assert next(iter(raw["generator"].values())).device.type == "cuda"  # really saved from the GPU
    gpu = Synthesizer.from_checkpoint(cuda_run, ["stage1.device=cuda"], device="cuda")
    photos = gpu.photo_gray(make_split(3, seed=7).photos)  # faces the bank has not seen
    on_gpu = gpu.refine(gpu.coarse(photos), photos)
    # A process that sees no GPU at all, as on a CPU machine.
    code = (
        "import sys, numpy as np, torch\n"
        "from ide.pipeline import Synthesizer\n"
        "assert not torch.cuda.is_available()\n"
        "s = Synthesizer.from_checkpoint(sys.argv[1], device='cpu')\n"
        "p = np.load(sys.argv[2])\n"
        "np.save(sys.argv[3], s.refine(s.coarse(p), p))\n"
    )
    np.save(tmp_path / "photos.npy", photos)
    env = {
        **os.environ,
        "CUDA_VISIBLE_DEVICES": "",
        "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }
    out = tmp_path / "cpu.npy"
    res = subprocess.run(
        [sys.executable, "-c", code, str(cuda_run), str(tmp_path / "photos.npy"), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    _assert_close_sketches(np.load(out), on_gpu, mean=1.0, within=4, share=0.99)


def _assert_close_sketches(a: np.ndarray, b: np.ndarray, mean: float, within: int, share: float) -> None:
    """uint8 sketches a, b of one shape: mean |a-b| ≤ `mean` gray levels and at least `share` of
    the pixels within `within` levels (TF32 convs and fp16 on the GPU round differently)."""
    assert a.shape == b.shape and a.dtype == b.dtype == np.uint8
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
    assert diff.mean() <= mean and (diff <= within).mean() >= share, (diff.mean(), diff.max())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("nproc", [1, 2])
def test_torchrun_trains_a_few_steps_on_cuda(tmp_path, nproc):
    """torchrun → `ide train` on the GPU(s). One process needs no process group (world size 1);
    two processes join NCCL and train with DDP and SyncBatchNorm (needs two GPUs: NCCL takes
    one device per rank)."""
    if torch.cuda.device_count() < nproc:
        pytest.skip(f"{nproc} processes need {nproc} GPUs, {torch.cuda.device_count()} found")
    cfg = tiny_cfg(tmp_path, "train.device=cuda", "train.iterations=3", "eval.every=3", "train.save_every=3")
    config = tmp_path / "tiny.yaml"
    config.write_text(dump_config(cfg))
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}"]
    cmd += [f"--master_port={_free_port()}", "-m", "ide", "train", "--config", str(config)]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    ck = load_checkpoint(tmp_path / "runs" / cfg.train.name / "checkpoints" / "last.pt")
    assert ck["step"] == 3
    assert all(torch.isfinite(v).all() for v in ck["generator"].values() if v.is_floating_point())


def _nccl_worker(rank: int, port: int, overrides: list[str]) -> None:
    """One NCCL rank (world size 1): the DDP generator and SyncBatchNorm discriminator that
    `ide.train.train` builds for several GPUs, one fp16 step."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("nccl", rank=rank, world_size=1)
    try:
        dev = torch.device("cuda", 0)
        torch.cuda.set_device(dev)
        cfg = load_config(None, overrides)
        torch.manual_seed(0)
        g = DDP(build_generator(cfg.model).to(dev))
        d = DDP(torch.nn.SyncBatchNorm.convert_sync_batchnorm(build_discriminator(cfg.model).to(dev)))
        assert any(isinstance(m, torch.nn.SyncBatchNorm) for m in d.modules())
        opt_g, opt_d = torch.optim.Adam(g.parameters(), 1e-3), torch.optim.Adam(d.parameters(), 1e-3)
        g0 = [p.detach().clone() for p in g.parameters()]
        x, y = torch.rand(2, 1, 16, 16, device=dev), torch.rand(2, 1, 32, 32, device=dev)
        for _ in range(3):
            losses = step(g, d, opt_g, opt_d, x, y, cfg, dev, "fp16")
        assert all(np.isfinite(v) for v in losses.values()), losses
        assert any(not torch.equal(a, b) for a, b in zip(g0, g.parameters()))
        t = torch.ones(1, device=dev)
        torch.distributed.all_reduce(t)
        assert float(t) == 1.0
    finally:
        torch.distributed.destroy_process_group()


def test_nccl_ddp_and_syncbatchnorm_step_on_one_gpu(tmp_path):
    if not torch.distributed.is_nccl_available():
        pytest.skip("this PyTorch build has no NCCL")
    mp.start_processes(_nccl_worker, args=(_free_port(), [*TINY]), nprocs=1, start_method="spawn")


@pytest.mark.parametrize("precision,mean,within,share", [("fp32", 1.0, 4, 0.99), ("fp16", 2.0, 8, 0.98)])
def test_ide_test_on_cuda_equals_cpu(cuda_run, tmp_path, precision, mean, within, share):
    """`ide test --split test` with --device cuda (stage 1 on the GPU too) in `precision` against
    --device cpu in fp32."""
    outs = {}
    for dev, prec in (("cpu", "fp32"), ("cuda", precision)):
        outs[dev] = tmp_path / dev
        args = ["test", "--checkpoint", str(cuda_run), "--split", "test", "--out", str(outs[dev])]
        args += ["--device", dev, "--set", f"stage1.device={dev}", "--set", f"train.precision={prec}"]
        assert main(args) == 0
    names = sorted(p.name for p in outs["cpu"].glob("*.png") if p.stem != "grid")
    assert names and names == sorted(p.name for p in outs["cuda"].glob("*.png") if p.stem != "grid")
    a = np.stack([read_image(outs["cpu"] / n) for n in names])
    b = np.stack([read_image(outs["cuda"] / n) for n in names])
    _assert_close_sketches(a, b, mean, within, share)

"""Stage-2 training: one step, resume exactness, NaN guard, run-folder rules, 2-process gloo DDP."""

from __future__ import annotations

import contextlib
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from conftest import TINY

from ide.checkpoint import load_checkpoint
from ide.config import load_config
from ide.data.stage2 import PairedCrops
from ide.ema import EMA
from ide.errors import UserError
from ide.losses import PerceptualLoss
from ide.models import build_discriminator, build_generator
from ide.train import Nets, TrainingDiverged, train, train_step


def test_one_step_updates_g_and_d_but_g_step_leaves_d(tiny_cfg):
    cfg = tiny_cfg()
    torch.manual_seed(0)
    g, d = build_generator(cfg.model), build_discriminator(cfg.model)
    perc = PerceptualLoss("random", "conv5_4")
    opt_g = torch.optim.Adam(g.parameters(), 1e-3)
    opt_d = torch.optim.Adam(d.parameters(), 1e-3)
    crops = PairedCrops(torch.rand(4, 1, 40, 40), torch.rand(4, 1, 80, 80), 2, 32)
    x, y = crops.sample(2, torch.Generator().manual_seed(0))
    g0 = [p.detach().clone() for p in g.parameters()]
    d0 = [p.detach().clone() for p in d.parameters()]
    after_d_step = {}
    orig_step = opt_d.step

    def spy_step(*a, **k):
        out = orig_step(*a, **k)
        after_d_step["params"] = [p.detach().clone() for p in d.parameters()]
        return out

    opt_d.step = spy_step
    losses = train_step(Nets(g, opt_g, d, opt_d, perc), x, y, cfg.loss, contextlib.nullcontext)
    assert set(losses) == {"g_pix", "g_perc", "g_gan", "g_total", "d_real", "d_fake"}
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    assert any(not torch.equal(a, b) for a, b in zip(g0, g.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d0, d.parameters()))
    # the generator step did not move the discriminator
    assert all(torch.equal(a, b) for a, b in zip(after_d_step["params"], d.parameters()))


@pytest.mark.parametrize("ema", [0.0, 0.9])
def test_resume_reproduces_uninterrupted_run(tiny_cfg, tmp_path, ema):
    common = ["train.save_every=2", "eval.every=2", f"train.ema={ema}"]
    full = train(tiny_cfg("train.name=full", "train.iterations=4", *common))
    part = tiny_cfg("train.name=part", "train.iterations=2", *common)
    train(part)
    with pytest.raises(UserError, match="already exists"):
        train(part)
    train(tiny_cfg("train.name=part", "train.iterations=4", *common), resume=True)
    a = load_checkpoint(full / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "runs" / "part" / "checkpoints" / "last.pt")
    assert a["step"] == b["step"] == 4
    for key in ["generator"] + (["generator_online"] if ema else []):
        for k in a[key]:
            assert torch.equal(a[key][k], b[key][k]), (key, k)
    if ema:  # the shipped weights are the average, not the trained ones
        assert any(not torch.equal(a["generator"][k], a["generator_online"][k]) for k in a["generator"])
    else:
        assert a["generator_online"] is None
    for k in a["discriminator"]:
        assert torch.equal(a["discriminator"][k], b["discriminator"][k]), k
    assert (full / "config.yaml").is_file() and (full / "checkpoints" / "best.pt").is_file()
    assert len(list((full / "samples").glob("*.png"))) == 2
    assert a["bank_photos"].dtype == torch.uint8 and len(a["bank_ids"]) == 8


def test_nan_loss_stops_and_keeps_last(tiny_cfg, tmp_path, monkeypatch):
    import ide.losses as tr

    cfg = tiny_cfg("train.iterations=5", "train.save_every=2", "eval.every=100")
    calls = {"n": 0}
    real = tr.pixel_loss

    def flaky(a, b):
        calls["n"] += 1
        return real(a, b) * (float("nan") if calls["n"] == 3 else 1.0)

    monkeypatch.setattr(tr, "pixel_loss", flaky)
    with pytest.raises(TrainingDiverged, match="g_pix"):
        train(cfg)
    ck = load_checkpoint(tmp_path / "runs" / cfg.train.name / "checkpoints" / "last.pt")
    assert ck["step"] == 2
    assert all(torch.isfinite(v).all() for v in ck["generator"].values() if v.is_floating_point())


def test_resume_without_checkpoint_is_an_error(tiny_cfg):
    with pytest.raises(UserError, match="last.pt not found"):
        train(tiny_cfg("train.name=none"), resume=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, overrides: list[str]) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank))
    os.environ["LOCAL_RANK"] = str(rank)
    torch.set_num_threads(1)
    train(load_config(None, overrides))
    torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_ddp_two_gloo_processes_match_one(tmp_path):
    common = [
        *TINY,
        f"data.cache_dir={tmp_path / 'cache'}",
        "train.iterations=2",
        "train.batch_size=4",
        "eval.every=100",
        "train.save_every=2",
        "loss.gan=0",
    ]
    # No discriminator here: its BatchNorm normalises per process on CPU (SyncBatchNorm is CUDA-only),
    # so only the generator's gradient averaging can match one process exactly.
    one = [*common, f"log.dir={tmp_path / 'one'}"]
    two = [*common, f"log.dir={tmp_path / 'two'}"]
    train(load_config(None, one))
    mp.start_processes(_ddp_worker, args=(2, _free_port(), two), nprocs=2, start_method="spawn")
    a = load_checkpoint(tmp_path / "one" / "tiny" / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "two" / "tiny" / "checkpoints" / "last.pt")
    for k, v in a["generator"].items():
        torch.testing.assert_close(b["generator"][k], v, rtol=1e-4, atol=1e-5, msg=k)


def test_ema_follows_its_recurrence_with_warm_up():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    ema = EMA(model, decay=0.99)
    start = [p.detach().clone() for p in ema.module.parameters()]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema.update(model, 1)  # warm-up: d_1 = min(0.99, 2/11)
    d = 2 / 11
    for e, s0, p in zip(ema.module.parameters(), start, model.parameters()):
        torch.testing.assert_close(e, d * s0 + (1 - d) * p)
        assert not e.requires_grad
    before = [e.detach().clone() for e in ema.module.parameters()]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema.update(model, 10_000)  # past the warm-up: d = 0.99
    for e, b, p in zip(ema.module.parameters(), before, model.parameters()):
        torch.testing.assert_close(e, 0.99 * b + 0.01 * p)
    with pytest.raises(ValueError, match="decay"):
        EMA(model, 1.0)

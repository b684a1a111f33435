"""Bad input and faults around training runs and checkpoints: one clear line (exit 2), nothing
half-written, resume refusing what it cannot honour, temp files cleaned, modes from the umask."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
import torch
import yaml

from ide.checkpoint import check_architecture, load_checkpoint, save_checkpoint
from ide.cli import main
from ide.config import Config, ModelConfig
from ide.data.io import write_png
from ide.errors import UserError
from ide.fileio import write_text
from ide.train import train


def _ide_train(capsys, tmp_path, *sets: str, resume: bool = False, cache=None) -> tuple[int, str]:
    """`ide train` on the tiny config (runs under tmp_path/runs, as `tiny_cfg`): (exit code, stderr)."""
    from conftest import TINY

    empty = tmp_path / "defaults.yaml"  # the defaults, as `tiny_cfg` starts from
    empty.write_text("{}\n")
    argv = ["train", "--config", str(empty)]
    for s in [*TINY, f"log.dir={tmp_path / 'runs'}", f"data.cache_dir={cache or tmp_path / 'cache'}", *sets]:
        argv += ["--set", s]
    code = main(argv + (["--resume"] if resume else []))
    return code, capsys.readouterr().err


def test_bad_value_is_one_line_before_stage_one(capsys, tmp_path):
    code, err = _ide_train(capsys, tmp_path, "train.lr=-1")
    assert code == 2 and err.count("\n") == 1 and "'train.lr' must be > 0" in err
    assert not (tmp_path / "cache").exists() and not (tmp_path / "runs").exists()  # nothing ran


def test_unknown_discriminator_is_refused_even_without_the_gan(capsys, tmp_path):
    code, err = _ide_train(capsys, tmp_path, "model.discriminator=foo", "loss.gan=0")
    assert code == 2 and "model.discriminator" in err and "vgg128, patch" in err


@pytest.fixture
def two_steps(tiny_cfg):
    """A finished 2-step tiny run; returns its folder."""
    return train(tiny_cfg("train.iterations=2", "train.save_every=2", "eval.every=2"))


def test_resume_with_other_architecture_names_the_keys(two_steps, capsys, tmp_path, tiny_cache):
    sets = ["model.channels=32", "train.iterations=4"]
    code, err = _ide_train(capsys, tmp_path, *sets, resume=True, cache=tiny_cache)
    assert code == 2 and err.count("\n") == 1
    assert "model.channels: 8 → 32" in err and "Traceback" not in err


def test_resume_refuses_changed_schedule_and_applies_free_keys(two_steps, capsys, tmp_path, tiny_cache):
    code, err = _ide_train(
        capsys, tmp_path, "train.lr=1e-5", "train.iterations=4", resume=True, cache=tiny_cache
    )
    assert code == 2 and "train.lr: 0.0001 → 1e-05" in err
    assert yaml.safe_load((two_steps / "config.yaml").read_text())["train"]["lr"] == 1e-4  # untouched
    sets = ["train.iterations=3", "train.save_every=3"]
    code, err = _ide_train(capsys, tmp_path, *sets, resume=True, cache=tiny_cache)
    assert code == 0
    assert load_checkpoint(two_steps / "checkpoints" / "last.pt")["step"] == 3
    recorded = yaml.safe_load((two_steps / "config.yaml").read_text())["train"]
    assert recorded["iterations"] == 3 and recorded["save_every"] == 3  # the config in effect


def test_checkpoint_files_that_are_not_checkpoints(tmp_path):
    with pytest.raises(UserError, match=r"is a folder; pass a \.pt file"):
        load_checkpoint(tmp_path)
    text = tmp_path / "notes.pt"
    text.write_text("hello\n" * 20)
    with pytest.raises(UserError) as err:
        load_checkpoint(text)
    msg = str(err.value)
    assert "(101)" not in msg and msg.endswith("pass a file written by ide train")
    assert "not a PyTorch file" in msg
    torch.save({"version": 1, "generator": {}}, tmp_path / "noconfig.pt")
    with pytest.raises(UserError, match="no 'config' entry"):
        load_checkpoint(tmp_path / "noconfig.pt")
    import argparse

    torch.save({"version": 1, "generator": {}, "config": argparse.Namespace()}, tmp_path / "obj.pt")
    with pytest.raises(UserError, match="Python objects") as err:
        load_checkpoint(tmp_path / "obj.pt")
    assert str(err.value).endswith("pass a file written by ide train")


def test_check_architecture_names_generator_keys_only_unless_asked():
    a = Config()
    b = Config(model=ModelConfig(channels=32, n_fam=2, disc_channels=8))
    with pytest.raises(UserError) as err:
        check_architecture(a, b)
    assert "model.channels: 64 → 32" in str(err.value) and "model.n_fam: 8 → 2" in str(err.value)
    assert "disc_channels" not in str(err.value)
    with pytest.raises(UserError, match="model.disc_channels"):
        check_architecture(a, b, discriminator=True)
    check_architecture(a, Config(model=ModelConfig(disc_channels=8)))  # the generator is the same


def test_orphan_temp_files_are_removed_at_save_and_at_resume(two_steps, tiny_cfg):
    ckdir = two_steps / "checkpoints"
    orphans = [ckdir / ".last.pt.0123abcd.tmp", ckdir / ".best.pt.deadbeef.tmp"]
    for o in orphans:
        o.write_bytes(b"half a checkpoint")
    train(tiny_cfg("train.iterations=3", "train.save_every=2", "eval.every=2"), resume=True)
    assert not any(o.exists() for o in orphans)
    orphan = ckdir / ".x.pt.00000000.tmp"
    orphan.write_bytes(b"")
    save_checkpoint(ckdir / "x.pt", {"step": 0})
    assert not orphan.exists() and (ckdir / "x.pt").is_file()
    assert [p.name for p in ckdir.iterdir() if p.name.endswith(".tmp")] == []


def test_outputs_honour_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_png(tmp_path / "a.png", np.zeros((4, 4), np.uint8))
        save_checkpoint(tmp_path / "c.pt", {"step": 0})
        write_text(tmp_path / "s.json", "{}")
        os.umask(0o077)
        write_png(tmp_path / "private.png", np.zeros((4, 4), np.uint8))
    finally:
        os.umask(old)
    for name in ("a.png", "c.pt", "s.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name
    assert stat.S_IMODE((tmp_path / "private.png").stat().st_mode) == 0o600


@pytest.mark.slow
def test_tensorboard_after_resume_has_each_step_once(tiny_cfg, tmp_path, monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    import ide.train as tr

    real_save = tr.save_checkpoint

    def killed_before_step_3_is_saved(path, state):
        if state["step"] < 3:
            real_save(path, state)

    sets = ["log.tensorboard=true", "train.save_every=2", "eval.every=100"]
    monkeypatch.setattr(tr, "save_checkpoint", killed_before_step_3_is_saved)
    run = train(tiny_cfg("train.iterations=3", *sets))  # step 3 is logged, never saved
    monkeypatch.setattr(tr, "save_checkpoint", real_save)
    train(tiny_cfg("train.iterations=4", *sets), resume=True)  # resumes at 2: logs 3 and 4 again
    acc = EventAccumulator(str(run / "tb"), purge_orphaned_data=True).Reload()
    assert [e.step for e in acc.Scalars("loss/g_pix")] == [1, 2, 3, 4]

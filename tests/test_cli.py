"""The CLI's contract: help for every verb, one-line errors with exit code 2 for bad input."""

import os
import subprocess
import sys

import numpy as np
import pytest

from ide.cli import build_parser, main
from ide.data.io import write_png

VERBS = ["coarse", "train", "test", "metrics", "align", "demo"]


def test_help_lists_verbs(capsys):
    with pytest.raises(SystemExit) as ex:
        main(["--help"])
    assert ex.value.code == 0
    out = capsys.readouterr().out
    assert all(v in out for v in VERBS)


@pytest.mark.parametrize("verb", VERBS)
def test_every_flag_documented(verb):
    sub = build_parser()._subparsers._group_actions[0].choices[verb]
    for action in sub._actions:
        assert action.help, f"ide {verb} {action.option_strings} has no help"


def test_console_script_runs():
    res = subprocess.run([sys.executable, "-m", "ide", "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "coarse" in res.stdout


def _one_line_error(capsys, code, *needles):
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    for n in needles:
        assert n in err, err


def test_bad_config_key(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("stage1:\n  patchsize: 10\n")
    code = main(["coarse", "--config", str(cfg), "--split", "test", "--out", str(tmp_path / "o")])
    _one_line_error(capsys, code, "stage1.patchsize", "patch")
    assert not (tmp_path / "o").exists()


def test_missing_partner_is_one_line(tiny_root, tmp_path, capsys):
    (tiny_root / "test" / "sketches" / "A_0.png").unlink()
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data:\n  root: {tiny_root}\n")
    code = main(["coarse", "--config", str(cfg), "--split", "test", "--out", str(tmp_path / "o")])
    _one_line_error(capsys, code, "A_0.png", "has no sketch")
    assert not (tmp_path / "o").exists()


def test_wrong_size_is_one_line(tiny_root, tmp_path, capsys):
    write_png(tiny_root / "train" / "sketches" / "A_0.png", np.zeros((250, 199), np.uint8))
    code = main(
        [
            "train",
            "--config",
            "configs/demo.yaml",
            "--set",
            f"data.root={tiny_root}",
            "--set",
            f"log.dir={tmp_path / 'runs'}",
        ]
    )
    _one_line_error(capsys, code, "A_0.png", "199x250")


def test_version(capsys):
    from ide import __version__

    with pytest.raises(SystemExit) as ex:
        main(["--version"])
    assert ex.value.code == 0 and capsys.readouterr().out.strip() == f"ide {__version__}"


def test_threads_from_flag_and_environment(monkeypatch, capsys):
    import torch

    from ide.threads import set_threads, usable_cores

    before = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", str(before))  # restored after the test
    try:
        set_threads(1)
        assert torch.get_num_threads() == 1
        monkeypatch.setenv("IDE_THREADS", "2")
        set_threads(None)
        assert torch.get_num_threads() == 2
        monkeypatch.delenv("IDE_THREADS")
        monkeypatch.delenv("OMP_NUM_THREADS")
        assert 1 <= set_threads(None) <= usable_cores()  # the default: the cores not busy
        assert torch.get_num_threads() == int(os.environ["OMP_NUM_THREADS"])
        monkeypatch.setenv("IDE_THREADS", "many")
        assert main(["metrics", "--pred", "x", "--gt", "y"]) == 2
        assert "IDE_THREADS must be a whole number" in capsys.readouterr().err
        assert main(["--threads", "0", "metrics", "--pred", "x", "--gt", "y"]) == 2
        assert "--threads must be a whole number >= 1, got '0'" in capsys.readouterr().err
    finally:
        torch.set_num_threads(before)


def test_default_threads_leave_busy_cores_alone():
    from ide.threads import default_threads

    assert default_threads(16, 0.2) == 16  # an idle machine: every core
    assert default_threads(2, 1.1) == 1  # one of two cores busy
    assert default_threads(8, 3.6) == 4
    assert default_threads(2, 12.0) == 1  # always at least one

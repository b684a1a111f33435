"""Provenance: the keys every results JSON carries, the git state, the checkpoint hash."""

from __future__ import annotations

import hashlib
import subprocess
from datetime import datetime

import pytest

import ide
from ide import provenance as prov_mod
from ide.provenance import provenance

KEYS = {"ide_version", "git_commit", "command", "config", "checkpoint_sha256", "machine", "date"}


def test_keys_and_values(tmp_path, monkeypatch):
    ckpt = tmp_path / "best.pt"
    ckpt.write_bytes(b"weights")
    monkeypatch.setattr("sys.argv", ["ide", "test", "--out", "a b"])
    p = provenance({"stage1": {"k": 10}}, ckpt)
    assert set(p) == KEYS
    assert p["ide_version"] == ide.__version__
    assert p["command"] == "ide test --out 'a b'"
    assert p["config"] == {"stage1": {"k": 10}}
    assert p["checkpoint_sha256"] == hashlib.sha256(b"weights").hexdigest()
    assert set(p["machine"]) == {"platform", "cpu", "torch_threads", "gpu"}
    assert p["machine"]["torch_threads"] >= 1
    assert datetime.fromisoformat(p["date"]).utcoffset().total_seconds() == 0
    assert provenance()["config"] is None and provenance()["checkpoint_sha256"] is None


def _git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_git_commit_clean_dirty_and_outside(tmp_path, monkeypatch):
    """The checkout's HEAD; "-dirty" once a tracked file changes; None outside a git checkout."""
    monkeypatch.setattr(prov_mod, "PACKAGE_ROOT", tmp_path)
    assert prov_mod.git_commit() is None  # not a checkout
    try:
        _git(tmp_path, "init", "-q")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("git is not available")
    (tmp_path / "f.txt").write_text("a")
    _git(tmp_path, "add", "f.txt")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True
    ).stdout.strip()
    assert prov_mod.git_commit() == head
    (tmp_path / "untracked.txt").write_text("b")  # untracked files (run outputs) are not changes
    assert prov_mod.git_commit() == head
    (tmp_path / "f.txt").write_text("changed")
    assert prov_mod.git_commit() == f"{head}-dirty"
    inner = tmp_path / "sub"
    inner.mkdir()
    monkeypatch.setattr(prov_mod, "PACKAGE_ROOT", inner)  # a package inside another repository
    assert prov_mod.git_commit() is None

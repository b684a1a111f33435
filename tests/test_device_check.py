"""bench/device_check.py: its dry run on the CPU writes a full report; a failing step is recorded."""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def dc():
    spec = importlib.util.spec_from_file_location("device_check", BENCH / "device_check.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_dry_run_writes_a_full_report(dc, tmp_path):
    out = tmp_path / "out"
    code = dc.main(["--dry-run", "--out", str(out), "--work", str(tmp_path / "work"), "--cpu-steps", "0"])
    report = json.loads((out / "device_check.json").read_text())
    steps = report["steps"]
    assert code == 0 and report["summary"]["ok"] and report["dry_run"], report["summary"]
    assert steps["install"]["status"] == "skipped"
    assert "recipe_cpu_on_cpu" not in steps  # --cpu-steps 0
    assert steps["environment"]["torch"] and steps["environment"]["python"]
    cuda = steps["tests_cuda"]
    assert cuda["status"] == "ok" and cuda["failures"] == cuda["errors"] == 0
    assert cuda["passed"] + cuda["skipped"] > 0
    if not steps["environment"]["cuda"]:  # skipped, and the report says why
        assert cuda["passed"] == 0 and any("CUDA is not available" in r for r in cuda["skip_reasons"])
    for name, config in (("recipe_paper", "configs/cufs.yaml"), ("recipe_cpu", "configs/cufs_cpu.yaml")):
        r = steps[name]
        assert r["status"] == "ok" and r["config"] == config and r["device"] == "cpu"
        assert r["steps"] == 3 and r["timed_steps"] == 1 and r["it_per_s"] > 0
        assert 0 < r["val_fsim_stage1"] <= 1 and 0 < r["val_fsim"] <= 1
        assert report["summary"]["recipes"][name]["it_per_s"] == r["it_per_s"]
    assert "loss.perceptual.weights=none" in steps["recipe_paper"]["overrides"]
    assert report["paper_perceptual"].startswith("none")
    assert steps["tests_fast"]["status"] == "ok" and steps["tests_fast"]["passed"] > 0
    log = (out / "device_check.log").read_text()
    assert "===== recipe_paper" in log and "===== tests_cuda" in log


def test_failures_timeouts_and_the_budget_are_recorded_not_raised(dc, tmp_path):
    args = argparse.Namespace(budget=100.0, dry_run=True, data=str(tmp_path / "missing"), warmup=1)
    c = dc.Check(args, tmp_path / "out", tmp_path / "work")
    (tmp_path / "work").mkdir()

    def boom(timeout, check):
        raise ValueError("broken on purpose")

    def slow(timeout, check):
        check.run("sleeper", [sys.executable, "-c", "import time; time.sleep(30)"], timeout=1)
        return {}

    assert c.step("boom", 60, boom, c)["error"] == "ValueError: broken on purpose"
    assert c.step("slow", 60, slow, c)["status"] == "timeout"
    # the worker stops at the config check: the data folder does not exist
    rec = c.step("recipe_cpu", 120, dc.recipe_step, c, "recipe_cpu", "configs/cufs_cpu.yaml", "cpu", 3, [])
    assert rec["status"] == "failed" and "data.root" in rec["error"]
    c.args.budget = 0.0
    assert c.step("late", 60, boom, c)["status"] == "skipped"
    report = json.loads((tmp_path / "out" / "device_check.json").read_text())
    assert report["summary"]["failed"] == ["boom", "slow", "recipe_cpu"]
    assert not report["summary"]["ok"] and report["summary"]["recipes"]["recipe_cpu"]["status"] == "failed"
    assert "===== sleeper" in (tmp_path / "out" / "device_check.log").read_text()


def test_shell_wrapper_passes_its_arguments(tmp_path):
    res = subprocess.run(
        [str(BENCH / "device_check.sh"), "--help"],
        env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0 and "--dry-run" in res.stdout

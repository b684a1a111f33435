"""`ide demo` end to end on a shortened run: the stage-2 training must improve on stage 1."""

from __future__ import annotations

import json

import pytest

from ide.demo import run_demo


@pytest.mark.slow
def test_demo_refined_beats_coarse(tmp_path):
    out = tmp_path / "demo"
    result = run_demo(
        out,
        overrides=[
            "data.synthetic_train=20",
            "data.synthetic_test=4",
            "data.val_count=2",
            "train.iterations=80",
            "train.milestones=[60]",
            "eval.every=40",
            "train.save_every=40",
        ],
    )
    for name in ("metrics_coarse.json", "metrics_refined.json", "grid.png", "report.md"):
        assert (out / name).is_file(), name
    coarse = json.loads((out / "metrics_coarse.json").read_text())
    refined = json.loads((out / "metrics_refined.json").read_text())
    assert coarse["n"] == refined["n"] == 4
    # Measured on the development machine: coarse 0.7404, refined 0.7413 (+0.0009). The gain is
    # small (hatching phase in the synthetic sketches is random, so no model can predict most of
    # the gap), but it must be there: a broken training loop, or one that is not used, gives ≤ 0.
    assert refined["fsim"] > coarse["fsim"], (coarse["fsim"], refined["fsim"])
    assert result["refined"]["fsim"] == refined["fsim"]
    assert "refined (stage 1 + 2)" in (out / "report.md").read_text()

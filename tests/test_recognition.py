"""NLDA face recognition: the defining property, the protocol's behaviour at both ends, splits, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.linalg import null_space
from scipy.spatial.distance import cdist

from ide.cli import main
from ide.data.io import write_png
from ide.metrics.recognition import (
    default_train_count,
    nlda_fit,
    nlda_protocol,
    rank1_curve,
    split_ids,
)


def _identities(rng: np.random.Generator, n: int, dim: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Two samples per identity: random class means plus independent noise. Returns (artist, synthesized)."""
    means = rng.normal(0.0, 1.0, (n, dim))
    return means + noise * rng.normal(size=(n, dim)), means + noise * rng.normal(size=(n, dim))


def test_training_classes_collapse_to_points():
    # NLDA keeps only the null space of S_w: each training class's samples project to one point
    rng = np.random.default_rng(0)
    artist, synth = _identities(rng, 25, 300, noise=0.5)
    x = np.concatenate([artist, synth])
    labels = np.concatenate([np.arange(25), np.arange(25)])
    w, eigvals = nlda_fit(x, labels)
    feats = x @ w
    assert w.shape == (300, 24) and len(eigvals) == 24  # n_classes - 1 dimensions for two per class
    assert np.all(np.diff(eigvals) <= 1e-9 * eigvals[0])  # most discriminative first
    within = feats[:25] - feats[25:]
    between = feats[:25] - feats[:25].mean(0)
    assert np.abs(within).max() < 1e-9 * np.abs(between).max()
    np.testing.assert_allclose(w.T @ w, np.eye(24), atol=1e-9)  # orthonormal: distances are Euclidean


def test_same_curve_as_explicit_pca_then_null_space():
    # the Gram-matrix route equals the textbook steps on the pixels: PCA, null(S_w), eig(S_b), rank-1 NN
    rng = np.random.default_rng(1)
    artist, synth = _identities(rng, 40, 200, noise=1.5)
    n_train = 15
    result = nlda_protocol(artist, synth, n_train, repeats=1, seed=3)
    train, test = split_ids(40, n_train, 1, 3)[0]
    x = np.concatenate([artist[train], synth[train]])
    centred = x - x.mean(0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    pca = vt[s > 1e-10 * s[0]].T
    z = x @ pca
    labels = np.concatenate([np.arange(n_train)] * 2)
    means = np.stack([z[labels == c].mean(0) for c in range(n_train)])
    sw = (z - means[labels]).T @ (z - means[labels])
    sb = 2 * (means - z.mean(0)).T @ (means - z.mean(0))
    null = null_space(sw, rcond=1e-10)
    vals, vecs = np.linalg.eigh(null.T @ sb @ null)
    w = pca @ null @ vecs[:, np.argsort(vals)[::-1]]
    probes, gallery = artist[test] @ w, synth[test] @ w
    explicit = [
        np.mean(cdist(probes[:, :d], gallery[:, :d]).argmin(1) == np.arange(len(test)))
        for d in range(1, w.shape[1] + 1)
    ]
    np.testing.assert_allclose(result["curve"], explicit)
    np.testing.assert_allclose(rank1_curve(probes, gallery), explicit)


def test_near_perfect_at_low_noise_and_chance_at_pure_noise():
    rng = np.random.default_rng(2)
    artist, synth = _identities(rng, 120, 400, noise=0.2)
    clean = nlda_protocol(artist, synth, n_train=40, repeats=5, seed=0)
    assert clean["mean"] > 0.98 and clean["best_per_split"]["mean"] > 0.98
    # pure noise: the two images of an identity share nothing; chance is 1 / 80 test ids
    noise = nlda_protocol(rng.normal(size=(120, 400)), rng.normal(size=(120, 400)), 40, repeats=20, seed=0)
    assert len(noise["curve"]) == 39 and noise["n_test"] == 80
    assert abs(float(np.mean(noise["curve"])) - 1 / 80) < 0.01
    assert noise["mean"] < 0.06  # the peak of the mean curve: chance plus the selection of one dimension


def test_splits_reproducible_by_seed():
    a, b = split_ids(50, 20, 4, seed=7), split_ids(50, 20, 4, seed=7)
    for (tr1, te1), (tr2, te2) in zip(a, b):
        np.testing.assert_array_equal(tr1, tr2)
        np.testing.assert_array_equal(te1, te2)
        assert len(tr1) == 20 and sorted(np.concatenate([tr1, te1])) == list(range(50))
    assert len({tuple(tr) for tr, _ in a}) == 4  # the repeats differ from each other
    other = split_ids(50, 20, 4, seed=8)
    assert any(not np.array_equal(x[0], y[0]) for x, y in zip(a, other))
    rng = np.random.default_rng(3)
    artist, synth = _identities(rng, 40, 100, noise=2.0)
    assert nlda_protocol(artist, synth, 15, 3, seed=1) == nlda_protocol(artist, synth, 15, 3, seed=1)


def test_literature_split_sizes():
    assert default_train_count(338) == 150  # CUFS: 150 train / 188 test ids
    assert default_train_count(944) == 300  # CUFSF: 300 / 644


def _write_folders(root: Path, n: int, noise: float, size=(24, 20)) -> tuple[Path, Path]:
    rng = np.random.default_rng(4)
    for i in range(n):
        face = rng.uniform(40, 215, size)
        for name in ("gt", "pred"):
            img = np.clip(face + rng.normal(0, noise, size), 0, 255).astype(np.uint8)
            write_png(root / name / f"A_{i:03d}.png", img)
    return root / "pred", root / "gt"


def test_cli_recognition_json_and_table(tmp_path, capsys):
    pred, gt = _write_folders(tmp_path, 30, noise=5.0)
    out = tmp_path / "m.json"
    code = main(["metrics", "--pred", str(pred), "--gt", str(gt), "--json", str(out), "--recognition",
                 "--nlda-train", "12", "--nlda-repeats", "4"])  # fmt: skip
    assert code == 0
    summary = json.loads(out.read_text())
    nlda = summary["nlda"]
    assert set(nlda) >= {"mean", "std", "dims", "curve"} and len(nlda["curve"]) == 11
    assert nlda["mean"] > 0.9 and 1 <= nlda["dims"] <= 11 and nlda["n_test"] == 18
    assert list(summary)[-3:] == ["nlda", "per_image", "provenance"] and "nlda" not in summary["subsets"]["A"]
    assert "NLDA rank-1" in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra, expect",
    [
        ([], "30 paired ids, but NLDA trains on 150"),  # CUFS's default split on too few ids
        (["--nlda-train", "29"], "--nlda-train N with N <= 28"),
        (["--nlda-train", "1"], "at least 2 training identities"),
    ],
)
def test_cli_too_few_identities_is_one_line(tmp_path, capsys, extra, expect):
    pred, gt = _write_folders(tmp_path, 30, noise=5.0)
    out = tmp_path / "m.json"
    code = main(
        ["metrics", "--pred", str(pred), "--gt", str(gt), "--json", str(out), "--recognition", *extra]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and expect in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_cli_unpaired_or_mixed_sizes_is_one_line(tmp_path, capsys):
    pred, gt = _write_folders(tmp_path, 20, noise=5.0)
    (pred / "A_000.png").unlink()
    assert main(["metrics", "--pred", str(pred), "--gt", str(gt), "--recognition", "--nlda-train", "5"]) == 2
    assert "A_000" in capsys.readouterr().err
    write_png(pred / "A_000.png", np.zeros((30, 20), np.uint8))
    write_png(gt / "A_000.png", np.zeros((30, 20), np.uint8))
    assert main(["metrics", "--pred", str(pred), "--gt", str(gt), "--recognition", "--nlda-train", "5"]) == 2
    err = capsys.readouterr().err.strip()
    assert "one size for all ids" in err and len(err.splitlines()) == 1

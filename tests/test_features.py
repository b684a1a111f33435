"""Stage-1 representations (ide.pgm.features): config checks, maps, plumbing into search and MWF."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from ide.config import Stage1Config, load_config
from ide.errors import UserError
from ide.pgm.cache import cache_key
from ide.pgm.features import FEATURES, build_features, check_features
from ide.pgm.grid import PatchGrid, PatchMetric
from ide.pgm.search import knn_search
from ide.pgm.synthesis import Stage1, coarse_sketches


def _faces(seed: int, n: int = 6, h: int = 56, w: int = 32) -> np.ndarray:
    """Smooth random gray images with a flat white band (backdrop-like), uint8 [n, h, w]."""
    rng = np.random.default_rng(seed)
    base = rng.normal(128, 60, (n, h // 4, w // 4))
    img = np.kron(base, np.ones((4, 4))) + rng.normal(0, 8, (n, h, w))
    img[:, :24] = 255
    return np.clip(img, 0, 255).astype(np.uint8)


def test_config_checks_features_at_load():
    cfg = load_config(
        None, ["stage1.features=[intensity, dog1, gradient]", "stage1.feature_weights=[1, 0.5, 2]"]
    )
    assert cfg.stage1.features == ("intensity", "dog1", "gradient")
    assert cfg.stage1.feature_weights == (1.0, 0.5, 2.0)
    with pytest.raises(UserError, match=r"stage1.features.*'surf'.*intensity, dog1, dog2, gradient"):
        load_config(None, ["stage1.features=[intensity, surf]"])
    with pytest.raises(UserError, match="stage1.features.*intensity included"):
        load_config(None, ["stage1.features=[dog1]"])
    with pytest.raises(UserError, match="stage1.feature_weights.*2 entries for 3"):
        load_config(None, ["stage1.features=[intensity, dog1, dog2]", "stage1.feature_weights=[1, 1]"])
    with pytest.raises(UserError, match="intensity is the reference"):
        check_features(("intensity", "dog1"), (2.0, 1.0))
    with pytest.raises(UserError, match=">= 0"):
        check_features(("intensity", "dog1"), (1.0, -1.0))


def test_maps_are_integers_scaled_per_representation():
    gray = _faces(0)
    feats = build_features(gray, gray[:2], tuple(FEATURES), (), 10)
    assert feats.bank.dtype == torch.int16 and feats.bank.shape == (4, *gray.shape)  # dog1, dog2, gx, gy
    assert torch.equal(feats.query, feats.bank[:, :2])  # same photos, same maps
    rms = feats.bank.double().square().mean((1, 2, 3)).sqrt()
    assert ((rms[:2] - 32).abs() < 1).all()  # each response at QUANT levels per rms
    assert abs(float(rms[2:].square().mean().sqrt()) - 32) < 1  # the two gradient components jointly
    assert (feats.bank[:, :, :4] == 0).all()  # the flat band has no response away from its edge
    assert feats.coef[2] == feats.coef[3] and feats.coef[2] == pytest.approx(feats.coef[0] / 2, rel=1e-3)
    assert all(float(c * 2.0**12).is_integer() for c in feats.coef)  # dyadic: exact weighted sums
    assert build_features(gray, gray, ("intensity",), (), 10) is None


def test_zero_weights_give_the_intensity_neighbours_and_weights_matter():
    bank, photos = _faces(1), _faces(2, n=2)
    grid = PatchGrid(56, 32, 8, 4)
    metric = PatchMetric("mean", 4.0, 0.1)
    args = (torch.from_numpy(bank), torch.from_numpy(photos), grid, 3, 5, metric, torch.tensor([-1, -1]))
    plain = knn_search(*args)
    zero = build_features(bank, photos, ("intensity", "dog1", "gradient"), (1.0, 0.0, 0.0), 8)
    same = knn_search(*args, feats=zero)
    assert torch.equal(plain.index, same.index) and torch.equal(plain.dist, same.dist)
    ones = build_features(bank, photos, ("intensity", "dog1", "gradient"), (), 8)
    other = knn_search(*args, feats=ones)
    assert not torch.equal(plain.index, other.index)
    assert (other.dist >= plain.dist[..., :1]).all()  # nothing closer than the intensity alone allows


def test_coarse_sketches_with_features_and_cache_key():
    bank, photos = _faces(3), _faces(4, n=2)
    sketches = 255 - bank
    cfg = Stage1Config(patch=8, step=4, search=2, k=4, device="cpu", iters=2)
    multi = dataclasses.replace(
        cfg, features=("intensity", "dog2", "gradient"), feature_weights=(1.0, 0.5, 0.5)
    )
    a = coarse_sketches(bank, sketches, photos, multi, progress=False)
    b = coarse_sketches(bank, sketches, photos, multi, progress=False)
    np.testing.assert_array_equal(a, b)  # deterministic
    assert not np.array_equal(a, coarse_sketches(bank, sketches, photos, cfg, progress=False))
    stage1 = Stage1(bank, sketches, multi)  # the bank's maps made once, the queries' per call
    one_by_one = np.concatenate([stage1(photos[i : i + 1]) for i in range(len(photos))])
    np.testing.assert_array_equal(a, one_by_one)
    with pytest.raises(UserError, match="stage1.features"):
        coarse_sketches(bank, sketches, photos, dataclasses.replace(cfg, features=("lbp",)), progress=False)

    class Split:
        def fingerprint(self):
            return "x"

    keys = {
        cache_key(Split(), Split(), c, False)
        for c in (cfg, multi, dataclasses.replace(multi, feature_weights=()))
    }
    assert len(keys) == 3

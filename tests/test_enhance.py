"""Stage-2 data options: coarse variants, degraded targets, stage 1's candidate spread."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ide.config import ModelConfig, Stage1Config
from ide.data.degrade import degrade_sketches
from ide.data.folders import PairedSplit
from ide.data.stage2 import PairedCrops, make_inputs
from ide.errors import UserError
from ide.models import build_generator, generator_in_channels
from ide.pgm.spread import blend_spread, cached_spread, candidate_variance
from ide.pgm.synthesis import coarse_sketches
from ide.pgm.variants import cached_variants, variant_bank, variant_settings


def _crops(n=4, **kw) -> PairedCrops:
    inputs = torch.zeros(n, 2, 16, 16)
    inputs[:, 1] = 0.5  # the photo channel must never be replaced
    targets = torch.rand(n, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    return PairedCrops(inputs, targets, scale=2, crop=16, **kw)


def test_crops_without_options_draw_as_before():
    a = _crops().sample(6, torch.Generator().manual_seed(3))
    b = _crops(degraded=torch.ones(2, 4, 1, 16, 16), degraded_ratio=0.0).sample(
        6, torch.Generator().manual_seed(3)
    )
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y)


def test_variants_replace_the_coarse_channel_only():
    variants = torch.stack([torch.full((4, 1, 16, 16), v) for v in (1.0, 2.0)])
    x, y = _crops(variants=variants).sample(300, torch.Generator().manual_seed(0))
    first = x[:, 0].flatten(1)
    assert (first == first[:, :1]).all()  # one source per crop
    counts = torch.bincount(first[:, 0].long(), minlength=3)
    assert (counts > 60).all()  # main set, variant 1, variant 2: about 100 each
    assert (x[:, 1] == 0.5).all()
    assert y.shape == (300, 1, 16, 16)


def test_degraded_share_follows_the_ratio():
    crops = _crops(degraded=torch.ones(3, 4, 1, 16, 16), degraded_ratio=0.3)
    x, _ = crops.sample(1000, torch.Generator().manual_seed(1))
    share = float((x[:, 0, 0, 0] == 1).float().mean())
    assert 0.25 < share < 0.35
    with pytest.raises(ValueError, match="degraded must be"):
        _crops(degraded=torch.ones(3, 5, 1, 16, 16), degraded_ratio=0.3)


@pytest.mark.parametrize("pool", [None, 3])
def test_degrade_keeps_the_face_and_is_reproducible(pool):
    rng = np.random.default_rng(0)
    sketches = rng.integers(0, 256, (6, 40, 30), dtype=np.uint8)
    a = degrade_sketches(sketches, 2, seed=5, pool=pool)
    b = degrade_sketches(sketches, 2, seed=5, pool=pool)
    assert a.shape == (2, 6, 40, 30) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a[0], a[1])
    s = sketches.astype(float)
    own = np.abs(a[0] - s).mean()
    other = np.abs(a[0] - np.roll(s, 1, axis=0)).mean()
    assert own < other  # the target's own patch is in every mix
    assert a.std() < s.std()  # mixing and blur remove contrast, as stage 1 does


def test_variant_banks_and_settings():
    split = PairedSplit(
        tuple(f"A_{i}" for i in range(10)), np.zeros((10, 4, 4, 3), np.uint8), np.zeros((10, 4, 4), np.uint8)
    )
    a, b = variant_bank(split, 0.7, 0), variant_bank(split, 0.7, 1)
    assert len(a) == 7 and list(a.ids) == sorted(a.ids)
    assert a.ids == variant_bank(split, 0.7, 0).ids and a.ids != b.ids
    cfg = Stage1Config(k=10)
    assert variant_settings(cfg, 0).k == 10 and variant_settings(cfg, 1).k == 5
    with pytest.raises(UserError, match="variant_fraction"):
        variant_bank(split, 0.0, 0)
    with pytest.raises(UserError, match="coarse_variants"):
        cached_variants(split, cfg, "unused", 0)


def test_variants_are_leave_one_out_and_cached(tmp_path):
    rng = np.random.default_rng(4)
    n, h, w = 8, 30, 24
    photos = rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    sketches = np.zeros((n, h, w), np.uint8)
    sketches[2] = 255  # only pair 2 is white: its own coarse sketch must stay black
    split = PairedSplit(tuple(f"A_{i}" for i in range(n)), photos, sketches)
    cfg = Stage1Config(patch=6, step=3, search=2, k=4, device="cpu")
    var = cached_variants(split, cfg, tmp_path, 2, fraction=0.75)
    assert var.shape == (2, n, h, w)
    assert var[:, 2].max() == 0
    assert len(list(tmp_path.glob("coarse-*.npy"))) == 2
    np.testing.assert_array_equal(var, cached_variants(split, cfg, tmp_path, 2, fraction=0.75))


def test_candidate_variance_and_blend():
    w = torch.tensor([[[0.5, 0.5, 0.0]]])  # [P=1, B=1, K=3]
    cand = torch.tensor([[[[10.0, 0.0], [30.0, 0.0], [99.0, 0.0]]]])  # [1, 1, 3, d=2]
    z = (w.unsqueeze(-2) @ cand).squeeze(-2)
    var = candidate_variance(w, cand, z)
    torch.testing.assert_close(var, torch.tensor([[[100.0, 0.0]]]))  # (30-10)²/4; agreeing pixel 0

    from ide.pgm.grid import PatchGrid

    grid = PatchGrid(4, 4, 2, 2)  # four disjoint patches
    v = torch.full((grid.count, 1, 4), 25.0)
    std = blend_spread(v, torch.arange(grid.count), grid, 0.0)
    torch.testing.assert_close(std, torch.full((1, 4, 4), 5.0))


def test_spread_leaves_the_sketch_unchanged_and_marks_disagreement(tmp_path):
    rng = np.random.default_rng(7)
    n, h, w = 6, 30, 24
    bank = rng.integers(0, 256, (n, h, w), dtype=np.uint8)
    sketches = rng.integers(0, 256, (n, h, w), dtype=np.uint8)
    sketches[:, :, :12] = 128  # all candidates agree on the left half
    cfg = Stage1Config(patch=6, step=3, search=2, k=4, device="cpu")
    plain = coarse_sketches(bank, sketches, bank[:2], cfg, exclude=[0, 1], progress=False)
    spread = np.zeros((2, h, w), np.float32)
    with_spread = coarse_sketches(
        bank, sketches, bank[:2], cfg, exclude=[0, 1], progress=False, spread=spread
    )
    np.testing.assert_array_equal(plain, with_spread)
    assert spread[:, :, :9].max() < 1e-3  # patches there see only 128s
    assert spread[:, :, 15:].mean() > 10
    split = PairedSplit(tuple(f"A_{i}" for i in range(n)), bank, sketches)
    cached = cached_spread(split, split, cfg, tmp_path, leave_one_out=True)
    assert cached.dtype == np.uint8 and cached.shape == (n, h, w)
    assert len(list(tmp_path.glob("spread-*.npy"))) == 1


def test_uncertainty_adds_an_input_channel():
    cfg = ModelConfig(photo_condition=True, uncertainty=True, n_fam=1, channels=8, reduced=4)
    assert generator_in_channels(cfg) == 3
    u8 = np.zeros((2, 32, 32), np.uint8)
    x = make_inputs(u8, u8, 2, spread=u8 + 40)
    assert x.shape == (2, 3, 16, 16)
    assert torch.allclose(x[:, 2], torch.tensor(40 / 255))
    assert build_generator(cfg)(x).shape == (2, 1, 32, 32)


@pytest.mark.parametrize(
    "extra",
    [
        ["model.uncertainty=true", "model.photo_condition=true"],
        ["data.coarse_variants=1", "train.degraded=0.5"],
    ],
    ids=["uncertainty", "variants+degraded"],
)
def test_options_train_and_synthesize_end_to_end(tmp_path, extra):
    from test_inference import _ide_test, _tiny_train

    from ide.data.synthetic import write_dataset

    root = tmp_path / "data"
    write_dataset(root, 8, 2, seed=0)
    ckpt = _tiny_train(tmp_path, root, *extra)
    assert _ide_test(ckpt, tmp_path / "out", tmp_path / "coarse", "--set", f"data.root={root}") == 0
    assert len(list((tmp_path / "out").glob("*.png"))) == 3  # 2 sketches + grid


def test_uncertainty_does_not_combine_with_the_data_options(tmp_path):
    from test_inference import _tiny_train

    from ide.data.synthetic import write_dataset

    root = tmp_path / "data"
    write_dataset(root, 8, 2, seed=0)
    with pytest.raises(UserError, match="model.uncertainty"):
        _tiny_train(tmp_path, root, "model.uncertainty=true", "train.degraded=0.3")
    with pytest.raises(UserError, match="train.degraded"):
        _tiny_train(tmp_path, root, "train.degraded=1.5")

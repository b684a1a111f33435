"""Stage 1 (ide.pgm): exact K-NN, MWF weights, synthesis, leave-one-out, cache, CLI errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import ide.pgm.search as search_mod
from ide.cli import main
from ide.config import Stage1Config
from ide.data.folders import PairedSplit, load_split
from ide.data.io import to_gray, write_png
from ide.errors import UserError
from ide.pgm.cache import cached_coarse
from ide.pgm.features import PatchFeatures, build_features
from ide.pgm.grid import PatchGrid, PatchMetric, blend_window
from ide.pgm.mwf import objective, solve_weights
from ide.pgm.prepare import PreparedSplit
from ide.pgm.reference import reference_knn
from ide.pgm.search import Neighbours, knn_search
from ide.pgm.synthesis import Stage1, coarse_sketches, synthesize


def _random_bank(seed, n=8, h=31, w=27):
    rng = np.random.default_rng(seed)
    bank = rng.integers(0, 256, (n, h, w), dtype=np.uint8)
    bank[:3, :12] = rng.integers(0, 256, (3, 1, 1))  # flat regions: the tie rule at work
    bank[3, 12:, :10] = 0
    photos = rng.integers(0, 256, (3, h, w), dtype=np.uint8)
    photos[0, :10] = 7  # a flat query region
    photos[1] = bank[5]  # a query with exact matches
    return bank, photos


def _knn_5x3(bank, photos, grid, norm, brightness, exclude, feats=None):
    """`knn_search` of the brute-force tests: search ±2 px, K = 6, patch metric (norm, 4, brightness)."""
    return knn_search(
        torch.from_numpy(bank),
        torch.from_numpy(photos),
        grid,
        2,
        6,
        PatchMetric(norm, 4.0, brightness),
        torch.tensor(exclude),
        batch=2,
        feats=feats,
    )


@pytest.mark.parametrize(
    "norm,brightness", [("none", 0.0), ("mean", 0.0), ("mean", 0.01), ("mean", 0.1), ("meanstd", 0.0)]
)
@pytest.mark.parametrize("margin", [8, 0])  # 0: the proof fails often and rows are widened
def test_knn_equals_brute_force(norm, brightness, margin, monkeypatch):
    monkeypatch.setattr(search_mod, "MARGIN", margin)
    bank, photos = _random_bank(1)
    exclude = [2, -1, 5]
    grid = PatchGrid(bank.shape[1], bank.shape[2], 5, 3)
    got = _knn_5x3(bank, photos, grid, norm, brightness, exclude)
    for m in range(len(photos)):
        idx, dist = reference_knn(bank, photos[m], 5, 3, 2, 6, norm, 4.0, brightness, exclude[m])
        np.testing.assert_array_equal(got.index[m].numpy(), idx)
        np.testing.assert_allclose(got.dist[m].numpy(), dist, rtol=0, atol=2e-6)
    if margin == 0:
        assert got.widened > 0


@pytest.mark.parametrize("margin", [8, 0])
@pytest.mark.parametrize("norm,brightness", [("mean", 0.0), ("mean", 0.1), ("meanstd", 0.0)])
def test_knn_with_features_equals_brute_force(norm, brightness, margin, monkeypatch):
    """Intensity plus two feature channels (zero where the photo is flat, so flat ties remain)."""
    monkeypatch.setattr(search_mod, "MARGIN", margin)
    bank, photos = _random_bank(2)
    rng = np.random.default_rng(12)
    fb = rng.integers(-40, 41, (2, *bank.shape)).astype(np.int16)
    fq = rng.integers(-40, 41, (2, *photos.shape)).astype(np.int16)
    fb[:, :3, :12] = 0  # the flat bank regions of `_random_bank` have no response either
    fq[:, 0, :10] = 0
    fq[:, 1] = fb[:, 5]  # the query with exact matches matches in its features too
    feats = PatchFeatures(torch.from_numpy(fb), torch.from_numpy(fq), (0.5, 0.25), patch=5, stride=2)
    exclude = [1, -1, 5]
    grid = PatchGrid(bank.shape[1], bank.shape[2], 5, 3)
    got = _knn_5x3(bank, photos, grid, norm, brightness, exclude, feats)
    for m in range(len(photos)):
        ref = (fb, fq[:, m], (0.5, 0.25), 2)
        idx, dist = reference_knn(bank, photos[m], 5, 3, 2, 6, norm, 4.0, brightness, exclude[m], ref)
        np.testing.assert_array_equal(got.index[m].numpy(), idx)
        np.testing.assert_allclose(got.dist[m].numpy(), dist, rtol=0, atol=2e-6)
    assert (got.dist[1, :, 0] == 0).all()  # its own pair's patches, features included
    if margin == 0:
        assert got.widened > 0


def test_flat_ties_come_from_different_photos():
    """A flat query over flat bank regions: K different bank photos at the query's own position,
    not K shifted copies of the first photo's patch."""
    rng = np.random.default_rng(3)
    bank = rng.integers(0, 256, (9, 30, 30), dtype=np.uint8)
    bank[:, :20, :20] = 200
    photo = rng.integers(0, 256, (1, 30, 30), dtype=np.uint8)
    photo[0, :20, :20] = 200
    grid = PatchGrid(30, 30, 6, 3)
    got = knn_search(
        torch.from_numpy(bank),
        torch.from_numpy(photo),
        grid,
        3,
        5,
        PatchMetric("mean", 4.0, 0.0),
        torch.tensor([-1]),
    )
    p = grid.xs.index(6) + grid.ys.index(6) * len(grid.xs)  # corner (6, 6), inside the flat region
    index = got.index[0, p].numpy()
    assert sorted(index // 900) == [0, 1, 2, 3, 4]  # five photos
    assert (index % 900 == 6 * 30 + 6).all()  # all at the query's corner


def test_knn_equals_brute_force_on_real_faces(shared_data):
    """Real photos have saturated white backgrounds and dark hair: thousands of exact ties."""
    split = load_split(shared_data / "CUFS", "train")
    pick = [i for i, pid in enumerate(split.ids) if pid.startswith(("XM2VTS", "AR"))][::9][:8]
    gray = to_gray(split.photos[pick])[:, 20:80, 10:70]  # top of the head: hair and background
    bank, photos = gray[1:], gray[:1]
    grid = PatchGrid(60, 60, 10, 5)
    for norm, brightness in (("mean", 0.0), ("mean", 0.1), ("meanstd", 0.0)):
        got = knn_search(
            torch.from_numpy(bank),
            torch.from_numpy(photos),
            grid,
            5,
            10,
            PatchMetric(norm, 4.0, brightness),
            torch.tensor([-1]),
        )
        idx, dist = reference_knn(bank, photos[0], 10, 5, 5, 10, norm, 4.0, brightness)
        np.testing.assert_array_equal(got.index[0].numpy(), idx)
        np.testing.assert_allclose(got.dist[0].numpy(), dist, rtol=0, atol=2e-6)


def test_knn_with_features_equals_brute_force_on_real_faces(shared_data):
    """Backdrop and hair ties with every representation on: flat only where the responses vanish too."""
    split = load_split(shared_data / "CUFS", "train")
    pick = [i for i, pid in enumerate(split.ids) if pid.startswith(("XM2VTS", "AR"))][::9][:8]
    gray = to_gray(split.photos[pick])[:, 20:80, 10:70]
    bank, photos = gray[1:], gray[:1]
    feats = build_features(bank, photos, ("intensity", "dog1", "dog2", "gradient"), (1.0, 1.0, 0.5, 2.0), 10)
    got = knn_search(
        torch.from_numpy(bank),
        torch.from_numpy(photos),
        PatchGrid(60, 60, 10, 5),
        5,
        10,
        PatchMetric("mean", 4.0, 0.1),
        torch.tensor([-1]),
        feats=feats,
    )
    ref = (feats.bank.numpy(), feats.query[:, 0].numpy(), feats.coef, feats.stride)
    idx, dist = reference_knn(bank, photos[0], 10, 5, 5, 10, "mean", 4.0, brightness=0.1, feats=ref)
    np.testing.assert_array_equal(got.index[0].numpy(), idx)
    np.testing.assert_allclose(got.dist[0].numpy(), dist, rtol=1e-12, atol=2e-6)


def test_grid_covers_every_pixel_and_colours_do_not_overlap():
    grid = PatchGrid(37, 23, 10, 4)
    assert grid.ys[-1] == 27 and grid.xs[-1] == 13  # last row / column flush with the border
    pix = grid.pixel_index()
    assert torch.unique(pix).numel() == 37 * 23
    order, blocks = grid.colour_order()
    lo = 0
    for hi in blocks:
        members = pix[order[lo:hi]].reshape(-1)
        assert torch.unique(members).numel() == members.numel()  # no pixel shared inside a colour
        lo = hi


def _solver_problem(seed=0):
    grid = PatchGrid(26, 21, 6, 3)
    order, blocks = grid.colour_order()
    g = torch.Generator().manual_seed(seed)
    p, b, k, d = grid.count, 2, 4, grid.dim
    x = torch.rand(p, b, d, generator=g, dtype=torch.float64) * 255
    photo = x.unsqueeze(2) + torch.randn(p, b, k, d, generator=g, dtype=torch.float64) * 20
    sketch = torch.rand(p, b, k, d, generator=g, dtype=torch.float64) * 255
    return grid, grid.pixel_index()[order], blocks, x, photo, sketch


def test_weights_on_simplex_and_joint_objective_not_above_independent():
    grid, pix, blocks, x, photo, sketch = _solver_problem()
    npix = grid.height * grid.width
    gram = PatchMetric("mean").fidelity_gram(photo, x)
    independent = solve_weights(gram, sketch, pix, npix, blocks, lam=0.0, iters=0)
    for lam in (0.1, 1.0, 10.0):
        joint = solve_weights(gram, sketch, pix, npix, blocks, lam=lam, iters=5)
        for w in (independent, joint):
            assert w.min() >= 0 and torch.allclose(w.sum(-1), torch.ones(()).double(), atol=1e-9)
        j_joint = objective(joint, gram, sketch, pix, npix, lam)
        j_indep = objective(independent, gram, sketch, pix, npix, lam)
        assert (j_joint <= j_indep * (1 + 1e-12)).all()
        assert (j_joint < 0.99 * j_indep).all()  # and it does real work


def test_fidelity_gram_matches_direct_residuals():
    """w^T G w equals ||x - Σ w_k p̃_k||² with p̃ the candidates brought to the query's photometry."""
    g = torch.Generator().manual_seed(1)
    cand = torch.randint(0, 256, (7, 5, 36), generator=g).float()
    x = torch.randint(0, 256, (7, 36), generator=g).float()
    w = torch.rand(7, 5, generator=g, dtype=torch.float64)
    w /= w.sum(-1, keepdim=True)
    c, q = cand.double(), x.double()
    for metric in (PatchMetric("none"), PatchMetric("mean"), PatchMetric("meanstd", 3.0)):
        if metric.norm == "none":
            matched = c
        elif metric.norm == "mean":
            matched = c - c.mean(-1, keepdim=True) + q.mean(-1, keepdim=True).unsqueeze(-2)
        else:
            qs = torch.sqrt(q.var(-1, unbiased=False, keepdim=True) + 9.0).unsqueeze(-2)
            matched = metric.normalise(c) * qs + q.mean(-1, keepdim=True).unsqueeze(-2)
        direct = (q - (w.unsqueeze(-1) * matched).sum(-2)).square().sum(-1)
        gram = metric.fidelity_gram(cand, x)
        via_gram = torch.einsum("bk,bkl,bl->b", w, gram, w)
        torch.testing.assert_close(via_gram, direct, rtol=1e-9, atol=1e-6)


def test_output_patches_are_convex_combinations_of_candidates():
    """patch == step: no overlap, so each output patch is exactly Σ w_k · candidate_k (rounded)."""
    rng = np.random.default_rng(3)
    n, h, w = 6, 24, 18
    bank = rng.integers(0, 256, (n, h, w), dtype=np.uint8)
    sketches = np.broadcast_to((np.arange(n) * 40 + 20).astype(np.uint8)[:, None, None], (n, h, w)).copy()
    photos = rng.integers(0, 256, (2, h, w), dtype=np.uint8)
    cfg = Stage1Config(patch=6, step=6, search=2, k=3, lam=1.0, iters=5, device="cpu")
    out = coarse_sketches(bank, sketches, photos, cfg, progress=False)
    grid = PatchGrid(h, w, 6, 6)
    nbrs = knn_search(
        torch.from_numpy(bank),
        torch.from_numpy(photos),
        grid,
        2,
        3,
        PatchMetric("mean", cfg.floor),
        torch.tensor([-1, -1]),
    )
    patches = grid.extract(torch.from_numpy(out)).numpy()  # [M, P, d]
    cand_values = sketches.reshape(-1)[nbrs.index.numpy()]  # constant sketch value of each candidate
    assert (patches == patches[..., :1]).all()  # a mix of constant patches is constant
    v = patches[..., 0].astype(int)
    assert (v >= cand_values.min(-1) - 0).all() and (v <= cand_values.max(-1)).all()


def test_blend_window_sums_to_one_for_power_2_at_half_step():
    win = blend_window(10, 2.0).view(10, 10)
    quarter = win[:5, :5] + win[5:, :5] + win[:5, 5:] + win[5:, 5:]  # the 4 patches over a pixel
    torch.testing.assert_close(quarter, torch.ones(5, 5, dtype=torch.float64))
    assert (blend_window(10, 0.0) == 1).all()
    assert blend_window(10, 8.0).argmax() in (44, 45, 54, 55)  # the centre


@pytest.mark.parametrize("power", [0.0, 3.0, 32.0])
def test_synthesis_blends_overlaps_with_the_window(power):
    """K = 1 and constant candidate sketches: the output is Σ window · value / Σ window, by loops."""
    h, w, p, step = 17, 13, 6, 3
    grid = PatchGrid(h, w, p, step)
    values = (torch.arange(grid.count) * 37 % 256).to(torch.uint8)  # one sketch value per patch
    bank_s = values[:, None, None].expand(grid.count, h, w).contiguous()
    bank_p = torch.zeros_like(bank_s)
    tops = [(y, x) for y in grid.ys for x in grid.xs]  # grid order
    index = torch.tensor([[[q * h * w + y * w + x] for q, (y, x) in enumerate(tops)]])  # [1, P, 1]
    nbrs = Neighbours(index=index, dist=torch.zeros(index.shape, dtype=torch.float64), widened=0)
    cfg = Stage1Config(patch=p, step=step, k=1, blend=power, device="cpu")
    out = synthesize(bank_p, bank_s, torch.zeros(1, h, w, dtype=torch.uint8), nbrs, grid, cfg)[0]
    win = blend_window(p, power).view(p, p)
    total, weight = torch.zeros(h, w, dtype=torch.float64), torch.zeros(h, w, dtype=torch.float64)
    for q, (y, x) in enumerate(tops):
        total[y : y + p, x : x + p] += win * float(values[q])
        weight[y : y + p, x : x + p] += win
    torch.testing.assert_close(out, (total / weight).round().to(torch.uint8), atol=0, rtol=0)
    if power == 32.0:  # pixels nearer one patch's centre than any other's take its value alone
        assert out[8, 5] == values[tops.index((6, 3))] and out[5, 8] == values[tops.index((3, 6))]


def test_leave_one_out_and_determinism():
    rng = np.random.default_rng(4)
    n, h, w = 5, 30, 24
    bank = rng.integers(0, 256, (n, h, w), dtype=np.uint8)
    sketches = np.zeros((n, h, w), np.uint8)
    sketches[2] = 255  # only the excluded pair has a white sketch
    photos = bank[2:3].copy()  # its own photo: every patch has an exact match in pair 2
    cfg = Stage1Config(patch=6, step=3, search=2, k=4, device="cpu")
    with_own = coarse_sketches(bank, sketches, photos, cfg, progress=False)
    assert with_own.mean() > 150  # the exact matches dominate
    left_out = coarse_sketches(bank, sketches, photos, cfg, exclude=[2], progress=False)
    assert left_out.max() == 0  # pair 2 never used
    again = coarse_sketches(bank, sketches, photos, cfg, exclude=[2], progress=False)
    np.testing.assert_array_equal(left_out, again)
    grid = PatchGrid(h, w, 6, 3)
    nbrs = knn_search(
        torch.from_numpy(bank), torch.from_numpy(photos), grid, 2, 4, PatchMetric(), torch.tensor([2])
    )
    assert not (nbrs.index // (h * w) == 2).any()


def test_user_errors():
    rng = np.random.default_rng(5)
    bank = rng.integers(0, 256, (3, 30, 24), dtype=np.uint8)
    cfg = Stage1Config(patch=6, step=3, search=2, k=4, device="cpu")
    with pytest.raises(UserError, match="aligned|align"):
        coarse_sketches(bank, bank, bank[:, :20], cfg, progress=False)
    with pytest.raises(UserError, match="stage1.blend"):
        coarse_sketches(bank, bank, bank, dataclasses.replace(cfg, blend=-1.0), progress=False)
    with pytest.raises(UserError, match="stage1.k"):
        coarse_sketches(bank, bank, bank, dataclasses.replace(cfg, k=3 * 9 + 1), progress=False)
    with pytest.raises(UserError, match="stage1.norm"):
        coarse_sketches(bank, bank, bank, dataclasses.replace(cfg, norm="zscore"), progress=False)
    with pytest.raises(UserError, match="stage1.patch"):
        coarse_sketches(bank, bank, bank, dataclasses.replace(cfg, patch=40), progress=False)
    # leave-one-out lowers the candidate count: 2 photos x 9 corner offsets = 18 < 19
    with pytest.raises(UserError, match="stage1.k"):
        coarse_sketches(bank, bank, bank, dataclasses.replace(cfg, k=19), exclude=[0, 1, 2], progress=False)


def test_cache_reuses_and_keys_on_settings(tmp_path, monkeypatch):
    rng = np.random.default_rng(6)
    split = PairedSplit(
        ("A_0", "A_1", "A_2"),
        rng.integers(0, 256, (3, 24, 18, 3), dtype=np.uint8),
        rng.integers(0, 256, (3, 24, 18), dtype=np.uint8),
    )
    cfg = Stage1Config(patch=6, step=3, search=2, k=3, device="cpu")
    prep = PreparedSplit(split, cfg.background)
    first = cached_coarse(prep, prep, cfg, tmp_path, leave_one_out=True)
    assert len(list(tmp_path.glob("coarse-*.npy"))) == 1
    monkeypatch.setattr("ide.pgm.cache.coarse_sketches", lambda *a, **k: pytest.fail("cache not used"))
    fresh = PreparedSplit(split, cfg.background)  # a hit never runs the background model
    monkeypatch.setattr("ide.pgm.prepare.prepare_photos", lambda *a, **k: pytest.fail("photos prepared"))
    np.testing.assert_array_equal(cached_coarse(fresh, fresh, cfg, tmp_path, leave_one_out=True), first)
    monkeypatch.undo()
    cached_coarse(prep, prep, dataclasses.replace(cfg, lam=0.5), tmp_path, leave_one_out=True)
    cached_coarse(prep, prep, cfg, tmp_path, leave_one_out=False)
    assert len(list(tmp_path.glob("coarse-*.npy"))) == 3


def _dataset(root, test_size=(250, 200)):
    rng = np.random.default_rng(7)
    for split, n, size in (("train", 3, (250, 200)), ("test", 1, test_size)):
        for i in range(n):
            write_png(
                root / split / "photos" / f"A_{i}.png", rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            )
            write_png(root / split / "sketches" / f"A_{i}.png", rng.integers(0, 256, size, dtype=np.uint8))
    return root


def _config(tmp_path, root, k):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"data:\n  root: {root}\n  cache_dir: {tmp_path / 'cache'}\nstage1:\n  k: {k}\n  iters: 2\n"
    )
    return str(cfg)


def test_cli_coarse_writes_pngs(tmp_path, capsys):
    root = _dataset(tmp_path / "data")
    for split, count in (("train", 3), ("test", 1)):
        out = tmp_path / f"out_{split}"
        assert (
            main(["coarse", "--config", _config(tmp_path, root, 4), "--split", split, "--out", str(out)]) == 0
        )
        files = sorted(out.glob("*.png"))
        assert len(files) == count
        last = capsys.readouterr().out.strip().splitlines()[-1]
        assert last.startswith(f"ide coarse: wrote {count} coarse sketches of {split} to {out} in ")
        assert load_split(root, split).sketches.shape[1:] == (250, 200)


@pytest.mark.parametrize("case", ["k_too_large", "wrong_size"])
def test_cli_user_errors_exit_2(tmp_path, capsys, case):
    root = _dataset(tmp_path / "data", test_size=(240, 200) if case == "wrong_size" else (250, 200))
    k = 3 * 36 + 1 if case == "k_too_large" else 4  # a corner patch has 3 photos x 6 x 6 candidates
    code = main(
        ["coarse", "--config", _config(tmp_path, root, k), "--split", "test", "--out", str(tmp_path / "o")]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert ("stage1.k" in err) if case == "k_too_large" else ("200x240" in err)
    assert not (tmp_path / "o").exists()


def test_background_model_whitens_dark_backdrops_only():
    from ide.pgm.background import background_mask, whiten_background

    yy, xx = np.mgrid[0:250, 0:200]
    face = ((yy - 130) / 90.0) ** 2 + ((xx - 100) / 65.0) ** 2 < 1
    inner = ((yy - 130) / 87.0) ** 2 + ((xx - 100) / 62.0) ** 2 < 1  # 3 px inside the edge
    rng = np.random.default_rng(0)
    dark = np.where(face, 170, 55).astype(np.uint8) + rng.integers(0, 4, (250, 200), dtype=np.uint8)
    dark[100:110, 60:140] = 50  # dark features inside the face are not background
    mask = background_mask(dark, 10)
    assert mask[~face].mean() > 0.99 and not mask[inner].any()
    out = whiten_background(dark[None], 10)[0]
    assert out[5, 5] == 255 and (out[120:140, 90:110] == dark[120:140, 90:110]).all()
    light = np.where(face, 120, 200).astype(np.uint8)  # a light backdrop stays as it is
    np.testing.assert_array_equal(whiten_background(light, 10), light)


def test_background_model_colour_photo_with_dark_backdrop_wedge_and_dark_hair():
    """GrabCut path: a blue backdrop as dark as the brown hair, and a black rotation wedge."""
    from ide.data.io import to_gray
    from ide.pgm.background import whiten_background

    yy, xx = np.mgrid[0:250, 0:200]
    face = ((yy - 140) / 80.0) ** 2 + ((xx - 100) / 55.0) ** 2 < 1
    hair = (((yy - 110) / 88.0) ** 2 + ((xx - 100) / 72.0) ** 2 < 1) & ~face
    body = yy > 215
    rng = np.random.default_rng(0)
    rgb = np.empty((250, 200, 3), np.uint8)
    rgb[:] = (35, 42, 104)  # blue backdrop, luma ~48
    rgb[hair] = (62, 44, 30)  # brown hair, luma ~48 too
    rgb[face | body] = (225, 180, 150)
    rgb = np.clip(rgb + rng.integers(-3, 4, rgb.shape), 0, 255).astype(np.uint8)
    wedge = xx + yy < 18  # black corner left by an earlier rotation
    rgb[wedge] = 0
    backdrop = ~(face | hair | body | wedge)
    out = whiten_background(rgb, 10)
    assert out.shape == (250, 200) and out.dtype == np.uint8
    from scipy.ndimage import binary_erosion

    inner_backdrop = binary_erosion(backdrop, iterations=3)  # off the soft edge
    assert (out[inner_backdrop] > 240).mean() > 0.97  # the backdrop is white
    gray = to_gray(rgb)
    inner_hair = binary_erosion(hair, iterations=3)
    assert (np.abs(out[inner_hair].astype(int) - gray[inner_hair]) <= 3).mean() > 0.97  # the hair is not
    inner_face = binary_erosion(face, iterations=3)
    assert (out[inner_face] == gray[inner_face]).mean() > 0.99
    np.testing.assert_array_equal(whiten_background(rgb[None], 10)[0], out)  # batch = single, deterministic
    light = rgb.copy()
    light[backdrop | wedge] = (200, 205, 210)  # a light backdrop: only converted to gray
    np.testing.assert_array_equal(whiten_background(light, 10), to_gray(light))


def test_background_model_keeps_long_hair_that_reaches_the_photo_sides():
    """Long dark hair down to the shoulders crosses GrabCut's box into the side margins; it must
    not become certain backdrop there (it would then be cut away inside the box as well)."""
    from scipy.ndimage import binary_erosion

    from ide.data.io import to_gray
    from ide.pgm.background import whiten_background

    yy, xx = np.mgrid[0:250, 0:200]
    face = ((yy - 140) / 70.0) ** 2 + ((xx - 100) / 50.0) ** 2 < 1
    hair = (((yy - 150) / 125.0) ** 2 + ((xx - 100) / 112.0) ** 2 < 1) & ~face  # reaches both sides
    rng = np.random.default_rng(1)
    rgb = np.empty((250, 200, 3), np.uint8)
    rgb[:] = (30, 50, 150)  # blue backdrop
    rgb[hair] = (45, 30, 25)  # dark brown hair
    rgb[face] = (225, 180, 150)
    rgb = np.clip(rgb + rng.integers(-4, 5, rgb.shape), 0, 255).astype(np.uint8)
    backdrop = ~(face | hair)
    assert hair[:, :12].any() and hair[:, -12:].any()  # the hair is in the side margins
    out = whiten_background(rgb, 10)
    assert (out[binary_erosion(backdrop, iterations=3)] > 240).mean() > 0.97
    gray = to_gray(rgb)
    inner_hair = binary_erosion(hair, iterations=3)
    assert (np.abs(out[inner_hair].astype(int) - gray[inner_hair]) <= 3).mean() > 0.95


def test_identical_flat_candidates_keep_their_value():
    """White backdrops: every candidate equal, so the step bound is huge (~1e12); a step along the
    gradient's common part once lost the weights in float32 and painted gray or black patches."""
    n, h, w = 12, 40, 40
    bank = np.full((n, h, w), 250, np.uint8)
    sketches = np.full((n, h, w), 255, np.uint8)
    cfg = Stage1Config(patch=10, step=5, search=2, k=8, lam=1.0, iters=10, brightness=0.1, device="cpu")
    out = coarse_sketches(bank, sketches, bank[:2], cfg, exclude=[0, 1], progress=False)
    assert (out == 255).all()


def test_kept_bank_side_equals_a_fresh_search():
    """`Stage1` keeps its bank side between calls: one photo at a time (grid rows sharing a band
    start, search > step) gives what one fresh batch gives, with and without leave-one-out."""
    bank, photos = _random_bank(2, n=6, h=40, w=33)
    sketches = np.random.default_rng(9).integers(0, 256, bank.shape, dtype=np.uint8)
    cfg = Stage1Config(patch=6, step=3, search=4, k=4, iters=3, brightness=0.1, device="cpu")
    batch = coarse_sketches(bank, sketches, photos, cfg, progress=False)
    stage1 = Stage1(bank, sketches, cfg)
    for _ in range(2):
        one = np.concatenate([stage1(photos[i : i + 1]) for i in range(len(photos))])
        np.testing.assert_array_equal(one, batch)
    np.testing.assert_array_equal(
        stage1(photos, exclude=[1, None, 3]),
        coarse_sketches(bank, sketches, photos, cfg, [1, None, 3], False),
    )


def test_stage1_takes_prepared_photos_only():
    bank = np.zeros((3, 30, 24), np.uint8)
    cfg = Stage1Config(patch=6, step=3, search=2, k=4, device="cpu")
    with pytest.raises(UserError, match="prepare_photos"):
        coarse_sketches(bank, bank, np.zeros((1, 30, 24, 3), np.uint8), cfg, progress=False)


def test_real_photos_prepared_once_equal_the_old_repeated_passes(shared_data):
    """On real CUFS photos (dark XM2VTS backdrops, where GrabCut succeeds, and light ones):
    preparing twice equals preparing once, so stage 1 on the prepared arrays gives what the
    former path (the background model again inside stage 1) gave, bit for bit; and the kept bank
    side of `Stage1` gives what a fresh search gives."""
    from ide.pgm.background import dark_backdrop, grabcut_mask
    from ide.pgm.prepare import prepare_photos

    split = load_split(shared_data / "CUFS", "train")
    xm = [i for i, pid in enumerate(split.ids) if pid.startswith("XM2VTS")]
    dark = [i for i in xm if dark_backdrop(to_gray(split.photos[i]))][:4]
    pick = dark + [i for i, pid in enumerate(split.ids) if pid.startswith(("CUHK", "AR"))][::40][:4]
    assert len(dark) == 4 and all(grabcut_mask(split.photos[i]).any() for i in dark)
    photos = split.photos[pick]
    once = prepare_photos(photos, 10.0)
    np.testing.assert_array_equal(prepare_photos(once, 10.0), once)
    assert all((once[j] != to_gray(photos[j])).any() for j in range(len(dark)))  # the backdrops changed
    cfg = Stage1Config(
        patch=10, step=5, search=5, k=5, iters=3, brightness=0.1, background=10.0, device="cpu"
    )
    bank, sketches, queries = once[1:], split.sketches[pick][1:], once[[0, 4]]
    batch = coarse_sketches(bank, sketches, queries, cfg, progress=False)
    stage1 = Stage1(bank, sketches, cfg)
    one = np.concatenate([stage1(queries[i : i + 1]) for i in range(2)])
    np.testing.assert_array_equal(one, batch)

"""FSIM / SSIM / PSNR against the references: piq's FSIM, scikit-image's SSIM, the MATLAB details.

Real pairs come from ../shared/data (CUFS results vs sketches, RGB and gray files, and CUFSF
photos vs sketches); piq is only a cross-check here, never used by the package.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import piq
import pytest
import scipy.signal
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

import ide.metrics
from ide.data.io import image_channels, read_image
from ide.metrics import fsim, fsim_batch, psnr, score_batch, ssim, ssim_batch

fsim_module = sys.modules["ide.metrics.fsim"]  # the package's `fsim` is the numpy function

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FSIM_TOL = 2e-4  # vs piq, which rounds the median down and pools without the reference's padding
SSIM_TOL = 1e-6


@pytest.fixture(autouse=True, scope="module")
def _single_threaded_ops():
    """Hundreds of ~1 ms ops: with intra-op threads on busy shared cores each waits at a barrier
    (measured 7x slower); `ide metrics` scores in parallel batches instead (ide.metrics.folder)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _gt(data: Path, pair_id: str) -> Path:
    return next((data / "CUFS" / "test" / "sketches").glob(f"{pair_id}.*"))


def _real_pairs(data: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """36 gray pairs (pred, gt) from real files: CUHK jpg sketches stored RGB and gray, AR png RGB and
    gray, XM2VTS, CUFSF photo/sketch pairs, CUFS RGB photos vs sketches."""
    gts = sorted((data / "CUFS" / "test" / "sketches").iterdir())
    rgb = [p.stem for p in gts if image_channels(p) == 3]
    gray = [p.stem for p in gts if image_channels(p) == 1]
    chosen = [
        *(("SCA-GAN", i) for i in [i for i in rgb if i.startswith("CUHK")][::9][:4]),
        *(("pix2pix_cGAN", i) for i in [i for i in gray if i.startswith("CUHK")][::12][:4]),
        *(("CA-GAN", i) for i in [i for i in rgb if i.startswith("AR")][::8][:4]),
        *(("SCA-GAN", i) for i in [i for i in gray if i.startswith("AR")][:3]),
        *(("pix2pix_cGAN", i) for i in [i for i in gray if i.startswith("XM2VTS")][::30][:6]),
    ]
    pairs = []
    for method, pair_id in chosen:
        pairs.append(
            (
                f"{method}/{pair_id}",
                read_image(data / "results" / method / "CUFS" / f"{pair_id}.png"),
                read_image(_gt(data, pair_id)),
            )
        )
    for method, pair_id in (("PCF", "CUHK_m1-010-01"), ("ANS-GDA", "CUHK_f1-005-01")):
        pairs.append(
            (
                f"{method}/{pair_id}",
                read_image(data / "results" / method / "CUFS_CUHK" / f"{pair_id}.png"),
                read_image(_gt(data, pair_id)),
            )
        )
    for k in (1, 97, 233, 400, 512, 777, 901, 944):
        pair_id = f"{k:04d}"
        pairs.append(
            (
                f"CUFSF/{pair_id}",
                read_image(data / "CUFSF" / "test" / "photos" / f"{pair_id}.png"),
                read_image(data / "CUFSF" / "test" / "sketches" / f"{pair_id}.png"),
            )
        )
    for pair_id in ("AR_102", "CUHK_f-039-01", "XM2VTS_1", "CUHK_m1-020-01", "AR_30"):
        photo = next((data / "CUFS" / "test" / "photos").glob(f"{pair_id}.*"))
        pairs.append((f"photo/{pair_id}", read_image(photo, "L"), read_image(_gt(data, pair_id))))
    return pairs


@pytest.fixture(scope="module")
def real_pairs() -> list[tuple[str, np.ndarray, np.ndarray]]:
    if not (SHARED_DATA / "CUFS").is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    pairs = _real_pairs(SHARED_DATA)
    assert len(pairs) >= 30
    return pairs


def _stack(pairs) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(np.stack([p for _, p, _ in pairs]))[:, None].double()
    y = torch.from_numpy(np.stack([g for _, _, g in pairs]))[:, None].double()
    return x, y


def _check_against_references(pairs, check_ssim: bool = True) -> torch.Tensor:
    x, y = _stack(pairs)
    ours = fsim_batch(x, y)
    # piq takes [B, C, H, W], C = 1 for the gray path. In float32 it runs 2x faster than in float64
    # and its scores move by < 1e-7 (max |ours - piq| on these pairs: 7.75e-6 vs 7.79e-6).
    ref = piq.fsim(x.float(), y.float(), reduction="none", data_range=255, chromatic=False).double()
    worst = (ours - ref).abs().max().item()
    assert worst < FSIM_TOL, f"FSIM differs from piq by {worst:.2e}"
    bad = [name for (name, _, _), a, b in zip(pairs, ours, ref) if abs(a - b) >= FSIM_TOL]
    assert not bad, bad
    if check_ssim:
        got = ssim_batch(x, y).numpy()
        for (name, p, g), s in zip(pairs, got):
            want = structural_similarity(
                p, g, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
            )
            assert abs(s - want) < SSIM_TOL, (name, s, want)
    return ours


def test_fsim_and_ssim_match_references_on_real_pairs(real_pairs):
    scores = _check_against_references(real_pairs)
    # A genuine spread of scores, not 36 near-identical cases.
    assert scores.min() < 0.6 and scores.max() > 0.75


def test_downsampling_path_500x400(real_pairs):
    """500x400 (H x W) → F = 2: mean filter, every 2nd pixel; SSIM at full size."""
    big = [
        (name, cv2.resize(p, (400, 500), interpolation=cv2.INTER_CUBIC), cv2.resize(g, (400, 500)))
        for name, p, g in real_pairs[::4]
    ]
    assert fsim_module.downsample_factor(500, 400) == 2
    _check_against_references(big)


def test_odd_sizes_match_piq(real_pairs):
    """Odd sizes use phasecong2's (n - 1) grid and lowpassfilter's own grid: still piq's FSIM."""
    crops = [(name, p[:249, 1:], g[:249, 1:]) for name, p, g in real_pairs[1::5]]
    _check_against_references(crops, check_ssim=False)


def test_float32_ffts_agree_with_float64(real_pairs):
    x, y = _stack(real_pairs[::3])
    fast, exact = fsim_batch(x, y), fsim_batch(x, y, dtype=torch.float64)
    assert (fast - exact).abs().max().item() < 1e-6


def test_identity_shift_blur(real_pairs):
    _, p, g = real_pairs[0]
    for image in (p, g):
        assert fsim(image, image) == pytest.approx(1.0, abs=1e-12)
        assert ssim(image, image) == pytest.approx(1.0, abs=1e-12)
        assert psnr(image, image) == float("inf")
        shifted = np.roll(image, 3, axis=1)
        blurred = cv2.GaussianBlur(image, (0, 0), 2.0)
        for degraded in (shifted, blurred):
            assert fsim(degraded, image) < 0.95
            assert ssim(degraded, image) < 0.95
            assert np.isfinite(psnr(degraded, image))
        # more blur, lower scores
        more = cv2.GaussianBlur(image, (0, 0), 4.0)
        assert fsim(more, image) < fsim(blurred, image)
        assert ssim(more, image) < ssim(blurred, image)
        assert psnr(more, image) < psnr(blurred, image)


def test_constant_images_give_numbers_not_nan(real_pairs):
    _, _, g = real_pairs[0]
    flat = np.full_like(g, 128)
    other = np.full_like(g, 30)
    for a, b in ((flat, flat), (flat, other), (flat, g), (g, flat), (np.zeros_like(g), np.zeros_like(g))):
        for metric in (fsim, ssim):
            assert np.isfinite(metric(a, b))
    assert fsim(flat, flat) == pytest.approx(1.0)
    assert ssim(flat, flat) == pytest.approx(1.0)
    assert fsim(flat, g) < 0.5


def test_psnr_is_float64_and_matches_skimage(real_pairs):
    black, white = np.zeros((20, 20), np.uint8), np.full((20, 20), 255, np.uint8)
    assert psnr(black, white) == pytest.approx(0.0)  # uint8 0 - 255 would wrap to 1 and read 48 dB
    for _, p, g in real_pairs[:5]:
        assert psnr(p, g) == pytest.approx(peak_signal_noise_ratio(g, p, data_range=255), abs=1e-10)


def test_matlab_round_in_downsample_factor():
    assert fsim_module.downsample_factor(250, 200) == 1
    assert fsim_module.downsample_factor(383, 1000) == 1
    assert fsim_module.downsample_factor(384, 1000) == 2
    assert fsim_module.downsample_factor(640, 900) == 3  # MATLAB round(2.5) = 3; Python's round gives 2


def _matlab_conv2_same(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """MATLAB's conv2(A, K, 'same'): the full convolution from index floor(k/2) in each dimension."""
    full = scipy.signal.convolve2d(image, kernel, mode="full")
    r0, c0 = kernel.shape[0] // 2, kernel.shape[1] // 2
    return full[r0 : r0 + image.shape[0], c0 : c0 + image.shape[1]]


def test_downsample_is_conv2_same_then_every_fth_pixel():
    # The cropping rule reproduces MATLAB's documented example: conv(u, v, 'same') = [15 5 -9 7 6 7 -1].
    u, v = np.array([[-1, 2, 3, -2, 0, 1, 2]]), np.array([[2, 4, -1, 1]])
    assert _matlab_conv2_same(u, v).tolist() == [[15, 5, -9, 7, 6, 7, -1]]
    rng = np.random.default_rng(0)
    for shape, factor in (((9, 7), 2), ((10, 8), 2), ((11, 13), 3), ((12, 9), 4)):
        image = rng.uniform(0, 255, shape)
        want = _matlab_conv2_same(image, np.ones((factor, factor)) / factor**2)[::factor, ::factor]
        got = fsim_module.downsample(torch.from_numpy(image)[None, None], factor)[0, 0].numpy()
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)


def test_gradient_is_conv2_same_scharr():
    rng = np.random.default_rng(2)
    image = rng.uniform(0, 255, (13, 10))
    dx = np.array([[3, 0, -3], [10, 0, -10], [3, 0, -3]]) / 16
    want = np.hypot(_matlab_conv2_same(image, dx), _matlab_conv2_same(image, dx.T))
    got = fsim_module._gradient_magnitude(torch.from_numpy(image)[None, None])[0, 0].numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)


def test_median_is_matlabs():
    v = torch.tensor([[4.0, 1.0, 3.0, 2.0], [1.0, 1.0, 5.0, 7.0]], dtype=torch.float64)
    assert fsim_module._median_rows(v).tolist() == [2.5, 3.0]  # the mean of the two middle values
    odd = torch.rand(3, 51, dtype=torch.float64)
    np.testing.assert_allclose(fsim_module._median_rows(odd).numpy(), np.median(odd.numpy(), axis=1))


def test_score_batch_contract():
    rng = np.random.default_rng(1)
    smooth = cv2.GaussianBlur(rng.uniform(0, 255, (3, 64, 48)).transpose(1, 2, 0), (0, 0), 2).transpose(
        2, 0, 1
    )
    x = torch.from_numpy(smooth)[:, None].float()
    y = x.flip(-1)
    out = score_batch(x, y)
    assert set(out) == {"fsim", "ssim", "psnr"}
    for name, values in out.items():
        assert values.shape == (3,) and values.dtype == torch.float64, name
        assert torch.isfinite(values).all(), name
    # the numpy wrappers: [H, W] → float, [N, H, W] → array [N], same numbers as the batch
    assert isinstance(ide.metrics.fsim(smooth[0], smooth[0, :, ::-1]), float)
    np.testing.assert_allclose(ide.metrics.ssim(smooth, smooth[:, :, ::-1]), out["ssim"].numpy(), atol=1e-5)
    pc = fsim_module.phase_congruency(x.double())
    assert pc.shape == x.shape and pc.min() >= 0 and pc.max() <= 1
    with pytest.raises(ValueError):
        fsim_batch(x, y[:2])


def test_laplacian_energy_measures_blur():
    """The artist's level is the reference: a blurred copy has less energy, flat gray none, and the
    value is the mean |4-neighbour Laplacian| in gray levels."""
    from ide.metrics.sharpness import laplacian_energy

    rng = np.random.default_rng(0)
    sketch = (rng.random((60, 50)) > 0.8).astype(np.uint8) * 255
    blurred = cv2.GaussianBlur(sketch, (0, 0), 1.5)
    assert laplacian_energy(np.full((20, 20), 128, np.uint8)) == 0.0
    assert laplacian_energy(blurred) < 0.5 * laplacian_energy(sketch)
    dot = np.zeros((5, 5), np.uint8)
    dot[2, 2] = 100  # one bright pixel: |-400| at the centre, 100 at its 4 neighbours
    assert laplacian_energy(dot) == pytest.approx(800 / 25)

"""FSIM (Zhang, Zhang, Mou, Zhang, IEEE TIP 2011), gray path, faithful to the reference `FeatureSIM.m`.

Everything the reference does is kept, including the details that other ports change:

* downsampling by `F = max(1, round(min(H, W) / 256))` with MATLAB's round (halves away from
  zero), an FxF mean filter with `conv2(..., 'same')` zero padding, then every F-th pixel from
  the first (so odd sizes keep their last, half-padded row; `avg_pool2d` alone would drop it);
* phase congruency `phasecong2` with 4 scales, 4 orientations, minimum wavelength 6, multiplier
  2, sigmaOnf 0.55, angular spread 1.2, k 2, epsilon 1e-4, the noise threshold from the
  *median* (MATLAB's: the mean of the two middle values for an even count) of the squared
  smallest-scale amplitude, divided by 1.7; the low-pass filter on its own `lowpassfilter` grid
  (which differs from the filter grid for odd sizes);
* Scharr gradient /16 with zero padding; T1 = 0.85, T2 = 160.

The reference runs in double precision. Here the phase-congruency FFTs run in float32 by default
(2.5x faster on CPU; per-image FSIM within 1e-6 of the float64 path, which `dtype` selects) and
everything else in float64.

Where the reference divides by zero (a constant image: no phase congruency anywhere), this
returns PC = 0 and, when neither image has any, FSIM = the mean gradient similarity, never NaN.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

T1, T2 = 0.85, 160.0
N_SCALE, N_ORIENT = 4, 4
MIN_WAVELENGTH, MULT, SIGMA_ONF, D_THETA_ON_SIGMA, K_NOISE = 6.0, 2.0, 0.55, 1.2, 2.0
EPSILON = 1e-4  # the reference's guard in the weighted mean phase (not machine epsilon)
CHUNK = 8  # images per FFT batch: small enough that one orientation's responses stay in cache


def downsample_factor(height: int, width: int) -> int:
    """The reference's F = max(1, round(min(H, W) / 256)), with MATLAB's round (2.5 → 3, not 2)."""
    return max(1, math.floor(min(height, width) / 256 + 0.5))


def downsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """`conv2(x, ones(F)/F^2, 'same')` (zero padding) then `x(1:F:end, 1:F:end)`.

    Args:
        x: [B, 1, H, W] float. Returns [B, 1, ceil(H/F), ceil(W/F)].
    """
    if factor == 1:
        return x
    # conv2 'same' with an even or odd FxF kernel centres the window on [i - (F-1)//2, i + F//2].
    lo, hi = (factor - 1) // 2, factor // 2
    return F.avg_pool2d(F.pad(x, (lo, hi, lo, hi)), factor, stride=factor)


def _centred_range(n: int) -> np.ndarray:
    """phasecong2's normalised frequency coordinates: odd n divides by n - 1, even n by n."""
    if n % 2:
        return np.arange(-(n - 1) / 2, (n - 1) / 2 + 1) / (n - 1)
    return np.arange(-n / 2, n / 2) / n


@functools.lru_cache(maxsize=8)
def _filter_bank(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Log-Gabor filters and noise-threshold constants for one image size (float64).

    Returns:
        filters: [N_ORIENT, N_SCALE, rows, cols], zero frequency at [0, 0].
        threshold_gain: [N_ORIENT]; the noise threshold of orientation o is
            threshold_gain[o] * sqrt(median(|EO[scale 0, o]|^2)).
    """
    x, y = np.meshgrid(_centred_range(cols), _centred_range(rows))
    radius = np.fft.ifftshift(np.sqrt(x**2 + y**2))
    theta = np.fft.ifftshift(np.arctan2(-y, x))  # -y: anticlockwise angles, as the reference
    radius[0, 0] = 1.0  # no log(0) at the DC point; the filters are zeroed there below
    # lowpassfilter([rows, cols], 0.45, 15): its own grid, always divided by n.
    lx = (np.arange(1, cols + 1) - (cols // 2 + 1)) / cols
    ly = (np.arange(1, rows + 1) - (rows // 2 + 1)) / rows
    lp_radius = np.sqrt(lx[None, :] ** 2 + ly[:, None] ** 2)
    lowpass = np.fft.ifftshift(1.0 / (1.0 + (lp_radius / 0.45) ** 30))

    log_gabor = []
    for s in range(N_SCALE):
        fo = 1.0 / (MIN_WAVELENGTH * MULT**s)
        g = np.exp(-(np.log(radius / fo) ** 2) / (2 * math.log(SIGMA_ONF) ** 2)) * lowpass
        g[0, 0] = 0.0
        log_gabor.append(g)
    theta_sigma = math.pi / N_ORIENT / D_THETA_ON_SIGMA
    sin_t, cos_t = np.sin(theta), np.cos(theta)
    filters = np.empty((N_ORIENT, N_SCALE, rows, cols))
    gains = np.empty(N_ORIENT)
    for o in range(N_ORIENT):
        angle = o * math.pi / N_ORIENT
        ds = sin_t * math.cos(angle) - cos_t * math.sin(angle)
        dc = cos_t * math.cos(angle) + sin_t * math.sin(angle)
        spread = np.exp(-(np.abs(np.arctan2(ds, dc)) ** 2) / (2 * theta_sigma**2))
        filters[o] = np.stack(log_gabor) * spread
        # The reference's noise model, with every factor that does not depend on the image folded
        # into one gain: T = (tau sqrt(pi/2) + k sqrt(2 - pi/2) tau) / 1.7, tau = sqrt(E2 / 2),
        # E2 = noisePower (2 sum An^2 + 4 sum AiAj), noisePower = (median / -log 0.5) / EM_n.
        spatial = np.real(np.fft.ifft2(filters[o])) * math.sqrt(rows * cols)
        sum_an2 = float((spatial**2).sum())
        sum_aiaj = sum(
            float((spatial[i] * spatial[j]).sum()) for i in range(N_SCALE) for j in range(i + 1, N_SCALE)
        )
        em_n = float((filters[o, 0] ** 2).sum())
        noise_energy2_per_median = (2 * sum_an2 + 4 * sum_aiaj) / (-math.log(0.5) * em_n)
        tau_per_root_median = math.sqrt(noise_energy2_per_median / 2)
        gains[o] = tau_per_root_median * (math.sqrt(math.pi / 2) + K_NOISE * math.sqrt(2 - math.pi / 2)) / 1.7
    return filters, gains


def _median_rows(v: torch.Tensor) -> torch.Tensor:
    """MATLAB's median of each row of [R, N]: the mean of the two middle values when N is even."""
    n = v.shape[-1]
    lo, hi = (n - 1) // 2, n // 2
    if v.device.type == "cpu":
        # numpy's introselect finds both middle values in one pass, ~2.5x faster than two kthvalue calls.
        part = np.partition(v.numpy(), [lo, hi], axis=-1)
        return torch.from_numpy((part[:, lo] + part[:, hi]) / 2).to(v.dtype)
    return (torch.kthvalue(v, lo + 1, dim=-1).values + torch.kthvalue(v, hi + 1, dim=-1).values) / 2


def phase_congruency(x: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The reference's `phasecong2` for a batch of gray images of one size.

    Args:
        x: [B, 1, H, W] float (any range; FSIM passes [0, 255] after downsampling).
        dtype: precision of the FFTs and filter responses. float32 (the default) is ~2.5x faster on
            CPU and differs from float64 by < 1e-6 in PC (measured on CUFS: see tests/test_metrics.py).
    Returns:
        [B, 1, H, W] phase congruency in [0, 1], float64.
    """
    b, _, rows, cols = x.shape
    filters_np, gains_np = _filter_bank(rows, cols)
    filters = torch.from_numpy(filters_np).to(device=x.device, dtype=dtype)[..., None]  # [O, S, H, W, 1]
    gains = torch.from_numpy(gains_np).to(device=x.device, dtype=dtype)
    # Every filter is zero at DC, so removing the mean changes nothing but the FFT's rounding error.
    centred = (x[:, 0] - x[:, 0].mean((-2, -1), keepdim=True)).to(dtype)
    spectrum = torch.view_as_real(torch.fft.fft2(centred))[:, None]  # [B, 1, H, W, 2]
    energy_all = torch.zeros(b, rows, cols, dtype=dtype, device=x.device)
    an_all = torch.zeros_like(energy_all)
    for o in range(N_ORIENT):
        # EO{s,o} = ifft2(imagefft .* filter) for the four scales at once (a real multiply per component).
        eo = torch.fft.ifft2(torch.view_as_complex(spectrum * filters[o]))  # [B, S, H, W]
        planes = torch.view_as_real(eo).movedim(-1, 1).contiguous()  # [B, 2, S, H, W]: fast passes
        even, odd = planes[:, 0], planes[:, 1]
        sum_e, sum_o = even.sum(1, keepdim=True), odd.sum(1, keepdim=True)
        total = torch.hypot(sum_e, sum_o)
        x_energy = total + EPSILON
        mean_e, mean_o = sum_e / x_energy, sum_o / x_energy
        # sum_s (E mE + O mO) = |sum_s EO|^2 / XEnergy; only the |sine| term needs every scale.
        sine = torch.addcmul(even * mean_o, odd, mean_e, value=-1).abs_().sum(1)
        energy = (total.square() / x_energy)[:, 0] - sine
        amplitude = torch.hypot(even, odd)
        median_e2n = _median_rows(amplitude[:, 0].square().reshape(b, -1))
        threshold = gains[o] * torch.sqrt(median_e2n)
        energy_all += torch.clamp_(energy - threshold[:, None, None], min=0)
        an_all += amplitude.sum(1)
    pc = torch.where(an_all > 0, energy_all / torch.where(an_all > 0, an_all, 1.0), 0.0)
    return pc[:, None].to(torch.float64)


def _gradient_magnitude(x: torch.Tensor) -> torch.Tensor:
    """Scharr /16 (dx = [3 0 -3; 10 0 -10; 3 0 -3] / 16, dy = dx'), `conv2(..., 'same')` zero padding.

    Written as its separable form, [3 10 3]' x [1 0 -1] / 16, with slices: a float64 conv2d takes
    torch's slow path on CPU. (Convolution flips the kernel; the sign does not reach the magnitude.)
    [B, 1, H, W] → [B, 1, H, W].
    """
    p = F.pad(x, (1, 1, 1, 1))
    diff_x = p[..., :, :-2] - p[..., :, 2:]  # [B, 1, H + 2, W]
    diff_y = p[..., :-2, :] - p[..., 2:, :]  # [B, 1, H, W + 2]
    gx = (3 * diff_x[..., :-2, :] + 10 * diff_x[..., 1:-1, :] + 3 * diff_x[..., 2:, :]) / 16
    gy = (3 * diff_y[..., :, :-2] + 10 * diff_y[..., :, 1:-1] + 3 * diff_y[..., :, 2:]) / 16
    return torch.hypot(gx, gy)


def fsim_batch(pred: torch.Tensor, gt: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """FSIM of each pair of a batch (gray FSIM, not FSIMc).

    Args:
        pred, gt: [B, 1, H, W] float tensors in [0, 255] (same size; any device).
        dtype: precision of the phase congruency FFTs (see `phase_congruency`); the rest is float64.
    Returns:
        [B] float64 FSIM, 1 for identical images, usually in (0, 1].
    """
    if pred.shape != gt.shape or pred.dim() != 4 or pred.shape[1] != 1:
        raise ValueError(
            f"fsim_batch expects two [B, 1, H, W] tensors of one shape, got {pred.shape}, {gt.shape}"
        )
    factor = downsample_factor(pred.shape[-2], pred.shape[-1])
    scores = []
    for i in range(0, pred.shape[0], CHUNK):
        x = downsample(pred[i : i + CHUNK].to(torch.float64), factor)
        y = downsample(gt[i : i + CHUNK].to(torch.float64), factor)
        pc_x, pc_y = phase_congruency(x, dtype), phase_congruency(y, dtype)
        g_x, g_y = _gradient_magnitude(x), _gradient_magnitude(y)
        pc_sim = (2 * pc_x * pc_y + T1) / (pc_x**2 + pc_y**2 + T1)
        g_sim = (2 * g_x * g_y + T2) / (g_x**2 + g_y**2 + T2)
        pc_max = torch.maximum(pc_x, pc_y)
        weight = pc_max.sum((1, 2, 3))
        weighted = (g_sim * pc_sim * pc_max).sum((1, 2, 3)) / torch.where(weight > 0, weight, 1.0)
        # No phase congruency in either image: every pixel weighs the same (PC similarity is 1 there).
        scores.append(torch.where(weight > 0, weighted, g_sim.mean((1, 2, 3))))
    return torch.cat(scores)

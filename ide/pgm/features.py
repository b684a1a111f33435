"""Multiple representations of a photo patch for the stage-1 search and the MWF photo term.

A patch is described by its gray intensities (normalised as `grid.PatchMetric` says) and,
optionally, by filtered responses of the whole photo sampled over the same patch:

  dog1      difference of Gaussians σ=1 minus σ=2: fine band-pass (strokes, eyelids, hair texture);
  dog2      difference of Gaussians σ=2 minus σ=4: coarse band-pass, shading beyond the patch;
  gradient  x and y derivatives (Sobel) of the σ=1 smoothed photo: edge strength and orientation.

Each response map is computed once per photo (OpenCV, float32, reflected borders), then made an
integer map: round(QUANT · value / rms), rms the root mean square of that representation over the
bank photos (both gradient components share one). A feature patch samples its map every `STRIDE`
pixels inside the patch (5x5 of a 10x10 patch: the responses are smooth, and the search stays
about twice the intensity-only cost instead of five times).

Distance between a query patch q and a candidate b:

    D(q, b) = D_intensity(q, b) + Σ_channels c · ||F(q) - F(b)||²

with the integer feature patches F, so every channel term is an exact integer (float64) and the
sum is exact (coefficients rounded to 12-bit dyadic numbers, `dyadic`): the search stays exact,
ties stay ties. The coefficient of a
channel, c = weight · (rms_I / QUANT)² · d / (d_f · channels of the representation), makes a
representation of weight 1 add, on average, as much distance as the intensities (rms_I: the
root mean square of the mean-removed 10x10 intensity patches of the bank; d, d_f: pixels of an
intensity and of a feature patch).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ide.config_rules import FEATURES, check_features

QUANT = 32.0  # integer levels per rms of a response (the rounding is ~1/110 of the rms)
STRIDE = 2  # sampling step of a feature patch inside the patch
COEF_BITS = 12  # channel coefficients are integers times one power of two, the largest < 2**12


def dyadic(coef: list[float]) -> tuple[float, ...]:
    """Coefficients rounded to m_c · 2^e with integers m_c ≤ 2^COEF_BITS (one e for all).

    A channel's squared distance is an integer below 25 · 65534² < 2^37, so every product m_c·S_c
    is an integer below 2^49 and a sum over up to 8 channels is exact in float64, in any order:
    candidates whose feature distances are equal compare equal (in the search, in the re-rank, in
    a brute-force check), as exactly as the intensity distances do.
    """
    top = max(coef)
    if top <= 0:
        return tuple(0.0 for _ in coef)
    e = COEF_BITS - int(np.ceil(np.log2(top)))
    return tuple(float(np.ldexp(np.rint(np.ldexp(c, e)), -e)) for c in coef)


def response_maps(gray: np.ndarray, name: str) -> np.ndarray:
    """Filtered responses of gray photos: uint8 [N, H, W] → float32 [channels, N, H, W]."""
    out = []
    for image in gray.astype(np.float32):

        def blur(s: float, im: np.ndarray = image) -> np.ndarray:
            return cv2.GaussianBlur(im, (0, 0), s, borderType=cv2.BORDER_REFLECT)

        if name == "dog1":
            out.append([blur(1.0) - blur(2.0)])
        elif name == "dog2":
            out.append([blur(2.0) - blur(4.0)])
        elif name == "gradient":
            smooth = blur(1.0)
            out.append(
                [
                    cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT),
                    cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT),
                ]
            )
        else:
            raise ValueError(name)
    return np.stack(out, axis=1) if out else np.zeros((FEATURES[name], 0, *gray.shape[1:]), np.float32)


def intensity_rms(gray: np.ndarray, patch: int) -> float:
    """Root mean square of the mean-removed patch×patch intensities (box mean), over all pixels."""
    x = gray.astype(np.float64)
    mean = np.stack([cv2.blur(im, (patch, patch), borderType=cv2.BORDER_REFLECT) for im in x])
    return float(np.sqrt(np.mean((x - mean) ** 2)))


@dataclass(frozen=True)
class PatchFeatures:
    """Integer response maps of the bank and the query photos, and their channel coefficients.

    Attributes:
        bank: int16 [C, N, H, W]; query: int16 [C, M, H, W] (C channels over all representations).
        coef: float64 weights c of the channels' squared distances, length C, all > 0 or 0.
        patch: intensity patch side p; stride: sampling step inside it.
        bank_norms: float64 [N, H-p+1, W-p+1], Σ_c coef_c ||F_c||² of the feature patch with
            each top-left corner (made by `with_norms`).
        scales: (representation, QUANT / its rms over the bank) per representation, in channel
            order: how `for_queries` quantises further photos like the bank.
    """

    bank: torch.Tensor
    query: torch.Tensor
    coef: tuple[float, ...]
    patch: int
    stride: int = STRIDE
    bank_norms: torch.Tensor | None = None
    scales: tuple[tuple[str, float], ...] = ()  # (representation, QUANT / its bank rms), in order

    def for_queries(self, query_gray: np.ndarray) -> PatchFeatures:
        """A copy whose `query` holds the maps of uint8 [M, H, W] photos, scaled like the bank's."""
        maps = [_quantise(f, scale) for name, scale in self.scales for f in response_maps(query_gray, name)]
        query = torch.from_numpy(np.stack(maps)).to(self.bank.device)
        return dataclasses.replace(self, query=query)

    def with_norms(self) -> PatchFeatures:
        """A copy with `bank_norms` filled: sums of squares over the strided window, per channel
        (separable sums of exact integers in float64), weighted and added in channel order."""
        p, s = self.patch, self.stride
        n, h, w = self.bank.shape[1:]
        total = torch.zeros(n, h - p + 1, w - p + 1, dtype=torch.float64, device=self.bank.device)
        for c, wt in enumerate(self.coef):
            sq = self.bank[c].to(torch.float64).square()
            rows = sum(sq[:, i : i + h - p + 1] for i in range(0, p, s))
            total += wt * sum(rows[:, :, j : j + w - p + 1] for j in range(0, p, s))
        return dataclasses.replace(self, bank_norms=total)

    @property
    def side(self) -> int:
        """Samples per side of a feature patch: 0, stride, 2·stride, ... < patch."""
        return -(-self.patch // self.stride)

    @property
    def channels(self) -> int:
        return len(self.coef)

    @property
    def dim(self) -> int:
        """Columns the features add to a patch vector: C · side²."""
        return self.channels * self.side**2

    def offsets(self) -> torch.Tensor:
        """int64 [side²]: flat offsets of a feature patch's samples from the patch's top-left pixel."""
        w = self.bank.shape[-1]
        k = torch.arange(0, self.patch, self.stride, device=self.bank.device)
        return (k[:, None] * w + k[None, :]).reshape(-1)

    def gather(self, maps: torch.Tensor, corner: torch.Tensor) -> torch.Tensor:
        """Feature patches at flat corners n·H·W + y·W + x: int16 maps [C, N, H, W], int64 corner
        [...] (negative = padding, read as corner 0) → float64 [..., C, side²] integer values."""
        flat = maps.reshape(maps.shape[0], -1)
        at = corner.clamp_min(0).unsqueeze(-1) + self.offsets()
        return flat[:, at.reshape(-1)].view(maps.shape[0], *at.shape).movedim(0, -2).to(torch.float64)

    def distances(self, qf: torch.Tensor, corner: torch.Tensor) -> torch.Tensor:
        """Σ_c coef_c ||F_c(q) - F_c(b)||²: qf float64 [R, C, s²], corner int64 [R, K] → float64 [R, K].

        Every channel's sum is an exact integer; the weighted sum runs over channels in order.
        """
        total = torch.zeros(corner.shape, dtype=torch.float64, device=corner.device)
        flat_maps = self.bank.reshape(self.channels, -1)
        at = corner.clamp_min(0).unsqueeze(-1) + self.offsets()  # [R, K, s²]
        for c, wt in enumerate(self.coef):
            fb = flat_maps[c][at].to(torch.float64)
            total += wt * (fb - qf[:, c].unsqueeze(1)).square().sum(-1)
        return total

    def norms(self, qf: torch.Tensor) -> torch.Tensor:
        """Σ_c coef_c ||F_c||² of feature patches float64 [..., C, s²] → [...] (fixed channel order)."""
        total = torch.zeros(qf.shape[:-2], dtype=torch.float64, device=qf.device)
        for c, wt in enumerate(self.coef):
            total += wt * qf[..., c, :].square().sum(-1)
        return total

    def scaled(self, f: torch.Tensor) -> torch.Tensor:
        """float64 [..., C, s²] → float32 [..., C·s²], each channel times sqrt(coef) (for fp32 keys)."""
        root = torch.tensor(self.coef, dtype=torch.float64, device=f.device).sqrt().unsqueeze(-1)
        return (f * root).flatten(-2).to(torch.float32)

    def band(self, y_lo: int, ny: int, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The bank's scaled feature patches with top rows y_lo .. y_lo+ny-1, every x, into `out`.

        Args:
            out: float32 view [X, ny, N, C·s²] (X = W - p + 1) to fill.
        Returns:
            (norms float64 [X, ny, N] = Σ coef ||F||², zero bool [X, ny, N]: every weighted
            sample 0, i.e. the feature part of the vector is the zero vector).
        """
        p, s, side = self.patch, self.stride, self.side
        feats = self if self.bank_norms is not None else self.with_norms()
        region = self.bank[:, :, y_lo : y_lo + ny + p - 1, :]  # [C, N, ny+p-1, W]
        views = region.unfold(2, p, 1).unfold(3, p, 1)[..., ::s, ::s]  # [C, N, ny, X, side, side]
        body = out.unflatten(-1, (self.channels, side, side))
        for c, wt in enumerate(self.coef):
            torch.mul(views[c].permute(2, 1, 0, 3, 4), float(np.sqrt(wt)), out=body[:, :, :, c])
        norms = feats.bank_norms[:, y_lo : y_lo + ny].permute(2, 1, 0)
        return norms, norms == 0


def bank_features(
    bank_gray: np.ndarray,
    features: tuple[str, ...],
    weights: tuple[float, ...],
    patch: int,
    device: torch.device | str = "cpu",
) -> PatchFeatures | None:
    """The bank's integer response maps, their scales and coefficients (None for intensity only);
    the query maps are added by `PatchFeatures.for_queries`.

    Args:
        bank_gray: uint8 [N, H, W] prepared gray bank photos.
        features, weights: the stage-1 representations and their weights (empty: all 1).
        patch: intensity patch side.
    Raises:
        UserError: a bad stage1.features / stage1.feature_weights (`config_rules.check_features`).
    """
    check_features(features, weights)
    weights = weights or tuple(1.0 for _ in features)
    extra = [(n, wt) for n, wt in zip(features, weights) if n != "intensity"]
    if not extra:
        return None
    rms_i = intensity_rms(bank_gray, patch)
    side = -(-patch // STRIDE)
    maps, coef, scales = [], [], []
    for name, wt in extra:
        fb = response_maps(bank_gray, name)
        rms = float(np.sqrt(np.mean(fb.astype(np.float64) ** 2))) or 1.0
        for c in range(len(fb)):
            maps.append(_quantise(fb[c], QUANT / rms))
            coef.append(wt * (rms_i / QUANT) ** 2 * patch * patch / (side * side * len(fb)))
        scales.append((name, QUANT / rms))
    bank = torch.from_numpy(np.stack(maps)).to(device)
    return PatchFeatures(bank=bank, query=bank[:, :0], coef=dyadic(coef), patch=patch, scales=tuple(scales))


def build_features(
    bank_gray: np.ndarray,
    query_gray: np.ndarray,
    features: tuple[str, ...],
    weights: tuple[float, ...],
    patch: int,
    device: torch.device | str = "cpu",
) -> PatchFeatures | None:
    """`bank_features` with the query photos' maps (uint8 [M, H, W]); None for intensity only."""
    feats = bank_features(bank_gray, features, weights, patch, device)
    return None if feats is None else feats.with_norms().for_queries(query_gray)


def _quantise(values: np.ndarray, scale: float) -> np.ndarray:
    return np.clip(np.rint(values * scale), -32767, 32767).astype(np.int16)

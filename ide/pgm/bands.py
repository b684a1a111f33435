"""The bank side of the stage-1 search and its fast shortlists (steps 1-3 of `ide.pgm.search`).

A band holds every bank patch that can be a candidate of one grid row, normalised and laid out so
that the candidates of one grid position are one contiguous [candidates, d] matrix; a shortlist
keeps the S smallest approximate keys ||b||² - 2 q·b of each row without sorting all of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ide.pgm.exact import INVALID
from ide.pgm.features import PatchFeatures
from ide.pgm.grid import PatchGrid, PatchMetric


def _box_sums(region: torch.Tensor, p: int) -> torch.Tensor:
    """Sums over every p x p window: float64 [N, R, W] → [N, R-p+1, W-p+1] (exact for integers)."""
    c = torch.nn.functional.pad(region.cumsum(1).cumsum(2), (1, 0, 1, 0))
    return c[:, p:, p:] - c[:, :-p, p:] - c[:, p:, :-p] + c[:, :-p, :-p]


def bank_band(
    bank: torch.Tensor,
    y_lo: int,
    ny: int,
    grid: PatchGrid,
    metric: PatchMetric,
    n_pad: int,
    buf: torch.Tensor,
    feats: PatchFeatures | None = None,
):
    """Normalised bank patches with top rows y_lo .. y_lo+ny-1, every x.

    `buf` is a float32 workspace of at least X·ny·n_pad·D elements that `u` is laid out in: one
    allocation for all bands (a fresh ~250 MB tensor per band spent ~15% of the search in page faults).

    Returns:
        u: float32 [X, ny, n_pad, D], D = e + 1 rounded up to a multiple of 8 (aligned rows run
            faster), e = d plus the feature columns: columns :d the normalised patch (within a few
            units of fp32 roundoff, relative to its norm, of the exact one; zero for padding),
            columns d:e its scaled feature patches (`PatchFeatures.band`), column e the exact
            squared norm of the whole (+inf for padding and flat rows, which then never win), the
            rest zero. Flat rows: a constant patch whose features are all zero. So one matrix product
            with [-2q, 1, 0...] gives the keys ||b||² - 2 q·b. Under "mean" the centred patch
            only (the brightness term is added by `Band.keys`).
        flat: bool [X, ny, n] constant patches (only for mean/meanstd, where they all tie);
        value: int64 [X, ny, n] their gray value;
        mean: float32 [X, ny, n_pad] patch means (padding 0).
    """
    n, _, w = bank.shape
    p, d = grid.patch, grid.dim
    e = d + (feats.dim if feats is not None else 0)
    region = bank[:, y_lo : y_lo + ny + p - 1, :]
    x_count = w - p + 1
    u = buf[: x_count * ny * n_pad * width(e)].view(x_count, ny, n_pad, width(e))
    u[:, :, n:] = 0.0
    u[:, :, :n, e + 1 :] = 0.0
    body = u[:, :, :n, :d]
    body.unflatten(-1, (p, p)).copy_(region.unfold(1, p, 1).unfold(2, p, 1).permute(2, 1, 0, 3, 4))
    # Patch sums Σb and Σb² from integral images (exact integers in float64), [X, ny, n].
    r64 = region.to(torch.float64)
    s1 = _box_sums(r64, p).permute(2, 1, 0)
    s2 = _box_sums(r64.square(), p).permute(2, 1, 0)
    big_bb = d * d * s2 - d * s1.square()  # ||d·b - Σb||²
    value = torch.div(s1, d, rounding_mode="floor").to(torch.int64)
    flat = torch.zeros_like(s1, dtype=torch.bool)
    if metric.norm == "none":
        norms = s2
    else:
        flat = big_bb == 0
        body.mul_(d).sub_(s1.unsqueeze(-1).to(torch.float32))  # d·b - Σb: exact integers in fp32
        if metric.norm == "mean":
            body.div_(d)
            norms = big_bb / (d * d)
        else:
            scale = 1.0 / (d * torch.sqrt(big_bb / d**3 + metric.floor**2))
            body.mul_(scale.unsqueeze(-1).to(torch.float32))
            norms = big_bb * scale.square()
    if feats is not None:
        f_norms, f_zero = feats.band(y_lo, ny, u[:, :, :n, d:e])
        norms = norms + f_norms
        flat &= f_zero
    u[:, :, :, e] = math.inf
    u[:, :, :n, e] = norms.masked_fill(flat, math.inf).to(torch.float32)
    mean = torch.zeros(x_count, ny, n_pad, dtype=torch.float32, device=bank.device)
    mean[:, :, :n] = (s1 / d).to(torch.float32)
    return u, flat, value, mean


def width(d: int) -> int:
    """Columns of the augmented patch rows: d values, the squared norm, zeros up to a multiple of 8."""
    return (d + 1 + 7) // 8 * 8


def _matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a [R, D] @ b[B, D].T in fp32. On CPU through oneDNN's kernel (1.5-2x faster than the default
    BLAS for these thin products here; same IEEE fp32 arithmetic), else the plain product."""
    if a.device.type == "cpu" and _ONEDNN:
        try:
            return torch.ops.mkldnn._linear_pointwise(a, b, None, "none", [], "")
        except RuntimeError:
            pass
    return a @ b.T


_ONEDNN = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


def _shortlist(keys: torch.Tensor, chunk: int, s: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-s smallest entries of every column of `keys` [R, B] (R a multiple of `chunk`).

    The s smallest keys of a column lie in the s chunks with the smallest minima: any key outside
    them is ≥ the s-th smallest chunk minimum, and those s minima are s keys no larger than it.
    Returns (values [B, s'] ascending, row indices [B, s']), s' = min(s, R).
    """
    r, b = keys.shape
    blocks = keys.view(r // chunk, chunk, b)
    sc = min(s, r // chunk)
    best = blocks.amin(1).topk(sc, dim=0, largest=False, sorted=False).indices  # [sc, B]
    cand = blocks[best, :, torch.arange(b, device=keys.device)]  # [sc, B, chunk]
    cand = cand.permute(1, 0, 2).reshape(b, sc * chunk)
    vals, pos = cand.topk(min(s, sc * chunk), dim=1, largest=False, sorted=True)
    return vals, best.T.gather(1, pos // chunk) * chunk + pos % chunk


@dataclass
class Band:
    """One grid row's bank side (see `bank_band`) and its geometry."""

    y_lo: int
    ny: int
    u: torch.Tensor
    flat: torch.Tensor
    value: torch.Tensor
    mean: torch.Tensor
    wins: list[tuple[int, int]]  # per grid column, the inclusive x range of candidate corners
    n_pad: int
    brightness: float  # α·d of the brightness term, 0 when there is none

    def keys(self, gx: int, q32: torch.Tensor, qmean: torch.Tensor) -> torch.Tensor:
        """Approximate keys ||b||² - 2 q·b (+ α·d·(q̄ - b̄)²) of the candidates of column gx:
        [nx·ny·n_pad, B] for q32 [B, d] and query means qmean [B]."""
        lo, hi = self.wins[gx]
        d = q32.shape[-1]
        q = q32.new_zeros(q32.shape[0], self.u.shape[-1])
        q[:, :d] = -2.0 * q32
        q[:, d] = 1.0
        keys = _matmul(self.u[lo : hi + 1].reshape(-1, q.shape[1]), q)
        if self.brightness:
            gap = self.mean[lo : hi + 1].reshape(-1, 1) - qmean.unsqueeze(0)
            keys.addcmul_(gap, gap, value=self.brightness)
        return keys

    def to_index(self, gx: torch.Tensor | int, rows: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """Key-matrix rows of column(s) gx → flat bank indices (the rows are [x, y, bank] in C order)."""
        lo = torch.as_tensor([x for x, _ in self.wins], device=rows.device)[gx]
        off, bank_i = rows // self.n_pad, rows % self.n_pad
        return bank_i * (h * w) + (self.y_lo + off % self.ny) * w + (lo + off // self.ny)


def shortlists(
    band: Band,
    q32: torch.Tensor,
    qmean: torch.Tensor,
    exclude: torch.Tensor,
    chunk: int,
    s: int,
    batch: int,
    h: int,
    w: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per (query, column): the S smallest approximate keys and their flat indices ([M, G, S] each)."""
    m, g, _ = q32.shape
    approx = torch.full((m, g, s), math.inf, dtype=torch.float32, device=q32.device)
    slot = torch.zeros(m, g, s, dtype=torch.int64, device=q32.device)
    for start in range(0, m, batch):
        mb = slice(start, min(m, start + batch))
        ex_m = torch.nonzero(exclude[mb] >= 0).squeeze(1)
        ex_n = exclude[mb][ex_m]
        for gx in range(g):
            keys = band.keys(gx, q32[mb, gx], qmean[mb, gx])  # [nx·ny·n_pad, B]
            if ex_m.numel():
                keys.view(-1, band.n_pad, keys.shape[1])[:, ex_n, ex_m] = math.inf
            vals, r = _shortlist(keys, chunk, s)
            approx[mb, gx, : vals.shape[1]] = vals
            slot[mb, gx, : vals.shape[1]] = r
    cand = band.to_index(torch.arange(g, device=q32.device).view(1, g, 1), slot, h, w)
    return approx, cand.masked_fill_(~torch.isfinite(approx), INVALID)

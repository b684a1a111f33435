"""Exact K-nearest-neighbour search of photo patches in a bank of training photos, in a local window.

For every grid patch of every query photo the candidates are the patches of every bank photo
whose top-left corner lies within ±`search` pixels of the same position. Distance: squared
Euclidean distance of the photometrically normalised patches (`grid.PatchMetric`); ties by the
rule of `exact.py`.

How it is fast and still exact:
  1. Bank side, once per grid row ("band"): every bank patch that can be a candidate of that grid
     row, normalised, laid out [x, y, bank, d] so that the candidates of one grid position are one
     contiguous [candidates, d] matrix, plus their squared norms (~230 MB for CUFS, never 25 GB).
  2. Approximate keys ||b||² - 2 q·b of all candidates of a position for a batch of queries: one
     fp32 matrix product.
  3. A shortlist of the S = K + MARGIN smallest keys without sorting 32,000 numbers per row: the
     minimum of each chunk of L candidates, the S chunks with the smallest minima (the S smallest
     keys lie in them), then a top-S over those S·L keys.
  4. Flat candidates (constant patches, all normalised to zero under mean/meanstd: the white
     backgrounds) tie in thousands; they skip the keys, and the best by the ranking rule (closest
     gray level, then nearest the query's position, then lowest index) join the shortlist directly.
  5. Exact re-rank of the shortlist from the uint8 pixels (integers held exactly in float64).
  6. Proof per row: a fp32 key is within eps·(||q|| + ||b||)² of the exact one (eps = 2·(d+10)·2⁻²⁴,
     standard dot-product error bound with a factor 2 to spare). If even the candidates just
     outside the shortlist cannot beat the exact K-th distance, the shortlist holds the true top K.
     Otherwise (rare: dense near-ties) the row is redone with every candidate that could.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from tqdm import tqdm

from ide.pgm.exact import INVALID, best_flats, exact_dtype, flat_table, query_vectors, rerank
from ide.pgm.features import PatchFeatures
from ide.pgm.grid import PatchGrid, PatchMetric

MARGIN = 8  # shortlist length S = K + MARGIN
CHUNK = 48  # target length L of the chunks whose minima prune the candidates
EXACT_ROWS = 2048  # (query, position) rows re-ranked together (bounds the float64 gather)


@dataclass(frozen=True)
class Neighbours:
    """The K nearest candidates of every patch of every query photo.

    Attributes:
        index: int64 [M, P, K] flat bank index n·H·W + y·W + x of each candidate's top-left pixel.
        dist: float64 [M, P, K] exact squared distances of the normalised patches, ascending.
        widened: number of (query, patch) rows whose shortlist failed the proof and was widened.
    """

    index: torch.Tensor
    dist: torch.Tensor
    widened: int


def window(y0: int, limit: int, search: int) -> tuple[int, int]:
    """Inclusive range of candidate top-left coordinates around `y0` (clipped to [0, limit])."""
    return max(0, y0 - search), min(limit, y0 + search)


def min_candidates(grid: PatchGrid, search: int, bank_size: int) -> int:
    """The fewest candidates any grid patch has (a corner patch, clipped window)."""

    def width(pos: tuple[int, ...], limit: int) -> int:
        return min(hi - lo + 1 for lo, hi in (window(v, limit, search) for v in pos))

    return width(grid.ys, grid.height - grid.patch) * width(grid.xs, grid.width - grid.patch) * bank_size


def _box_sums(region: torch.Tensor, p: int) -> torch.Tensor:
    """Sums over every p x p window: float64 [N, R, W] → [N, R-p+1, W-p+1] (exact for integers)."""
    c = torch.nn.functional.pad(region.cumsum(1).cumsum(2), (1, 0, 1, 0))
    return c[:, p:, p:] - c[:, :-p, p:] - c[:, p:, :-p] + c[:, :-p, :-p]


def _bank_band(
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
            only (the brightness term is added by `_Band.keys`).
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
class _Band:
    """One grid row's bank side (see `_bank_band`) and its geometry."""

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


def _shortlists(
    band: _Band,
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


def knn_search(
    bank: torch.Tensor,
    queries: torch.Tensor,
    grid: PatchGrid,
    search: int,
    k: int,
    metric: PatchMetric,
    exclude: torch.Tensor,
    batch: int = 64,
    progress: bool = False,
    feats: PatchFeatures | None = None,
) -> Neighbours:
    """Exact K nearest bank patches of every grid patch of every query.

    Args:
        bank: uint8 [N, H, W] gray bank photos (on the compute device).
        queries: uint8 [M, H, W] gray query photos, same size and device.
        grid: the patch grid of H x W.
        search: window half-width in pixels; k: neighbours kept; metric: the patch distance.
        exclude: int64 [M], a bank index that query m must not use, or -1.
        batch: queries per matrix product.
        feats: further representations of the patches (`ide.pgm.features`), whose weighted
            squared distances add to the intensity distance; None: intensity only.
    Returns:
        `Neighbours` with index/dist [M, P, K].
    """
    dev = bank.device
    n, h, w = bank.shape
    m = queries.shape[0]
    p, d = grid.patch, grid.dim
    groups = max(1, round(n / CHUNK))
    chunk = -(-n // groups)
    n_pad = groups * chunk
    s = k + MARGIN
    bank_rows = bank.reshape(-1).unfold(0, p, 1)  # row r: the p pixels from flat position r
    qpix = grid.extract(queries)  # uint8 [M, P, d]
    g = len(grid.xs)
    index = torch.empty(m, grid.count, k, dtype=torch.int64, device=dev)
    dist = torch.empty(m, grid.count, k, dtype=torch.float64, device=dev)
    widened = 0
    ny_max = min(2 * search + 1, h - p + 1)
    e = d + (feats.dim if feats is not None else 0)
    buf = torch.empty((w - p + 1) * ny_max * n_pad * width(e), dtype=torch.float32, device=dev)
    for gy, y0 in enumerate(tqdm(grid.ys, desc="stage 1 search", unit="row", disable=not progress)):
        y_lo, y_hi = window(y0, h - p, search)
        band = _Band(
            y_lo,
            y_hi - y_lo + 1,
            *_bank_band(bank, y_lo, y_hi - y_lo + 1, grid, metric, n_pad, buf, feats),
            [window(x0, w - p, search) for x0 in grid.xs],
            n_pad,
            metric.brightness * d if metric.norm == "mean" else 0.0,
        )
        rows = slice(gy * g, (gy + 1) * g)
        qint = qpix[:, rows].to(torch.int64)  # [M, G, d]
        q32, qn, qmean = query_vectors(qint, metric)
        qf = None
        if feats is not None:  # the feature columns join the vectors and norms
            corners = torch.arange(m, device=dev).view(m, 1) * (h * w) + torch.tensor(
                [y0 * w + x0 for x0 in grid.xs], device=dev
            )
            qf = feats.gather(feats.query, corners)  # [M, G, C, s²]
            q32 = torch.cat([q32, feats.scaled(qf)], -1)
            qn = qn + feats.norms(qf)
            qf = qf.reshape(m * g, *qf.shape[2:])
        approx, cand = _shortlists(band, q32, qmean, exclude, chunk, s, batch, h, w)
        # Flat candidates skip the keys; the best by the ranking rule join the shortlist (with room
        # for one excluded bank photo's: up to (2·search+1)·ny of one value).
        keep = k + ((2 * search + 1) * band.ny if bool((exclude >= 0).any()) else 0)
        origins = [y0 * w + x0 for x0 in grid.xs]
        fl_index, fl_value, fl_off2 = flat_table(band.flat, band.value, band.wins, y_lo, h, w, keep, origins)
        origin = torch.tensor(origins, device=dev).repeat(m)  # [M·G], row m·G + g
        q64 = qint.to(exact_dtype(d)).reshape(m * g, d)
        best_d = torch.empty(m * g, k, dtype=torch.float64, device=dev)
        best_i = torch.empty(m * g, k, dtype=torch.int64, device=dev)
        per = max(1, EXACT_ROWS // g)
        parts = []
        for q0 in range(0, m, per):
            qs = slice(q0, min(m, q0 + per))
            flats = best_flats(fl_index, fl_value, fl_off2, qint[qs].sum(-1), d, exclude[qs], h * w, k)
            part = torch.cat([cand[qs], flats], -1).reshape(-1, s + flats.shape[-1])
            rr = slice(q0 * g, qs.stop * g)
            best_d[rr], best_i[rr] = rerank(
                bank_rows, w, part, q64[rr], metric, k, origin[rr], h, _feature_term(feats, qf, rr)
            )
            parts.append(part)
        merged = torch.cat(parts)  # [M·G, S + flats]
        widened += _prove(
            band,
            approx.reshape(m * g, s),
            merged,
            best_d,
            best_i,
            qn.reshape(-1),
            q32,
            qmean,
            q64,
            exclude,
            origin,
            bank_rows,
            metric,
            k,
            h,
            w,
            feats,
            qf,
        )
        index[:, rows] = best_i.view(m, g, k)
        dist[:, rows] = best_d.view(m, g, k)
    return Neighbours(index=index, dist=dist, widened=widened)


def _feature_term(feats: PatchFeatures | None, qf: torch.Tensor | None, rows: slice):
    """idx → the feature distances of query rows `rows` (qf [M·G, C, s²]) to candidates idx; or None."""
    return None if feats is None else (lambda idx: feats.distances(qf[rows], idx))


def _prove(
    band: _Band,
    approx: torch.Tensor,
    merged: torch.Tensor,
    best_d: torch.Tensor,
    best_i: torch.Tensor,
    qn: torch.Tensor,
    q32: torch.Tensor,
    qmean: torch.Tensor,
    q64: torch.Tensor,
    exclude: torch.Tensor,
    origin: torch.Tensor,
    bank_rows: torch.Tensor,
    metric: PatchMetric,
    k: int,
    h: int,
    w: int,
    feats: PatchFeatures | None = None,
    qf: torch.Tensor | None = None,
) -> int:
    """Check every row's shortlist; redo in place (best_d, best_i) the rows the check cannot clear.

    A candidate c outside the shortlist has key a_c ≥ a_S (the S-th key) and an exact key
    k_c = ||b||² - 2 q·b ≥ a_c - eps·(||q|| + ||b||)², and also k_c ≥ (||b|| - ||q||)² - ||q||².
    With T the exact K-th key of the shortlist, D_K = T + ||q||² and R = ||q|| + sqrt(D_K + θ):
    a candidate with ||b|| > R has k_c > T; one with ||b|| ≤ R has k_c > T when
    a_S - T > eps·(||q|| + R)². Rows failing that get every candidate with a_c ≤ T + eps·(||q|| + R)²
    re-ranked exactly. Returns the number of such rows.
    Under "mean" with brightness, q and b are the centred patches and the keys carry β(q̄ - b̄)²
    (β = α·d), added in fp32 from fp32 means (each within 255·2⁻²⁴ of the exact one). A candidate
    that can beat T has β(q̄ - b̄)² ≤ D_K, so that term is off by at most
    2·sqrt(β·D_K)·3.1e-5 + 3e-7·D_K; the bound carries it (with a factor to spare).
    """
    d = q32.shape[-1]
    g = len(band.wins)
    eps = 2.0 * (d + 10) * 2.0**-24
    dk = best_d[:, -1]
    theta = 1e-6 * (1.0 + dk.abs())
    reach = (dk + theta).clamp_min(0)
    bound = eps * (2.0 * qn.sqrt() + reach.sqrt()).square() + 1e-9 * (qn + dk + 1)
    if band.brightness:
        bound = bound + 1e-4 * (band.brightness * reach).sqrt() + 1e-6 * reach
    fail = torch.nonzero(~(approx[:, -1].double() - (dk - qn) > bound)).squeeze(1).tolist()
    for row in fail:
        mi, gx = divmod(row, g)
        keys = band.keys(gx, q32[mi, gx].unsqueeze(0), qmean[mi, gx].unsqueeze(0)).squeeze(1)
        if exclude[mi] >= 0:
            keys.view(-1, band.n_pad)[:, exclude[mi]] = math.inf
        r = torch.nonzero(keys.double() <= dk[row] - qn[row] + bound[row]).squeeze(1)
        extra = band.to_index(gx, r, h, w)
        allidx = torch.unique(torch.cat([merged[row], extra]))
        best_d[row], best_i[row] = rerank(
            bank_rows,
            w,
            allidx[None],
            q64[row : row + 1],
            metric,
            k,
            origin[row : row + 1],
            h,
            _feature_term(feats, qf, slice(row, row + 1)),
        )
    return len(fail)

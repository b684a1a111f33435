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

from ide.pgm.bands import Band, bank_band, shortlists, width
from ide.pgm.exact import best_flats, exact_dtype, flat_table, query_vectors, rerank
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
    cache: dict | None = None,
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
        cache: a dict the caller keeps for one bank, grid and metric; the bank side's flat-candidate
            tables are kept in it and reused by later calls (None: nothing kept).
        feats: further representations of the patches (`ide.pgm.features`, bank and these
            queries), whose weighted squared distances add to the intensity distance; None:
            intensity only. The cache must belong to the same bank features.
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
        band = Band(
            y_lo,
            y_hi - y_lo + 1,
            *bank_band(bank, y_lo, y_hi - y_lo + 1, grid, metric, n_pad, buf, feats),
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
        approx, cand = shortlists(band, q32, qmean, exclude, chunk, s, batch, h, w)
        # Flat candidates skip the keys; the best by the ranking rule join the shortlist (with room
        # for one excluded bank photo's: up to (2·search+1)·ny of one value).
        keep = k + ((2 * search + 1) * band.ny if bool((exclude >= 0).any()) else 0)
        origins = [y0 * w + x0 for x0 in grid.xs]
        tables = None if cache is None else cache.get(("flats", y0, keep))
        if tables is None:
            tables = flat_table(band.flat, band.value, band.wins, y_lo, h, w, keep, origins)
            if cache is not None:
                cache[("flats", y0, keep)] = tables
        fl_index, fl_value, fl_off2 = tables
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
            _feature_term(feats, qf),
        )
        index[:, rows] = best_i.view(m, g, k)
        dist[:, rows] = best_d.view(m, g, k)
    return Neighbours(index=index, dist=dist, widened=widened)


def _feature_term(feats: PatchFeatures | None, qf: torch.Tensor | None, rows: slice | None = None):
    """The feature distances (`PatchFeatures.distances`) of query rows `rows` (qf [M·G, C, s²]) to
    candidates idx, as a function idx → float64, for `rerank`; None without features. With rows
    None, a function of (rows, idx)."""
    if feats is None:
        return None
    if rows is None:
        return lambda r: lambda idx: feats.distances(qf[r], idx)
    return lambda idx: feats.distances(qf[rows], idx)


def _prove(
    band: Band,
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
    feature_term=None,
) -> int:
    """Check every row's shortlist; redo in place (best_d, best_i) the rows the check cannot clear.

    A candidate c outside the shortlist has key a_c ≥ a_S (the S-th key) and an exact key
    k_c = ||b||² - 2 q·b ≥ a_c - eps·(||q|| + ||b||)², and also k_c ≥ (||b|| - ||q||)² - ||q||².
    With T the exact K-th key of the shortlist, D_K = T + ||q||² and R = ||q|| + sqrt(D_K + θ):
    a candidate with ||b|| > R has k_c > T; one with ||b|| ≤ R has k_c > T when
    a_S - T > eps·(||q|| + R)². Rows failing that get every candidate with a_c ≤ T + eps·(||q|| + R)²
    re-ranked exactly (with `feature_term(rows)`, the features' term, added to their distances). Returns
    the number of such rows.
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
        one = slice(row, row + 1)
        term = None if feature_term is None else feature_term(one)
        best_d[row], best_i[row] = rerank(
            bank_rows, w, allidx[None], q64[one], metric, k, origin[one], h, term
        )
    return len(fail)

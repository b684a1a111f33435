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
     backgrounds) are exactly tied with each other; they skip the keys and the lowest-index ones
     join the shortlist directly.
  5. Exact re-rank of the shortlist from the uint8 pixels (integer arithmetic, then float64).
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

from ide.pgm.exact import INVALID, best_flats, flat_table, query_vectors, rerank
from ide.pgm.grid import PatchGrid, PatchMetric

MARGIN = 8  # shortlist length S = K + MARGIN
CHUNK = 48  # target length L of the chunks whose minima prune the candidates
EXACT_ROWS = 2048  # (query, position) rows re-ranked together (bounds the int64 gather)


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


def _bank_band(bank: torch.Tensor, y_lo: int, ny: int, grid: PatchGrid, metric: PatchMetric, n_pad: int):
    """Normalised bank patches with top rows y_lo .. y_lo+ny-1, every x.

    Returns:
        u: float32 [X, ny, n_pad, d], each row the fp32 rounding of the exactly normalised patch
            (relative error ≤ 2 units of roundoff per pixel); padding rows zero.
        nb: float32 [X, ny, n_pad] squared norms of the rows of u; +inf for padding and flat rows.
        flat: bool [X, ny, n] constant patches (only for mean/meanstd, where they all tie);
        value: int64 [X, ny, n] their gray value.
    """
    n, _, w = bank.shape
    p, d = grid.patch, grid.dim
    region = bank[:, y_lo : y_lo + ny + p - 1, :].to(torch.float32)
    x_count = w - p + 1
    u = torch.empty(x_count, ny, n_pad, d, dtype=torch.float32, device=bank.device)
    u[:, :, n:] = 0.0
    body = u[:, :, :n]
    body.unflatten(-1, (p, p)).copy_(region.unfold(1, p, 1).unfold(2, p, 1).permute(2, 1, 0, 3, 4))
    flat = torch.zeros(x_count, ny, n, dtype=torch.bool, device=bank.device)
    value = body[..., 0].to(torch.int64)
    if metric.norm != "none":
        flat = body.amax(-1) == body.amin(-1)
        # Sums of ≤ 258 uint8 values and d·b - Σb are exact integers in fp32. The stored vectors
        # are within a few units of roundoff (relative to their norm) of the exact ones.
        s1 = body.sum(-1, keepdim=True)
        if metric.norm == "mean":
            body.mul_(d).sub_(s1)
            if metric.brightness:
                body.add_(s1 * metric.brightness**0.5)
            body.div_(d)
        else:
            body.mul_(d).sub_(s1)
            bb = torch.linalg.vector_norm(body, dim=-1, keepdim=True, dtype=torch.float64).square()
            body.mul_((1.0 / (d * torch.sqrt(bb / d**3 + metric.floor**2))).float())
    nb = torch.linalg.vector_norm(u, dim=-1).square_()
    nb[:, :, n:] = math.inf
    nb[:, :, :n].masked_fill_(flat, math.inf)
    return u, nb, flat, value


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
) -> Neighbours:
    """Exact K nearest bank patches of every grid patch of every query.

    Args:
        bank: uint8 [N, H, W] gray bank photos (on the compute device).
        queries: uint8 [M, H, W] gray query photos, same size and device.
        grid: the patch grid of H x W.
        search: window half-width in pixels; k: neighbours kept; metric: the patch distance.
        exclude: int64 [M], a bank index that query m must not use, or -1.
        batch: queries per matrix product.
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
    eps = 2.0 * (d + 10) * 2.0**-24
    bank_rows = bank.reshape(-1).unfold(0, p, 1)  # row r: the p pixels from flat position r
    qpix = grid.extract(queries)  # uint8 [M, P, d]
    nxg = len(grid.xs)
    any_ex = bool((exclude >= 0).any())
    index = torch.empty(m, grid.count, k, dtype=torch.int64, device=dev)
    dist = torch.empty(m, grid.count, k, dtype=torch.float64, device=dev)
    widened = 0
    for gy, y0 in enumerate(tqdm(grid.ys, desc="stage 1 search", unit="row", disable=not progress)):
        y_lo, y_hi = window(y0, h - p, search)
        ny = y_hi - y_lo + 1
        u, nb, flat, value = _bank_band(bank, y_lo, ny, grid, metric, n_pad)
        rows = slice(gy * nxg, (gy + 1) * nxg)
        qint = qpix[:, rows].to(torch.int64)  # [M, nxg, d]
        q32, qn = query_vectors(qint, metric)
        q64 = qint.to(torch.float64)
        approx = torch.full((m, nxg, s), math.inf, dtype=torch.float32, device=dev)
        slot = torch.zeros(m, nxg, s, dtype=torch.int64, device=dev)  # row of the position's key matrix
        wins = [window(x0, w - p, search) for x0 in grid.xs]
        for start in range(0, m, batch):
            mb = slice(start, min(m, start + batch))
            ex_m = torch.nonzero(exclude[mb] >= 0).squeeze(1)
            ex_n = exclude[mb][ex_m]
            for gx, (x_lo, x_hi) in enumerate(wins):
                keys = torch.addmm(
                    nb[x_lo : x_hi + 1].reshape(-1, 1),
                    u[x_lo : x_hi + 1].reshape(-1, d),
                    q32[mb, gx].T.contiguous(),
                    alpha=-2.0,
                )  # [nx·ny·n_pad, B]
                if ex_m.numel():
                    keys.view(-1, n_pad, keys.shape[1])[:, ex_n, ex_m] = math.inf
                vals, r = _shortlist(keys, chunk, s)
                approx[mb, gx, : vals.shape[1]] = vals
                slot[mb, gx, : vals.shape[1]] = r
        # Key-matrix rows → flat bank indices (a position's rows are [x, y, bank] in C order).
        x_los = torch.tensor([lo for lo, _ in wins], device=dev).view(1, nxg, 1)
        off, bi = slot // n_pad, slot % n_pad
        cand = bi * (h * w) + (y_lo + off % ny) * w + (x_los + off // ny)
        cand.masked_fill_(~torch.isfinite(approx), INVALID)
        # Flat candidates skip the keys; the best by brightness join the shortlist (room for one excluded
        # bank photo's: up to (2·search+1)·ny of one value).
        keep = k + ((2 * search + 1) * ny if any_ex else 0)
        fl_index, fl_value = flat_table(flat, value, wins, y_lo, h, w, keep)
        merged_rows = []
        qsum = qint.sum(-1)  # [M, nxg]
        best_d = torch.empty(m * nxg, k, dtype=torch.float64, device=dev)
        best_i = torch.empty(m * nxg, k, dtype=torch.int64, device=dev)
        rows_per = max(1, EXACT_ROWS // nxg)
        for q0 in range(0, m, rows_per):
            qs = slice(q0, min(m, q0 + rows_per))
            flats = best_flats(fl_index, fl_value, qsum[qs], d, exclude[qs], h * w, k)
            merged = torch.cat([cand[qs], flats], -1).reshape(-1, s + flats.shape[-1])
            rr = slice(q0 * nxg, qs.stop * nxg)
            best_d[rr], best_i[rr] = rerank(bank_rows, w, merged, q64[qs].reshape(-1, d), metric, k)
            merged_rows.append(merged)
        q64_rows = q64.reshape(m * nxg, d)
        # Proof: outside keys are ≥ the S-th key, each within eps·(||q||+||b||)² of its exact value.
        qn_rows = qn.reshape(-1)
        dk = best_d[:, -1]
        theta = 1e-6 * (1.0 + dk.abs())
        bound = eps * (2.0 * qn_rows.sqrt() + (dk + theta).clamp_min(0).sqrt()).square() + 1e-9 * (
            qn_rows + dk + 1
        )
        ok = approx.reshape(m * nxg, s)[:, -1].double() - (dk - qn_rows) > bound
        for row in torch.nonzero(~ok).squeeze(1).tolist():
            mi, gx = divmod(row, nxg)
            x_lo, x_hi = wins[gx]
            keys = torch.addmv(
                nb[x_lo : x_hi + 1].reshape(-1), u[x_lo : x_hi + 1].reshape(-1, d), q32[mi, gx], alpha=-2.0
            )
            if exclude[mi] >= 0:
                keys.view(-1, n_pad)[:, exclude[mi]] = math.inf
            r = torch.nonzero(keys.double() <= dk[row] - qn_rows[row] + bound[row]).squeeze(1)
            off, bi = r // n_pad, r % n_pad
            extra = bi * (h * w) + (y_lo + off % ny) * w + (x_lo + off // ny)
            mrow = merged_rows[row // (rows_per * nxg)][row % (rows_per * nxg)]
            allidx = torch.unique(torch.cat([mrow, extra]))
            best_d[row], best_i[row] = rerank(bank_rows, w, allidx[None], q64_rows[row : row + 1], metric, k)
            widened += 1
        del u, nb, flat, value, merged_rows
        index[:, rows] = best_i.view(m, nxg, k)
        dist[:, rows] = best_d.view(m, nxg, k)
    return Neighbours(index=index, dist=dist, widened=widened)

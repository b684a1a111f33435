"""Exact distances, the ranking rule, and flat candidates for the stage-1 search.

Ranking rule (what "the K nearest" means, here and in `bench/stage1_reference.py`): by the squared
distance of the normalised patches; among equal distances, by the brightness difference
|Σq - Σb|; then by the smaller flat index n·H·W + y·W + x. The brightness rule matters for
flat (constant) patches: under mean or mean/contrast normalisation every flat patch is the zero
vector, so black hair and a white background tie; the brightness rule picks the flat candidates
closest in gray level (black for black), instead of whichever photo comes first in the bank.
"""

from __future__ import annotations

import math

import torch

from ide.pgm.grid import PatchMetric

INVALID = -1  # index of a padding / excluded slot


def exact_distances(pix: torch.Tensor, query: torch.Tensor, metric: PatchMetric) -> torch.Tensor:
    """Squared distances of normalised patches, computed from exact integer sums so that ties are exact.

    Args:
        pix: float [..., C, d] candidate patches (integer gray values 0..255); float32 when
            d·255² < 2²⁴ (every partial sum is then an exact integer), else float64.
        query: float [..., d] query patches, same dtype.
    Returns:
        float64 [..., C], from Σb, Σb², Σq, Σq², q·b: none ||q-b||²; mean ||q-b||² - (1-α)(Σq-Σb)²/d
        (α = metric.brightness); meanstd from ||Q||², ||B||², Q·B with Q = d·q - Σq, B = d·b - Σb.
    """
    d = pix.shape[-1]
    sb = pix.sum(-1).double()
    bb = (pix * pix).sum(-1).double()
    qb = (pix @ query.unsqueeze(-1)).squeeze(-1).double()
    sq = query.sum(-1, keepdim=True).double()
    qq = (query * query).sum(-1, keepdim=True).double()
    raw = qq - 2.0 * qb + bb  # ||q - b||², an exact integer
    if metric.norm == "none":
        return raw
    if metric.norm == "mean":
        if not metric.brightness:
            return (d * raw - (sq - sb).square()) / d  # an exact integer over d: equal cases tie exactly
        return raw - (1.0 - metric.brightness) * (sq - sb).square() / d
    big_qq, big_bb, big_qb = (
        d * d * qq - d * sq.square(),
        d * d * bb - d * sb.square(),
        d * d * qb - d * sq * sb,
    )
    f2 = metric.floor**2
    sb2, sq2 = big_bb / d**3 + f2, big_qq / d**3 + f2
    return (big_qq / sq2 + big_bb / sb2 - 2.0 * big_qb / torch.sqrt(sq2 * sb2)) / (d * d)


def exact_dtype(d: int) -> torch.dtype:
    """float32 holds every integer sum of d products of gray values exactly when d·255² < 2²⁴."""
    return torch.float32 if d * 255 * 255 < 2**24 else torch.float64


def query_vectors(q: torch.Tensor, metric: PatchMetric) -> tuple[torch.Tensor, torch.Tensor]:
    """int64 query patches [..., d] → (fp32 normalised patches [..., d], float64 squared norms [...]).

    Each fp32 value is the rounding of the (float64-accurate) normalised value.
    """
    if metric.norm == "none":
        return q.to(torch.float32), q.square().sum(-1).to(torch.float64)
    d = q.shape[-1]
    sq = q.sum(-1, keepdim=True).to(torch.float64)
    big_q = d * q.to(torch.float64) - sq
    qq = big_q.square().sum(-1)
    if metric.norm == "mean":
        vec = (big_q + metric.brightness**0.5 * sq) / d
        return vec.to(torch.float32), (qq + metric.brightness * d * sq.squeeze(-1).square()) / (d * d)
    scale = 1.0 / (d * torch.sqrt(qq / d**3 + metric.floor**2))
    return (big_q * scale.unsqueeze(-1)).to(torch.float32), qq * scale.square()


def select(
    dist: torch.Tensor, tie: torch.Tensor, index: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The k best along the last dim by (dist, tie, index), INVALID index last (three stable sorts)."""
    order = index.masked_fill(index < 0, torch.iinfo(torch.int64).max).argsort(dim=-1, stable=True)
    dist, tie, index = dist.gather(-1, order), tie.gather(-1, order), index.gather(-1, order)
    order = tie.argsort(dim=-1, stable=True)
    dist, index = dist.gather(-1, order), index.gather(-1, order)
    order = dist.argsort(dim=-1, stable=True)[..., :k]
    return dist.gather(-1, order), index.gather(-1, order)


def rerank(
    bank_rows: torch.Tensor,
    row_step: int,
    idx: torch.Tensor,
    query: torch.Tensor,
    metric: PatchMetric,
    k: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact distances of candidates idx [R, C] (INVALID = none) to queries [R, d]; the k best.

    Args:
        bank_rows: uint8 [L, p] view of the flat bank, row r = the p pixels from flat position r.
        row_step: the image width W (a patch is p such rows, W apart).
        idx: int64 [R, C] flat candidate indices; query: [R, d] query patches in `exact_dtype(d)`.
    Returns:
        (dist float64 [R, k], index int64 [R, k]).
    """
    p = bank_rows.shape[1]
    starts = idx.clamp_min(0).unsqueeze(-1) + torch.arange(p, device=idx.device) * row_step
    pix = bank_rows.index_select(0, starts.reshape(-1)).view(*idx.shape, p * p).to(query.dtype)
    dist = exact_distances(pix, query, metric).masked_fill(idx < 0, math.inf)
    tie = (query.sum(-1, keepdim=True) - pix.sum(-1)).abs()
    return select(dist, tie, idx, k)


def flat_table(
    flat: torch.Tensor, value: torch.Tensor, wins: list[tuple[int, int]], y_lo: int, h: int, w: int, keep: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The flat candidates of each position of a band, at most `keep` of each gray value (lowest indices).

    Args:
        flat, value: bool / int64 [X, ny, N]: which bank patches of the band are constant, and their value.
        wins: per grid position, the inclusive x range of candidate corners.
    Returns:
        (index int64 [G, F] INVALID-padded, value int64 [G, F]) for the G positions.
    """
    lists = []
    for lo, hi in wins:
        nz = torch.nonzero(flat[lo : hi + 1].permute(2, 1, 0))  # (n, yi, xi), i.e. in index order
        val = value[lo + nz[:, 2], nz[:, 1], nz[:, 0]]
        idx = nz[:, 0] * (h * w) + (y_lo + nz[:, 1]) * w + (lo + nz[:, 2])
        order = torch.argsort(val, stable=True)
        val, idx = val[order], idx[order]
        _, counts = torch.unique_consecutive(val, return_counts=True)
        rank = torch.arange(len(val), device=val.device) - torch.repeat_interleave(
            torch.cumsum(counts, 0) - counts, counts
        )
        lists.append((idx[rank < keep], val[rank < keep]))
    size = max(1, max(len(i) for i, _ in lists))
    index = torch.full((len(wins), size), INVALID, dtype=torch.int64, device=flat.device)
    values = torch.zeros((len(wins), size), dtype=torch.int64, device=flat.device)
    for g, (i, v) in enumerate(lists):
        index[g, : len(i)], values[g, : len(v)] = i, v
    return index, values


def best_flats(
    index: torch.Tensor,
    values: torch.Tensor,
    qsum: torch.Tensor,
    d: int,
    exclude: torch.Tensor,
    hw: int,
    k: int,
) -> torch.Tensor:
    """Per query row, the k best flat candidates: all at the same distance, so by (|Σq - d·v|, index).

    Args:
        index, values: [G, F] from `flat_table`; qsum: int64 [M, G] query patch sums;
        exclude: int64 [M] bank photo to skip or -1; hw: H·W.
    Returns:
        int64 [M, G, min(k, F)] flat candidate indices (INVALID where there are fewer).
    """
    key = (qsum.unsqueeze(-1) - d * values.unsqueeze(0)).abs()  # [M, G, F]
    bad = (index < 0).unsqueeze(0) | (index.unsqueeze(0) // hw == exclude.view(-1, 1, 1))
    big = torch.iinfo(torch.int64).max
    comp = (key * (int(index.max()) + 1) + index.unsqueeze(0)).masked_fill(bad, big)
    best = comp.topk(min(k, comp.shape[-1]), dim=-1, largest=False, sorted=True)
    out = index.unsqueeze(0).expand_as(comp).gather(-1, best.indices)
    return out.masked_fill(best.values == big, INVALID)

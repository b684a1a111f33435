"""Exact distances, the ranking rule, and flat candidates for the stage-1 search.

Ranking rule (what "the K nearest" means, here and in `reference.py`): by the squared
distance of the normalised patches; among equal distances, by the brightness difference
|Σq - Σb|; then by the squared offset of the candidate's corner from the query's; then by the
smaller flat index n·H·W + y·W + x. The rules matter for flat (constant) patches: under mean or
mean/contrast normalisation every flat patch is the zero vector, so black hair and a white
background tie. The brightness rule picks the flat candidates closest in gray level (black for
black); the offset rule then takes them at the query's own position from K different training
photos, whose sketches average out, instead of K shifted copies of one photo's patch (which
would paste one artist's stray mark, a signature or a frame edge, into every coarse sketch).
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


def query_vectors(q: torch.Tensor, metric: PatchMetric) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """int64 query patches [..., d] → (fp32 normalised patches [..., d], float64 squared norms [...],
    fp32 patch means [...]).

    Each fp32 value is the rounding of the (float64-accurate) normalised value. Under "mean" the
    vectors are the centred patches only: the brightness term α·d·(q̄ - b̄)² of the distance is
    added to the keys elementwise (`Band.keys`), so that the large patch means never enter the
    fp32 dot products (their rounding error would swamp the small distances of near-flat patches).
    """
    sq = q.sum(-1, keepdim=True).to(torch.float64)
    d = q.shape[-1]
    mean = (sq.squeeze(-1) / d).to(torch.float32)
    if metric.norm == "none":
        return q.to(torch.float32), q.square().sum(-1).to(torch.float64), mean
    big_q = d * q.to(torch.float64) - sq
    qq = big_q.square().sum(-1)
    if metric.norm == "mean":
        return (big_q / d).to(torch.float32), qq / (d * d), mean
    scale = 1.0 / (d * torch.sqrt(qq / d**3 + metric.floor**2))
    return (big_q * scale.unsqueeze(-1)).to(torch.float32), qq * scale.square(), mean


def offset2(index: torch.Tensor, origin: torch.Tensor | int, h: int, w: int) -> torch.Tensor:
    """Squared pixel offset of candidate corners `index` (flat n·H·W + y·W + x) from the query corner
    `origin` (flat y·W + x, broadcast against index)."""
    pos = index.clamp_min(0) % (h * w)
    dy, dx = pos // w - origin // w, pos % w - origin % w
    return dy * dy + dx * dx


def select(
    dist: torch.Tensor, tie: torch.Tensor, off2: torch.Tensor, index: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The k best along the last dim by (dist, tie, off2, index), INVALID index last (stable sorts).

    Ties of distance and brightness (in practice flat patches) go to the candidates nearest the
    query's own position, and among those to the lowest bank photo: K different training photos at
    the same place, never K shifted copies of one photo's patch.
    """
    order = index.masked_fill(index < 0, torch.iinfo(torch.int64).max).argsort(dim=-1, stable=True)
    dist, tie, off2, index = (t.gather(-1, order) for t in (dist, tie, off2, index))
    order = off2.argsort(dim=-1, stable=True)
    dist, tie, index = (t.gather(-1, order) for t in (dist, tie, index))
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
    origin: torch.Tensor,
    height: int,
    extra=None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact distances of candidates idx [R, C] (INVALID = none) to queries [R, d]; the k best.

    Args:
        bank_rows: uint8 [L, p] view of the flat bank, row r = the p pixels from flat position r.
        row_step: the image width W (a patch is p such rows, W apart).
        idx: int64 [R, C] flat candidate indices; query: [R, d] query patches in `exact_dtype(d)`.
        origin: int64 [R] flat corner y·W + x of each query patch; height: image height H.
        extra: None, or a function idx [R, C] → float64 [R, C] added to the intensity distances
            (the further representations' term, `PatchFeatures.distances`).
    Returns:
        (dist float64 [R, k], index int64 [R, k]).
    """
    p = bank_rows.shape[1]
    starts = idx.clamp_min(0).unsqueeze(-1) + torch.arange(p, device=idx.device) * row_step
    pix = bank_rows.index_select(0, starts.reshape(-1)).view(*idx.shape, p * p).to(query.dtype)
    dist = exact_distances(pix, query, metric)
    if extra is not None:
        dist = dist + extra(idx)
    dist = dist.masked_fill(idx < 0, math.inf)
    tie = (query.sum(-1, keepdim=True) - pix.sum(-1)).abs()
    return select(dist, tie, offset2(idx, origin.unsqueeze(-1), height, row_step), idx, k)


def flat_table(
    flat: torch.Tensor,
    value: torch.Tensor,
    wins: list[tuple[int, int]],
    y_lo: int,
    h: int,
    w: int,
    keep: int,
    origins: list[int],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The flat candidates of each position of a band, at most `keep` of each gray value (the first
    by (offset from the query corner, index)).

    Args:
        flat, value: bool / int64 [X, ny, N]: which bank patches of the band are constant, and their value.
        wins: per grid position, the inclusive x range of candidate corners.
        origins: per grid position, the flat corner y·W + x of its query patch.
    Returns:
        (index int64 [G, F] INVALID-padded, value int64 [G, F], off2 int64 [G, F]) for the G positions.
    """
    lists = []
    for (lo, hi), origin in zip(wins, origins):
        nz = torch.nonzero(flat[lo : hi + 1].permute(2, 1, 0))  # (n, yi, xi), i.e. in index order
        val = value[lo + nz[:, 2], nz[:, 1], nz[:, 0]]
        idx = nz[:, 0] * (h * w) + (y_lo + nz[:, 1]) * w + (lo + nz[:, 2])
        order = torch.argsort(offset2(idx, origin, h, w), stable=True)
        val, idx = val[order], idx[order]
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
    off2 = offset2(index, torch.tensor(origins, device=flat.device).unsqueeze(1), h, w)
    return index, values, off2


def best_flats(
    index: torch.Tensor,
    values: torch.Tensor,
    off2: torch.Tensor,
    qsum: torch.Tensor,
    d: int,
    exclude: torch.Tensor,
    hw: int,
    k: int,
) -> torch.Tensor:
    """Per query row, the k best flat candidates: all at the same distance, so by (|Σq - d·v|, offset², index).

    Args:
        index, values, off2: [G, F] from `flat_table`; qsum: int64 [M, G] query patch sums;
        exclude: int64 [M] bank photo to skip or -1; hw: H·W.
    Returns:
        int64 [M, G, min(k, F)] flat candidate indices (INVALID where there are fewer).
    """
    key = (qsum.unsqueeze(-1) - d * values.unsqueeze(0)).abs()  # [M, G, F]
    bad = (index < 0).unsqueeze(0) | (index.unsqueeze(0) // hw == exclude.view(-1, 1, 1))
    big = torch.iinfo(torch.int64).max
    span = int(off2.max()) + 1
    comp = ((key * span + off2.unsqueeze(0)) * (int(index.max()) + 1) + index.unsqueeze(0)).masked_fill(
        bad, big
    )
    best = comp.topk(min(k, comp.shape[-1]), dim=-1, largest=False, sorted=True)
    out = index.unsqueeze(0).expand_as(comp).gather(-1, best.indices)
    return out.masked_fill(best.values == big, INVALID)

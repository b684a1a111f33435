"""Markov weight fields (Zhou, Kuang & Wong, CVPR 2012): the joint weight solve.

Each output sketch patch is z_i = S_i w_i, a convex combination (w_i ≥ 0, Σ w_i = 1) of its K
candidate sketch patches. The weights of all patches minimise the convex quadratic

    J(w) = Σ_i ||x_i - P_i w_i||² + λ Σ_(i,j overlapping) ||O_ij z_i - O_ji z_j||²

(photo fidelity, plus agreement of every pair of overlapping sketch patches on their overlap).
Solved by block-coordinate descent: the patches are coloured so that patches of one colour never
overlap, and all patches of a colour are updated at once (an exact block step of the joint
problem, batched over patches and photos) by projected-gradient steps on its small simplex QP.
Every step is non-increasing in J, starting from the independent (λ = 0) solution.
"""

from __future__ import annotations

import torch

from ide.pgm.grid import integer_gram

INIT_STEPS = 30  # accelerated projected-gradient steps of the independent (λ = 0) solve
INNER_STEPS = 3  # projected-gradient steps per block update


def project_simplex(v: torch.Tensor) -> torch.Tensor:
    """Euclidean projection of every row of v [..., K] onto {w ≥ 0, Σ w = 1} (sort-based)."""
    k = v.shape[-1]
    u = v.sort(dim=-1, descending=True).values
    css = u.cumsum(-1) - 1.0
    ks = torch.arange(1, k + 1, device=v.device, dtype=v.dtype)
    rho = ((u - css / ks) > 0).sum(-1, keepdim=True).clamp_min(1)  # support size
    theta = css.gather(-1, rho - 1) / rho.to(v.dtype)
    return (v - theta).clamp_min(0.0)


def _pixel_sums(z: torch.Tensor, pix: torch.Tensor, npix: int) -> torch.Tensor:
    """Sum of the patches' values at every pixel: z [P, B, d] → [npix, B]."""
    p, b, d = z.shape
    return z.new_zeros(npix, b).index_add_(0, pix.reshape(-1), z.transpose(1, 2).reshape(p * d, b))


def _pixel_counts(pix: torch.Tensor, npix: int, dtype: torch.dtype) -> torch.Tensor:
    """How many patches cover each pixel: [npix]."""
    flat = pix.reshape(-1)
    return torch.zeros(npix, dtype=dtype, device=pix.device).index_add_(
        0, flat, torch.ones(flat.numel(), dtype=dtype, device=pix.device)
    )


def objective(
    w: torch.Tensor, gram: torch.Tensor, cand_sketch: torch.Tensor, pix: torch.Tensor, npix: int, lam: float
) -> torch.Tensor:
    """J(w) per photo (patch-major layout, as `solve_weights`).

    Args:
        w: [P, B, K] weights on the simplex; gram: [P, B, K, K] fidelity Gram (so that the photo
            term of patch i is w_i^T G_i w_i); cand_sketch: [P, B, K, d].
        pix: int64 [P, d] flat pixel index of every patch pixel; npix: pixels per image.
    Returns:
        [B]: fidelity + λ · Σ over pixels of Σ over pairs of patches covering it of their squared difference.
    """
    fid = (_matvec(gram, w) * w).sum(-1).sum(0)
    z = _combine(w, cand_sketch)
    total, total2 = _pixel_sums(z, pix, npix), _pixel_sums(z.square(), pix, npix)
    count = _pixel_counts(pix, npix, z.dtype).unsqueeze(1)
    # Σ_(i<j) (z_i - z_j)² over the c values at a pixel = c·Σz² - (Σz)².
    return fid + lam * (count * total2 - total.square()).sum(0)


def centre(h: torch.Tensor) -> torch.Tensor:
    """C H C with C = I - 11^T/K: the part of a quadratic form w^T H w that varies on {Σ w = 1}."""
    row = h.mean(-1, keepdim=True)
    return h - row - row.transpose(-1, -2) + row.mean(-2, keepdim=True)


def _matvec(h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """[..., K, n] x [..., n] → [..., K] (batched GEMM: far faster than elementwise on CPU)."""
    return (h @ w.unsqueeze(-1)).squeeze(-1)


def _combine(w: torch.Tensor, patches: torch.Tensor) -> torch.Tensor:
    """Σ_k w_k · patch_k: [..., K] and [..., K, d] → [..., d]."""
    return (w.unsqueeze(-2) @ patches).squeeze(-2)


def _pg(
    w: torch.Tensor, h: torch.Tensor, lin: torch.Tensor, step: torch.Tensor, steps: int, accelerate: bool
) -> torch.Tensor:
    """Projected gradient on w^T H w - 2 lin^T w over the simplex; step ≤ 1/λ_max(H), shape [..., 1]."""
    y, prev, t = w, w, 1.0
    for _ in range(steps):
        grad = _matvec(h, y) - lin
        # The projection ignores a common shift of all K entries, so step along the centred
        # gradient only: the same iterate, without a large common part that would swamp w in
        # float32 (with K = 1, or identical candidates, the step bound can be ~1e12).
        new = project_simplex(y - step * (grad - grad.mean(-1, keepdim=True)))
        if accelerate:  # FISTA momentum (only for the independent start; BCD steps stay monotone)
            t_next = (1.0 + (1.0 + 4.0 * t * t) ** 0.5) / 2.0
            y = new + ((t - 1.0) / t_next) * (new - prev)
            prev, t = new, t_next
        else:
            y = new
    return prev if accelerate else y


def _inverse_lmax(h: torch.Tensor) -> torch.Tensor:
    """1 / (an upper bound of the curvature of w^T H w along the simplex), h symmetric PSD [..., K, K].

    Steps stay on {Σ w = 1}, so only H restricted to directions with Σ = 0 matters: C H C with
    C = I - 11^T/K. Candidates are alike, so H is nearly c·11^T and C H C is far smaller than H;
    the bound is the largest absolute row sum of C H C (Gershgorin). Projected-gradient steps of
    this length never increase the objective. The bound is kept above 1e-3 of the largest diagonal
    entry: for (near-)identical candidates C H C is rounding noise, and a huge step would only
    amplify it (the objective is flat there anyway).
    """
    bound = centre(h).abs().sum(-1).amax(-1, keepdim=True)
    floor = 1e-3 * h.diagonal(dim1=-2, dim2=-1).amax(-1, keepdim=True)
    return 1.0 / torch.maximum(bound, floor).clamp_min(1e-12)


def solve_weights(
    gram: torch.Tensor,
    cand_sketch: torch.Tensor,
    pix: torch.Tensor,
    npix: int,
    blocks: list[int],
    lam: float,
    iters: int,
) -> torch.Tensor:
    """MWF weights, patch-major so that a block of patches is a contiguous slice.

    Args:
        gram: float [P, B, K, K] fidelity Gram of each patch's candidates (`PatchMetric.fidelity_gram`):
            ||x_i - P_i w_i||² = w_i^T G_i w_i on the simplex.
        cand_sketch: float [P, B, K, d] candidate sketch patches (integer gray levels).
        pix: int64 [P, d] flat pixel index of every patch pixel; npix: pixels per image.
        blocks: end offsets of consecutive runs of patches that do not overlap each other
            (`PatchGrid.colour_order`), each updated as one block.
        lam: weight of the overlap term; iters: block-coordinate sweeps.
    Returns:
        float [P, B, K] weights on the simplex, dtype of cand_sketch.
    """
    dtype = cand_sketch.dtype
    k = gram.shape[-1]
    zero = torch.zeros(gram.shape[:-1], dtype=dtype, device=gram.device)
    gram = gram.to(dtype)
    w = _pg(torch.full_like(zero, 1.0 / k), gram, zero, _inverse_lmax(gram), INIT_STEPS, accelerate=True)
    if lam <= 0 or iters <= 0:
        return w
    # Overlap term of patch i with the others fixed, z_i = S_i^T w_i: λ (w^T S D S^T w - 2 w^T S R)
    # with D the count of other patches on each pixel and R their sum. On the simplex this equals
    # λ (w^T C SDS^T C w - 2 w^T (S R - SDS^T 1/K)) + const: centred, the quadratic holds the small
    # differences between candidates instead of their large common part, which fp32 would swamp.
    others = _pixel_counts(pix, npix, dtype)[pix] - 1.0  # [P, d]
    sds = integer_gram(
        cand_sketch * others[:, None, None, :], cand_sketch, 255.0 * 255.0 * others.max().item()
    )
    hess = gram + lam * centre(sds).to(dtype)
    base = (sds.sum(-1) / k).to(dtype)  # S D m, m the mean candidate
    del sds
    step = _inverse_lmax(hess)
    z = _combine(w, cand_sketch)  # [P, B, d] current sketch patches
    total = _pixel_sums(z, pix, npix)  # [npix, B], kept up to date block by block
    for _ in range(iters):
        lo = 0
        for hi in blocks:
            s_i, z_i, pix_i = cand_sketch[lo:hi], z[lo:hi], pix[lo:hi]
            around = total[pix_i].transpose(1, 2) - z_i  # [n, B, d] sum of the overlapping patches
            lin_i = lam * (_matvec(s_i, around) - base[lo:hi])
            w[lo:hi] = _pg(w[lo:hi], hess[lo:hi], lin_i, step[lo:hi], INNER_STEPS, accelerate=False)
            new = _combine(w[lo:hi], s_i)
            total.index_add_(0, pix_i.reshape(-1), (new - z_i).transpose(1, 2).reshape(-1, new.shape[1]))
            z[lo:hi] = new
            lo = hi
    return w

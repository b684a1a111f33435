"""The patch grid of stage 1: positions, pixel indices, photometric normalisation, overlap blending.

Patches are `patch`x`patch` squares whose top-left corners lie every `step` pixels; the last row
and column are placed flush with the border, so every pixel is covered. A patch is handled as a
flat vector of d = patch² pixels in row-major order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import torch

from ide.errors import UserError

NORMS = ("none", "mean", "meanstd")


def positions(length: int, patch: int, step: int) -> tuple[int, ...]:
    """Top-left coordinates along one axis: 0, step, 2·step, ..., and `length - patch` last."""
    pos = list(range(0, length - patch + 1, step))
    if pos[-1] != length - patch:
        pos.append(length - patch)
    return tuple(pos)


def _colour_period(pos: tuple[int, ...], patch: int) -> int:
    """Smallest c such that patches c grid steps apart never overlap (for conflict-free block updates)."""
    c = 1
    while any(pos[i + c] - pos[i] < patch for i in range(len(pos) - c)):
        c += 1
    return c


@dataclass(frozen=True)
class PatchGrid:
    """The grid over an image of `height` x `width` pixels."""

    height: int
    width: int
    patch: int
    step: int

    def __post_init__(self) -> None:
        if self.patch < 2 or self.step < 1:
            raise UserError(f"stage1.patch must be >= 2 and stage1.step >= 1 (got {self.patch}, {self.step})")
        if self.step > self.patch:
            raise UserError(
                f"stage1.step ({self.step}) larger than stage1.patch ({self.patch}) leaves pixels uncovered; "
                "use step <= patch"
            )
        if self.patch > min(self.height, self.width):
            raise UserError(
                f"stage1.patch ({self.patch}) is larger than the image ({self.width}x{self.height}); use a smaller patch"
            )

    @property
    def dim(self) -> int:
        return self.patch * self.patch

    @cached_property
    def ys(self) -> tuple[int, ...]:
        return positions(self.height, self.patch, self.step)

    @cached_property
    def xs(self) -> tuple[int, ...]:
        return positions(self.width, self.patch, self.step)

    @property
    def count(self) -> int:
        """Number of patches P (row-major over the grid: index = row * len(xs) + col)."""
        return len(self.ys) * len(self.xs)

    def offsets(self, row_stride: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """int64 [d]: flat offsets of a patch's pixels from its top-left pixel, rows `row_stride` apart."""
        k = torch.arange(self.patch, device=device)
        return (k[:, None] * row_stride + k[None, :]).reshape(-1)

    def pixel_index(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """int64 [P, d]: flat pixel index (y * width + x) of every pixel of every patch."""
        ys = torch.tensor(self.ys, device=device)
        xs = torch.tensor(self.xs, device=device)
        tops = (ys[:, None] * self.width + xs[None, :]).reshape(-1)
        return tops[:, None] + self.offsets(self.width, device)[None, :]

    def colours(self) -> torch.Tensor:
        """int64 [P]: a colouring in which patches of one colour never overlap (4 colours when step >= patch/2)."""
        cy, cx = _colour_period(self.ys, self.patch), _colour_period(self.xs, self.patch)
        gy = torch.arange(len(self.ys))[:, None] % cy
        gx = torch.arange(len(self.xs))[None, :] % cx
        return (gy * cx + gx).reshape(-1)

    def colour_order(self) -> tuple[torch.Tensor, list[int]]:
        """Patches sorted by colour: (order int64 [P], end offset of each colour's run in that order)."""
        colours = self.colours()
        return torch.argsort(colours, stable=True), torch.cumsum(torch.bincount(colours), 0).tolist()

    def extract(self, images: torch.Tensor) -> torch.Tensor:
        """Patches of a batch of images. [B, H, W] (any dtype) → [B, P, d], same dtype."""
        flat = images.reshape(images.shape[0], -1)
        return flat[:, self.pixel_index(images.device)]

    def blend(self, patches: torch.Tensor, power: float = 0.0) -> torch.Tensor:
        """Overlapping patches into images, each pixel the `blend_window`-weighted mean of the
        patches over it (power 0: their plain average). float [B, P, d] → float64 [B, H, W]."""
        b = patches.shape[0]
        idx = self.pixel_index(patches.device).reshape(-1)
        win = blend_window(self.patch, power, patches.device)
        total = patches.new_zeros(b, self.height * self.width, dtype=torch.float64).index_add_(
            1, idx, (patches.to(torch.float64) * win).reshape(b, -1)
        )
        weight = win.new_zeros(self.height * self.width).index_add_(0, idx, win.repeat(self.count))
        return (total / weight).reshape(b, self.height, self.width)


def blend_window(patch: int, power: float, device: torch.device | str = "cpu") -> torch.Tensor:
    """Blending weight of each pixel of a patch: float64 [patch·patch], row-major, in (0, 1].

    (sin(π(i+½)/p)·sin(π(j+½)/p))^power: 1 everywhere for power 0 (plain averaging); for power 2
    and step p/2 the windows of overlapping patches sum to 1 (sin² + cos²); as the power grows,
    each pixel takes its value from the patch whose window weighs most there, the one whose centre
    is nearest (float64 keeps the smallest weights representable up to power 32 for patches ≤ 32).
    """
    v = torch.sin(math.pi * (torch.arange(patch, dtype=torch.float64, device=device) + 0.5) / patch)
    return (v[:, None] * v[None, :]).pow(power).reshape(-1)


def integer_gram(a: torch.Tensor, b: torch.Tensor, bound: float) -> torch.Tensor:
    """Exact a @ b^T for integer-valued float32 [..., K, d] operands, as float64 [..., K, K].

    `bound` bounds |a_j·b_j|; the sum runs over slices of d short enough that every partial sum
    stays below 2²⁴, where float32 arithmetic on integers is exact.
    """
    d = a.shape[-1]
    step = max(1, min(d, int(2**24 // max(bound, 1.0))))
    out = None
    for lo in range(0, d, step):
        part = (a[..., lo : lo + step] @ b[..., lo : lo + step].transpose(-1, -2)).double()
        out = part if out is None else out + part
    return out


@dataclass(frozen=True)
class PatchMetric:
    """The distance between photo patches: squared Euclidean after photometric normalisation.

    Attributes:
        norm: "none" (raw gray values), "mean" (patch mean removed) or "meanstd" (mean removed,
            divided by sqrt(variance + floor²)). Removing the mean lets a dark background match a
            white one; the floor keeps flat, noisy patches from being blown up to full contrast.
        floor: contrast floor in gray levels ("meanstd" only), > 0.
        brightness: "mean" only: weight α of the mean difference put back, distance =
            ||q̂ - b̂||² + α·d·(q̄ - b̄)² (0: brightness ignored; 1: the raw distance). A small α
            keeps black hair from matching a white background while a dark background still
            prefers flat candidates to textured ones.
    """

    norm: str = "mean"
    floor: float = 4.0
    brightness: float = 0.0

    def __post_init__(self) -> None:
        if self.norm not in NORMS:
            raise UserError(f"config key 'stage1.norm' is '{self.norm}'; choose one of: {', '.join(NORMS)}")
        if self.norm == "meanstd" and not self.floor > 0:
            raise UserError(f"config key 'stage1.floor' must be > 0 for norm meanstd (got {self.floor})")
        if not 0.0 <= self.brightness <= 1.0:
            raise UserError(f"config key 'stage1.brightness' must be in [0, 1] (got {self.brightness})")

    def normalise(self, patches: torch.Tensor) -> torch.Tensor:
        """float [..., d] gray values → float [..., d] vectors whose squared distance is the metric."""
        if self.norm == "none":
            return patches
        mean = patches.mean(-1, keepdim=True)
        centred = patches - mean
        if self.norm == "mean":
            return centred + self.brightness**0.5 * mean if self.brightness else centred
        return centred / torch.sqrt(centred.square().mean(-1, keepdim=True) + self.floor**2)

    def fidelity_gram(self, cand: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """Gram of the residuals r_k = (candidate k brought to the query's photometry) - query.

        The MWF photo term of a patch is ||x - Σ_k w_k p̃_k||² = w^T G w on the simplex, with p̃_k
        the candidate shifted to the query's mean ("mean"; brightness is left to the search), also
        scaled to its contrast ("meanstd"), or as is ("none").

        Args:
            cand: float [..., K, d] candidate photo patches (integer gray values); query: float [..., d].
        Returns:
            float64 [..., K, K], from exact integer dot products and sums.
        """
        d = cand.shape[-1]
        pp = integer_gram(cand, cand, 255.0 * 255.0)
        px = integer_gram(cand, query.unsqueeze(-2), 255.0 * 255.0).squeeze(-1)  # [..., K]
        xx = integer_gram(query.unsqueeze(-2), query.unsqueeze(-2), 255.0 * 255.0)[..., 0]  # [..., 1]
        if self.norm == "none":
            return pp - px.unsqueeze(-1) - px.unsqueeze(-2) + xx.unsqueeze(-1)
        sp, sx = cand.sum(-1).double(), query.sum(-1, keepdim=True).double()
        cpp = pp - sp.unsqueeze(-1) * sp.unsqueeze(-2) / d  # centred candidate · centred candidate
        cpx = px - sp * sx / d  # centred candidate · centred query
        cxx = xx - sx * sx / d
        if self.norm == "mean":
            return cpp - cpx.unsqueeze(-1) - cpx.unsqueeze(-2) + cxx.unsqueeze(-1)
        scale = torch.sqrt((cxx / d + self.floor**2) / (cpp.diagonal(dim1=-2, dim2=-1) / d + self.floor**2))
        sc = scale * cpx
        return (
            scale.unsqueeze(-1) * scale.unsqueeze(-2) * cpp
            - sc.unsqueeze(-1)
            - sc.unsqueeze(-2)
            + cxx.unsqueeze(-1)
        )

"""Stage 1 end to end: photos → exact K-NN candidates → MWF weights → blended coarse sketches."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from tqdm import tqdm

from ide.config import Stage1Config
from ide.errors import UserError
from ide.pgm.features import PatchFeatures, bank_features
from ide.pgm.grid import PatchGrid, PatchMetric
from ide.pgm.mwf import solve_weights
from ide.pgm.search import Neighbours, knn_search, min_candidates

SOLVE_BATCH = 16  # photos per weight solve (~15 MB of candidate patches per photo for CUFS)
MAX_BLEND = 32.0  # largest stage1.blend (the window's smallest weights stay far above float64's range)


def metric_of(cfg: Stage1Config) -> PatchMetric:
    """The patch distance of a stage-1 config (raises UserError on a bad norm, floor or brightness)."""
    return PatchMetric(norm=cfg.norm, floor=cfg.floor, brightness=cfg.brightness)


def resolve_device(name: str) -> torch.device:
    """ "auto" → CUDA when available, else CPU; "cuda" without a GPU is a UserError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError(
            "config key 'stage1.device' is 'cuda' but no CUDA device is available; use auto or cpu"
        )
    if name not in ("cpu", "cuda"):
        raise UserError(f"config key 'stage1.device' is '{name}'; choose auto, cpu or cuda")
    return torch.device(name)


def _check(
    bank_photos: np.ndarray,
    bank_sketches: np.ndarray,
    photos: np.ndarray,
    cfg: Stage1Config,
    exclude: list[int],
) -> PatchGrid:
    for name, arr in (("bank photos", bank_photos), ("bank sketches", bank_sketches), ("photos", photos)):
        if arr.dtype != np.uint8 or arr.ndim != 3:
            raise UserError(
                f"stage 1: {name} must be uint8 [N, H, W] gray images, got {arr.dtype} {arr.shape}; "
                "prepare photos first (ide.pgm.prepare.prepare_photos)"
            )
    if bank_photos.shape != bank_sketches.shape:
        raise UserError(
            f"stage 1: bank photos {bank_photos.shape} and sketches {bank_sketches.shape} differ in shape"
        )
    if len(bank_photos) == 0:
        raise UserError("stage 1: the training bank is empty; it needs at least one photo-sketch pair")
    h, w = bank_photos.shape[1:]
    if photos.shape[1:] != (h, w):
        raise UserError(
            f"stage 1: photos are {photos.shape[2]}x{photos.shape[1]} but the training bank is {w}x{h} "
            "(width x height); align them to the bank's size first (ide align)"
        )
    metric_of(cfg)  # validates norm, floor, brightness
    if not 0.0 <= cfg.blend <= MAX_BLEND:
        raise UserError(
            f"config key 'stage1.blend' is {cfg.blend}; choose a power in [0, {MAX_BLEND:g}] "
            "(0 averages the overlaps, 8 keeps each pixel from its nearest patch centre)"
        )
    if cfg.search < 0 or cfg.k < 1 or cfg.batch < 1:
        raise UserError(
            f"stage1.search must be >= 0, stage1.k and stage1.batch >= 1 (got {cfg.search}, "
            f"{cfg.k}, {cfg.batch})"
        )
    grid = PatchGrid(h, w, cfg.patch, cfg.step)
    if len(exclude) != len(photos):
        raise UserError(f"stage 1: exclude has {len(exclude)} entries for {len(photos)} photos")
    if any(not -1 <= e < len(bank_photos) for e in exclude):
        raise UserError(f"stage 1: an exclude index is outside the bank of {len(bank_photos)} photos")
    usable = len(bank_photos) - (1 if any(e >= 0 for e in exclude) else 0)
    fewest = min_candidates(grid, cfg.search, usable)
    if cfg.k > fewest:
        raise UserError(
            f"config key 'stage1.k' is {cfg.k} but a corner patch has only {fewest} candidates "
            f"({usable} usable bank photos, window ±{cfg.search} px); lower stage1.k or add training pairs"
        )
    return grid


def synthesize(
    bank_photos: torch.Tensor,
    bank_sketches: torch.Tensor,
    photos: torch.Tensor,
    nbrs: Neighbours,
    grid: PatchGrid,
    cfg: Stage1Config,
    progress: bool = False,
    feats: PatchFeatures | None = None,
) -> torch.Tensor:
    """Weights and blending for found neighbours. uint8 tensors [N|M, H, W] → uint8 [M, H, W].

    Each output pixel is the `grid.blend_window`-weighted mean of the sketch patches over it (a
    convex combination of candidate sketch pixels). With `feats` (the search's), the MWF photo
    term also holds the weighted feature residuals: G += Σ_c coef_c R_c R_cᵀ.
    """
    dev = photos.device
    metric = metric_of(cfg)
    order, blocks = grid.colour_order()
    order = order.to(dev)
    pix = grid.pixel_index(dev)[order]  # patches in colour order: each colour is one solver block
    p, w = grid.patch, grid.width
    # Row r of these views is the p pixels from flat position r: a patch is p rows, `w` apart.
    rows_p = bank_photos.reshape(-1).unfold(0, p, 1)
    rows_s = bank_sketches.reshape(-1).unfold(0, p, 1)
    ky = torch.arange(p, device=dev) * w
    out = torch.empty_like(photos)
    starts = range(0, len(photos), SOLVE_BATCH)
    for start in tqdm(starts, desc="stage 1 weights", unit="batch", disable=not progress):
        sl = slice(start, start + SOLVE_BATCH)
        index = nbrs.index[sl][:, order].transpose(0, 1)  # [P, B, K], patches in colour order
        shape = (*index.shape, grid.dim)
        rows = (index.unsqueeze(-1) + ky).reshape(-1)
        x = photos[sl].reshape(index.shape[1], -1)[:, pix].transpose(0, 1).to(torch.float32)  # [P, B, d]
        cand_photo = rows_p.index_select(0, rows).view(shape).to(torch.float32)
        gram = metric.fidelity_gram(cand_photo, x)
        del cand_photo
        if feats is not None:
            gram += _feature_gram(feats, index, pix[:, 0], start, grid.height * w)
        cand_sketch = rows_s.index_select(0, rows).view(shape).to(torch.float32)
        wts = solve_weights(gram, cand_sketch, pix, grid.height * w, blocks, cfg.lam, cfg.iters)
        z = (wts.unsqueeze(-2) @ cand_sketch).squeeze(-2)  # [P, B, d], patches in colour order
        patches = torch.empty_like(z).index_copy_(0, order, z).transpose(0, 1)  # [B, P, d], grid order
        out[sl] = grid.blend(patches, cfg.blend).round_().clamp_(0, 255).to(torch.uint8)
    return out


def _feature_gram(
    feats: PatchFeatures, index: torch.Tensor, corner: torch.Tensor, start: int, hw: int
) -> torch.Tensor:
    """Σ_c coef_c (F_c(b_k) - F_c(x))·(F_c(b_l) - F_c(x)): float64 [P, B, K, K] for candidates
    index [P, B, K] of query photos start .. start+B-1 at patch corners corner [P]."""
    q_corner = corner.view(-1, 1) + hw * torch.arange(start, start + index.shape[1], device=index.device)
    qf = feats.gather(feats.query, q_corner)  # [P, B, C, s²]
    total = None
    for c, wt in enumerate(feats.coef):
        fb = feats.gather(feats.bank[c : c + 1], index)[..., 0, :]  # [P, B, K, s²]
        r = fb - qf[:, :, c].unsqueeze(2)
        part = wt * (r @ r.transpose(-1, -2))
        total = part if total is None else total + part
    return total


class Stage1:
    """Stage 1 with one training bank, kept between calls: the bank on the compute device and the
    bank-side search data (`knn_search`'s cache), so that sketching one photo at a time does not
    redo the bank's work for every photo (the bank's feature maps too, with stage1.features).

    Args:
        bank_photos: uint8 [N, H, W] prepared training photos (`ide.pgm.prepare.prepare_photos`).
        bank_sketches: uint8 [N, H, W] their sketches.
        cfg: the stage-1 settings.
    """

    def __init__(self, bank_photos: np.ndarray, bank_sketches: np.ndarray, cfg: Stage1Config):
        self.bank_photos, self.bank_sketches = np.asarray(bank_photos), np.asarray(bank_sketches)
        self.cfg = cfg
        self._tensors: tuple[torch.Tensor, torch.Tensor] | None = None
        self._cache: dict = {}
        self._feats: PatchFeatures | None = None

    def __call__(
        self, photos: np.ndarray, exclude: Sequence[int | None] | None = None, progress: bool = False
    ) -> np.ndarray:
        """uint8 [M, H, W] prepared photos, aligned like the bank → uint8 [M, H, W] coarse sketches.

        exclude[m] is a bank index photo m must not use (leave-one-out), or None.
        Raises UserError: mismatched sizes, K larger than the number of candidates, a bad setting.
        """
        cfg = self.cfg
        ex = [-1 if e is None else int(e) for e in (exclude if exclude is not None else [None] * len(photos))]
        photos = np.asarray(photos)
        grid = _check(self.bank_photos, self.bank_sketches, photos, cfg, ex)
        if len(photos) == 0:
            return np.zeros((0, grid.height, grid.width), np.uint8)
        dev = resolve_device(cfg.device)
        if self._tensors is None or self._tensors[0].device != dev:
            self._tensors = tuple(
                torch.from_numpy(np.ascontiguousarray(a)).to(dev)
                for a in (self.bank_photos, self.bank_sketches)
            )
            self._cache = {}
            self._feats = bank_features(self.bank_photos, cfg.features, cfg.feature_weights, cfg.patch, dev)
            self._feats = None if self._feats is None else self._feats.with_norms()
        bank_p, bank_s = self._tensors
        feats = None if self._feats is None else self._feats.for_queries(photos)
        query = torch.from_numpy(np.ascontiguousarray(photos)).to(dev)
        nbrs = knn_search(
            bank_p,
            query,
            grid,
            cfg.search,
            cfg.k,
            metric_of(cfg),
            torch.tensor(ex, dtype=torch.int64, device=dev),
            batch=cfg.batch,
            progress=progress,
            cache=self._cache,
            feats=feats,
        )
        return synthesize(bank_p, bank_s, query, nbrs, grid, cfg, progress, feats).cpu().numpy()


def coarse_sketches(
    bank_photos: np.ndarray,
    bank_sketches: np.ndarray,
    photos: np.ndarray,
    cfg: Stage1Config,
    exclude: Sequence[int | None] | None = None,
    progress: bool = True,
) -> np.ndarray:
    """Coarse sketches of photos from a training bank (stage 1), in one call (see `Stage1`).

    Args:
        bank_photos: uint8 [N, H, W] prepared training photos (gray, backdrop whitened when
            cfg.background > 0: `ide.pgm.prepare.prepare_photos`).
        bank_sketches: uint8 [N, H, W] their sketches.
        photos: uint8 [M, H, W] prepared photos, aligned like the bank.
        cfg: the stage-1 settings.
        exclude: exclude[m] is a bank index photo m must not use (leave-one-out), or None.
        progress: show progress bars.
    Returns:
        uint8 [M, H, W] coarse sketches.
    Raises:
        UserError: mismatched sizes, K larger than the number of candidates, a bad setting.
    """
    return Stage1(bank_photos, bank_sketches, cfg)(photos, exclude, progress)

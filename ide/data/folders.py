"""Dataset folders: ROOT/<split>/{photos,sketches}/<id>.<ext>, paired by stem, validated, held in memory.

Every check runs before any work and raises `UserError` naming the file and the fix: a photo
without its sketch (or the reverse), an unreadable or truncated image, a wrong size, an empty
split. CUFS (~600 pairs of 200x250) decodes once into uint8 arrays in about a second.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ide.data.io import is_gray, is_image_file, read_image
from ide.errors import UserError

HEIGHT, WIDTH = 250, 200  # the CUFS aligned layout (width x height = 200x250)


@dataclass(frozen=True)
class PairedSplit:
    """One split in memory.

    Attributes:
        ids: sorted pair ids (file stems), length N.
        photos: uint8 [N, H, W, 3] (gray photos replicated to 3 channels).
        sketches: uint8 [N, H, W] gray.
        photo_gray: True when every photo file was a gray image.
        name: "<root>/<split>" for messages.
    """

    ids: tuple[str, ...]
    photos: np.ndarray
    sketches: np.ndarray
    photo_gray: bool = False
    name: str = ""

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, index: list[int] | np.ndarray) -> PairedSplit:
        index = list(index)
        return PairedSplit(
            tuple(self.ids[i] for i in index),
            self.photos[index],
            self.sketches[index],
            self.photo_gray,
            self.name,
        )

    def fingerprint(self) -> str:
        """Hash of ids and pixels: the cache key of anything computed from this split."""
        h = hashlib.sha1()
        h.update("\n".join(self.ids).encode())
        h.update(np.ascontiguousarray(self.photos).tobytes())
        h.update(np.ascontiguousarray(self.sketches).tobytes())
        return h.hexdigest()[:16]


def subset_of(pair_id: str) -> str:
    """The subset prefix of an id (`CUHK_f-001-01` → `CUHK`); ids without `_` → `all`."""
    return pair_id.split("_", 1)[0] if "_" in pair_id else "all"


def _index_folder(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise UserError(
            f"folder {folder} not found; a dataset split needs photos/ and sketches/ (see datasets/)"
        )
    found: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or not p.is_file() or not is_image_file(p):
            continue
        if p.stem in found:
            raise UserError(
                f"two files with id '{p.stem}' in {folder} ({found[p.stem].name}, {p.name}); keep one"
            )
        found[p.stem] = p
    return found


def scan_pairs(root: str | Path, split: str) -> list[tuple[str, Path, Path]]:
    """Pair ROOT/split/photos and ROOT/split/sketches by stem. Returns (id, photo, sketch), sorted."""
    base = Path(root) / split
    photos = _index_folder(base / "photos")
    sketches = _index_folder(base / "sketches")
    if not photos:
        raise UserError(f"no images in {base / 'photos'}: the split is empty; add png/jpg/bmp photos")
    for pid, p in photos.items():
        if pid not in sketches:
            raise UserError(
                f"photo {p} has no sketch {base / 'sketches' / pid}.*; add it or remove the photo"
            )
    for sid, s in sketches.items():
        if sid not in photos:
            raise UserError(f"sketch {s} has no photo {base / 'photos' / sid}.*; add it or remove the sketch")
    return [(i, photos[i], sketches[i]) for i in sorted(photos)]


def _load_pair(
    item: tuple[str, Path, Path], size: tuple[int, int] | None
) -> tuple[np.ndarray, np.ndarray, bool]:
    _, photo_path, sketch_path = item
    photo = read_image(photo_path, "RGB")
    sketch = read_image(sketch_path, "L")
    for path, arr in ((photo_path, photo), (sketch_path, sketch)):
        if size is not None and arr.shape[:2] != size:
            raise UserError(
                f"image {path} is {arr.shape[1]}x{arr.shape[0]}, expected {size[1]}x{size[0]} (width x height); "
                "align it first (ide align) or remove it"
            )
    if sketch.shape != photo.shape[:2]:
        raise UserError(
            f"sketch {sketch_path} is {sketch.shape[1]}x{sketch.shape[0]} but its photo is "
            f"{photo.shape[1]}x{photo.shape[0]}; a pair must have one size"
        )
    return photo, sketch, is_gray(photo)


def load_split(root: str | Path, split: str, size: tuple[int, int] | None = (HEIGHT, WIDTH)) -> PairedSplit:
    """Scan, validate and decode one split.

    Args:
        root: dataset root.
        split: "train" or "test".
        size: required (H, W) of every image, or None to accept any size shared within a pair
            (all pairs must still share one size, for batching).
    """
    items = scan_pairs(root, split)
    with ThreadPoolExecutor(max_workers=4) as pool:
        loaded = list(pool.map(lambda it: _load_pair(it, size), items))
    shapes = {p.shape for p, _, _ in loaded}
    if len(shapes) > 1:
        first = loaded[0][0].shape
        bad = next(items[i][1] for i, (p, _, _) in enumerate(loaded) if p.shape != first)
        raise UserError(f"image {bad} differs in size from the rest of {Path(root) / split}; use one size")
    return PairedSplit(
        ids=tuple(i for i, _, _ in items),
        photos=np.stack([p for p, _, _ in loaded]),
        sketches=np.stack([s for _, s, _ in loaded]),
        photo_gray=all(g for _, _, g in loaded),
        name=f"{root}/{split}",
    )


def validation_index(ids: tuple[str, ...] | list[str], count: int) -> list[int]:
    """A deterministic validation part of a training split: `count` ids spread evenly over each subset.

    Subsets get shares proportional to their size (at least one each when count allows), and
    within a subset every n-th id (sorted order) is taken, so the choice never depends on pixels.
    """
    if count <= 0:
        return []
    count = min(count, len(ids) - 1)
    groups: dict[str, list[int]] = {}
    for i, pid in enumerate(ids):
        groups.setdefault(subset_of(pid), []).append(i)
    chosen: list[int] = []
    for members in groups.values():
        share = max(1, round(count * len(members) / len(ids)))
        share = min(share, len(members) - 1) if len(members) > 1 else 0
        stride = len(members) / max(share, 1)
        chosen.extend(members[int(j * stride + stride / 2)] for j in range(share))
    return sorted(chosen)

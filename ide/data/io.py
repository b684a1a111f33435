"""Reading and writing images: gray conversion as PIL's `convert("L")` (ITU-R 601), atomic PNG writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ide.errors import UserError
from ide.fileio import atomic_write

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp")


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTS


def read_image(path: str | Path, mode: str = "L") -> np.ndarray:
    """Decode an image fully (a truncated file is an error).

    Args:
        path: image file.
        mode: "L" → gray uint8 [H, W] (RGB converted with ITU-R 601 luma, exactly PIL's
            `convert("L")`); "RGB" → uint8 [H, W, 3] (gray images replicated).
    Raises:
        UserError naming the file when it cannot be read or is truncated.
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()  # forces a full decode: truncated JPEG/PNG raise here
            if im.mode in ("RGBA", "LA", "P", "CMYK", "YCbCr"):
                im = im.convert("RGB")  # so that "L" below is always the ITU-R 601 luma of RGB
            return np.asarray(im.convert(mode), dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        reason = str(err).splitlines()[0] if str(err) else err.__class__.__name__
        if path.exists() and path.stat().st_size == 0:
            reason = "empty file"
        raise UserError(f"cannot read image {path}: {reason}; replace or remove the file") from None


def image_channels(path: str | Path) -> int:
    """1 for gray files (L, or RGB whose three channels are identical is still 3), 3 for colour files."""
    with Image.open(path) as im:
        return 1 if im.mode in ("L", "1", "I", "I;16", "F") else 3


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma with PIL's integer rounding. uint8 [..., 3] → uint8 [...]; gray passes through."""
    if rgb.ndim == 2 or rgb.shape[-1] == 1:
        return rgb.reshape(rgb.shape[:2]) if rgb.ndim == 3 else rgb
    r, g, b = (rgb[..., i].astype(np.uint32) for i in range(3))
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(np.uint8)


def is_gray(photo: np.ndarray) -> bool:
    """True for a gray photo: uint8 [H, W], or [H, W, 3] with three equal channels (a gray file read as RGB)."""
    return photo.ndim == 2 or bool(
        (photo[..., 0] == photo[..., 1]).all() and (photo[..., 1] == photo[..., 2]).all()
    )


def gray_batch(photos: np.ndarray) -> np.ndarray:
    """uint8 [N, H, W, 3] RGB photos → [N, H, W] gray; a gray batch [N, H, W] as it is.
    (`to_gray` cannot tell a gray batch from one RGB image by shape alone; a batch can.)"""
    return to_gray(photos) if photos.ndim == 4 else photos


def write_png(path: str | Path, image: np.ndarray) -> None:
    """Write a uint8 [H, W] (gray) or [H, W, 3] (RGB) image as PNG, atomically (`ide.fileio`)."""
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise ValueError(f"write_png expects uint8, got {arr.dtype}")
    atomic_write(path, lambda f: Image.fromarray(arr).save(f, format="PNG"))

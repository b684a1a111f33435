"""Shared test fixtures: the real data ($IDE_DATA, else ../shared/data beside the clone) and tiny dataset folders."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from ide.data.io import write_png

# The research data (datasets/README.md): env IDE_DATA, else ../shared/data beside the repository.
SHARED_DATA = Path(os.environ.get("IDE_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


@pytest.fixture
def shared_data() -> Path:
    """The research data folder, or a skip with the reason when there is none."""
    if not (SHARED_DATA / "CUFS").is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


def write_tiny_dataset(root: Path, n_train: int = 3, n_test: int = 2, size=(250, 200), seed: int = 0) -> Path:
    """Random 8-bit photo/sketch pairs in the SPEC layout (logic tests only; not faces)."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("test", n_test)):
        for i in range(n):
            write_png(
                root / split / "photos" / f"A_{i}.png", rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            )
            write_png(root / split / "sketches" / f"A_{i}.png", rng.integers(0, 256, size, dtype=np.uint8))
    return root


@pytest.fixture
def tiny_root(tmp_path: Path) -> Path:
    return write_tiny_dataset(tmp_path / "data")

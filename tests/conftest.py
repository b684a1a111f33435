"""Shared test fixtures: the real data ($IDE_DATA, else ../shared/data), tiny dataset folders, and the
tiny training config (`TINY`, `tiny_cfg`) that the training and inference tests share."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from ide.config import Config, load_config
from ide.data.io import write_png

SHARED_DATA = Path(os.environ.get("IDE_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")

# A training config that runs a step in well under a second on one CPU core: synthetic faces,
# an 8-channel single-FAM generator, a small PatchGAN, 32x32 crops, no VGG.
TINY = [
    "data.root=synthetic",
    "data.synthetic_train=8",
    "data.synthetic_test=2",
    "data.val_count=2",
    "stage1.k=3",
    "model.channels=8",
    "model.n_fam=1",
    "model.reduced=4",
    "model.discriminator=patch",
    "train.name=tiny",
    "train.batch_size=2",
    "train.crop=32",
    "train.precision=fp32",
    "train.log_every=1",
    "train.milestones=[1000]",
    "eval.every=1000",
    "loss.pixel=1.0",
    "loss.perceptual.weights=none",
    "log.tensorboard=false",
]


def tiny_config(runs: Path, cache: Path, *extra: str) -> Config:
    """`TINY` with its runs under `runs` and stage-1 caches under `cache`, then `extra` overrides."""
    return load_config(None, [*TINY, f"log.dir={runs}", f"data.cache_dir={cache}", *extra])


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory) -> Path:
    """One stage-1 cache for every tiny run of the test run (entries are keyed by data and settings)."""
    return tmp_path_factory.mktemp("stage1_cache")


@pytest.fixture
def tiny_cfg(tmp_path: Path, tiny_cache: Path):
    """`tiny_cfg(*extra)`: the tiny config with runs under this test's tmp_path (see `tiny_config`)."""
    return lambda *extra: tiny_config(tmp_path / "runs", tiny_cache, *extra)


@pytest.fixture
def shared_data() -> Path:
    """../shared/data, or a skip with the reason when this checkout has none beside it."""
    if not (SHARED_DATA / "CUFS").is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


def write_tiny_dataset(root: Path, n_train: int = 3, n_test: int = 2, size=(250, 200), seed: int = 0) -> Path:
    """Random 8-bit photo/sketch pairs in the dataset layout (datasets/README.md) (logic tests only; not faces)."""
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

"""The one place a config's `data` section becomes arrays: a dataset folder or the synthetic faces."""

from __future__ import annotations

from ide.config import DataConfig
from ide.data.folders import PairedSplit, load_split


def load_data(cfg: DataConfig, split: str) -> PairedSplit:
    """Load `split` ("train" or "test") of `cfg.root`; `root: synthetic` builds the synthetic faces."""
    if cfg.root == "synthetic":
        from ide.data.synthetic import make_split

        count = cfg.synthetic_train if split == "train" else cfg.synthetic_test
        # Train and test identities come from disjoint seeds, so no identity is in both.
        return make_split(count, seed=cfg.synthetic_seed * 2 + (split == "test"), name=f"synthetic/{split}")
    return load_split(cfg.root, split)

"""Photos as both stages take them: gray, with a dark backdrop whitened (`ide.pgm.background`).

Photos are prepared once, where they are loaded (`ide coarse`, `ide train`, `ide test`, the
`Synthesizer`); stage 1 and stage 2 then take the prepared arrays and never run the background
model again. So the bank that training searched, the bank the checkpoint carries and the bank
`ide test` searches are one array: the background model is not idempotent (a photo whose
GrabCut cut failed stays dark, and a second pass on its gray would flood-fill it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ide.data.folders import PairedSplit
from ide.data.io import gray_batch
from ide.pgm.background import whiten_background


def prepare_photos(photos: np.ndarray, background: float) -> np.ndarray:
    """uint8 RGB [N, H, W, 3] or gray [N, H, W] photos → the gray uint8 [N, H, W] both stages take.

    background: stage1.background, the flood-fill tolerance in gray levels; > 0 whitens dark
    backdrops (GrabCut on colour photos, flood fill on gray ones), 0 converts to gray only.
    """
    return whiten_background(photos, background) if background > 0 else gray_batch(photos)


@dataclass
class PreparedSplit:
    """A loaded split and its prepared photos, made on first use and then kept.

    Attributes:
        split: the split as loaded (ids, RGB photos, sketches; its fingerprint keys the caches).
        background: stage1.background used by `photos`.
    """

    split: PairedSplit
    background: float
    _photos: np.ndarray | None = field(default=None, repr=False)

    @property
    def photos(self) -> np.ndarray:
        """uint8 [N, H, W] prepared photos (the background model runs on the first access only:
        a cache hit of the coarse sketches never needs it)."""
        if self._photos is None:
            self._photos = prepare_photos(self.split.photos, self.background)
        return self._photos

    @property
    def ids(self) -> tuple[str, ...]:
        return self.split.ids

    @property
    def sketches(self) -> np.ndarray:
        return self.split.sketches

    def __len__(self) -> int:
        return len(self.split)

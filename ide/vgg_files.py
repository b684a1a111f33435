"""Where the VGG19 weights of the perceptual loss come from, and its layer names; free of torch, so
that the config check at load (`ide.config_rules`) answers without loading it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ide.errors import UserError

VGG19_FILE = "vgg19-dcbb9e9d.pth"  # torchvision's ImageNet VGG19 (IMAGENET1K_V1) checkpoint name
VGG19_URL = "https://download.pytorch.org/models/" + VGG19_FILE
# torchvision's VGG19 `features`: conv widths per block, each block ends with a 2x2 max-pool
VGG19_BLOCKS = ((64, 64), (128, 128), (256, 256, 256, 256), (512, 512, 512, 512), (512, 512, 512, 512))


def hub_dir() -> Path:
    """torch's hub folder, as `torch.hub.get_dir()` gives it: $TORCH_HOME/hub, else
    $XDG_CACHE_HOME/torch/hub, else ~/.cache/torch/hub (torch itself is asked when it is loaded,
    which also sees `torch.hub.set_dir`)."""
    if "torch" in sys.modules:
        return Path(sys.modules["torch"].hub.get_dir())
    cache = os.getenv("XDG_CACHE_HOME", os.path.join("~", ".cache"))
    return Path(os.path.expanduser(os.getenv("TORCH_HOME", os.path.join(cache, "torch")))) / "hub"


def vgg19_layer_names() -> list[str]:
    """Names of torchvision's `vgg19().features` layers by index: conv1_1, relu1_1, ..., pool5."""
    names = []
    for b, widths in enumerate(VGG19_BLOCKS, start=1):
        for i in range(1, len(widths) + 1):
            names += [f"conv{b}_{i}", f"relu{b}_{i}"]
        names.append(f"pool{b}")
    return names


def resolve_vgg_weights(weights: str) -> Path | None:
    """'torchvision' → the file in torch's hub cache; a path → itself; 'random' → None. Never downloads.

    Raises UserError (naming `loss.perceptual.weights`) when the file is not there.
    """
    if weights == "random":
        return None
    if weights == "torchvision":
        path = hub_dir() / "checkpoints" / VGG19_FILE
        if not path.is_file():
            raise UserError(
                f"loss.perceptual.weights=torchvision: ImageNet VGG19 weights not found at {path}; "
                f"download {VGG19_URL} and put it exactly there, or set loss.perceptual.weights to the "
                "path of a VGG19 .pth state dict, or to none to train without the perceptual loss"
            )
        return path
    path = Path(weights).expanduser()
    if not path.is_file():
        raise UserError(
            f"loss.perceptual.weights: file {path} not found; give the path of a VGG19 state dict "
            "(.pth, e.g. torchvision's vgg19-dcbb9e9d.pth), torchvision, or none"
        )
    return path

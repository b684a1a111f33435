"""IDE: face photo-sketch synthesis via intra-domain enhancement (stage 1 MWF + stage 2 MLA-GAN)."""

__version__ = "0.1.0"

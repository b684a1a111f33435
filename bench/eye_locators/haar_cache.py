"""Cache Haar eyes of bench trials: python haar_cache.py SPLIT POSES OUT.json"""
import os
import json, sys
from pathlib import Path
import cv2, numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import align as bench  # bench/align.py
from ide.data import align
from ide.data.io import read_image

split, poses, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
cv2.setNumThreads(1)
files = bench.photo_files(Path(os.environ.get("IDE_DATA", "../shared/data")), split, None)
seed = 2000 if split == "train" else 0
rows = []
for i, path in enumerate(files):
    rgb = read_image(path, "RGB")
    idx = bench._index(path)
    rng = np.random.default_rng([seed, idx])
    padded = bench.off_layout(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    for _ in range(poses):
        pose = bench.random_pose(rng)
        canvas, to_canvas = bench.place(rgb, pose)
        try:
            l, r = align.detect_eyes(canvas)
            eyes = [*l, *r]
        except align.AlignError:
            eyes = None
        rows.append({"photo": str(path), "pose": pose, "eyes": eyes, "off_layout": padded})
    if i % 20 == 0:
        print(i, flush=True)
Path(out).write_text(json.dumps(rows))

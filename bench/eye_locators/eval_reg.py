"""Evaluate eye regressor on cached Haar trials.
python eval_reg.py CACHE.json --train-idx even|all --eval-idx odd|all [--set k=v]"""
import os
import argparse, json, sys, time
from pathlib import Path
import cv2, numpy as np
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import align as bench
from ide.data import eye_refine, eye_regress
from ide.data.io import read_image
from ide.data.layout import CUFS_EYES, eye_transform
cv2.setNumThreads(1)
ap = argparse.ArgumentParser()
ap.add_argument("cache"); ap.add_argument("--train", default="all"); ap.add_argument("--eval", default="all")
ap.add_argument("--set", action="append", default=[]); ap.add_argument("--ecc", action="store_true")
ap.add_argument("--show", type=int, default=8); ap.add_argument("--rank", default="reg")
a = ap.parse_args()
import ide.data.eye_regress as _er
for t in [t for s in a.set for t in s.split(",") if t.startswith("WINDOW=")]:
    _er.WINDOW = int(t.split("=")[1]); _er._HOG = None
a.set = [",".join(t for t in s.split(",") if not t.startswith("WINDOW=")) for s in a.set]
a.set = [s for s in a.set if s]
kw = {k: float(v) if "." in v else int(v) for k, v in (t.split("=") for s in a.set for t in s.split(","))}
train_files = bench.photo_files(Path(os.environ.get("IDE_DATA", "../shared/data")), "train", None)
sel = lambda n, m: [i for i in range(n) if m == "all" or (i % 2 == (0 if m == "even" else 1))]
tr = [train_files[i] for i in sel(len(train_files), a.train)]
grays = np.stack([read_image(p, "L") for p in tr])
t = time.process_time()
reg = eye_regress.train_regressor(grays, **kw)
print(f"trained on {len(tr)} photos in {time.process_time()-t:.1f}s cpu", kw)
ref = eye_refine.reference_from_photos(grays) if a.ecc else None
rows = json.loads(Path(a.cache).read_text())
names = sorted({r["photo"] for r in rows})
keep = {names[i] for i in sel(len(names), a.eval)}
truthL = np.reshape(CUFS_EYES, (2, 2))
def err(l, r, to_canvas):
    truth = bench.apply(to_canvas, truthL)
    landed = bench.apply(eye_transform(l, r, CUFS_EYES), truth)
    return float(np.hypot(*(landed - truthL).T).max())
res = {"haar": [], "ecc": [], "reg": [], "ecc+reg": [], "reg+ecc": [], "pick": [], "fallback": []}; who = []
cache = {}
for r in rows:
    if r["photo"] not in keep or r["off_layout"]:
        continue
    if r["eyes"] is None:
        for k in res: res[k].append(None)
        who.append(r["photo"]); continue
    rgb = cache.get(r["photo"]) 
    if rgb is None: rgb = cache[r["photo"]] = read_image(Path(r["photo"]), "RGB")
    canvas, to_canvas = bench.place(rgb, r["pose"])
    g = cv2.cvtColor(canvas, cv2.COLOR_RGB2GRAY)
    l, rr = np.array(r["eyes"][:2]), np.array(r["eyes"][2:])
    res["haar"].append(err(l, rr, to_canvas))
    res["reg"].append(err(*eye_regress.regress_eyes(g, l, rr, reg), to_canvas))
    if ref is not None:
        el, er, _ = eye_refine.refine_eyes(g, l, rr, ref)
        res["ecc"].append(err(el, er, to_canvas))
        res["ecc+reg"].append(err(*eye_regress.regress_eyes(g, el, er, reg), to_canvas))
        rl, rr2 = eye_regress.regress_eyes(g, l, rr, reg)
        bl, br, ccb = eye_refine.refine_eyes(g, rl, rr2, ref)
        res["reg+ecc"].append(err(bl, br, to_canvas))
        _, _, cca = eye_refine.refine_eyes(g, l, rr, ref)
        res["fallback"].append(res["ecc"][-1] if cca is not None else res["reg+ecc"][-1])
        if ccb is not None and (cca is None or ccb > cca):
            res["pick"].append(err(bl, br, to_canvas))
        else:
            res["pick"].append(res["ecc"][-1])
    who.append(r["photo"])
for k, v in res.items():
    if not v: continue
    s = bench.summary(v)
    print(f"{k:8} n={s['n']} found={s['found_pct']} med={s['median_px']} p90={s['p90_px']} worst={s['worst_px']} >4={s['over_4px']}")
v = res[a.rank] if a.rank in res else res["reg"]; order = np.argsort([-(x or 0) for x in v])[: a.show]
for i in order:
    print("  ", Path(who[i]).stem, *[f"{k} {res[k][i]:.2f}" for k in res if res[k]])

"""Prototype: CNN eye regressor trained on aligned photos. python cnn_eyes.py CACHE --train even --eval odd"""
import os
import argparse, json, sys, time
from pathlib import Path
import cv2, numpy as np, torch
from torch import nn
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import align as bench
from ide.data import eye_refine
from ide.data.io import read_image
from ide.data.layout import CUFS_EYES, eye_transform
cv2.setNumThreads(1); torch.set_num_threads(1)
ap = argparse.ArgumentParser()
ap.add_argument("cache"); ap.add_argument("--train", default="all"); ap.add_argument("--eval", default="all")
ap.add_argument("--steps", type=int, default=2000); ap.add_argument("--scatter", type=float, default=12.0)
ap.add_argument("--side", type=int, default=64); ap.add_argument("--iters", type=int, default=3)
ap.add_argument("--width", type=int, default=16); ap.add_argument("--show", type=int, default=6)
a = ap.parse_args()
E = np.reshape(CUFS_EYES, (2, 2)); S = a.side
X0, Y0 = E[0, 0] - S / 2 + 0.5, E[0, 1] - S / 2 + 0.5
BW, BH = round(E[1, 0] - E[0, 0]) + S, S

def band(gray, l, r):
    m = eye_transform(l, r, CUFS_EYES)
    sc = float(np.hypot(*m[:, 0]))
    src = cv2.GaussianBlur(gray, (0, 0), 0.5 * np.sqrt(1 / sc**2 - 1)) if sc < 1 else gray
    sh = m.copy(); sh[:, 2] -= (X0, Y0)
    b = cv2.warpAffine(src, sh, (BW, BH), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return b, m

def norm(b):
    b = b.astype(np.float32); return (b - b.mean()) / (b.std() + 1e-3)

class Net(nn.Module):
    def __init__(s, w):
        super().__init__()
        c = [1, w, 2 * w, 4 * w, 4 * w]
        layers = []
        for i in range(4):
            layers += [nn.Conv2d(c[i], c[i + 1], 3, padding=1), nn.BatchNorm2d(c[i+1]), nn.ReLU(), nn.MaxPool2d(2)]
        s.f = nn.Sequential(*layers)
        s.h = nn.Sequential(nn.Flatten(), nn.LazyLinear(128), nn.ReLU(), nn.Linear(128, 4))
    def forward(s, x): return s.h(s.f(x))

sel = lambda n, m: [i for i in range(n) if m == "all" or (i % 2 == (0 if m == "even" else 1))]
files = bench.photo_files(Path(os.environ.get("IDE_DATA", "../shared/data")), "train", None)
grays = [read_image(files[i], "L") for i in sel(len(files), a.train)]
W = grays[0].shape[1]
mir = np.array([[W - 1 - E[1, 0], E[1, 1]], [W - 1 - E[0, 0], E[0, 1]]])
rng = np.random.default_rng(0); torch.manual_seed(0)

def sample():
    g = grays[rng.integers(len(grays))]
    true = E
    if rng.random() < 0.5: g = np.ascontiguousarray(g[:, ::-1]); true = mir
    g = g.astype(np.float32)
    g = np.clip((g - 128) * rng.uniform(0.6, 1.4) + 128 + rng.uniform(-30, 30), 0, 255)
    sig = rng.uniform(0, 1.2)
    if sig > 0.3: g = cv2.GaussianBlur(g, (0, 0), sig)
    rad = a.scatter * np.sqrt(rng.uniform(0, 1, 2)); ang = rng.uniform(0, 2 * np.pi, 2)
    est = true + np.stack([rad * np.cos(ang), rad * np.sin(ang)], 1)
    b, m = band(g, est[0], est[1])
    tgt = (true @ m[:, :2].T + m[:, 2] - E).ravel() / 10
    b = b + rng.normal(0, rng.uniform(0, 6), b.shape)
    return norm(b), tgt

net = Net(a.width); net(torch.zeros(1, 1, BH, BW))
opt = torch.optim.Adam(net.parameters(), 1e-3)
sched = torch.optim.lr_scheduler.MultiStepLR(opt, [int(a.steps * .6), int(a.steps * .85)], 0.2)
t = time.process_time()
for step in range(a.steps):
    xb, yb = zip(*[sample() for _ in range(32)])
    x = torch.from_numpy(np.stack(xb)[:, None]); y = torch.from_numpy(np.stack(yb)).float()
    loss = nn.functional.smooth_l1_loss(net(x), y, beta=0.1)
    opt.zero_grad(); loss.backward(); opt.step(); sched.step()
    if step % 500 == 0: print(step, float(loss), flush=True)
print(f"train cpu {time.process_time()-t:.0f}s")
net.eval()

def cnn(gray, l, r):
    l, r = np.asarray(l, float), np.asarray(r, float)
    for _ in range(a.iters):
        b, m = band(gray, l, r)
        with torch.no_grad(): d = net(torch.from_numpy(norm(b))[None, None]).numpy()[0] * 10
        fr = E + d.reshape(2, 2); back = cv2.invertAffineTransform(m)
        new = fr @ back[:, :2].T + back[:, 2]; l, r = new
    return l, r

ref = eye_refine.reference_from_photos(np.stack(grays))
rows = json.loads(Path(a.cache).read_text())
names = sorted({r["photo"] for r in rows}); keep = {names[i] for i in sel(len(names), a.eval)}
def err(l, r, tc):
    tr = bench.apply(tc, E); land = bench.apply(eye_transform(l, r, CUFS_EYES), tr)
    return float(np.hypot(*(land - E).T).max())
res = {"haar": [], "ecc": [], "cnn": [], "cnn+ecc": []}; who = []
for r in rows:
    if r["photo"] not in keep or r["off_layout"] or r["eyes"] is None: continue
    rgb = read_image(Path(r["photo"]), "RGB"); canvas, tc = bench.place(rgb, r["pose"])
    g = cv2.cvtColor(canvas, cv2.COLOR_RGB2GRAY); l, rr = np.array(r["eyes"][:2]), np.array(r["eyes"][2:])
    res["haar"].append(err(l, rr, tc)); res["ecc"].append(err(*eye_refine.refine_eyes(g, l, rr, ref)[:2], tc))
    cl, cr = cnn(g, l, rr); res["cnn"].append(err(cl, cr, tc))
    res["cnn+ecc"].append(err(*eye_refine.refine_eyes(g, cl, cr, ref)[:2], tc)); who.append(Path(r["photo"]).stem)
for k, v in res.items():
    s = bench.summary(v); print(f"{k:8} n={s['n']} med={s['median_px']} p90={s['p90_px']} worst={s['worst_px']} >4={s['over_4px']}")
for i in np.argsort(res["cnn"])[::-1][: a.show]:
    print("  ", who[i], *[f"{k} {res[k][i]:.2f}" for k in res])

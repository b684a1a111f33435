"""One command on a GPU machine: install `ide`, run the GPU tests and the fast suite, time both recipes.

    python3 bench/device_check.py                    # bare GPU machine → $OUT/device_check.json
    python3 bench/device_check.py --skip-install     # ide's dependencies importable, no venv made
    python3 bench/device_check.py --data PATH/CUFS   # time on a dataset folder instead of synthetic faces
    python3 bench/device_check.py --dry-run --out D  # CPU, tiny sizes, no install: a test of this script

Steps, each recorded in the report (status ok | failed | timeout | skipped, seconds, details) and
none able to stop the others:
  1. install: a fresh venv layered over the running interpreter's packages, `ide` installed into it
     from a copy of this checkout with pip --no-index --no-deps --no-build-isolation (nothing is
     downloaded); the imports ide needs are checked and any missing one is named.
  2. tests_cuda: `pytest -m cuda` (tests/test_cuda.py), run against the installed package.
  3. recipe_paper, recipe_cpu: configs/cufs.yaml and configs/cufs_cpu.yaml trained on the GPU for
     --steps steps (synthetic faces, or --data), validated once at the end: it/s (the first
     --warmup steps excluded), peak GPU memory, validation FSIM of stage 1 and after the steps.
     The paper recipe's VGG19 perceptual loss needs ImageNet weights in torch's hub cache; without
     them it runs with loss.perceptual.weights=none (the report says which), or with --random-vgg
     on randomly initialised VGG19 weights (the same compute, so a faithful it/s).
  4. recipe_cpu_on_cpu: the CPU recipe on this machine's CPU for --cpu-steps steps (GPU/CPU ratio).
  5. tests_fast: the suite without slow and cuda tests, on what is left of --budget. It runs after
     the timings so that a slow suite cannot cost the figures only a GPU can give.

Writes OUT/device_check.json (rewritten after every step, so a killed run leaves what it had)
and OUT/device_check.log (every step's output). OUT: --out, else $OUT, else ./device_check_out.
Exit code 0 when no step failed, 1 otherwise.

Assumes: Linux, Python >= 3.10 whose packages include PyTorch (CUDA build for a GPU run),
torchvision, NumPy, SciPy, OpenCV, scikit-image, PyYAML, TensorBoard, tqdm, Pillow, matplotlib,
pytest, setuptools and pip (pytest-xdist optional); no network; one GPU; about 8 minutes
(--budget, default 450 s of steps).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORKER = REPO / "bench" / "device_check_worker.py"
DEPS = ["torch", "torchvision", "numpy", "scipy", "cv2", "skimage", "yaml", "tensorboard", "tqdm", "PIL"]
DEPS += ["matplotlib", "pytest"]
TINY = [  # --dry-run: networks and data small enough for seconds on one CPU core
    "data.synthetic_train=8", "data.synthetic_test=2", "data.val_count=2", "stage1.k=3",
    "stage1.background=0", "model.channels=8", "model.n_fam=1", "model.reduced=4",
    "model.disc_channels=8", "train.batch_size=2", "train.precision=fp32",
    "stage1.blend=0",  # both recipes' stage 1 alike: one cached search serves the three runs
]  # fmt: skip
CAPS = {"install": 120, "tests_cuda": 150, "recipe": 120, "tests_fast": 240}  # seconds per step


class Check:
    """The report being built, its folder, the budget, and how sub-processes are run."""

    def __init__(self, args: argparse.Namespace, out: Path, work: Path) -> None:
        self.args, self.out, self.work = args, out, work
        self.python = sys.executable
        self.t0 = time.monotonic()
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
        self.report: dict = {"started": _now(), "dry_run": args.dry_run, "args": vars(args), "steps": {}}
        out.mkdir(parents=True, exist_ok=True)
        (out / "device_check.log").write_text("")

    def left(self) -> float:
        return self.args.budget - (time.monotonic() - self.t0)

    def save(self) -> None:
        steps = self.report["steps"]
        failed = [k for k, v in steps.items() if v.get("status") in ("failed", "timeout")]
        self.report.update(finished=_now(), seconds=round(time.monotonic() - self.t0, 1))
        env = steps.get("environment", {})
        keys = ("device", "precision", "it_per_s", "max_memory_allocated_mib", "val_fsim_stage1", "val_fsim")
        self.report["summary"] = {
            "ok": not failed,
            "failed": failed,
            "gpu": env.get("gpu"),
            "torch": env.get("torch"),
            "tests": {
                k: {
                    "status": v["status"],
                    **{n: v[n] for n in ("passed", "failures", "errors", "skipped") if n in v},
                }
                for k, v in steps.items()
                if k.startswith("tests_")
            },
            "recipes": {
                k: {"status": v["status"], **{n: v.get(n) for n in keys}}
                for k, v in steps.items()
                if k.startswith("recipe_")
            },
        }
        tmp = self.out / "device_check.json.tmp"
        tmp.write_text(json.dumps(self.report, indent=2, default=str))
        os.replace(tmp, self.out / "device_check.json")

    def step(self, name: str, cap: float, fn, *a) -> dict:
        """Run fn(timeout, *a) → dict of results; record status, seconds and any error, never raise."""
        timeout = min(cap, self.left())
        if timeout < 15:
            rec = {"status": "skipped", "reason": f"budget spent ({self.args.budget} s)"}
        else:
            t = time.monotonic()
            try:
                rec = {"status": "ok", **fn(timeout, *a)}
            except subprocess.TimeoutExpired:
                rec = {"status": "timeout", "reason": f"stopped after {timeout:.0f} s"}
            except StepFailed as err:
                rec = {"status": "failed", **err.result}
            except Exception as err:  # any failure is a finding for the report, not the end of the check
                rec = {"status": "failed", "error": f"{type(err).__name__}: {err}"[:2000]}
                rec["traceback"] = traceback.format_exc()[-3000:]
            rec["seconds"] = round(time.monotonic() - t, 1)
        print(f"[device_check] {name}: {rec['status']} ({rec.get('seconds', 0)} s)", flush=True)
        self.report["steps"][name] = rec
        self.save()
        return rec

    def run(self, name: str, cmd: list[str], timeout: float, env: dict | None = None) -> tuple[int, str]:
        """cmd in its own process group, output appended to the log; (exit code, output tail)."""
        part = self.work / f"{name}.out"
        with open(part, "w") as f:
            proc = subprocess.Popen(
                cmd, cwd=REPO, env=env or self.env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True
            )
            try:
                code = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)  # the step's own process group: torchrun and pytest children too
                proc.wait()
                raise
            finally:
                text = part.read_text(errors="replace")
                with open(self.out / "device_check.log", "a") as log:
                    log.write(f"\n===== {name}: {' '.join(cmd)}\n{text}")
        return code, text[-3000:]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def install(timeout: float, c: Check) -> dict:
    """Fresh venv over this interpreter's packages (a .pth file), `ide` installed into it offline."""
    deadline = time.monotonic() + timeout
    venv, src = c.work / "venv", c.work / "src"
    env = {k: v for k, v in c.env.items() if k != "PYTHONPATH"}  # from here on: the installed package
    shutil.copytree(
        REPO, src, ignore=shutil.ignore_patterns(".git", ".venv", "runs", ".cache", "build", "*.egg-info")
    )
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60, env=env
    )
    py = str(venv / "bin" / "python")
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    purelib = Path(
        subprocess.run([py, "-c", code], capture_output=True, text=True, check=True, env=env).stdout.strip()
    )
    import site
    import sysconfig

    base = dict.fromkeys(
        [*site.getsitepackages(), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    )
    (purelib / "base_packages.pth").write_text("\n".join(base) + "\n")
    flags = ["--no-index", "--no-deps", "--no-build-isolation", "--no-cache-dir"]
    pip = [py, "-m", "pip", "install", *flags, str(src)]
    rc, tail = c.run("install", pip, deadline - time.monotonic(), env)
    if rc:
        raise StepFailed(f"pip install exited {rc}", tail)
    probe = f"import importlib.util as u, json; print(json.dumps([m for m in {DEPS} if not u.find_spec(m)]))"
    missing = json.loads(
        subprocess.run([py, "-c", probe], capture_output=True, text=True, check=True, env=env).stdout
    )
    where = subprocess.run(
        [py, "-P", "-c", "import ide; print(ide.__file__)"], capture_output=True, text=True, env=env
    )
    if missing or where.returncode:
        raise RuntimeError(f"missing imports: {missing or where.stderr[-300:]}")
    c.python, c.env = py, env  # tests and workers now import the installed package
    return {"venv": str(venv), "ide": where.stdout.strip(), "base_packages": list(base)}


def pytest_step(timeout: float, c: Check, name: str, args: list[str], threads: int = 0) -> dict:
    """pytest with a JUnit XML; counts, the failing tests and the skip reasons. `threads`: OMP
    threads per process (0: as inherited)."""
    xml = c.work / f"{name}.xml"
    installed = c.python != sys.executable and sys.version_info >= (3, 11)
    flags = ["-P"] if installed else []  # -P: ide from the venv, not from the current folder
    cmd = [
        c.python,
        *flags,
        "-m",
        "pytest",
        "-v",
        "-rs",
        "-p",
        "no:cacheprovider",
        f"--junitxml={xml}",
        *args,
    ]
    try:
        rc, tail = c.run(name, cmd, timeout, {**c.env, "OMP_NUM_THREADS": str(threads)} if threads else None)
    except subprocess.TimeoutExpired:  # no JUnit XML then: count what the verbose output shows
        text = (c.work / f"{name}.out").read_text(errors="replace")
        seen = {
            k.lower(): len(re.findall(rf"\b{k}\b", text)) for k in ("PASSED", "FAILED", "ERROR", "SKIPPED")
        }
        reason = f"stopped after {timeout:.0f} s; results up to then: {seen}"
        raise StepFailed(
            reason, text, status="timeout", failing=re.findall(r"(\S+::\S+) FAILED", text)
        ) from None
    if not xml.is_file():
        raise StepFailed(f"pytest exited {rc} without a report", tail)
    counts = dict.fromkeys(("passed", "failures", "errors", "skipped"), 0)
    failing, skips = [], {}
    for case in ET.parse(xml).getroot().iter("testcase"):
        kind = next((k for k in ("failure", "error", "skipped") if case.find(k) is not None), None)
        counts[{"failure": "failures", "error": "errors", "skipped": "skipped", None: "passed"}[kind]] += 1
        msg = (case.find(kind).get("message") or "").split("\n")[0][:300] if kind else ""
        if kind == "skipped":
            skips[msg] = skips.get(msg, 0) + 1
        elif kind:
            failing.append(f"{case.get('classname')}::{case.get('name')}: {msg}")
    res = {**counts, "exit_code": rc, "args": args, "failing": failing[:30], "skip_reasons": skips}
    if rc not in (0, 5) or failing:  # 5: nothing collected
        raise StepFailed(f"{counts['failures']} failed, {counts['errors']} errors", tail, **res)
    return res


class StepFailed(Exception):
    """A step's own failure: `result` (error: the message and the output's last line, output_tail,
    and anything else given) becomes its record."""

    def __init__(self, message: str, output: str = "", **result) -> None:
        last = next((ln.strip() for ln in reversed(output.splitlines()) if ln.strip()), "")
        error = f"{message}: {last[:300]}" if last else message
        super().__init__(error)
        self.result = {"error": error, **result, "output_tail": output[-2000:]}


def recipe_step(
    timeout: float, c: Check, name: str, config: str, device: str, steps: int, extra: list[str]
) -> dict:
    """Train `config` for `steps` steps in a worker process; its timings and scores."""
    a = c.args
    overrides = [
        f"data.root={a.data or 'synthetic'}", f"train.iterations={steps}", f"eval.every={steps}",
        f"train.save_every={steps}", f"train.log_every={steps}", f"log.dir={c.work / 'runs'}",
        f"data.cache_dir={c.work / 'cache'}", "log.tensorboard=false", f"train.name={name}",
        f"train.device={device}", f"stage1.device={'cpu' if device == 'cpu' else 'auto'}",
        *(TINY if a.dry_run else []), *extra,
    ]  # fmt: skip
    spec = {"config": str(REPO / config), "overrides": overrides, "warmup": min(a.warmup, max(1, steps // 5))}
    (c.work / f"{name}.json").write_text(json.dumps(spec))
    cmd = [c.python, str(WORKER), "recipe", str(c.work / f"{name}.json")]
    rc, tail = c.run(name, cmd, timeout)
    result = c.work / f"{name}.result.json"
    if rc or not result.is_file():
        raise StepFailed(f"worker exited {rc}", tail)
    return {"config": config, "overrides": overrides, **json.loads(result.read_text())}


def perceptual_choice(c: Check) -> tuple[list[str], str]:
    """The paper recipe's loss.perceptual.weights: ImageNet VGG19 when present, else random/none."""
    probe = "from ide.losses import resolve_vgg_weights as r; print(r('torchvision'))"
    found = subprocess.run([c.python, "-c", probe], capture_output=True, text=True, env=c.env, cwd=REPO)
    if found.returncode == 0 and not c.args.dry_run:
        return [], f"torchvision ImageNet VGG19 weights ({found.stdout.strip()})"
    if c.args.random_vgg:
        return ["loss.perceptual.weights=random"], "VGG19 at random init (no ImageNet weights): same compute"
    why = "no ImageNet VGG19 weights in torch's hub cache" if found.returncode else "dry run"
    return ["loss.perceptual.weights=none"], f"none ({why}): the step has no VGG19 forward/backward"


def environment(timeout: float, c: Check) -> dict:
    """Versions, GPU and CPU of the interpreter that runs the tests (bench/device_check_worker.py)."""
    result = c.work / "environment.json"
    rc, tail = c.run("environment", [c.python, str(WORKER), "env", str(result)], timeout)
    if rc or not result.is_file():
        raise StepFailed(f"worker exited {rc}", tail)
    env = json.loads(result.read_text())
    smi = shutil.which("nvidia-smi")
    if smi:
        q = [smi, "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"]
        env["nvidia_smi"] = subprocess.run(q, capture_output=True, text=True, timeout=30).stdout.strip()
    git = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    env["commit"] = git.stdout.strip() if git.returncode == 0 else None
    return env


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="report folder (default: $OUT, else ./device_check_out)")
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes, no install: checks this script")
    ap.add_argument("--skip-install", action="store_true", help="use this interpreter as it is (no venv)")
    ap.add_argument("--data", help="dataset root (train/, test/) to time on instead of the synthetic faces")
    ap.add_argument("--steps", type=int, default=200, help="training steps per GPU recipe (default 200)")
    ap.add_argument("--cpu-steps", type=int, default=30, help="CPU-recipe steps on the CPU (0: skip)")
    ap.add_argument("--warmup", type=int, default=20, help="first steps left out of it/s (default 20)")
    ap.add_argument(
        "--random-vgg", action="store_true", help="paper recipe without ImageNet VGG19: random VGG19"
    )
    ap.add_argument("--budget", type=float, default=450, help="seconds for all steps (default 450)")
    ap.add_argument(
        "--test-workers", type=int, default=8, help="pytest-xdist workers, fast suite (default 8; 0: serial)"
    )
    ap.add_argument("--work", help="scratch folder (default: a new temporary one)")
    ap.add_argument("--label", help="free text kept in the report (e.g. the commit, where there is no .git)")
    args = ap.parse_args(argv)
    if args.dry_run:
        args.skip_install, args.steps, args.cpu_steps, args.warmup = True, 3, min(args.cpu_steps, 3), 1
    out = Path(args.out or os.environ.get("OUT") or "device_check_out")
    work = Path(args.work or tempfile.mkdtemp(prefix="ide-device-check-"))
    work.mkdir(parents=True, exist_ok=True)
    c = Check(args, out.resolve(), work.resolve())
    if args.dry_run:  # seconds on a shared CPU machine: one thread per process
        c.env.setdefault("OMP_NUM_THREADS", "1")
    if args.skip_install:
        c.report["steps"]["install"] = {"status": "skipped", "reason": "--dry-run or --skip-install"}
    else:
        c.step("install", CAPS["install"], install, c)
    c.step("environment", 60, environment, c)
    gpu = "cpu" if args.dry_run else "cuda"
    cuda_args = ["-m", "cuda", str(REPO / "tests" / "test_cuda.py")]
    c.step("tests_cuda", CAPS["tests_cuda"], pytest_step, c, "tests_cuda", cuda_args)
    perc, c.report["paper_perceptual"] = perceptual_choice(c)
    recipes = [
        ("recipe_paper", "configs/cufs.yaml", gpu, args.steps, perc),
        ("recipe_cpu", "configs/cufs_cpu.yaml", gpu, args.steps, []),
    ]
    if args.cpu_steps > 0:
        recipes.append(("recipe_cpu_on_cpu", "configs/cufs_cpu.yaml", "cpu", args.cpu_steps, []))
    for name, *rest in recipes:
        c.step(name, CAPS["recipe"], recipe_step, c, name, *rest)
    threads = 0
    if args.dry_run:  # one quick module stands in for the suite
        fast = [str(REPO / "tests" / "test_config.py")]
    else:
        fast = ["-m", "not slow and not cuda", str(REPO / "tests")]
        xdist = (
            subprocess.run([c.python, "-c", "import xdist"], capture_output=True, env=c.env).returncode == 0
        )
        if args.test_workers > 0 and xdist:  # one file per worker at a time: module fixtures stay shared
            fast += ["-n", str(args.test_workers), "--dist", "loadfile"]
            threads = max(1, (os.cpu_count() or 2) // args.test_workers)
    c.step("tests_fast", CAPS["tests_fast"], pytest_step, c, "tests_fast", fast, threads)
    c.save()
    print(f"[device_check] report: {c.out / 'device_check.json'}", flush=True)
    return 0 if c.report["summary"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

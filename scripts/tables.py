"""Write the results tables of README.md and docs/results.md from the JSON files under results/.

    python scripts/tables.py                      # rewrite every table between its markers
    python scripts/tables.py --check              # exit 1 when a table differs from its JSON files
    python scripts/tables.py --allow-incomplete   # render "–" for JSON files not produced yet

`results/tables.yaml` lists the tables: each has rows, and each row a label and one or more JSON
files written by `ide metrics --json` / `ide test --split` (several files are seeds of one recipe:
shown as mean ± standard deviation over them, with n). A table is the text between
`<!-- table:NAME -->` and `<!-- /table:NAME -->` in the documents the manifest names. Every row's
JSON must carry a "provenance" block (version, commit, config, checkpoint, command, machine, date);
`--allow-incomplete` renders rows without one too and warns. `results/published.yaml` holds the
numbers published by others (not measured here), rendered by tables of `kind: published`.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DASH = "–"


class TableError(Exception):
    """A manifest, JSON file or document that cannot be rendered; the message names the file."""


def load_yaml(path: Path) -> dict:
    if not path.is_file():
        raise TableError(f"{path} not found")
    return yaml.safe_load(path.read_text()) or {}


def load_result(results: Path, name: str, allow_incomplete: bool, warnings: list[str]) -> dict | None:
    """One `ide metrics --json` file, or None when it is missing and that is allowed."""
    path = results / name
    if not path.is_file():
        if allow_incomplete:
            warnings.append(f"results/{name}: not produced yet, rendered as {DASH}")
            return None
        raise TableError(f"results/{name} not found (produce it, or pass --allow-incomplete)")
    data = json.loads(path.read_text())
    if "provenance" not in data:
        if not allow_incomplete:
            raise TableError(
                f'results/{name} has no "provenance" key; write it with `ide test --split` or '
                "`ide metrics --json`, not by hand"
            )
        warnings.append(f'results/{name}: no "provenance" key')
    return data


def _pick(result: dict, part: str | None, n: int) -> dict | None:
    """The scores of `part` (None: overall) when they cover the table's n images, else None."""
    block = result if part is None else result.get("subsets", {}).get(part)
    return block if block is not None and block.get("n") == n else None


def _nlda_percent(block: dict | None) -> float | None:
    """NLDA accuracy in % from `{"nlda": {"mean": ...}}` (a fraction in [0, 1], or already in %)."""
    nlda = None if block is None else block.get("nlda")
    if not isinstance(nlda, dict) or "mean" not in nlda:
        return None
    mean = float(nlda["mean"])
    return 100.0 * mean if mean <= 1.0 else mean


def fmt(values: list[float], digits: int) -> str:
    """One value, or mean ± sample standard deviation of several (seeds); "–" for none."""
    if not values:
        return DASH
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def row_cells(results: list[dict], table: dict) -> list[str]:
    """FSIM, SSIM, NLDA (%), sharpness overall, then FSIM / SSIM per part (means over seeds)."""
    n = table["n"]
    overall = [b for b in (_pick(r, None, n) for r in results) if b is not None]
    cells = [
        fmt([b["fsim"] for b in overall], 4),
        fmt([b["ssim"] for b in overall], 4),
        fmt([v for v in (_nlda_percent(b) for b in overall) if v is not None], 1),
        fmt([b["sharpness"] for b in overall if "sharpness" in b], 2),
    ]
    for part, part_n in (table.get("parts") or {}).items():
        blocks = [b for b in (_pick(r, part, part_n) for r in results) if b is not None]
        if not blocks:
            cells.append(DASH)
            continue
        fsim = statistics.mean(b["fsim"] for b in blocks)
        ssim = statistics.mean(b["ssim"] for b in blocks)
        cells.append(f"{fsim:.4f} / {ssim:.4f}")
    return cells


def render_measured(table: dict, results: Path, allow_incomplete: bool, warnings: list[str]) -> str:
    """A markdown table of measured rows, with a one-line key under it."""
    parts = table.get("parts") or {}
    head = ["method", f"FSIM ({table['n']})", "SSIM", "NLDA %", "sharpness"]
    head += [f"{p} ({k})" for p, k in parts.items()]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in table["rows"]:
        files = row["files"] if isinstance(row["files"], list) else [row["files"]]
        loaded = [load_result(results, f, allow_incomplete, warnings) for f in files]
        present = [r for r in loaded if r is not None]
        label = row["label"]
        if len(files) > 1:
            label += f" (n = {len(present)})"
        lines.append("| " + " | ".join([label, *row_cells(present, table)]) + " |")
    key = (
        "FSIM / SSIM: gray, per image, then averaged. ± : standard deviation over the seeds (n). "
        "NLDA: rank-1 recognition accuracy. Sharpness: mean absolute Laplacian relative to the artists' "
        f"sketches of the same faces (1: their level, below: blur). {DASH}: not measured."
    )
    if parts:
        key += " Parts: FSIM / SSIM (means over the seeds)."
    return "\n".join(lines) + "\n\n" + key


def render_published(table: dict, published: dict) -> str:
    """The published numbers (FSIM on 0–1, NLDA in %), per dataset, with their source."""
    datasets = table["datasets"]
    head = ["method"] + [f"{d} {m}" for d in datasets for m in ("FSIM", "NLDA %")]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for entry in published["methods"]:
        cells = [entry["method"]]
        for d in datasets:
            scores = entry.get(d.lower()) or {}
            fsim, nlda = scores.get("fsim"), scores.get("nlda")
            cells.append(DASH if fsim is None else f"{fsim / 100:.3f}")
            cells.append(DASH if nlda is None else f"{nlda:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n\n" + "Source: " + " ".join(published["source"].split())


def _provenance_line(name: str, result: dict | None) -> str:
    """One list item: the file, its scores and where it came from (the provenance block's keys)."""
    if result is None:
        return f"- `results/{name}`: not produced yet"
    prov = result.get("provenance") or {}
    facts = [f"FSIM {result['fsim']:.4f}, SSIM {result['ssim']:.4f} ({result['n']} images)"]
    if prov.get("machine"):
        facts.append(f"machine: {prov['machine']}")
    training = prov.get("training") if isinstance(prov.get("training"), dict) else {}
    seconds = prov.get("train_seconds", prov.get("training_seconds", training.get("seconds")))
    if seconds is not None:
        facts.append(f"training: {float(seconds) / 60:.0f} min")
    if prov.get("date"):
        facts.append(f"date: {prov['date']}")
    if prov.get("commit"):
        facts.append(f"commit `{str(prov['commit'])[:10]}`")
    line = f"- `results/{name}`: " + "; ".join(facts)
    if not prov:
        line += "; no provenance"
    if prov.get("command"):
        command = prov["command"] if isinstance(prov["command"], str) else " ".join(prov["command"])
        program, _, args = command.partition(" ")
        command = f"{Path(program).name} {args}"  # `ide ...`, not the venv path it ran from
        line += f"  \n  `{command}`"
    return line


def render_sources(table: dict, tables: dict, results: Path, allow_incomplete: bool) -> str:
    """Every JSON file of the named measured tables, one list item each, in table order."""
    names = []
    for t in table["tables"]:
        for row in tables[t]["rows"]:
            for f in row["files"] if isinstance(row["files"], list) else [row["files"]]:
                if f not in names:
                    names.append(f)
    ignore: list[str] = []  # the measured tables already warned about these files
    return "\n".join(_provenance_line(f, load_result(results, f, allow_incomplete, ignore)) for f in names)


def render_all(root: Path, allow_incomplete: bool) -> tuple[dict[str, str], list[str], list[str]]:
    """{table name: markdown}, the documents to write into, and warnings."""
    manifest = load_yaml(root / "results" / "tables.yaml")
    warnings: list[str] = []
    published = None
    rendered = {}
    for name, table in manifest["tables"].items():
        if table.get("kind") == "published":
            published = published or load_yaml(root / "results" / "published.yaml")
            rendered[name] = render_published(table, published)
        elif table.get("kind") == "sources":
            rendered[name] = render_sources(table, manifest["tables"], root / "results", allow_incomplete)
        else:
            rendered[name] = render_measured(table, root / "results", allow_incomplete, warnings)
    return rendered, list(manifest["documents"]), warnings


def splice(text: str, rendered: dict[str, str], doc: str) -> str:
    """`text` with every marked block replaced by its rendered table; unknown names raise."""

    def replace(m: re.Match) -> str:
        name = m.group(1)
        if name not in rendered:
            raise TableError(f"{doc}: table '{name}' is not in results/tables.yaml")
        return f"<!-- table:{name} -->\n{rendered[name]}\n<!-- /table:{name} -->"

    return re.sub(r"<!-- table:([\w-]+) -->\n.*?<!-- /table:\1 -->", replace, text, flags=re.S)


def run(root: Path, check: bool, allow_incomplete: bool) -> tuple[list[str], list[str]]:
    """Rewrite (or with `check`, compare) every document; returns (stale documents, warnings)."""
    rendered, documents, warnings = render_all(root, allow_incomplete)
    stale = []
    for doc in documents:
        path = root / doc
        if not path.is_file():
            raise TableError(f"{doc} (listed in results/tables.yaml) not found")
        text = path.read_text()
        new = splice(text, rendered, doc)
        if new != text:
            stale.append(doc)
            if not check:
                path.write_text(new)
    return stale, warnings


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare only; exit 1 when a table is stale")
    ap.add_argument(
        "--allow-incomplete", action="store_true", help="render missing JSON files as '–' (and warn)"
    )
    ap.add_argument("--root", default=str(ROOT), help="repository root (default: this checkout)")
    args = ap.parse_args(argv)
    try:
        stale, warnings = run(Path(args.root), args.check, args.allow_incomplete)
    except TableError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    if args.check:
        for doc in stale:
            print(f"{doc}: a table differs from results/; run python scripts/tables.py", file=sys.stderr)
        return 1 if stale else 0
    print(f"rewrote {len(stale)} document(s): {', '.join(stale) or 'none changed'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

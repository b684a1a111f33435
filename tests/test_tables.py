"""scripts/tables.py: the README and docs tables agree with the result JSONs, and the JSONs say where
they came from. Logic on fixture files in a temporary folder; the repository's own tables last."""

from __future__ import annotations

import importlib.util
import json
import statistics
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("tables", REPO / "scripts" / "tables.py")
tables = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tables)

PROVENANCE = {
    "version": "0.1.0",
    "commit": "0123456789abcdef",
    "command": "ide test --checkpoint best.pt --split test --out out/cufs",
    "machine": "test machine",
    "date": "2026-01-01",
    "train_seconds": 1320,
}


def _result(
    fsim: float, ssim: float, provenance: bool = True, nlda: float | None = None, sharp: float | None = None
) -> dict:
    """An `ide metrics --json` summary over 3 images: parts A (2 images) and B (1)."""
    r = {
        "n": 3,
        "fsim": fsim,
        "ssim": ssim,
        "subsets": {
            "A": {"n": 2, "fsim": fsim + 0.01, "ssim": ssim + 0.01},
            "B": {"n": 1, "fsim": fsim - 0.02, "ssim": ssim - 0.02},
        },
    }
    if sharp is not None:
        r["sharpness"] = sharp
    if nlda is not None:
        r["nlda"] = {"mean": nlda, "std": 0.01}
    if provenance:
        r["provenance"] = PROVENANCE
    return r


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with a manifest, three JSON files (two seeds), published numbers and a README."""
    (tmp_path / "results" / "d").mkdir(parents=True)
    files = {
        "d/stage1.json": _result(0.70, 0.50, nlda=0.9),
        "d/refined_seed0.json": _result(0.72, 0.52, sharp=0.5),
        "d/refined_seed1.json": _result(0.74, 0.48, sharp=0.6),
    }
    for name, data in files.items():
        (tmp_path / "results" / name).write_text(json.dumps(data))
    manifest = {
        "documents": ["README.md"],
        "tables": {
            "d": {
                "n": 3,
                "parts": {"A": 2, "B": 1},
                "rows": [
                    {"label": "stage 1", "files": "d/stage1.json"},
                    {"label": "stage 1 + 2", "files": ["d/refined_seed0.json", "d/refined_seed1.json"]},
                ],
            },
            "pub": {"kind": "published", "datasets": ["D"]},
            "src": {"kind": "sources", "tables": ["d"]},
        },
    }
    (tmp_path / "results" / "tables.yaml").write_text(yaml.safe_dump(manifest))
    published = {"source": "A. Author, Paper, Table 1.", "methods": [{"method": "M", "d": {"fsim": 71.1}}]}
    (tmp_path / "results" / "published.yaml").write_text(yaml.safe_dump(published))
    (tmp_path / "README.md").write_text(
        "# r\n\n<!-- table:d -->\nold\n<!-- /table:d -->\n\ntext\n\n"
        "<!-- table:pub -->\n<!-- /table:pub -->\n<!-- table:src -->\n<!-- /table:src -->\n"
    )
    return tmp_path


def _write(root: Path, *flags: str) -> int:
    return tables.main(["--root", str(root), *flags])


def test_write_then_check_passes_and_renders_the_numbers(repo: Path):
    assert _write(repo, "--check") == 1  # "old" is not the table
    assert _write(repo) == 0
    assert _write(repo, "--check") == 0
    text = (repo / "README.md").read_text()
    assert "| stage 1 | 0.7000 | 0.5000 | 90.0 | – | 0.7100 / 0.5100 | 0.6800 / 0.4800 |" in text
    # two seeds: mean ± sample standard deviation, n in the label, parts as means
    f_sd, s_sd = statistics.stdev([0.72, 0.74]), statistics.stdev([0.52, 0.48])
    assert (
        f"| stage 1 + 2 (n = 2) | 0.7300 ± {f_sd:.4f} | 0.5000 ± {s_sd:.4f} | – | 0.55 ± 0.07 | 0.7400 / 0.5100 |"
        in text
    )
    assert "| M | 0.711 | – |" in text and "Source: A. Author, Paper, Table 1." in text
    assert "`results/d/stage1.json`: FSIM 0.7000" in text and PROVENANCE["command"] in text
    assert "machine: test machine; training: 22 min" in text
    assert "\ntext\n" in text  # prose outside the markers is kept


def test_a_number_edited_by_hand_fails_the_check(repo: Path):
    _write(repo)
    readme = repo / "README.md"
    readme.write_text(readme.read_text().replace("| 0.7000 |", "| 0.7100 |", 1))
    assert _write(repo, "--check") == 1


def test_a_changed_json_fails_the_check(repo: Path):
    _write(repo)
    path = repo / "results" / "d" / "stage1.json"
    path.write_text(json.dumps(_result(0.69, 0.50, nlda=0.9)))
    assert _write(repo, "--check") == 1


def test_a_json_without_provenance_is_refused(repo: Path, capsys):
    (repo / "results" / "d" / "stage1.json").write_text(json.dumps(_result(0.70, 0.50, provenance=False)))
    assert _write(repo) == 2
    assert 'results/d/stage1.json has no "provenance" key' in capsys.readouterr().err
    assert _write(repo, "--allow-incomplete") == 0  # rendered, with a warning
    assert "no provenance" in (repo / "README.md").read_text()


def test_a_missing_json_is_refused_unless_incomplete_is_allowed(repo: Path, capsys):
    (repo / "results" / "d" / "refined_seed1.json").unlink()
    assert _write(repo) == 2
    assert "results/d/refined_seed1.json not found" in capsys.readouterr().err
    assert _write(repo, "--allow-incomplete") == 0
    text = (repo / "README.md").read_text()
    assert "| stage 1 + 2 (n = 1) | 0.7200 | 0.5200 |" in text
    assert "`results/d/refined_seed1.json`: not produced yet" in text


def test_an_unknown_table_marker_is_refused(repo: Path, capsys):
    readme = repo / "README.md"
    readme.write_text(readme.read_text() + "<!-- table:nope -->\n<!-- /table:nope -->\n")
    assert _write(repo) == 2
    assert "table 'nope' is not in results/tables.yaml" in capsys.readouterr().err


def test_repository_tables_agree_with_results():
    """README.md and docs/results.md against results/: runs once every listed JSON exists."""
    manifest = yaml.safe_load((REPO / "results" / "tables.yaml").read_text())
    for table in manifest["tables"].values():
        for row in table.get("rows", []):
            for name in row["files"] if isinstance(row["files"], list) else [row["files"]]:
                if not (REPO / "results" / name).is_file():
                    pytest.skip(f"results/{name} not produced yet (scripts/tables.py --allow-incomplete)")
    stale, _ = tables.run(REPO, check=True, allow_incomplete=False)
    assert not stale, f"{stale}: run python scripts/tables.py"

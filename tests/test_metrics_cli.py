"""`ide metrics`: the published table reproduced, the JSON / CSV contract, one-line errors (exit 2)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from ide.cli import main
from ide.data.io import read_image, to_gray, write_png
from ide.metrics import fsim, psnr, ssim
from ide.metrics.sharpness import laplacian_energy

SHAPE = (48, 40)  # H, W: small but above SSIM's 11x11 window
IDS = ("AR_1", "CUHK_f-001", "CUHK_m-002", "XM2VTS_7")


def _smooth(rng: np.random.Generator, shape=SHAPE) -> np.ndarray:
    noise = rng.uniform(0, 255, shape).astype(np.float32)
    return np.clip(cv2.GaussianBlur(noise, (0, 0), 2.0) * 3 - 255, 0, 255).astype(np.uint8)


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path, dict[str, np.ndarray]]:
    """gt/ and pred/ with four ids of three subsets: a noisy pred, an identical one (PSNR inf),
    an RGB pred with distinct channels (scored as its ITU-R 601 gray), and a shifted one."""
    rng = np.random.default_rng(0)
    pred_dir, gt_dir = tmp_path / "pred", tmp_path / "gt"
    gray_preds = {}
    for k, pair_id in enumerate(IDS):
        gt = _smooth(rng)
        write_png(gt_dir / f"{pair_id}.png", gt)
        if k == 0:
            pred = np.clip(gt + rng.normal(0, 20, SHAPE), 0, 255).astype(np.uint8)
        elif k == 1:
            pred = gt.copy()
        elif k == 2:
            rgb = np.stack([gt, np.roll(gt, 2, axis=0), 255 - gt], axis=-1)
            cv2.imwrite(str(pred_dir / f"{pair_id}.jpg"), rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 100])
            gray_preds[pair_id] = to_gray(read_image(pred_dir / f"{pair_id}.jpg", "RGB"))
            continue
        else:
            pred = np.roll(gt, 3, axis=1)
        write_png(pred_dir / f"{pair_id}.png", pred)
        gray_preds[pair_id] = pred
    return pred_dir, gt_dir, gray_preds


def test_json_csv_and_table(folders, tmp_path, capsys):
    pred_dir, gt_dir, gray_preds = folders
    json_path, csv_path = tmp_path / "out" / "m.json", tmp_path / "out" / "m.csv"
    threads = torch.get_num_threads()
    code = main(["metrics", "--pred", str(pred_dir), "--gt", str(gt_dir), "--json", str(json_path),
                 "--csv", str(csv_path)])  # fmt: skip
    assert code == 0
    assert torch.get_num_threads() == threads  # the scorer's single-threaded spell is undone
    out = capsys.readouterr().out
    for name in ("AR", "CUHK", "XM2VTS", "overall"):
        assert name in out

    summary = json.loads(json_path.read_text())  # strict JSON: no Infinity (identical pair → null)
    assert set(summary) == {"n", "fsim", "ssim", "psnr", "sharpness", "subsets", "per_image", "provenance"}
    assert summary["provenance"]["command"] and summary["provenance"]["config"] is None
    assert summary["n"] == 4
    assert summary["subsets"]["CUHK"]["n"] == 2 and set(summary["subsets"]) == {"AR", "CUHK", "XM2VTS"}
    assert all(set(s) == {"n", "fsim", "ssim", "psnr", "sharpness"} for s in summary["subsets"].values())
    rows = {r["id"]: r for r in summary["per_image"]}
    assert [r["id"] for r in summary["per_image"]] == sorted(IDS)

    for pair_id in IDS:
        gt = read_image(gt_dir / f"{pair_id}.png")
        assert rows[pair_id]["fsim"] == pytest.approx(fsim(gray_preds[pair_id], gt), abs=1e-12)
        assert rows[pair_id]["ssim"] == pytest.approx(ssim(gray_preds[pair_id], gt), abs=1e-12)
    assert rows["CUHK_f-001"]["fsim"] == pytest.approx(1.0) and rows["CUHK_f-001"]["psnr"] is None
    assert rows["CUHK_m-002"]["fsim"] < 0.99  # the RGB file was converted, not read as one channel
    assert summary["fsim"] == pytest.approx(np.mean([r["fsim"] for r in rows.values()]))
    assert summary["subsets"]["CUHK"]["ssim"] == pytest.approx(
        (rows["CUHK_f-001"]["ssim"] + rows["CUHK_m-002"]["ssim"]) / 2
    )
    # sharpness: the identical pair is at the artist's level; the noisy AR pred is above it
    assert summary["subsets"]["AR"]["sharpness"] > 1.5
    lap_gt = [laplacian_energy(read_image(gt_dir / f"{i}.png")) for i in sorted(IDS)]
    assert summary["sharpness"] == pytest.approx(sum(r["laplacian"] for r in rows.values()) / sum(lap_gt))
    assert rows["CUHK_f-001"]["laplacian"] == pytest.approx(lap_gt[1])

    with open(csv_path, newline="") as f:
        table = list(csv.DictReader(f))
    assert [r["id"] for r in table] == sorted(IDS) and set(table[0]) == {
        "id",
        "subset",
        "fsim",
        "ssim",
        "psnr",
    }
    for r in table:
        assert float(r["fsim"]) == rows[r["id"]]["fsim"]
    assert math.isinf(float(table[1]["psnr"]))
    assert float(table[0]["psnr"]) == pytest.approx(
        psnr(gray_preds["AR_1"], read_image(gt_dir / "AR_1.png")), abs=1e-9
    )


def _one_line_error(capsys, code: int, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


def _run(pred: Path, gt: Path, *extra: str) -> int:
    return main(["metrics", "--pred", str(pred), "--gt", str(gt), *extra])


def test_empty_and_absent_folders(folders, tmp_path, capsys):
    pred_dir, gt_dir, _ = folders
    empty = tmp_path / "empty"
    empty.mkdir()
    _one_line_error(capsys, _run(empty, gt_dir), str(empty))
    _one_line_error(capsys, _run(pred_dir, tmp_path / "nowhere"), "nowhere")


def test_no_common_ids(folders, tmp_path, capsys):
    pred_dir, gt_dir, _ = folders
    other = tmp_path / "other"
    write_png(other / "zzz.png", np.zeros(SHAPE, np.uint8))
    _one_line_error(capsys, _run(other, gt_dir), "no common ids", "zzz.png")


def test_size_mismatch_is_refused_not_resized(folders, capsys):
    pred_dir, gt_dir, _ = folders
    write_png(pred_dir / "XM2VTS_7.png", np.zeros((SHAPE[0] + 2, SHAPE[1]), np.uint8))
    _one_line_error(capsys, _run(pred_dir, gt_dir), "XM2VTS_7.png", "40x50", "40x48")


def test_unreadable_file(folders, capsys):
    pred_dir, gt_dir, _ = folders
    (gt_dir / "AR_1.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    _one_line_error(capsys, _run(pred_dir, gt_dir), "AR_1.png")


def test_missing_on_one_side_needs_allow_missing(folders, capsys):
    pred_dir, gt_dir, _ = folders
    write_png(gt_dir / "AR_9.png", np.zeros(SHAPE, np.uint8))
    _one_line_error(capsys, _run(pred_dir, gt_dir), "AR_9.png", "--allow-missing")
    write_png(pred_dir / "AR_0.png", np.zeros(SHAPE, np.uint8))
    _one_line_error(capsys, _run(pred_dir, gt_dir), "AR_0.png", "--allow-missing")
    assert _run(pred_dir, gt_dir, "--allow-missing") == 0
    captured = capsys.readouterr()
    assert "overall" in captured.out and "skipped 1 only in --pred, 1 only in --gt" in captured.err


def test_duplicate_ids_and_bad_device(folders, capsys):
    pred_dir, gt_dir, _ = folders
    write_png(pred_dir / "AR_1.bmp", np.zeros(SHAPE, np.uint8))
    _one_line_error(capsys, _run(pred_dir, gt_dir), "AR_1")
    (pred_dir / "AR_1.bmp").unlink()
    if not torch.cuda.is_available():
        _one_line_error(capsys, _run(pred_dir, gt_dir, "--device", "cuda"), "--device")
    _one_line_error(capsys, _run(pred_dir, gt_dir, "--device", "tpu9"), "tpu9")


# The published SCA-GAN sketches on the 338 CUFS test pairs, FSIM / SSIM to 4 decimals.
PUBLISHED_SCA_GAN = {
    "overall": (338, 0.7142, 0.5269),
    "CUHK": (100, 0.7368, 0.6001),
    "AR": (43, 0.7605, 0.5939),
    "XM2VTS": (195, 0.6924, 0.4747),
}


@pytest.mark.slow
def test_reproduces_published_table(shared_data, tmp_path, capsys):
    json_path = tmp_path / "sca.json"
    code = _run(shared_data / "results" / "SCA-GAN" / "CUFS", shared_data / "CUFS" / "test" / "sketches",
                "--json", str(json_path))  # fmt: skip
    assert code == 0
    summary = json.loads(json_path.read_text())
    for name, (n, fsim_4, ssim_4) in PUBLISHED_SCA_GAN.items():
        got = summary if name == "overall" else summary["subsets"][name]
        assert (got["n"], round(got["fsim"], 4), round(got["ssim"], 4)) == (n, fsim_4, ssim_4), name
    assert "0.7142" in capsys.readouterr().out

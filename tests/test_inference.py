"""`ide test` end to end on a tiny trained checkpoint: split mode, photo-folder mode, bad checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import TINY

from ide.cli import main
from ide.config import load_config
from ide.data.io import read_image, to_gray, write_png
from ide.data.synthetic import write_dataset
from ide.errors import UserError
from ide.train import train


def _tiny_train(tmp, root, *extra: str):
    """Two steps of the tiny recipe on the synthetic folder `root`; the best.pt path."""
    cfg = load_config(
        None,
        [
            *TINY,
            f"data.root={root}",
            f"log.dir={tmp / 'runs'}",
            f"data.cache_dir={tmp / 'cache'}",
            "train.iterations=2",
            "eval.every=2",
            "train.save_every=2",
            *extra,
        ],
    )
    return train(cfg) / "checkpoints" / "best.pt"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("inf")
    root = tmp / "data"
    write_dataset(root, 8, 2, seed=0)
    return root, _tiny_train(tmp, root)


def _ide_test(ckpt, out, coarse_out, *extra: str) -> int:
    """`ide test --split test` on a checkpoint, writing refined and coarse sketches; the exit code."""
    args = ["test", "--checkpoint", str(ckpt), "--split", "test", "--out", str(out)]
    return main([*args, "--coarse-out", str(coarse_out), *extra])


def test_split_mode_writes_sketches_scores_and_grid_beside(tiny_run, tmp_path, capsys):
    """Sketches in OUT, OUT.grid.png and OUT.json beside it; the JSON equals `ide metrics --json`
    on OUT (which needs no --allow-missing: OUT holds sketches only), plus provenance."""
    root, ckpt = tiny_run
    out = tmp_path / "out"
    code = _ide_test(ckpt, out, tmp_path / "coarse", "--set", f"data.root={root}")
    assert code == 0
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert summary.startswith("ide test: wrote 2 sketches") and str(out) in summary
    pngs = sorted(p.stem for p in out.glob("*.png"))
    assert pngs == sorted(p.stem for p in (root / "test" / "sketches").glob("*.png"))
    assert sorted(p.stem for p in (tmp_path / "coarse").glob("*.png")) == pngs
    assert read_image(out / f"{pngs[0]}.png").shape == (250, 200)
    assert read_image(tmp_path / "out.grid.png").shape[1] > 4 * 200
    own = json.loads((tmp_path / "out.json").read_text())
    assert (
        main(
            [
                "metrics",
                "--pred",
                str(out),
                "--gt",
                str(root / "test" / "sketches"),
                "--json",
                str(tmp_path / "m.json"),
            ]
        )
        == 0
    )
    scored = json.loads((tmp_path / "m.json").read_text())
    assert {k: v for k, v in own.items() if k != "provenance"} == {
        k: v for k, v in scored.items() if k != "provenance"
    }
    prov = own["provenance"]
    assert prov["config"]["data"]["root"] == str(root) and len(prov["checkpoint_sha256"]) == 64
    assert scored["provenance"]["config"] is None and scored["provenance"]["checkpoint_sha256"] is None


def test_photo_folder_exit_1_lists_failed_photos(tiny_run, tmp_path, capsys):
    """Some photos failed: exit 1 and each named; a non-image file is only a note; a gray photo
    works with a model trained on colour photos."""
    root, ckpt = tiny_run
    photos = tmp_path / "photos"
    photos.mkdir()
    good = next((root / "test" / "photos").glob("*.png"))
    (photos / good.name).write_bytes(good.read_bytes())
    write_png(photos / "gray.png", read_image(good, "L"))
    (photos / "notes.txt").write_text("not an image")
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    out = tmp_path / "out"
    code = main(["test", "--checkpoint", str(ckpt), "--photos", str(photos), "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 1
    assert "failed: cannot read image" in captured.err and "broken.jpg" in captured.err
    assert "notes.txt" in captured.err and "notes.txt" not in captured.err.split("failed:", 1)[1]
    assert "1 photo(s) failed" in captured.out.splitlines()[-1]
    assert sorted(p.name for p in out.iterdir()) == sorted([good.name, "gray.png"])
    assert read_image(out / "gray.png").shape == (250, 200)


def test_photo_folder_where_every_photo_failed_is_exit_2(tiny_run, tmp_path, capsys):
    _, ckpt = tiny_run
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    write_png(photos / "small.png", np.zeros((40, 30, 3), np.uint8))
    out = tmp_path / "out"
    code = main(["test", "--checkpoint", str(ckpt), "--photos", str(photos), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert "broken.jpg" in err and "small.png" in err and "nothing written" in err
    assert "others were written" not in err
    assert not out.exists() and not (tmp_path / "out.grid.png").exists()


def test_synthesizer_one_photo_equals_the_batch_and_takes_prepared_photos(tiny_run):
    """`Synthesizer(photo)` (bank side kept between calls) gives what one batch gives; stage 2
    refuses photos that were not prepared."""
    from ide.data.folders import load_split
    from ide.pipeline import Synthesizer

    root, ckpt = tiny_run
    synth = Synthesizer.from_checkpoint(ckpt, [f"data.root={root}"], "cpu")
    photos = load_split(root, "test").photos
    prepared = synth.prepare(photos)
    batch = synth.refine(synth.coarse(prepared), prepared)
    for i in range(len(photos)):
        np.testing.assert_array_equal(synth(photos[i]), batch[i])
    with pytest.raises(UserError, match="prepare"):
        synth.refine(batch, photos)


def test_recognition_with_too_few_ids_is_one_line_before_any_work(tiny_run, tmp_path, capsys):
    root, ckpt = tiny_run
    code = _ide_test(ckpt, tmp_path / "o", tmp_path / "c", "--set", f"data.root={root}", "--recognition")
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "nlda" in err.lower()
    assert not (tmp_path / "o").exists() and not (tmp_path / "o.json").exists()


def test_json_without_split_is_one_line(tmp_path, capsys):
    args = ["--checkpoint", str(tmp_path / "x.pt"), "--photos", str(tmp_path), "--out", str(tmp_path / "o")]
    assert main(["test", *args, "--json", str(tmp_path / "s.json")]) == 2
    assert "--json and --recognition need --split" in capsys.readouterr().err


def test_not_a_checkpoint_is_one_line(tmp_path, capsys):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"hello")
    code = main(["test", "--checkpoint", str(bad), "--photos", str(tmp_path), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "model.pt" in err and "not an ide checkpoint" in err


def test_other_architecture_than_the_checkpoint_is_one_line(tiny_run, tmp_path, capsys):
    root, ckpt = tiny_run
    code = _ide_test(
        ckpt, tmp_path / "o", tmp_path / "c", "--set", f"data.root={root}", "--set", "model.channels=16"
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "architecture" in err and "model." in err
    assert not (tmp_path / "o").exists()


DARK_BLUE = (30, 40, 100)


def grabcut_gives_up(rgb: np.ndarray) -> np.ndarray:
    """The photo under a dark blue backdrop with a skin-coloured frame whose inside is backdrop
    blue too: GrabCut labels ~95% of it backdrop, more than it accepts, and gives up, while a
    flood fill of its gray from the border whitens the outside (66%). A second pass of the
    background model on the (unchanged) gray photo would therefore change it."""
    out = np.empty_like(rgb)
    out[:] = DARK_BLUE
    out[60:200, 40:160] = (200, 160, 140)
    out[66:194, 46:154] = DARK_BLUE
    return out


def test_checkpoint_stage1_equals_ide_coarse_with_background_model(tmp_path):
    """`ide test` (bank from the checkpoint) and `ide coarse` (bank from the data folder) give the
    same coarse sketches with the background model on: for photos with dark colour backdrops, and
    for a photo where GrabCut gives up, in the bank and among the queries."""
    from ide.pgm.background import background_mask, grabcut_mask

    root = tmp_path / "data"
    write_dataset(root, 8, 2, seed=0)
    train_photos = sorted((root / "train" / "photos").glob("*.png"))
    test_photos = sorted((root / "test" / "photos").glob("*.png"))
    for path in train_photos[:2] + test_photos[:1]:  # a dark blue backdrop along the top and the sides
        rgb = read_image(path, "RGB").copy()
        rgb[:30], rgb[:, :14], rgb[:, -14:] = DARK_BLUE, DARK_BLUE, DARK_BLUE
        write_png(path, rgb)
    for path in (train_photos[2], test_photos[1]):
        rgb = grabcut_gives_up(read_image(path, "RGB"))
        assert not grabcut_mask(rgb).any() and background_mask(to_gray(rgb), 10).mean() > 0.5
        write_png(path, rgb)
    common = [f"data.root={root}", f"data.cache_dir={tmp_path / 'cache'}", "stage1.background=10"]
    cfg = load_config(
        None, [*TINY, *common, f"log.dir={tmp_path / 'runs'}", "train.iterations=1", "eval.every=1"]
    )
    ckpt = train(cfg) / "checkpoints" / "best.pt"
    sets = [x for c in common for x in ("--set", c)]
    assert _ide_test(ckpt, tmp_path / "r", tmp_path / "t", *sets) == 0
    (tmp_path / "cfg.yaml").write_text((ckpt.parent.parent / "config.yaml").read_text())
    coarse = [
        "coarse",
        "--config",
        str(tmp_path / "cfg.yaml"),
        "--split",
        "test",
        "--out",
        str(tmp_path / "c"),
    ]
    assert main([*coarse, *sets]) == 0
    ids = sorted(p.name for p in (tmp_path / "c").glob("*.png"))
    assert ids == sorted(p.name for p in test_photos)
    assert ids == sorted(p.name for p in (tmp_path / "t").glob("*.png"))
    for name in ids:
        np.testing.assert_array_equal(read_image(tmp_path / "t" / name), read_image(tmp_path / "c" / name))


def test_align_refines_against_the_bank_mean_face(tiny_run, tmp_path, monkeypatch):
    """`ide test --photos --align`: the checkpoint's bank photos (training photos at the layout) give
    the mean face that refines the detected eyes."""
    from ide.data import align
    from ide.pipeline import Synthesizer

    root, ckpt = tiny_run
    seen = []
    original = align.align_face

    def spy(rgb, name="photo", return_matrix=False, eyes=align.CUFS_EYES, reference=None):
        seen.append(reference)
        return original(rgb, name, return_matrix, eyes, reference)

    monkeypatch.setattr(align, "align_face", spy)
    good = next((root / "test" / "photos").glob("*.png"))
    photos = tmp_path / "photos"
    write_png(photos / good.name, np.pad(read_image(good, "RGB"), ((40, 40), (60, 60), (0, 0)), mode="edge"))
    out = tmp_path / "out"
    main(["test", "--checkpoint", str(ckpt), "--photos", str(photos), "--out", str(out), "--align"])
    bank = Synthesizer.from_checkpoint(ckpt, device="cpu").stage1.bank_photos
    assert len(seen) == 1 and seen[0] is not None
    np.testing.assert_allclose(seen[0].image, bank.astype(np.float64).mean(0), atol=1e-3)

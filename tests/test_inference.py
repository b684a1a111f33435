"""`ide test` end to end on a tiny trained checkpoint: split mode, photo-folder mode, bad checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TINY

from ide.cli import main
from ide.config import load_config
from ide.data.io import read_image
from ide.data.synthetic import write_dataset
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


def test_split_mode_writes_sketches_and_grid(tiny_run, tmp_path):
    root, ckpt = tiny_run
    out = tmp_path / "out"
    code = _ide_test(ckpt, out, tmp_path / "coarse", "--set", f"data.root={root}")
    assert code == 0
    pngs = sorted(p.stem for p in out.glob("*.png") if p.stem != "grid")
    assert pngs == sorted(p.stem for p in (root / "test" / "sketches").glob("*.png"))
    assert sorted(p.stem for p in (tmp_path / "coarse").glob("*.png")) == pngs
    assert read_image(out / f"{pngs[0]}.png").shape == (250, 200)
    assert read_image(out / "grid.png").shape[1] > 4 * 200


def test_photo_folder_skips_bad_files(tiny_run, tmp_path, capsys):
    root, ckpt = tiny_run
    photos = tmp_path / "photos"
    photos.mkdir()
    good = next((root / "test" / "photos").glob("*.png"))
    (photos / good.name).write_bytes(good.read_bytes())
    (photos / "notes.txt").write_text("not an image")
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    out = tmp_path / "out"
    code = main(["test", "--checkpoint", str(ckpt), "--photos", str(photos), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert "broken.jpg" in err and "notes.txt" in err
    assert (out / good.name).is_file()
    assert np.asarray(read_image(out / good.name)).dtype == np.uint8


def test_not_a_checkpoint_is_one_line(tmp_path, capsys):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"hello")
    code = main(["test", "--checkpoint", str(bad), "--photos", str(tmp_path), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "model.pt" in err and "not an ide checkpoint" in err


def test_checkpoint_stage1_equals_ide_coarse_with_background_model(tmp_path):
    """`ide test` (bank from the checkpoint) and `ide coarse` (bank from the data folder) give the
    same coarse sketches with the background model on, for photos with dark colour backdrops in
    the bank and among the queries."""
    from ide.data.io import write_png

    root = tmp_path / "data"
    write_dataset(root, 8, 2, seed=0)
    photos = sorted((root / "train" / "photos").glob("*.png"))[:2] + sorted(
        (root / "test" / "photos").glob("*.png")
    )
    for path in photos:  # a dark blue backdrop along the top and the sides
        rgb = read_image(path, "RGB").copy()
        rgb[:30], rgb[:, :14], rgb[:, -14:] = (30, 40, 100), (30, 40, 100), (30, 40, 100)
        write_png(path, rgb)
    common = [f"data.root={root}", f"data.cache_dir={tmp_path / 'cache'}", "stage1.background=10"]
    cfg = load_config(
        None, [*TINY, *common, f"log.dir={tmp_path / 'runs'}", "train.iterations=1", "eval.every=1"]
    )
    ckpt = train(cfg) / "checkpoints" / "best.pt"
    sets = [x for c in common for x in ("--set", c)]
    assert _ide_test(ckpt, tmp_path / "r", tmp_path / "t", *sets) == 0
    (tmp_path / "cfg.yaml").write_text((ckpt.parent.parent / "config.yaml").read_text())
    assert (
        main(
            [
                "coarse",
                "--config",
                str(tmp_path / "cfg.yaml"),
                "--split",
                "test",
                "--out",
                str(tmp_path / "c"),
                *sets,
            ]
        )
        == 0
    )
    ids = sorted(p.name for p in (tmp_path / "c").glob("*.png"))
    assert ids and ids == sorted(p.name for p in (tmp_path / "t").glob("*.png"))
    for name in ids:
        np.testing.assert_array_equal(read_image(tmp_path / "t" / name), read_image(tmp_path / "c" / name))

import numpy as np
import pytest

from ide.data.folders import load_split, subset_of, validation_index
from ide.data.io import read_image, to_gray, write_png
from ide.errors import UserError


def test_load_and_pair(tiny_root):
    split = load_split(tiny_root, "train")
    assert split.ids == ("A_0", "A_1", "A_2")
    assert split.photos.shape == (3, 250, 200, 3) and split.photos.dtype == np.uint8
    assert split.sketches.shape == (3, 250, 200)
    assert len(split.fingerprint()) == 16


def test_extensions_may_differ_and_rgb_sketch_becomes_gray(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (250, 200, 3), dtype=np.uint8)
    (tmp_path / "train" / "photos").mkdir(parents=True)
    (tmp_path / "train" / "sketches").mkdir(parents=True)
    Image.fromarray(rgb).save(tmp_path / "train" / "photos" / "X_1.jpg", quality=95)
    Image.fromarray(rgb).save(tmp_path / "train" / "sketches" / "X_1.bmp")
    split = load_split(tmp_path, "train")
    assert np.array_equal(split.sketches[0], np.asarray(Image.fromarray(rgb).convert("L")))
    assert np.array_equal(to_gray(rgb), split.sketches[0])


def test_missing_partner(tiny_root):
    (tiny_root / "train" / "sketches" / "A_1.png").unlink()
    with pytest.raises(UserError, match=r"A_1\.png has no sketch"):
        load_split(tiny_root, "train")


def test_orphan_sketch(tiny_root):
    (tiny_root / "train" / "photos" / "A_2.png").unlink()
    with pytest.raises(UserError, match="has no photo"):
        load_split(tiny_root, "train")


def test_zero_byte_and_truncated(tiny_root):
    (tiny_root / "train" / "photos" / "A_0.png").write_bytes(b"")
    with pytest.raises(UserError, match=r"A_0\.png.*empty file"):
        load_split(tiny_root, "train")
    from PIL import Image

    path = tiny_root / "test" / "photos" / "A_0.png"
    path.unlink()
    jpg = tiny_root / "test" / "photos" / "A_0.jpg"
    Image.fromarray(np.full((250, 200, 3), 90, np.uint8)).save(jpg, quality=90)
    jpg.write_bytes(jpg.read_bytes()[: len(jpg.read_bytes()) // 2])
    with pytest.raises(UserError, match=r"A_0\.jpg"):
        load_split(tiny_root, "test")


def test_wrong_size_and_empty(tiny_root, tmp_path):
    write_png(tiny_root / "train" / "photos" / "A_1.png", np.zeros((250, 199, 3), np.uint8))
    with pytest.raises(UserError, match=r"A_1\.png is 199x250, expected 200x250"):
        load_split(tiny_root, "train")
    (tmp_path / "e" / "train" / "photos").mkdir(parents=True)
    (tmp_path / "e" / "train" / "sketches").mkdir(parents=True)
    with pytest.raises(UserError, match="split is empty"):
        load_split(tmp_path / "e", "train")
    with pytest.raises(UserError, match="not found"):
        load_split(tmp_path / "nothing", "train")


def test_read_image_gray_matches_pil(tmp_path):
    from PIL import Image

    rgb = np.random.default_rng(2).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    write_png(tmp_path / "c.png", rgb)
    assert np.array_equal(read_image(tmp_path / "c.png", "L"), np.asarray(Image.fromarray(rgb).convert("L")))


def test_validation_index_spreads_over_subsets():
    ids = (
        [f"CUHK_{i}" for i in range(88)]
        + [f"AR_{i}" for i in range(80)]
        + [f"XM2VTS_{i}" for i in range(100)]
    )
    ids = sorted(ids)
    val = validation_index(ids, 20)
    assert len(val) == 20 and len(set(val)) == 20
    assert {subset_of(ids[i]) for i in val} == {"CUHK", "AR", "XM2VTS"}
    assert val == validation_index(ids, 20)


def test_real_cufs_loads(shared_data):
    train = load_split(shared_data / "CUFS", "train")
    test = load_split(shared_data / "CUFS", "test")
    assert (len(train), len(test)) == (268, 338)
    assert {subset_of(i) for i in test.ids} == {"CUHK", "AR", "XM2VTS"}

"""Face alignment: Haar face + eyes → similarity warp that puts the eyes at (75,125) and (127,125)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from ide.cli import main
from ide.data import align, eye_refine
from ide.data.align import AlignError, align_face, detect_eyes, eye_transform
from ide.data.io import read_image, write_png
from ide.data.layout import CUFS_EYES, LAYOUTS
from ide.data.synthetic import _sample, make_pair

LEFT_EYE, RIGHT_EYE = CUFS_EYES[:2], CUFS_EYES[2:]

# Eye centres (pupils) of skimage.data.astronaut(), read by hand off 20x magnified crops.
ASTRONAUT_EYES = np.array([[203.0, 101.0], [247.0, 103.0]])


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return data.astronaut()


def test_eye_transform_is_a_similarity_onto_the_layout():
    m = eye_transform((310.0, 420.0), (400.0, 380.0))  # tilted, far apart
    np.testing.assert_allclose(_apply(m, np.array([[310.0, 420.0], [400.0, 380.0]])), [LEFT_EYE, RIGHT_EYE])
    a, b = m[0, 0], m[1, 0]
    np.testing.assert_allclose(m[:, :2], [[a, -b], [b, a]])  # rotation + uniform scale, no shear
    np.testing.assert_allclose(np.hypot(a, b), 52 / np.hypot(90, 40))


def test_astronaut_eyes_land_on_the_layout(astronaut):
    (lx, ly), (rx, ry) = detect_eyes(astronaut)
    assert lx < rx
    aligned, matrix = align_face(astronaut, return_matrix=True)
    assert aligned.shape == (250, 200, 3) and aligned.dtype == np.uint8
    landed = _apply(matrix, ASTRONAUT_EYES)
    errors = np.hypot(*(landed - np.array([LEFT_EYE, RIGHT_EYE])).T)
    assert (errors < 4).all(), landed
    # the face fills the frame: the aligned eye regions are darker than the forehead between them
    assert aligned[120:131, 68:83].mean() < aligned[95:106, 95:106].mean()


def test_cufsf_layout_from_the_config(astronaut, tmp_path):
    """CUFSF faces sit higher and larger (eyes 75 px apart): --align follows data.eyes / --layout."""
    target = np.array(LAYOUTS["cufsf"]).reshape(2, 2)
    aligned, matrix = align_face(astronaut, return_matrix=True, eyes=LAYOUTS["cufsf"])
    assert (np.hypot(*(_apply(matrix, ASTRONAUT_EYES) - target).T) < 4).all()
    from ide.config import load_config

    assert load_config("configs/cufsf_cpu.yaml", ["data.root=synthetic"]).data.eyes == LAYOUTS["cufsf"]
    write_png(tmp_path / "a.png", astronaut)
    assert (
        main(
            ["align", "--photos", str(tmp_path / "a.png"), "--out", str(tmp_path / "o"), "--layout", "cufsf"]
        )
        == 0
    )
    np.testing.assert_array_equal(read_image(tmp_path / "o" / "a.png", "RGB"), aligned)


def test_border_is_white_and_gray_input_accepted(astronaut):
    small = astronaut[40:260, 120:340]  # the face close to the top edge: the warp runs off the photo
    aligned = align_face(small[..., 0])
    assert aligned.shape == (250, 200, 3)
    assert (aligned[:20] == 255).all()  # above the crop's top edge: white, not black or smeared
    assert aligned[120:131, 60:140].min() < 128  # and the face is there


@pytest.mark.parametrize("name", ["gray", "coins"])
def test_no_face_is_an_error_naming_the_file(name):
    image = np.full((300, 300, 3), 128, np.uint8) if name == "gray" else data.coins()
    with pytest.raises(AlignError, match=f"in {name}.png"):
        align_face(image, name=f"{name}.png")


def test_two_faces_is_an_error(astronaut):
    with pytest.raises(AlignError, match="2 faces found in pair.png"):
        detect_eyes(np.concatenate([astronaut, astronaut], axis=1), name="pair.png")


def test_cli_aligns_the_good_and_names_the_failures(tmp_path, astronaut, capsys):
    photos, out = tmp_path / "photos", tmp_path / "aligned"
    write_png(photos / "eileen.png", astronaut)
    write_png(photos / "blank.png", np.full((250, 200, 3), 200, np.uint8))
    (photos / "broken.jpg").write_bytes(b"not a jpeg")
    (photos / "notes.txt").write_text("not a photo")
    assert main(["align", "--photos", str(photos), "--out", str(out)]) == 2
    assert sorted(p.name for p in out.iterdir()) == ["eileen.png"]
    assert read_image(out / "eileen.png", "RGB").shape == (250, 200, 3)
    err = capsys.readouterr().err
    assert "blank.png" in err and "broken.jpg" in err and "notes.txt" in err
    assert "2 failed" in err
    # a folder of good photos only exits 0; a single file works too
    assert main(["align", "--photos", str(photos / "eileen.png"), "--out", str(tmp_path / "one")]) == 0
    assert (tmp_path / "one" / "eileen.png").is_file()


def test_missing_path_is_a_user_error(tmp_path, capsys):
    assert main(["align", "--photos", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert "not found" in capsys.readouterr().err


def test_cufs_photos_are_already_in_the_layout(shared_data):
    """Aligned CUFS photos: the detected eyes sit near (75,125) and (127,125)."""
    files = sorted((shared_data / "CUFS" / "test" / "photos").glob("CUHK_*"))[:6]
    assert files
    errors = []
    for path in files:
        left, right = detect_eyes(read_image(path, "RGB"), name=str(path))
        errors.append(max(np.hypot(left[0] - 75, left[1] - 125), np.hypot(right[0] - 127, right[1] - 125)))
    assert np.median(errors) < 4 and max(errors) < 8, errors


def _place(image: np.ndarray, angle: float, scale: float, side: int = 480) -> tuple[np.ndarray, np.ndarray]:
    """`image` turned by `angle` degrees (counter-clockwise on screen) and scaled, centred on a gray
    side x side canvas → (canvas, float64 [2, 3] image→canvas map)."""
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle, scale)
    m[:, 2] += ((side - w) / 2, (side - h) / 2)
    return cv2.warpAffine(image, m, (side, side), flags=cv2.INTER_LINEAR, borderValue=(127, 127, 127)), m


def _synthetic_face(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic photo uint8 [250, 200, 3] and its true eye centres float64 [2, 2] (x, y)."""
    photo, _ = make_pair(seed, seed % 2)
    return photo, np.array(_sample(np.random.default_rng(seed), seed % 2)["eyes"], np.float64)


@pytest.mark.parametrize("angle, scale", [(25.0, 1.2), (-25.0, 0.8), (-12.0, 1.0)])
def test_rotation_search_recovers_a_turned_synthetic_face(angle, scale):
    """Turned past what the upright face cascade takes (about ±15°): the search over turned copies
    finds the face, and the eyes come back within 3 px and the eye line within 3° of the truth."""
    photo, eyes = _synthetic_face(0)
    canvas, m = _place(photo, angle, scale)
    truth = _apply(m, eyes)
    found = np.array(detect_eyes(canvas))
    assert np.hypot(*(found - truth).T).max() < 3, (found, truth)
    tilt = np.degrees(np.arctan2(*(found[1] - found[0])[::-1]))
    assert abs(tilt + angle) < 3  # cv2 turns counter-clockwise on screen: the eye line rises to the right


def test_turned_astronaut_aligns_onto_the_layout(astronaut):
    canvas, m = _place(astronaut, -22.0, 0.9, side=640)
    aligned, matrix = align_face(canvas, return_matrix=True)
    landed = _apply(matrix, _apply(m, ASTRONAUT_EYES))
    assert (np.hypot(*(landed - np.array([LEFT_EYE, RIGHT_EYE])).T) < 4).all(), landed


def test_calibration_moves_the_eyes_by_its_offset(astronaut):
    """The calibration is added on the upright copy in eye distances: 0.1 down moves both eyes 0.1
    eye distances down the face, whatever the photo's scale."""
    plain = np.array(detect_eyes(astronaut, calibration=(0.0, 0.0, 0.0, 0.0)))
    moved = np.array(detect_eyes(astronaut, calibration=(0.0, 0.1, 0.0, 0.1)))
    dist = np.hypot(*(plain[1] - plain[0]))
    np.testing.assert_allclose(moved - plain, [[0, 0.1 * dist]] * 2, atol=0.15 * 0.1 * dist + 0.5)
    assert align.CALIBRATION != (0.0, 0.0, 0.0, 0.0)  # the stored constants are in use


def test_calibration_removes_the_eye_box_bias(shared_data):
    """On aligned CUFS test photos the calibrated eyes sit nearer the layout than the raw box centres."""
    files = sorted((shared_data / "CUFS" / "test" / "photos").glob("CUHK_*"))[:6]
    target = np.reshape(CUFS_EYES, (2, 2))
    raw, calibrated = [], []
    for path in files:
        photo = read_image(path, "RGB")
        raw.append(np.hypot(*(np.array(detect_eyes(photo, calibration=(0.0,) * 4)) - target).T).max())
        calibrated.append(np.hypot(*(np.array(detect_eyes(photo)) - target).T).max())
    assert np.median(calibrated) < np.median(raw) and np.median(calibrated) < 2.5, (raw, calibrated)


def test_cli_one_line_per_failed_photo_and_exit_2(tmp_path, capsys):
    """A photo without a face: exit 2, one line naming it (no traceback), nothing written for it."""
    photos, out = tmp_path / "photos", tmp_path / "aligned"
    write_png(photos / "wall.png", np.full((300, 260, 3), 90, np.uint8))
    assert main(["align", "--photos", str(photos / "wall.png"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and [line for line in err.splitlines() if "error:" in line] == [
        f"ide align: error: no face found in {photos / 'wall.png'}; {align._LAYOUT_HINT}"
    ]
    assert not (out / "wall.png").exists()


def _aligned_synthetic(seed: int) -> np.ndarray:
    """A synthetic photo warped to the CUFS layout by its true eyes: uint8 [250, 200, 3]."""
    photo, eyes = _synthetic_face(seed)
    m = eye_transform(eyes[0], eyes[1])
    return cv2.warpAffine(photo, m, (200, 250), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


@pytest.fixture(scope="module")
def synthetic_reference() -> eye_refine.Reference:
    """The mean face of 8 synthetic photos at the CUFS layout (not the face under test, seed 0)."""
    return eye_refine.reference_from_photos(np.stack([_aligned_synthetic(s) for s in range(1, 9)]))


@pytest.mark.parametrize("angle, scale", [(15.0, 1.2), (-8.0, 0.8)])
def test_refinement_recovers_a_known_similarity(synthetic_reference, angle, scale):
    """Eyes given 2.5 px off (200x250 px; as the Haar boxes jitter): fitting the mean face's eye
    windows brings both back to within 1 px of the truth in the 200x250 frame."""
    photo, eyes = _synthetic_face(0)
    canvas, m = _place(photo, angle, scale)
    truth = _apply(m, eyes)
    start = truth + np.array([[2.0, -1.5], [-1.5, 2.0]]) * np.hypot(*(truth[1] - truth[0])) / 52
    left, right, refined = eye_refine.refine_eyes(canvas[..., 0], start[0], start[1], synthetic_reference)
    assert refined

    def error(pair):  # the larger eye error of the alignment from `pair`, in 200x250 px
        landed = _apply(eye_transform(*pair), truth)
        return np.hypot(*(landed - np.array([LEFT_EYE, RIGHT_EYE])).T).max()

    assert error(start) > 2 and error((left, right)) < 1.0, (error(start), error((left, right)))


def _eye_error(pair, truth) -> float:
    """The larger eye error of the alignment from `pair` (eyes of a photo whose true eyes are
    `truth`), in 200x250 px."""
    landed = _apply(eye_transform(*pair), truth)
    return float(np.hypot(*(landed - np.array([LEFT_EYE, RIGHT_EYE])).T).max())


@pytest.mark.parametrize("angle, scale", [(10.0, 1.1), (-15.0, 0.9)])
def test_sure_fit_corrects_a_start_6_px_off(synthetic_reference, angle, scale):
    """Eyes given about 6 px off (200x250 px): farther than REFINE_MAX_MOVE,
    but the fit's correlation is at least REFINE_SURE_CC, so the larger move is taken."""
    photo, eyes = _synthetic_face(0)
    canvas, m = _place(photo, angle, scale)
    truth = _apply(m, eyes)
    start = truth + np.array([[5.0, 3.0], [5.0, 3.0]]) * np.hypot(*(truth[1] - truth[0])) / 52
    assert _eye_error(start, truth) > 5.5
    with pytest.MonkeyPatch.context() as mp:  # the move guard alone refuses this correction
        mp.setattr(eye_refine, "REFINE_SURE_CC", 2.0)
        assert not eye_refine.refine_eyes(canvas[..., 0], start[0], start[1], synthetic_reference)[2]
    left, right, refined = eye_refine.refine_eyes(canvas[..., 0], start[0], start[1], synthetic_reference)
    assert refined and _eye_error((left, right), truth) < 1.0, _eye_error((left, right), truth)


def test_refinement_that_moves_too_far_keeps_the_given_eyes(synthetic_reference):
    """A start 12 px off: whatever the fit finds is more than REFINE_SURE_MOVE away, the start stays."""
    photo, eyes = _synthetic_face(0)
    start = eyes + [[0.0, 12.0], [0.0, 12.0]]
    left, right, refined = eye_refine.refine_eyes(photo[..., 0], start[0], start[1], synthetic_reference)
    assert not refined
    np.testing.assert_array_equal([left, right], start)


def test_poorly_correlated_fit_keeps_the_given_eyes(synthetic_reference):
    """Noise where the eyes are: the fit moves a little but correlates below REFINE_MIN_CC with the
    mean face's eye windows, so it is refused even within REFINE_MAX_MOVE."""
    photo, eyes = _synthetic_face(0)
    noisy = photo[..., 0].copy()
    noisy[95:155] = np.random.default_rng(0).integers(0, 256, (60, noisy.shape[1]), np.uint8)
    start = eyes + [[1.0, 1.0], [-1.0, 1.0]]
    left, right, refined = eye_refine.refine_eyes(noisy, start[0], start[1], synthetic_reference)
    assert not refined
    np.testing.assert_array_equal([left, right], start)


def test_no_reference_is_the_haar_result(astronaut, monkeypatch):
    """Without a reference the refinement never runs: the eyes are the Haar ones as before."""
    before = detect_eyes(astronaut)

    def boom(*args, **kwargs):
        raise AssertionError("refine_eyes ran without a reference")

    monkeypatch.setattr(align, "refine_eyes", boom)
    assert detect_eyes(astronaut) == before and detect_eyes(astronaut, reference=None) == before


def test_cli_reference_folder(tmp_path, astronaut):
    """`ide align --reference DIR`: the mean of DIR's aligned photos refines the eyes; the astronaut
    still lands on the layout."""
    ref = tmp_path / "ref"
    for s in range(1, 9):
        write_png(ref / f"{s}.png", _aligned_synthetic(s))
    (ref / "notes.txt").write_text("not a photo")  # skipped
    write_png(tmp_path / "a.png", astronaut)
    out = tmp_path / "o"
    assert (
        main(["align", "--photos", str(tmp_path / "a.png"), "--out", str(out), "--reference", str(ref)]) == 0
    )
    reference = eye_refine.load_reference(ref)
    aligned, matrix = align_face(astronaut, return_matrix=True, reference=reference)
    np.testing.assert_array_equal(read_image(out / "a.png", "RGB"), aligned)
    assert (np.hypot(*(_apply(matrix, ASTRONAUT_EYES) - np.array([LEFT_EYE, RIGHT_EYE])).T) < 4).all()


@pytest.mark.parametrize("case", ["missing", "empty", "sizes"])
def test_bad_reference_folder_is_one_error_line(tmp_path, astronaut, capsys, case):
    ref = tmp_path / "ref"
    if case != "missing":
        ref.mkdir()
    if case == "sizes":
        write_png(ref / "a.png", np.zeros((250, 200, 3), np.uint8))
        write_png(ref / "b.png", np.zeros((240, 200, 3), np.uint8))
    write_png(tmp_path / "p.png", astronaut)
    args = [
        "align",
        "--photos",
        str(tmp_path / "p.png"),
        "--out",
        str(tmp_path / "o"),
        "--reference",
        str(ref),
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and str(ref) in err, err
    assert not (tmp_path / "o").exists()

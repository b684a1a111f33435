"""The eye layouts of the aligned 200x250 datasets: the one place these numbers live.

Each is the eye centres (x_left, y_left, x_right, y_right) in pixels of the 200x250 (W x H) image,
left = smaller x. CUFS photos and sketches put the eyes at (75,125) and (127,125), 52 px apart;
CUFSF's sit higher and wider apart (75 px).
"""

CUFS_EYES: tuple[float, float, float, float] = (75.0, 125.0, 127.0, 125.0)
CUFSF_EYES: tuple[float, float, float, float] = (62.0, 112.0, 137.0, 112.0)
LAYOUTS: dict[str, tuple[float, float, float, float]] = {"cufs": CUFS_EYES, "cufsf": CUFSF_EYES}

"""Face recognition of synthesized sketches with null-space LDA (NLDA): the field's third metric.

The protocol of the face-sketch synthesis literature (docs/recognition.md says where it comes from):

* The N test identities each have two images: the artist's sketch and the synthesized one.
  A random `n_train` of them train the projection (both images, one class per identity); the
  other N - n_train are recognised: probes = artist's sketches, gallery = synthesized sketches.
* Features are the raw gray pixels (no resizing, no normalisation). PCA keeps the rank of the
  centred training set (2 n_train - 1 dimensions); NLDA (Chen et al. 2000) then keeps the null
  space of the within-class scatter S_w and, inside it, the eigenvectors of the between-class
  scatter S_b in decreasing eigenvalue order: n_train - 1 dimensions for two images per class.
* Rank-1 nearest neighbour by Euclidean distance, using the first d NLDA dimensions for every d:
  the accuracy curve. 20 random splits; the reported figure is the peak of the mean curve, with
  the standard deviation over splits at that dimension.

Everything goes through inner products: the Gram matrix of all 2N images (one BLAS product,
the only cost that grows with the pixel count) gives every split's PCA, scatter matrices and
projections in the span of its training images. The curve adds one dimension at a time to a
[probes, gallery] squared-distance matrix, so no [probes, gallery, dims] tensor is ever built.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ide.errors import UserError

REPEATS = 20  # random splits, as in the published evaluations
RANK_TOL = 1e-10  # eigen/singular values below this fraction of the largest count as zero
_CHUNK = 4096  # pixel columns per Gram block (float64 blocks of N x 4096)
_PRUNE_EVERY = 8  # dimensions between prunings of the impostor pairs
_DENSE_UNTIL = 0.25  # leave the dense [m, m] phase when fewer than this fraction of pairs can win


@dataclass(frozen=True)
class NLDAOptions:
    """`ide metrics --recognition` settings. train=None: 300 ids from 944 up (CUFSF), else 150 (CUFS)."""

    train: int | None = None
    repeats: int = REPEATS
    seed: int = 0


def default_train_count(n_ids: int) -> int:
    """The literature's projection-training size: CUFSF (944 test ids) 300, CUFS (338) 150."""
    return 300 if n_ids >= 944 else 150


def check_counts(n_ids: int, n_train: int, repeats: int) -> None:
    """Raise UserError unless n_train >= 2 identities train and at least 2 are left to recognise."""
    if n_train < 2:
        raise UserError(f"--nlda-train {n_train}: NLDA needs at least 2 training identities")
    if repeats < 1:
        raise UserError(f"--nlda-repeats {repeats}: give at least 1 random split")
    if n_ids < n_train + 2:
        raise UserError(
            f"--recognition: {n_ids} paired ids, but NLDA trains on {n_train} and needs at least 2 more "
            f"to recognise; pair more ids or pass --nlda-train N with N <= {max(n_ids - 2, 0)}"
        )


def resolve_train(n_ids: int, options: NLDAOptions) -> int:
    """The training-identity count for n_ids paired ids, checked (UserError when the split cannot be made)."""
    n_train = default_train_count(n_ids) if options.train is None else options.train
    check_counts(n_ids, n_train, options.repeats)
    return n_train


def split_ids(n_ids: int, n_train: int, repeats: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """`repeats` random (train, test) partitions of range(n_ids); the same seed gives the same splits.

    Returns:
        [(train int64 [n_train], test int64 [n_ids - n_train]), ...], each a permutation's two parts.
    """
    rng = np.random.default_rng(seed)
    perms = [rng.permutation(n_ids) for _ in range(repeats)]
    return [(p[:n_train], p[n_train:]) for p in perms]


def gram_matrix(x: np.ndarray) -> np.ndarray:
    """Inner products of the rows of x [n, D] (any real dtype) after removing their mean row.

    Removing one common vector changes no NLDA distance and keeps float64 products well scaled.
    Computed in float64 blocks of columns. Returns float64 [n, n].
    """
    x = x.reshape(len(x), -1)
    mean = x.mean(axis=0, dtype=np.float64)
    gram = np.zeros((len(x), len(x)))
    for start in range(0, x.shape[1], _CHUNK):
        block = x[:, start : start + _CHUNK].astype(np.float64) - mean[start : start + _CHUNK]
        gram += block @ block.T
    return gram


def _fit_gram(gram_train: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NLDA from the Gram matrix of the training samples.

    Args:
        gram_train: float64 [n, n] inner products of the n training samples.
        labels: int [n] class of each sample.
    Returns:
        (A [n, k], eigvals [k]): the features of any sample x are `centre(g_x) @ A`, where g_x [n]
        holds x's inner products with the training samples and centre() subtracts their mean
        (so features differ from those of the explicit projection by one constant vector).
        eigvals: S_b's eigenvalues inside the null space of S_w, decreasing; k = that null space's size.
    """
    n = len(gram_train)
    centred = gram_train - gram_train.mean(0) - gram_train.mean(1)[:, None] + gram_train.mean()
    lam, u = np.linalg.eigh((centred + centred.T) / 2)
    keep = lam > RANK_TOL * lam.max()  # PCA to the rank of the centred data, largest first
    lam, u = lam[keep][::-1], u[:, keep][:, ::-1]
    to_pca = u / np.sqrt(lam)  # [n, r]: centre(g_x) @ to_pca = x's PCA coordinates
    z = (gram_train - gram_train.mean(1, keepdims=True)) @ to_pca  # [n, r] training samples
    classes, cls = np.unique(labels, return_inverse=True)
    onehot = np.zeros((n, len(classes)))
    onehot[np.arange(n), cls] = 1.0
    counts = onehot.sum(0)
    means = (onehot.T @ z) / counts[:, None]  # [c, r]
    within = z - means[cls]  # S_w = within.T @ within
    between = (means - z.mean(0)) * np.sqrt(counts)[:, None]  # S_b = between.T @ between
    # null(S_w) = null(within): the SVD of the deviations avoids squaring their condition number
    _, s, vt = np.linalg.svd(within, full_matrices=True)
    rank = int(np.sum(s > RANK_TOL * max(s.max(initial=0.0), 1e-300)))
    null = vt[rank:].T  # [r, r - rank]
    proj = between @ null
    sb_null = proj.T @ proj
    eigvals, vecs = np.linalg.eigh((sb_null + sb_null.T) / 2)
    order = np.argsort(eigvals)[::-1]
    return to_pca @ (null @ vecs[:, order]), eigvals[order]


def nlda_fit(train: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NLDA projection of explicit feature vectors.

    Args:
        train: [n, D] training samples (rows), any real dtype.
        labels: int [n] class of each sample.
    Returns:
        (W float64 [D, k], eigvals [k]): features are `x @ W` (columns orthonormal, most
        discriminative first); training samples of one class all map to one point.
    """
    x = np.asarray(train, dtype=np.float64).reshape(len(train), -1)
    centred = x - x.mean(0)
    a, eigvals = _fit_gram(centred @ centred.T, np.asarray(labels))
    return centred.T @ a, eigvals  # centre(g_x) = centred @ x: the rows of centred sum to zero


def rank1_curve(probes: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """Rank-1 accuracy with the first d feature dimensions, for every d; probe i's match is gallery i.

    Args:
        probes, gallery: float [m, k] projected features, most discriminative dimension first.
    Returns:
        float64 [k] in [0, 1]: fraction of probes whose Euclidean nearest gallery item is their own
        (a tie with an impostor counts as a miss).

    Squared distances grow with d, so an impostor j whose partial distance to probe i already
    exceeds i's own distance over all k dimensions can never beat it again: it is dropped. The
    first dimensions run on the full [m, m] matrix; once a quarter of the impostors are left, the
    rest run on a list of the surviving (probe, impostor) pairs, pruned every few dimensions.
    """
    m, k = probes.shape
    own = np.cumsum((probes - gallery) ** 2, axis=1)  # [m, k] each probe's distance to its match
    final = own[:, -1:]
    curve = np.empty(k)
    dist = np.zeros((m, m))
    np.fill_diagonal(dist, np.inf)  # impostors only: the matches' distances are in own
    step = np.empty((m, m))
    dense = 0
    while dense < k:  # dense phase: the [m, m] squared distances, one dimension at a time
        np.subtract.outer(probes[:, dense], gallery[:, dense], out=step)
        np.square(step, out=step)
        dist += step
        curve[dense] = np.mean(own[:, dense] < dist.min(axis=1))
        dense += 1
        if dense % _PRUNE_EVERY == 0 and np.count_nonzero(dist <= final) < _DENSE_UNTIL * m * m:
            break
    if dense == k:
        return curve
    pi, gj = np.nonzero(dist <= final)  # the impostors that can still beat the match
    pair_dist = dist[pi, gj]
    probes_t, gallery_t, own_t = probes.T.copy(), gallery.T.copy(), own.T.copy()  # rows contiguous
    for d in range(dense, k):
        pair_dist += (probes_t[d][pi] - gallery_t[d][gj]) ** 2
        missed = np.zeros(m, dtype=bool)
        missed[pi[pair_dist <= own_t[d][pi]]] = True
        curve[d] = 1.0 - missed.mean()
        if (d + 1) % _PRUNE_EVERY == 0:
            keep = pair_dist <= final[pi, 0]
            pi, gj, pair_dist = pi[keep], gj[keep], pair_dist[keep]
    return curve


def nlda_protocol(
    probes: np.ndarray,
    gallery: np.ndarray,
    n_train: int,
    repeats: int = REPEATS,
    seed: int = 0,
) -> dict:
    """The published NLDA recognition protocol on N identities.

    Args:
        probes: [N, ...] artist's sketches (uint8 or float, any equal shape per image).
        gallery: [N, ...] synthesized sketches of the same identities, same order and shape.
        n_train: identities drawn per split to train the projection (both their images).
        repeats, seed: number of random splits and the seed of their generator.
    Returns:
        {"mean", "std": accuracy in [0, 1] at the peak of the mean curve and its std over splits,
         "dims": that dimension (1-based), "curve": mean accuracy for d = 1..k (list, k = n_train - 1
         for distinct images), "best_per_split": {"mean", "std"} of each split's own best accuracy
         (the other convention of the published scripts), "n_train", "n_test", "repeats", "seed"}.
    Raises:
        UserError: mismatched inputs, or too few identities for the split.
    """
    if probes.shape != gallery.shape:
        raise UserError(
            f"NLDA needs one synthesized and one artist's sketch per id: got {len(gallery)} of shape "
            f"{gallery.shape[1:]} and {len(probes)} of shape {probes.shape[1:]}"
        )
    n_ids = len(probes)
    check_counts(n_ids, n_train, repeats)
    gram = gram_matrix(np.concatenate([probes.reshape(n_ids, -1), gallery.reshape(n_ids, -1)]))
    curves = []
    for train, test in split_ids(n_ids, n_train, repeats, seed):
        rows = np.concatenate([train, train + n_ids])  # artist's sketches, then synthesized
        labels = np.concatenate([np.arange(n_train), np.arange(n_train)])
        a, _ = _fit_gram(gram[np.ix_(rows, rows)], labels)
        g_test = gram[np.concatenate([test, test + n_ids])][:, rows]
        feats = (g_test - g_test.mean(1, keepdims=True)) @ a
        curves.append(rank1_curve(feats[: len(test)], feats[len(test) :]))
    k = min(len(c) for c in curves)  # equal unless some split's images are linearly dependent
    if k == 0:
        raise UserError("--recognition: the training images span no discriminant direction (all identical?)")
    acc = np.stack([c[:k] for c in curves])  # [repeats, k]
    curve = acc.mean(0)
    best = int(np.argmax(curve))
    per_split = acc.max(1)
    ddof = 1 if repeats > 1 else 0  # sample std, as MATLAB's std
    return {
        "mean": float(curve[best]),
        "std": float(acc[:, best].std(ddof=ddof)),
        "dims": best + 1,
        "curve": [float(v) for v in curve],
        "best_per_split": {"mean": float(per_split.mean()), "std": float(per_split.std(ddof=ddof))},
        "n_train": n_train,
        "n_test": n_ids - n_train,
        "repeats": repeats,
        "seed": seed,
    }


def score_pairs(ids: list[str], pairs: list[tuple[np.ndarray, np.ndarray]], options: NLDAOptions) -> dict:
    """`ide metrics --recognition` on loaded (synthesized, artist's) gray pairs, one per id.

    Raises UserError naming an id whose size differs from the first (NLDA compares whole images).
    """
    first = pairs[0][1].shape
    for pair_id, (_, gt) in zip(ids, pairs):
        if gt.shape != first:
            raise UserError(
                f"--recognition compares whole images: id {pair_id} is {gt.shape[1]}x{gt.shape[0]} but "
                f"{ids[0]} is {first[1]}x{first[0]} (width x height); give one size for all ids"
            )
    n_train = resolve_train(len(ids), options)
    gts = np.stack([gt for _, gt in pairs])
    preds = np.stack([pred for pred, _ in pairs])
    return nlda_protocol(gts, preds, n_train, options.repeats, options.seed)


def format_nlda(result: dict) -> str:
    """One line for the printed table."""
    return (
        f"NLDA rank-1 (artist's sketch → synthesized, {result['n_train']} train / {result['n_test']} test ids, "
        f"{result['repeats']} splits): {100 * result['mean']:.2f} ± {100 * result['std']:.2f} % at "
        f"{result['dims']} dims; best per split {100 * result['best_per_split']['mean']:.2f} %"
    )

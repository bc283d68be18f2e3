"""Seeded splits by position: a held-out share, K folds, and whole groups held out together.

Groups (houses that share a photo or are the same record, tasks.houses.duplicates) stay on one side of
every split. The grouped splits start from the plain one and move each group that straddles it wholly to
the side (or fold) that holds most of it, the kept side (or the first such fold) on a tie: data without
groups gets exactly the plain split, and data with a few groups a split that differs by those houses only.
"""

from __future__ import annotations

import numpy as np


def holdout_rows(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(kept rows, held-out rows) of n positions: a seeded share of round(n * fraction), each sorted."""
    order = np.random.default_rng(seed).permutation(n)
    n_held = int(round(n * fraction))
    return np.sort(order[n_held:]), np.sort(order[:n_held])


def kfold_rows(n: int, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """K folds of n positions: (train rows, held-out rows) for each fold."""
    order = np.random.default_rng(seed).permutation(n)
    folds = np.array_split(order, k)
    return [(np.sort(np.concatenate(folds[:i] + folds[i + 1:])), np.sort(fold)) for i, fold in enumerate(folds)]


def groups_whole(groups: np.ndarray, sides: np.ndarray) -> np.ndarray:
    """`sides` (the side or fold index of each position) with every group moved wholly to the side that holds
    most of its positions, the lowest side index on a tie. Positions without a group partner do not move."""
    groups, sides = np.asarray(groups), np.asarray(sides).copy()
    names, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    for group in np.flatnonzero(counts > 1):
        members = np.flatnonzero(inverse == group)
        held = np.bincount(sides[members])
        sides[members] = int(np.argmax(held))  # argmax: the first of the largest
    return sides


def grouped_holdout_rows(n: int, fraction: float, seed: int,
                         groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """holdout_rows, then every group wholly on the side holding most of it (kept on a tie)."""
    kept, held = holdout_rows(n, fraction, seed)
    if groups is None:
        return kept, held
    sides = np.zeros(n, np.int64)
    sides[held] = 1
    sides = groups_whole(groups, sides)
    return np.flatnonzero(sides == 0), np.flatnonzero(sides == 1)


def group_kfold_rows(n: int, k: int, seed: int,
                     groups: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """kfold_rows, then every group wholly in the fold holding most of it (the first such fold on a tie)."""
    folds = kfold_rows(n, k, seed)
    if groups is None:
        return folds
    sides = np.zeros(n, np.int64)
    for i, (_, held) in enumerate(folds):
        sides[held] = i
    sides = groups_whole(groups, sides)
    return [(np.flatnonzero(sides != i), np.flatnonzero(sides == i)) for i in range(k)]


def group_holdout_rows(groups: np.ndarray, rows: np.ndarray, fraction: float,
                       seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(kept rows, held-out rows) of `rows`: a seeded share of their groups, whole groups only."""
    unique = np.unique(groups[rows])
    _, held_groups = holdout_rows(len(unique), fraction, seed)
    held = np.isin(groups[rows], unique[held_groups])
    return rows[~held], rows[held]

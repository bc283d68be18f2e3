"""Seeded splits by position: a held-out share, K folds, and whole groups held out together."""

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


def group_holdout_rows(groups: np.ndarray, rows: np.ndarray, fraction: float,
                       seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(kept rows, held-out rows) of `rows`: a seeded share of their groups, whole groups only."""
    unique = np.unique(groups[rows])
    _, held_groups = holdout_rows(len(unique), fraction, seed)
    held = np.isin(groups[rows], unique[held_groups])
    return rows[~held], rows[held]

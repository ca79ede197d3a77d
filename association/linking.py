"""The Hungarian step: minimum-cost one-to-one matching with a gate."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment


def link(cost: np.ndarray, max_cost: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Matches rows (tracks) to columns (detections) at minimum total cost.

    Pairs whose cost exceeds ``max_cost`` (or is not finite) never link, even when the assignment
    would pick them.

    Args:
        cost: (T, D) float cost matrix.
        max_cost: the gate.

    Returns:
        matches: (K, 2) int64 (row, column) pairs.
        unmatched_rows: (T - K,) int64.
        unmatched_cols: (D - K,) int64.
    """
    cost = np.asarray(cost, dtype=np.float64)
    n_rows, n_cols = cost.shape if cost.ndim == 2 else (0, 0)
    if n_rows == 0 or n_cols == 0:
        return np.zeros((0, 2), np.int64), np.arange(n_rows, dtype=np.int64), np.arange(n_cols, dtype=np.int64)
    allowed = np.isfinite(cost) & (cost <= max_cost)
    # Forbidden pairs get a cost above any sum of allowed ones, so the solver never trades an allowed
    # pair away to take one; they are then dropped.
    big = (np.abs(cost[allowed]).sum() + 1.0) * 2 if allowed.any() else 1.0
    rows, cols = linear_sum_assignment(np.where(allowed, cost, big))
    ok = allowed[rows, cols]
    matches = np.stack([rows[ok], cols[ok]], axis=1).astype(np.int64)
    unmatched_rows = np.setdiff1d(np.arange(n_rows), matches[:, 0]).astype(np.int64)
    unmatched_cols = np.setdiff1d(np.arange(n_cols), matches[:, 1]).astype(np.int64)
    return matches, unmatched_rows, unmatched_cols

"""Developers and free riders: the agents that submit predictions and stake on them.

Both are *forecasters*: rows of one population, so training, predicting, staking and
scoring run once for everyone. A developer buys feeds (an epsilon-greedy bandit over
the feeds' realized scores) and trains a ridge regression on them; a free rider trains
the same model on feeds that leaked to it, or copies a prediction it can see before
the round closes.
"""

from __future__ import annotations

import numpy as np

from agents.base import MarketAgent

DEVELOPER, FREE_RIDER = 0, 1
KIND_NAMES = {DEVELOPER: "developer", FREE_RIDER: "free_rider"}


class Developer(MarketAgent):
    """A model developer: buys data feeds, trains a ridge model, stakes on its predictions."""

    kind = "developer"


class FreeRider(MarketAgent):
    """A free rider: trains on leaked data or copies visible predictions, and stakes."""

    kind = "free_rider"


def choose_feeds(
    values: np.ndarray,
    prices: np.ndarray,
    available: np.ndarray,
    budgets: np.ndarray,
    k: int,
    exploration: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Epsilon-greedy choice of up to ``k`` distinct affordable feeds per buyer.

    ``values`` (n, P) are the buyers' running estimates of each feed's score; a buyer
    ranks the available feeds by value (ties broken at random), and with probability
    ``exploration`` swaps its last pick for a random feed. Feeds are then taken in rank
    order while their cumulative price fits the budget. Returns (n, k) provider indices,
    -1 where a slot is empty. One call for the whole population (no loop over buyers).
    """
    n, p = values.shape
    out = np.full((n, k), -1, dtype=np.int64)
    n_avail = int(available.sum())
    if n == 0 or n_avail == 0:
        return out
    kk = min(k, n_avail)
    noise = rng.random((n, p)) * 1e-9
    score = np.where(available[None, :], values + noise, -np.inf)
    top = np.argpartition(-score, kk - 1, axis=1)[:, :kk]
    order = np.argsort(-np.take_along_axis(score, top, axis=1), axis=1)
    picks = np.take_along_axis(top, order, axis=1)  # (n, kk) best first
    explore = rng.random(n) < exploration
    if explore.any():
        avail_idx = np.flatnonzero(available)
        rand = avail_idx[rng.integers(0, avail_idx.size, explore.sum())]
        rows = picks[explore]
        dup = (rows[:, :-1] == rand[:, None]).any(axis=1)
        rows[~dup, -1] = rand[~dup]
        picks[explore] = rows
    cost = np.cumsum(prices[picks], axis=1)
    ok = cost <= budgets[:, None] + 1e-12
    out[:, :kk] = np.where(ok, picks, -1)
    return out


def fit_ridge(
    gram: np.ndarray,
    xty: np.ndarray,
    cols: np.ndarray,
    ridge: float,
    rows: float,
) -> np.ndarray:
    """Ridge weights for many models from shared sufficient statistics.

    For model j with feature columns ``cols[j]`` (-1 = unused) the weights solve
    ``(G[c, c] + ridge * rows * I) w = X'y[c]``, the normal equations of
    ``min ||y - X w||^2 + ridge * rows * ||w||^2`` (Hoerl & Kennard 1970), where
    ``G = X'X`` and ``X'y`` are summed over the window once per round for every feed.
    Unused columns get weight 0. One batched solve for all models.
    """
    n, m = cols.shape
    if n == 0:
        return np.zeros((0, m))
    valid = cols >= 0
    c = np.where(valid, cols, 0)
    a = gram[c[:, :, None], c[:, None, :]]
    b = np.where(valid, xty[c], 0.0)
    mask = valid[:, :, None] & valid[:, None, :]
    a = np.where(mask, a, 0.0)
    eye = np.eye(m)
    diag = np.where(valid, ridge * rows + 1e-9 * (1.0 + rows), 1.0)
    a = a + eye[None] * diag[:, None, :]
    return np.linalg.solve(a, b[..., None])[..., 0]


def fit_ridge_gd(
    gram: np.ndarray,
    xty: np.ndarray,
    cols: np.ndarray,
    ridge: float,
    rows: float,
    epochs: int,
    lr: float,
) -> np.ndarray:
    """Weights after ``epochs`` epochs of full-batch gradient descent on the ridge objective.

    The secure protocols train by ``w <- w - lr (H w - b)`` from ``w = 0``, with
    ``H = G[c, c] / rows + ridge I`` and ``b = X'y[c] / rows`` (the gradient of
    ``||X w - y||^2 / (2 rows) + ridge ||w||^2 / 2``, as
    :func:`mechanisms.privacy.mpc.ridge_gd`). Unrolled, ``w_E = sum_{t<E} (I - lr H)^t
    lr b``; in the eigenbasis ``H = V diag(mu) V'`` this is
    ``w_E = V diag((1 - (1 - lr mu)^E) / mu) V' b`` (``lr E`` where ``mu = 0``), which
    gives every model's weights in one batched eigendecomposition instead of ``E``
    matrix-vector products. It converges to :func:`fit_ridge` as ``E`` grows when
    ``lr < 2 / max(mu)``.
    """
    n, m = cols.shape
    if n == 0:
        return np.zeros((0, m))
    valid = cols >= 0
    c = np.where(valid, cols, 0)
    mask = valid[:, :, None] & valid[:, None, :]
    h = np.where(mask, gram[c[:, :, None], c[:, None, :]], 0.0) / max(rows, 1.0)
    h = h + np.eye(m)[None] * np.where(valid, ridge, 1.0)[:, None, :]
    b = np.where(valid, xty[c], 0.0) / max(rows, 1.0)
    mu, v = np.linalg.eigh(h)
    small = np.abs(mu) < 1e-12
    gain = np.where(
        small, lr * epochs, (1.0 - (1.0 - lr * mu) ** epochs) / np.where(small, 1.0, mu)
    )
    coef = np.einsum("nij,ni->nj", v, b) * gain
    return np.einsum("nij,nj->ni", v, coef)


def predict(feeds: np.ndarray, picks: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Predictions (n, A) of linear models on feeds ``(P, A, k)`` chosen by ``picks`` (n, K).

    ``weights`` is (n, K*k), laid out feed by feed like the columns of :func:`fit_ridge`.
    """
    n, kslots = picks.shape
    _, a, k = feeds.shape
    out = np.zeros((n, a))
    w = weights.reshape(n, kslots, k)
    for s in range(kslots):  # K is a handful of slots; each step is one array op
        used = picks[:, s] >= 0
        if used.any():
            z = feeds[picks[used, s]]  # (n_used, A, k)
            out[used] += np.einsum("nak,nk->na", z, w[used, s])
    return out


def feed_columns(picks: np.ndarray, k: int) -> np.ndarray:
    """Columns of the stacked feature matrix used by each row of ``picks`` (-1 kept)."""
    cols = picks[:, :, None] * k + np.arange(k)[None, None, :]
    cols = np.where(picks[:, :, None] >= 0, cols, -1)
    return cols.reshape(picks.shape[0], -1)

"""Developers and free riders: the agents that submit predictions and stake on them.

Both are *forecasters*: rows of one population, so training, predicting, staking and
scoring run once for everyone. A developer buys feeds (an epsilon-greedy bandit over
the feeds' realized scores) and trains a ridge regression on them; a free rider trains
the same model on feeds that leaked to it, or copies a prediction it can see before
the round closes.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from agents.base import MarketAgent

DEVELOPER, FREE_RIDER = 0, 1
KIND_NAMES = {DEVELOPER: "developer", FREE_RIDER: "free_rider"}


class Developer(MarketAgent):
    """A model developer: buys data feeds, trains a ridge model, stakes on its predictions."""

    kind = "developer"


class FreeRider(MarketAgent):
    """A free rider: trains on leaked data or copies visible predictions, and stakes."""

    kind = "free_rider"


class FeedBandit:
    """Every buyer's running estimate of the score of each feed it has tried, and its
    choice of feeds.

    A buyer row ``i``'s value of feed ``j`` is the exponentially weighted mean of the
    scores of the models it trained on ``j`` (0 until it first uses the feed). Each row
    keeps the list of feeds it has tried (``known``) with their values (``known_values``),
    so that a choice looks at the handful of feeds a buyer knows plus a few untried ones
    instead of scanning every feed of the market for every buyer (with a thousand feeds
    and ten thousand buyers, ten million entries a round), and memory grows with what
    buyers tried, not with buyers x every provider that ever joined. ``where[i, j]`` is
    feed ``j``'s position in row ``i``'s list (-1: untried; two bytes per buyer and feed).
    """

    def __init__(self, rows: int, cols: int):
        self.where = np.full((rows, cols), -1, dtype=self._dtype(cols))
        width = min(cols, 8)
        self.known = np.full((rows, width), -1, dtype=np.int64)  # tried feeds, in order
        self.known_values = np.zeros((rows, width))
        self.n_known = np.zeros(rows, dtype=np.int64)

    @staticmethod
    def _dtype(cols: int) -> type:
        return np.int16 if cols <= np.iinfo(np.int16).max else np.int32

    @classmethod
    def from_values(cls, values: np.ndarray) -> FeedBandit:
        """A bandit whose rows have tried exactly the feeds with a nonzero value."""
        values = np.asarray(values, dtype=float)
        b = cls(*values.shape)
        r, c = np.nonzero(values)
        pos = b._add_known(r, c)
        b.known_values[r, pos] = values[r, c]
        return b

    def grow(self, rows: int, cols: int) -> None:
        """Room for ``rows`` buyers and ``cols`` feeds (new entries untried)."""
        r0, c0 = self.where.shape
        if rows <= r0 and cols <= c0:
            return
        r1, c1 = max(rows, r0), max(cols, c0)
        where = np.full((r1, c1), -1, dtype=self._dtype(c1))
        where[:r0, :c0] = self.where
        self.where = where
        if r1 > r0:
            pad = np.full((r1 - r0, self.known.shape[1]), -1, dtype=np.int64)
            self.known = np.concatenate([self.known, pad])
            self.known_values = np.concatenate([self.known_values, np.zeros(pad.shape)])
            self.n_known = np.concatenate([self.n_known, np.zeros(r1 - r0, np.int64)])

    def value(self, rows: np.ndarray, feeds: np.ndarray) -> np.ndarray:
        """Each (row, feed) pair's value (0 for a feed the row has not tried)."""
        pos = self.where[rows, feeds].astype(np.int64)
        return np.where(pos >= 0, self.known_values[rows, np.maximum(pos, 0)], 0.0)

    def update(self, rows: np.ndarray, feeds: np.ndarray, score: np.ndarray, lr: float) -> None:
        """``v <- (1 - lr) v + lr score`` for each (row, feed) pair (pairs distinct)."""
        pos = self.where[rows, feeds].astype(np.int64)
        new = pos < 0
        if new.any():
            pos[new] = self._add_known(rows[new], feeds[new])
        v = self.known_values
        v[rows, pos] = (1 - lr) * v[rows, pos] + lr * score

    def _add_known(self, rows: np.ndarray, feeds: np.ndarray) -> np.ndarray:
        """Append feeds to their rows' lists; returns each one's position in its list."""
        order = np.argsort(rows, kind="stable")
        r, f = rows[order], feeds[order]
        first = np.r_[True, r[1:] != r[:-1]]
        start = np.maximum.accumulate(np.where(first, np.arange(r.size), 0))
        pos = self.n_known[r] + np.arange(r.size) - start
        need = int(pos.max(initial=-1)) + 1
        if need > self.known.shape[1]:
            cap = max(need, 2 * self.known.shape[1])
            extra = cap - self.known.shape[1]
            pad = np.full((self.known.shape[0], extra), -1, np.int64)
            self.known = np.concatenate([self.known, pad], axis=1)
            self.known_values = np.concatenate([self.known_values, np.zeros(pad.shape)], axis=1)
        self.known[r, pos] = f
        self.where[r, f] = pos
        np.add.at(self.n_known, r, 1)
        out = np.empty_like(pos)
        out[order] = pos
        return out

    def choose(
        self,
        rows: np.ndarray,
        prices: np.ndarray,
        available: np.ndarray,
        budgets: np.ndarray,
        k: int,
        exploration: float,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """Epsilon-greedy choice of up to ``k`` distinct affordable feeds per buyer row.

        A buyer ranks the available feeds by value, untried feeds (value 0) in a
        uniformly random order among themselves, and with probability ``exploration``
        swaps its last pick for a uniformly random available feed. Feeds are then taken
        in rank order while their cumulative price fits the budget. Returns (n, k)
        feed indices, -1 where a slot is empty. One pass for the whole population.

        Only the tried feeds and ``k`` untried ones per buyer can be among its best
        ``k``, so those are all it ranks. The untried ones are a uniform random sample
        without replacement: the first distinct untried feeds in a row of uniform draws
        over the available feeds (rejection sampling); a buyer whose draws run out
        before ``k`` (it has tried most feeds) ranks all its untried feeds in a random
        order instead. Both give every order of the untried feeds the same chance.
        """
        rows = np.asarray(rows, dtype=np.int64)
        n = rows.size
        out = np.full((n, k), -1, dtype=np.int64)
        avail_idx = np.flatnonzero(available)
        n_avail = avail_idx.size
        if n == 0 or n_avail == 0:
            return out
        kk = min(k, n_avail)
        # the feeds each buyer has tried, with their values; cand (candidates) and key
        # (their scores) hold the tried ones first, then kk untried ones drawn below
        width = max(int(self.n_known[rows].max(initial=0)), 1)
        known = self.known[rows, :width]
        avail = np.zeros(available.size + 1, dtype=bool)  # position -1 (padding): False
        avail[:-1] = available
        ok = avail[known]
        untried = n_avail - ok.sum(axis=1)
        cand = np.empty((n, width + kk), dtype=np.int64)
        key = np.empty((n, width + kk))
        cand[:, :width] = known
        # the unusable (unavailable, padding) rank below every score: -1e300 added to
        # them, -0.0 to the others (values are finite scores, so the sum is exactly
        # -1e300 or the value; arithmetic, where a masked assignment branches on each)
        np.multiply(~ok, -1e300, out=key[:, :width])
        key[:, :width] += self.known_values[rows, :width]
        # kk untried available feeds per buyer, by rejection from uniform draws
        m = kk + 4
        draw = avail_idx[rng.integers(0, n_avail, (n, m))]
        cols = self.where.shape[1]
        valid = self.where.reshape(-1).take(rows[:, None] * cols + draw) < 0  # untried
        for j in range(1, m):
            valid[:, j] &= ~(draw[:, :j] == draw[:, j : j + 1]).any(axis=1)
        valid &= np.cumsum(valid, axis=1) <= kk
        short = np.flatnonzero(valid.sum(axis=1) < np.minimum(kk, untried))
        fresh = cand[:, width:]
        fresh.fill(-1)
        r, c = np.nonzero(valid)
        fresh[r, (np.cumsum(valid, axis=1) - 1)[r, c]] = draw[r, c]
        if short.size:  # rank every untried feed of these buyers in a random order
            keys = rng.random((short.size, n_avail))
            keys[self.where[rows[short][:, None], avail_idx[None, :]] >= 0] = np.inf
            order = np.argsort(keys, axis=1)[:, :kk]
            fresh[short] = np.where(
                np.take_along_axis(keys, order, axis=1) < np.inf, avail_idx[order], -1
            )
        key[:, width:] = np.where(fresh >= 0, 0.0, -1e300)
        # the kk best candidates, best first, ties in candidate order (as a stable sort
        # by descending score): kk passes of argmax, which returns the first of equal
        # maxima; the unusable and the taken ones drop out
        picks = np.empty((n, kk), dtype=np.int64)
        flat_key, flat_cand = key.reshape(-1), cand.reshape(-1)
        row_start = np.arange(n) * (width + kk)
        for j in range(kk):
            at = key.argmax(axis=1)
            at += row_start
            picks[:, j] = flat_cand.take(at)
            flat_key[at] = -np.inf
        explore = rng.random(n) < exploration
        if explore.any():
            rand = avail_idx[rng.integers(0, n_avail, explore.sum())]
            sel = picks[explore]
            dup = (sel[:, :-1] == rand[:, None]).any(axis=1)
            sel[~dup, -1] = rand[~dup]
            picks[explore] = sel
        cost = np.cumsum(prices[picks], axis=1)
        ok = cost <= budgets[:, None] + 1e-12
        out[:, :kk] = np.where(ok, picks, -1)
        return out


def choose_feeds(
    values: np.ndarray,
    prices: np.ndarray,
    available: np.ndarray,
    budgets: np.ndarray,
    k: int,
    exploration: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """:meth:`FeedBandit.choose` for buyers whose values are the rows of ``values``
    (a feed with value 0 counts as untried)."""
    bandit = FeedBandit.from_values(values)
    return bandit.choose(
        np.arange(values.shape[0]), prices, available, budgets, k, exploration, rng
    )


def _upper(gram: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``gram[c_i, c_j]`` for every pair of columns of each row of ``c``, read from the
    upper triangle (``i <= j``) of a symmetric matrix whose lower one may be stale.

    A Fortran-ordered ``gram`` (the engine's) is read through one flat index
    ``i + j * rows`` into its memory, which is cheaper than a two-index gather.
    """
    ci, cj = c[:, :, None], c[:, None, :]
    lo, hi = np.minimum(ci, cj), np.maximum(ci, cj)
    if not gram.flags.f_contiguous:
        return gram[lo, hi]
    hi *= gram.shape[0]
    hi += lo
    return gram.reshape(-1, order="F").take(hi)


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
    Unused columns get weight 0. One batched solve for all models. Only the upper
    triangle of ``gram`` is read.
    """
    n, m = cols.shape
    if n == 0:
        return np.zeros((0, m))
    valid = cols >= 0
    c = np.where(valid, cols, 0)
    a = _upper(gram, c)  # a fresh array: masked and shifted in place
    b = np.where(valid, xty[c], 0.0)
    a[~(valid[:, :, None] & valid[:, None, :])] = 0.0
    d = np.arange(m)
    a[:, d, d] += np.where(valid, ridge * rows + 1e-9 * (1.0 + rows), 1.0)
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
    h = np.where(mask, _upper(gram, c), 0.0) / max(rows, 1.0)
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
    Model ``i`` predicts ``sum_s feeds[picks[i, s]] @ w[i, s]``: a sparse (n, P*k)
    matrix of the weights (K*k entries a row) times the (P*k, A) features, one sparse
    product for everyone instead of copying each model's (A, k) feeds.
    """
    n, kslots = picks.shape
    p, a, k = feeds.shape
    if n == 0:
        return np.zeros((0, a))
    used = np.repeat(picks >= 0, k, axis=1)  # (n, K*k)
    cols = (picks[:, :, None] * k + np.arange(k)).reshape(n, -1)
    counts = used.sum(axis=1)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    w = sp.csr_array((weights[used], cols[used], indptr), shape=(n, p * k))
    z = np.ascontiguousarray(feeds.transpose(0, 2, 1)).reshape(p * k, a)
    return np.asarray(w @ z)


def feed_columns(picks: np.ndarray, k: int) -> np.ndarray:
    """Columns of the stacked feature matrix used by each row of ``picks`` (-1 kept)."""
    cols = picks[:, :, None] * k + np.arange(k)[None, None, :]
    cols = np.where(picks[:, :, None] >= 0, cols, -1)
    return cols.reshape(picks.shape[0], -1)

"""Valuation of players in cooperative games: Shapley, Banzhaf, leave-one-out.

Pure, vectorized functions over *games*: a game assigns a utility ``U(S)`` to every
coalition ``S`` of ``n`` players. Coalitions are boolean masks of shape ``(M, n)``,
and one call evaluates a whole batch of them with matrix products. A game may also
hold a batch of ``B`` independent games over the same number of players (e.g. one
game per model when attributing a model's score to its data feeds); every valuation
then returns ``(B, n)`` instead of ``(n,)``.

Games
-----
``CorrGame``      the metamodel's score: ``U(S) = numerai_corr(sum_{i in S} w_i x_i /
                  sum_{i in S} w_i, target)``, equal weights when ``sum_{i in S} w_i = 0``,
                  ``U(empty) = 0``. For reward rules ``x_i = rank_gaussianize(p_i)``
                  (:func:`metamodel_game`).
``LinearGame``    ``U(S) = sum_{i in S} a_i``: Shapley = Banzhaf = LOO = ``a_i``.
``TabularGame``   a table of ``U`` over all ``2^n`` coalitions (hand-written games).

Values
------
``exact_shapley``   ``phi_i = sum over S in N \\ {i} of |S|! (n-|S|-1)! / n! *
                    [U(S + i) - U(S)]``, by enumerating all ``2^n`` coalitions
                    (Shapley 1953; MECHANISMS.md, "Data and model valuation").
``tmc_shapley``     truncated Monte Carlo Shapley (Ghorbani & Zou 2019, "Data Shapley",
                    Algorithm 1): random permutations, marginal gains along each, a
                    permutation truncated once ``|U(N) - U(prefix)| < tolerance * |U(N)|``.
``exact_banzhaf``   ``phi_i = 2^-(n-1) * sum over S in N \\ {i} of [U(S + i) - U(S)]``.
``msr_banzhaf``     the Maximum Sample Reuse estimator (Wang & Jia 2023, "Data
                    Banzhaf"): subsets with every player in with probability 1/2,
                    ``phi_i = mean U(S : i in S) - mean U(S : i not in S)``.
``leave_one_out``   ``phi_i = U(N) - U(N \\ {i})``.

Randomness comes only from the ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import comb

from mechanisms.scoring import numerai_corr_rows, rank_gaussianize_rows

__all__ = [
    "CorrGame",
    "Game",
    "LinearGame",
    "TabularGame",
    "all_coalitions",
    "banzhaf",
    "exact_banzhaf",
    "exact_shapley",
    "leave_one_out",
    "linear_terms",
    "metamodel_game",
    "msr_banzhaf",
    "shapley",
    "tmc_shapley",
]

#: Largest number of players exact enumeration accepts (2^20 coalitions).
MAX_EXACT_PLAYERS = 20

#: Target number of floats in one temporary (coalitions x assets) block.
_BLOCK = 1 << 21


class Game:
    """A batch of ``batch`` cooperative games over the same ``n`` players.

    Subclasses define :meth:`values`. :meth:`walk` (the utilities of growing
    prefixes of permutations, used by Monte Carlo Shapley) has a generic version
    over masks that subclasses may replace with a faster running sum.
    """

    n: int
    batch: int
    batched: bool  # built with a leading batch axis: valuations return (batch, n)

    def values(self, masks: np.ndarray) -> np.ndarray:
        """``U_b(S)`` for every game ``b`` and every coalition mask; returns (batch, M)."""
        raise NotImplementedError

    def pair_values(self, rows: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """``U_{rows[j]}(masks[j])`` for each ``j``; returns (m,)."""
        out = np.empty(rows.shape[0])
        for b in np.unique(rows):
            sel = rows == b
            out[sel] = self.values(masks[sel])[b]
        return out

    def start(self, rows: np.ndarray) -> object:
        """The state of empty coalitions, one for each game in ``rows``."""
        return np.zeros((rows.shape[0], self.n), dtype=bool)

    def walk(self, state: object, rows: np.ndarray, players: np.ndarray) -> tuple:
        """Add ``players[j, 0], players[j, 1], ...`` to coalition ``j`` one at a time.

        Returns the utilities after each addition, ``(m, c)``, and the new state.
        """
        masks = np.array(state, dtype=bool, copy=True)
        m, c = players.shape
        steps = np.empty((m, c, self.n), dtype=bool)
        for j in range(c):
            masks[np.arange(m), players[:, j]] = True
            steps[:, j] = masks
        vals = self.pair_values(np.repeat(rows, c), steps.reshape(m * c, self.n))
        return vals.reshape(m, c), masks

    def shape(self, values: np.ndarray) -> np.ndarray:
        """``values`` (batch, ...) as returned to the caller: batch axis dropped if unbatched."""
        return values if self.batched else values[0]


def _batched(x: np.ndarray, ndim: int, name: str) -> tuple[np.ndarray, bool]:
    a = np.asarray(x, dtype=float)
    if a.ndim == ndim - 1:
        return a[None], False
    if a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim - 1} or {ndim} dimensions, got {a.shape}")
    return a, True


class CorrGame(Game):
    """The score of a weighted mean of vectors: ``U(S) = numerai_corr(mean_w(S), target)``.

    For game ``b`` with vectors ``x_{b,i}`` (A,) and weights ``w_{b,i} >= 0``::

        mean_w(S) = sum_{i in S} w_i x_i / sum_{i in S} w_i     if sum_{i in S} w_i > 0
        U(S) = numerai_corr(mean_w(S), target);   U(S) = 0 if sum_{i in S} w_i = 0

    A player of weight 0 does not move the metamodel, so it is a null player and is
    valued 0 (Shapley's null-player axiom). Only when every weight of a game is 0 does
    the game fall back to equal weights.

    ``numerai_corr`` is :func:`mechanisms.scoring.numerai_corr_rows` (ranks, normal
    quantiles, 1.5 power, Pearson). ``X`` is (n, A) or (B, n, A); ``weights`` (n,) or
    (B, n), None for equal weights; negative weights count as 0.
    """

    def __init__(self, X: np.ndarray, target: np.ndarray, weights: np.ndarray | None = None):
        self.X, self.batched = _batched(X, 3, "X")
        self.batch, self.n, self.A = self.X.shape
        self.target = np.asarray(target, dtype=float)
        if weights is None:
            w = np.ones((self.batch, self.n))
        else:
            w = np.asarray(weights, dtype=float)
            w = np.broadcast_to(w if w.ndim == 2 else w[None], (self.batch, self.n))
        w = np.maximum(w, 0.0).copy()
        w[~(w > 0).any(axis=1)] = 1.0  # a game with no weight at all: equal weights
        self.w = w
        self.wX = self.w[:, :, None] * self.X

    def _score(self, num_w, den_w) -> np.ndarray:
        """numerai_corr of the aggregates ``(..., A)`` given running sums."""
        with np.errstate(invalid="ignore", divide="ignore"):
            agg = np.where((den_w > 0)[..., None], num_w / den_w[..., None], 0.0)
        shape = agg.shape[:-1]
        return numerai_corr_rows(agg.reshape(-1, self.A), self.target).reshape(shape)

    def values(self, masks: np.ndarray) -> np.ndarray:
        masks = np.asarray(masks, dtype=bool)
        M = masks.shape[0]
        out = np.empty((self.batch, M))
        step = max(1, _BLOCK // max(1, self.batch * self.A))
        for lo in range(0, M, step):
            mk = masks[lo : lo + step].astype(float)
            num_w = np.matmul(mk[None], self.wX)  # (B, m, A)
            den_w = mk @ self.w.T  # (m, B)
            out[:, lo : lo + step] = self._score(num_w, den_w.T)
        return out

    def pair_values(self, rows: np.ndarray, masks: np.ndarray) -> np.ndarray:
        mk = np.asarray(masks, dtype=float)
        num_w = np.einsum("mn,mna->ma", mk, self.wX[rows])
        den_w = np.einsum("mn,mn->m", mk, self.w[rows])
        return self._score(num_w, den_w)

    def start(self, rows: np.ndarray) -> object:
        m = rows.shape[0]
        return (np.zeros((m, self.A)), np.zeros(m))

    def walk(self, state: object, rows: np.ndarray, players: np.ndarray) -> tuple:
        """Running sums along each permutation: O(m c A) instead of O(m c n A)."""
        sw, sd = state
        r = rows[:, None]
        num_w = sw[:, None] + np.cumsum(self.wX[r, players], axis=1)
        den_w = sd[:, None] + np.cumsum(self.w[r, players], axis=1)
        vals = self._score(num_w, den_w)
        return vals, (num_w[:, -1], den_w[:, -1])


class LinearGame(Game):
    """An additive game ``U_b(S) = sum_{i in S} a_{b,i}``; every value rule gives ``a``.

    For an additive game every marginal gain ``U(S + i) - U(S)`` equals ``a_i``, so
    Shapley, Banzhaf and leave-one-out all equal ``a_i`` (the closed form the
    valuation functions return without sampling).
    """

    def __init__(self, terms: np.ndarray):
        self.terms, self.batched = _batched(terms, 2, "terms")
        self.batch, self.n = self.terms.shape

    def values(self, masks: np.ndarray) -> np.ndarray:
        return self.terms @ np.asarray(masks, dtype=float).T

    def pair_values(self, rows: np.ndarray, masks: np.ndarray) -> np.ndarray:
        return np.einsum("mn,mn->m", np.asarray(masks, dtype=float), self.terms[rows])

    def start(self, rows: np.ndarray) -> object:
        return np.zeros(rows.shape[0])

    def walk(self, state: object, rows: np.ndarray, players: np.ndarray) -> tuple:
        vals = state[:, None] + np.cumsum(self.terms[rows[:, None], players], axis=1)
        return vals, vals[:, -1]


class TabularGame(Game):
    """A game given by its table: ``table[..., k] = U(S)`` with ``i in S`` iff bit i of k.

    ``table`` is (2^n,) or (B, 2^n). E.g. for 2 players ``[U(), U(1), U(2), U(12)]``
    (player 1 is bit 0).
    """

    def __init__(self, table: np.ndarray):
        self.table, self.batched = _batched(table, 2, "table")
        self.batch, size = self.table.shape
        self.n = int(round(math.log2(size))) if size else -1
        if size == 0 or 1 << self.n != size:
            raise ValueError(f"a game table has 2^n entries, got {size}")

    def _index(self, masks: np.ndarray) -> np.ndarray:
        return np.asarray(masks, dtype=np.int64) @ (1 << np.arange(self.n, dtype=np.int64))

    def values(self, masks: np.ndarray) -> np.ndarray:
        return self.table[:, self._index(masks)]

    def pair_values(self, rows: np.ndarray, masks: np.ndarray) -> np.ndarray:
        return self.table[rows, self._index(masks)]


def linear_terms(G: np.ndarray, weights: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Each submission's term ``a_i = w_i * (g_i . t_c) / A`` of the linear metamodel score.

    ``G`` (n, A) gaussianized predictions, ``t_c = target - mean(target)``, ``w`` the
    aggregation weights normalized to sum 1 (equal weights ``1/n`` when they sum to
    0; negative weights count as 0). The sum over all submissions is
    ``meta . t_c / A`` with ``meta = sum_i w_i g_i``, the metamodel's linear score.
    """
    G = np.asarray(G, dtype=float)
    n, A = G.shape
    if n == 0 or A == 0:
        return np.zeros(n)
    w = np.maximum(np.asarray(weights, dtype=float), 0.0)
    w = w / w.sum() if w.sum() > 0 else np.full(n, 1.0 / n)
    t = np.asarray(target, dtype=float)
    return w * (G @ (t - t.mean())) / A


def metamodel_game(
    predictions: np.ndarray, weights: np.ndarray, target: np.ndarray, utility: str = "corr"
) -> Game:
    """The coalition game of the metamodel built from a round's submissions.

    ``utility="corr"``: :class:`CorrGame` over ``g_i = rank_gaussianize(p_i)`` with the
    aggregation weights, i.e. ``U(S) = numerai_corr(sum_{i in S} w_i g_i /
    sum_{i in S} w_i, target)``. ``utility="linear"``: :class:`LinearGame` over
    :func:`linear_terms`.
    """
    G = rank_gaussianize_rows(predictions)
    if utility == "corr":
        return CorrGame(G, target, weights)
    if utility == "linear":
        return LinearGame(linear_terms(G, weights, target))
    raise ValueError(f"unknown utility {utility!r} (allowed: corr, linear)")


# --- exact values ------------------------------------------------------------------


def all_coalitions(n: int) -> np.ndarray:
    """The ``2^n`` coalition masks (2^n, n); row k holds player i iff bit i of k is set."""
    if not 0 <= n <= MAX_EXACT_PLAYERS:
        raise ValueError(f"exact enumeration takes 0..{MAX_EXACT_PLAYERS} players, got {n}")
    k = np.arange(1 << n, dtype=np.int64)
    return ((k[:, None] >> np.arange(n, dtype=np.int64)) & 1).astype(bool)


def exact_shapley(game: Game) -> np.ndarray:
    """Shapley values by enumerating all ``2^n`` coalitions.

    ``phi_i = sum_{S not containing i} |S|! (n - |S| - 1)! / n! * [U(S + i) - U(S)]``,
    computed as ``sum_{S contains i} c(|S| - 1) U(S) - sum_{S without i} c(|S|) U(S)``
    with ``c(s) = 1 / (n * C(n - 1, s))``: one evaluation of ``U`` per coalition and
    two matrix products. Efficient: the values sum to ``U(N) - U(empty)``.
    """
    n = game.n
    if n == 0:
        return game.shape(np.zeros((game.batch, 0)))
    masks = all_coalitions(n)
    vals = game.values(masks)  # (B, 2^n)
    size = masks.sum(axis=1)
    c_in = np.where(size > 0, 1.0 / (n * comb(n - 1, np.maximum(size - 1, 0))), 0.0)
    c_out = np.where(size < n, 1.0 / (n * comb(n - 1, np.minimum(size, n - 1))), 0.0)
    phi = (vals * c_in) @ masks - (vals * c_out) @ ~masks
    return game.shape(phi)


def exact_banzhaf(game: Game) -> np.ndarray:
    """Banzhaf values by enumeration: ``phi_i = 2^-(n-1) sum_{S without i} [U(S+i) - U(S)]``."""
    n = game.n
    if n == 0:
        return game.shape(np.zeros((game.batch, 0)))
    masks = all_coalitions(n)
    vals = game.values(masks)
    return game.shape((vals @ masks - vals @ ~masks) / float(1 << (n - 1)))


def leave_one_out(game: Game) -> np.ndarray:
    """``phi_i = U(N) - U(N \\ {i})``: n + 1 coalitions in one call."""
    n = game.n
    if isinstance(game, LinearGame):
        return game.shape(game.terms.copy())
    masks = np.vstack([np.ones((1, n), dtype=bool), ~np.eye(n, dtype=bool)])
    vals = game.values(masks)
    return game.shape(vals[:, :1] - vals[:, 1:])


# --- Monte Carlo -------------------------------------------------------------------


def tmc_shapley(
    game: Game,
    rng: np.random.Generator,
    permutations: int = 200,
    tolerance: float = 0.01,
    *,
    return_stderr: bool = False,
):
    """Truncated Monte Carlo Shapley (Ghorbani & Zou 2019), exactly efficient.

    For each of ``permutations`` random orders ``pi`` of the players (the same orders
    for every game of a batch)::

        v_0 = U(empty);  v_j = U({pi_1, ..., pi_j})
        marginal of pi_j = v_j - v_{j-1}
        truncation: at the first j with |U(N) - v_j| < tolerance * |U(N)| the walk
        stops; the residual U(N) - v_j is split equally among the n - j players not
        reached (Ghorbani & Zou give them 0)

    and ``phi_i`` is the mean of player i's marginals over the permutations. With the
    residual split, each permutation's marginals sum to ``U(N) - U(empty)`` (the last
    player also takes the rounding difference between the running prefix and
    ``U(N)``), so the estimate is efficient exactly, not only in expectation.

    Error: the estimate is unbiased when ``tolerance = 0``; truncation moves at most
    ``tolerance * |U(N)|`` of utility per permutation onto the players not reached
    (its bias). The sampling error of ``phi_i`` is about ``stderr_i`` (the standard
    deviation of its marginals over sqrt(permutations)), returned with
    ``return_stderr=True`` as ``(values, stderr)``.

    Walks are evaluated for all permutations at once, a block of positions at a
    time; truncated permutations drop out of later blocks, which is where truncation
    saves work.
    """
    if permutations < 1:
        raise ValueError(f"permutations must be >= 1, got {permutations}")
    if not 0.0 <= tolerance < 1.0:
        raise ValueError(f"tolerance must be in [0, 1), got {tolerance}")
    n, B, P = game.n, game.batch, int(permutations)
    if n == 0:
        z = game.shape(np.zeros((B, 0)))
        return (z, z.copy()) if return_stderr else z
    ends = game.values(np.vstack([np.zeros((1, n), bool), np.ones((1, n), bool)]))
    empty, full = ends[:, 0], ends[:, 1]
    perms = rng.permuted(np.tile(np.arange(n), (P, 1)), axis=1)
    marg = np.zeros((B, P, n))  # marginal at each position of each permutation
    # active (game, permutation) pairs and the prefix utility reached so far
    rows = np.repeat(np.arange(B), P)
    cols = np.tile(np.arange(P), B)
    prev = empty[rows]
    limit = tolerance * np.abs(full)

    # a walk truncated at j = 0 (|U(N) - U(empty)| < tolerance |U(N)|) never starts
    stop0 = np.abs(full[rows] - prev) < limit[rows]
    if stop0.any():
        b, p = rows[stop0], cols[stop0]
        marg[b, p, :] = ((full[b] - prev[stop0]) / n)[:, None]
    rows, cols, prev = rows[~stop0], cols[~stop0], prev[~stop0]
    state = game.start(rows)
    A = getattr(game, "A", n)
    # blocks of positions: small enough to drop truncated walks early, large enough
    # to keep the calls few
    chunk = max(1, min(n, _BLOCK // max(1, rows.shape[0] * A), max(16, -(-n // 16))))
    pos = 0
    while rows.size and pos < n:
        c = min(chunk, n - pos)
        vals, state = game.walk(state, rows, perms[cols, pos : pos + c])
        steps = np.diff(np.concatenate([prev[:, None], vals], axis=1), axis=1)
        done = np.abs(full[rows][:, None] - vals) < limit[rows][:, None]
        first = np.where(done.any(axis=1), done.argmax(axis=1), c)  # index in the block
        keep_step = np.arange(c)[None] <= first[:, None]
        marg[rows, cols, pos : pos + c] = np.where(keep_step, steps, 0.0)
        stopped = first < c
        if stopped.any():
            j = pos + first[stopped] + 1  # players reached
            b, p = rows[stopped], cols[stopped]
            reached = vals[stopped, first[stopped]]
            rest = n - j
            share = np.where(rest > 0, (full[b] - reached) / np.maximum(rest, 1), 0.0)
            after = np.arange(n)[None] >= j[:, None]
            marg[b, p] += np.where(after, share[:, None], 0.0)
            # a walk stopping at its last player keeps the rounding on that player
            last = rest == 0
            marg[b[last], p[last], n - 1] += full[b[last]] - reached[last]
        keep = ~stopped
        prev = vals[keep, -1]
        rows, cols = rows[keep], cols[keep]
        state = _take(state, keep)
        pos += c
    if rows.size:  # walks that reached U(N) by the running prefix: fix rounding
        marg[rows, cols, n - 1] += full[rows] - prev
    per_player = np.empty_like(marg)
    per_player[:, np.arange(P)[:, None], perms] = marg
    phi = game.shape(per_player.mean(axis=1))
    if not return_stderr:
        return phi
    se = per_player.std(axis=1, ddof=1) / math.sqrt(P) if P > 1 else np.full((B, n), np.inf)
    return phi, game.shape(se)


def _take(state: object, keep: np.ndarray) -> object:
    """The state of the kept walks (a state is an array or a tuple of arrays)."""
    if isinstance(state, tuple):
        return tuple(s[keep] for s in state)
    return state[keep]


def msr_banzhaf(
    game: Game, rng: np.random.Generator, samples: int = 2000, *, return_stderr: bool = False
):
    """Banzhaf values by Maximum Sample Reuse (Wang & Jia 2023, "Data Banzhaf").

    Draw ``samples`` coalitions ``S_1..S_m``, each player in each independently with
    probability 1/2; evaluate ``U`` once per coalition and reuse every evaluation for
    every player::

        phi_i = mean_{k : i in S_k} U(S_k) - mean_{k : i not in S_k} U(S_k)

    A player that is in every sample, or in none, gets 0 (a mean over no samples).
    The sampling error of ``phi_i`` is about ``2 * sd(U) / sqrt(samples)``; with
    ``return_stderr=True`` the estimate ``sqrt(var_in / m_in + var_out / m_out)`` is
    returned as well.
    """
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    n = game.n
    masks = rng.random((int(samples), n)) < 0.5
    vals = game.values(masks)  # (B, m)
    m_in = masks.sum(axis=0).astype(float)
    m_out = samples - m_in
    ok = (m_in > 0) & (m_out > 0)
    inside = masks.astype(float)
    mean_in = (vals @ inside) / np.maximum(m_in, 1)
    mean_out = (vals @ (1.0 - inside)) / np.maximum(m_out, 1)
    phi = np.where(ok, mean_in - mean_out, 0.0)
    if not return_stderr:
        return game.shape(phi)
    sq_in = (vals**2 @ inside) / np.maximum(m_in, 1) - mean_in**2
    sq_out = (vals**2 @ (1.0 - inside)) / np.maximum(m_out, 1) - mean_out**2
    se = np.sqrt(
        np.maximum(sq_in, 0) / np.maximum(m_in - 1, 1)
        + np.maximum(sq_out, 0) / np.maximum(m_out - 1, 1)
    )
    return game.shape(phi), game.shape(np.where(ok, se, np.inf))


# --- dispatch ----------------------------------------------------------------------


def shapley(
    game: Game,
    rng: np.random.Generator,
    *,
    exact_max: int = 10,
    permutations: int = 200,
    tolerance: float = 0.01,
) -> np.ndarray:
    """Shapley values: closed form for a :class:`LinearGame`, exact enumeration for
    ``n <= exact_max``, else :func:`tmc_shapley` with ``permutations`` and ``tolerance``.
    """
    if isinstance(game, LinearGame):
        return game.shape(game.terms.copy())
    if game.n <= min(exact_max, MAX_EXACT_PLAYERS):
        return exact_shapley(game)
    return tmc_shapley(game, rng, permutations, tolerance)


def banzhaf(
    game: Game, rng: np.random.Generator, *, exact_max: int = 10, samples: int = 2000
) -> np.ndarray:
    """Banzhaf values: closed form for a :class:`LinearGame`, exact enumeration for
    ``n <= exact_max``, else :func:`msr_banzhaf` with ``samples`` coalitions.
    """
    if isinstance(game, LinearGame):
        return game.shape(game.terms.copy())
    if game.n <= min(exact_max, MAX_EXACT_PLAYERS):
        return exact_banzhaf(game)
    return msr_banzhaf(game, rng, samples)

"""Numerai's scores: CORR (``numerai_corr``) and MMC (``correlation_contribution``).

The definitions follow numerai-tools ``numerai_tools/scoring.py`` (``rank``,
``gaussian``, ``power``, ``orthogonalize``, ``numerai_corr``,
``correlation_contribution``) and the Numerai documentation on scoring
(docs.numer.ai, "Scoring": CORR and MMC). numerai-tools works on pandas objects
indexed by stock id; here every function takes aligned numpy arrays, and each has a
``_rows`` version that scores ``n`` submissions (the rows of an ``(n, A)`` array)
against one target in a single vectorized call. The 1-D functions call the row
kernels, so there is one implementation of each formula.

Deliberate differences from numerai-tools:

* no index alignment or NaN filtering: inputs must be finite and aligned (a
  ``ValueError`` says which one is not);
* no ``top_bottom`` option;
* degenerate inputs score 0 instead of NaN: fewer than two assets, a constant
  target, a constant prediction row (see each function for the details).
"""

from __future__ import annotations

import functools

import numpy as np
from scipy.special import ndtri

__all__ = [
    "correlation_contribution",
    "correlation_contribution_rows",
    "numerai_corr",
    "numerai_corr_rows",
    "rank_gaussianize",
    "rank_gaussianize_rows",
]


def _as_rows(x: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n, A), got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return a


def _as_vector(x: np.ndarray, name: str, size: int | None = None) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    if a.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {a.shape}")
    if size is not None and a.shape[0] != size:
        raise ValueError(f"{name} has {a.shape[0]} entries, expected {size}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return a


def _signed_power(x: np.ndarray, p: float) -> np.ndarray:
    """sign(x) * |x|**p (numerai-tools ``power``)."""
    return np.sign(x) * np.abs(x) ** p


def _gaussian_rank_codes(
    X: np.ndarray, ranks2: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Codes and quantile table with ``table[codes] == norm.ppf((rank - 0.5) / A)``.

    Average ranks are exact multiples of 1/2 in [1, A], so ``norm.ppf((r - 0.5) / A)``
    takes at most 2A - 1 distinct values: it is evaluated once for each (``table``)
    and looked up by the code ``2 r``, twice the rank (:func:`twice_ranks`; the table's
    first two entries, for codes 0 and 1, are never read). The lookup returns exactly
    what ``norm.ppf`` gives on the full array, and lets callers transform the table
    (e.g. the 1.5 power of CORR) instead of every entry.
    """
    if ranks2 is None:
        ranks2 = twice_ranks(X)
    return ranks2, _ppf_table(X.shape[1])


@functools.lru_cache(maxsize=64)
def _ppf_table(A: int) -> np.ndarray:
    """``norm.ppf((r - 0.5) / A)`` at index ``2 r`` for the half-step ranks
    r = 1, 1.5, ..., A (indices 0 and 1: NaN); read-only. ``scipy.special.ndtri`` is
    the function ``scipy.stats.norm.ppf`` evaluates."""
    half_steps = np.arange(2, 2 * A + 1) / 2.0
    table = np.full(2 * A + 1, np.nan)
    table[2:] = ndtri((half_steps - 0.5) / A)
    table.flags.writeable = False
    return table


def _sorted_rows(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row of ``X`` (n, A) sorted: the flat index into ``X`` of every sorted
    position ``(n, A)`` and the values in that order (equal values in any order).

    NumPy sorts float64 values with SIMD instructions but has no such ``argsort``,
    which is about three times slower. So each value's column is written into the
    lowest ``b = bits(A - 1)`` bits of its float64 (cleared first) and the row of
    these keys is sorted: a key's low bits give its column back. Clearing low bits
    keeps the order of values that still differ after it (it rounds each value
    toward zero, which never reverses two values), so only values within a relative
    ``2^(b - 52)`` of each other can come out of order, and infinite values become
    NaN keys. Both are checked: a row whose values are not in non-decreasing order,
    or whose largest key is NaN, is argsorted instead. Every row is therefore
    exactly sorted.
    """
    n, A = X.shape
    rows = np.arange(n)[:, None] * A
    b = max(int(A - 1).bit_length(), 1)
    if X.dtype != np.float64 or A < 2 or b > 20:
        at = rows + np.argsort(X, axis=1)
        return at, X.reshape(-1)[at]
    X = np.ascontiguousarray(X)
    low = (1 << b) - 1
    key = X.view(np.int64) & ~low
    key |= np.arange(A)
    sorted_keys = key.view(np.float64)
    sorted_keys.sort(axis=1)
    redo = np.isnan(sorted_keys[:, -1])  # (NaN keys sort last)
    at = key  # each sorted position's column, then its flat index (the keys are gone)
    at &= low
    at += rows
    xs = X.reshape(-1)[at]
    redo |= (xs[:, 1:] < xs[:, :-1]).any(axis=1)
    if redo.any():
        r = np.flatnonzero(redo)
        at[r] = rows[r] + np.argsort(X[r], axis=1)
        xs[r] = X.reshape(-1)[at[r]]
    return at, xs


def twice_ranks(X: np.ndarray) -> np.ndarray:
    """Twice the average rank (``scipy.stats.rankdata(method="average")``, 1-based) of
    every entry within its row, as exact integers.

    The scoring functions below take it precomputed (``ranks2=``), so that a caller
    scoring the same predictions several times (the engine ranks each submission once,
    for the metamodel, CORR and MMC) sorts them once.

    Sort each row; a run of equal values occupying sorted positions ``s..e``
    (0-based) shares the rank ``(s + e) / 2 + 1``, so twice it is ``s + e + 2``.
    """
    n, A = X.shape
    at, xs = _sorted_rows(X)  # ties are averaged, so their order does not matter
    same = xs[:, 1:] == xs[:, :-1]  # equal to the previous value in sorted order
    vals = np.broadcast_to(2 * np.arange(A) + 2, (n, A))  # no ties: twice (position + 1)
    tied = np.flatnonzero(same.any(axis=1))
    if tied.size:  # runs of equal values share the mean of their positions
        pos = np.arange(A)
        new = np.ones((tied.size, A), dtype=bool)
        new[:, 1:] = ~same[tied]
        start = np.maximum.accumulate(np.where(new, pos, 0), axis=1)
        last = np.ones((tied.size, A), dtype=bool)
        last[:, :-1] = new[:, 1:]
        end = np.minimum.accumulate(np.where(last, pos, A - 1)[:, ::-1], axis=1)[:, ::-1]
        vals = vals.copy()
        vals[tied] = start + end + 2
    out = np.empty(n * A, dtype=np.intp)
    out[at] = vals  # (broadcast when there are no ties: no (n, A) copy of it)
    return out.reshape(n, A)


def rank_gaussianize_rows(X: np.ndarray, ranks2: np.ndarray | None = None) -> np.ndarray:
    """Gaussianize each row of ``X`` (n, A) independently: ranks to normal quantiles.

    For each row: ``r`` = ranks 1..A with ties given their average rank, then
    ``q = (r - 0.5) / A`` and ``norm.ppf(q)``. The result of a row has mean 0 when it
    has no ties, is antisymmetric around the middle rank and is 0 everywhere for a
    constant row (every rank is (A + 1) / 2, so q = 0.5).

    Source: numerai-tools ``scoring.py``: ``rank(df, method="average")`` followed by
    ``gaussian`` (``scipy.stats.norm.ppf``), applied to rows instead of columns.
    """
    X = _as_rows(X, "X")
    n, A = X.shape
    if n == 0 or A == 0:
        return np.zeros((n, A))
    codes, table = _gaussian_rank_codes(X, ranks2)
    return table[codes]


def rank_gaussianize(x: np.ndarray) -> np.ndarray:
    """Gaussianize a 1-D array: averaged-tie ranks ``r``, ``norm.ppf((r - 0.5) / n)``.

    Source: numerai-tools ``scoring.py`` (``tie_kept_rank`` then ``gaussian``). See
    :func:`rank_gaussianize_rows` for the vectorized version this calls.
    """
    x = _as_vector(x, "x")
    return rank_gaussianize_rows(x[None, :])[0]


def numerai_corr_rows(
    P: np.ndarray, target: np.ndarray, ranks2: np.ndarray | None = None
) -> np.ndarray:
    """Numerai CORR of every row of ``P`` (n, A) against ``target`` (A,); returns (n,).

    For each row p::

        p' = signed_power(norm.ppf((rank(p) - 0.5) / A), 1.5)
        t' = signed_power(target - mean(target), 1.5)
        CORR = pearson(p', t')

    with ``rank`` the averaged-tie rank and ``signed_power(x, a) = sign(x) * |x|**a``.
    CORR depends on the predictions only through their ranks, so it is unchanged by
    any strictly increasing transform of a row.

    Source: numerai-tools ``scoring.py`` ``numerai_corr`` (re-centre the target,
    ``tie_kept_rank__gaussianize__pow_1_5`` on the predictions, 1.5 power on the
    target, Pearson correlation); Numerai docs, "Scoring: CORR".

    Degenerate cases give 0.0 (numerai-tools gives NaN): fewer than two assets, a
    constant target (all entries equal), a constant row (its gaussianized ranks are
    all 0).
    """
    P = _as_rows(P, "P")
    n, A = P.shape
    t = _as_vector(target, "target", A)
    out = np.zeros(n)
    if n == 0 or A < 2 or t.max() == t.min():
        return out
    t15 = _signed_power(t - t.mean(), 1.5)
    tc = t15 - t15.mean()
    codes, table = _gaussian_rank_codes(P, ranks2)
    p15 = _signed_power(table, 1.5)[codes]
    pc = p15 - p15.mean(axis=1, keepdims=True)
    den = np.sqrt(np.einsum("ij,ij->i", pc, pc)) * np.sqrt(tc @ tc)
    ok = den > 0
    if ok.all():
        out = (pc @ tc) / den
    else:
        out[ok] = (pc[ok] @ tc) / den[ok]
    return np.clip(out, -1.0, 1.0)


def numerai_corr(predictions: np.ndarray, target: np.ndarray) -> float:
    """Numerai CORR of one prediction vector against ``target`` (both (A,)).

    ``pearson(signed_power(gauss(rank(p)), 1.5), signed_power(t - mean(t), 1.5))``;
    0.0 when either side has zero variance or A < 2. Source: numerai-tools
    ``scoring.py`` ``numerai_corr``; see :func:`numerai_corr_rows`, which this calls.
    """
    p = _as_vector(predictions, "predictions")
    return float(numerai_corr_rows(p[None, :], target)[0])


def correlation_contribution_rows(
    P: np.ndarray,
    meta_model: np.ndarray,
    target: np.ndarray,
    ranks2: np.ndarray | None = None,
) -> np.ndarray:
    """MMC of every row of ``P`` (n, A) against ``meta_model`` and ``target`` (A,).

    For each row p, with ``gauss(x) = norm.ppf((rank(x) - 0.5) / A)`` (averaged ties)::

        g = gauss(p),  m = gauss(meta_model)
        neutral = g - m * (g . m) / (m . m)         # remove the projection on m
        t = 4 * target if every target is in [0, 1] else target
        t = t - mean(t)
        MMC = (t . neutral) / A

    The rule for ``t`` is the one in numerai-tools: a target lying entirely in
    [0, 1] (Numerai's buckets 0, 0.25, ..., 1) is multiplied by 4 (giving buckets
    -2..2 after centring); any other target is only centred. The projection is not
    centred, exactly as numerai-tools ``orthogonalize``. A copy of the meta model has
    ``g == m`` and scores 0. MMC is computed as ``(t . g - (g . m)(m . t) / (m . m)) / A``
    so the (n, A) neutralized matrix is never formed.

    Source: numerai-tools ``scoring.py`` ``correlation_contribution`` (tie-kept rank,
    gaussianize, ``orthogonalize``, dot with the centred target over its length);
    Numerai docs, "Scoring: MMC".

    Degenerate cases give 0.0 (numerai-tools gives NaN): no assets or fewer than two,
    a constant target, a constant row. A constant meta model gauss(m) = 0 has no
    direction to remove, so nothing is removed (the least-squares convention of
    numerai-tools ``neutralize``) and MMC is ``t . g / A``.
    """
    P = _as_rows(P, "P")
    n, A = P.shape
    m_raw = _as_vector(meta_model, "meta_model", A)
    t = _as_vector(target, "target", A)
    out = np.zeros(n)
    if n == 0 or A < 2 or t.max() == t.min():
        return out
    g = rank_gaussianize_rows(P, ranks2)
    m = rank_gaussianize_rows(m_raw[None, :])[0]
    if t.min() >= 0.0 and t.max() <= 1.0:
        t = t * 4.0
    t = t - t.mean()
    out = g @ t
    mm = m @ m
    if mm > 0:
        out -= (g @ m) * ((m @ t) / mm)
    return out / A


def correlation_contribution(
    predictions: np.ndarray, meta_model: np.ndarray, target: np.ndarray
) -> float:
    """MMC of one prediction vector: ``target . neutralize(gauss(p), gauss(meta)) / A``.

    The target is multiplied by 4 when it lies in [0, 1], then centred, as in
    numerai-tools. Source: numerai-tools ``scoring.py`` ``correlation_contribution``;
    see :func:`correlation_contribution_rows`, which this calls.
    """
    p = _as_vector(predictions, "predictions")
    return float(correlation_contribution_rows(p[None, :], meta_model, target)[0])

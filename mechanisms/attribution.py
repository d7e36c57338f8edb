"""Attribution rules: how a model's gain or loss flows on to its data providers.

Registry ``ATTRIBUTION``. Contract: ``attribute(a: AttributionInput) -> np.ndarray``,
shares ``(n, K)``: for each model, how its gain or loss splits over the feeds in its
``K`` slots (``>= 0``, summing to 1 over the used slots of a row; 0 on unused slots
and on rows without feeds).

Every rule's ``Params`` carries ``gain_share``, read by the engine, not here: the
fraction of a model's positive payout passed on to its providers by these shares.
Whether the providers of a harmful model also suffer is the slashing rule's
``cascade_to_providers``, split by the same shares.

A model's prediction is the sum of its slot terms: slot ``s`` of model ``j`` holds
provider ``picks[j, s]`` and contributes ``feeds[picks[j, s]] @ w[j, s*k:(s+1)*k]``
(an (A,) vector); unused slots (``picks = -1``) contribute nothing.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
import pydantic
from pydantic.dataclasses import dataclass

from mechanisms.base import AttributionInput
from mechanisms.registry import ATTRIBUTION, PARAMS_CONFIG
from mechanisms.valuation import MAX_EXACT_PLAYERS, CorrGame, exact_shapley, tmc_shapley

__all__ = ["FeatureShapley", "PurchaseShare", "purchase_split", "slot_contributions"]

_GAIN_SHARE = pydantic.Field(
    ge=0.0,
    le=1.0,
    description=(
        "fraction of a model's positive payout passed on to its providers by these "
        "shares (the engine applies it)"
    ),
)


def slot_contributions(a: AttributionInput) -> tuple[np.ndarray, np.ndarray]:
    """Each slot's term of each model's prediction, (n, K, A), and the used mask (n, K).

    ``C[j, s] = feeds[picks[j, s]] @ weights[j, s*k:(s+1)*k]`` on used slots, 0 on
    unused ones; ``sum_s C[j, s]`` is model j's prediction.
    """
    picks = np.asarray(a.picks)
    used = picks >= 0
    n, K = picks.shape
    feeds = np.asarray(a.feeds, dtype=float)
    _, A, k = feeds.shape
    W = np.asarray(a.weights, dtype=float).reshape(n, K, k)
    F = feeds[np.where(used, picks, 0)]  # (n, K, A, k)
    C = np.einsum("nsaj,nsj->nsa", F, W) * used[..., None]
    return C, used


def purchase_split(used: np.ndarray) -> np.ndarray:
    """Equal shares over each row's used slots: ``used / used.sum(axis=1)``, 0 for none."""
    used = np.asarray(used, dtype=bool)
    count = used.sum(axis=1, keepdims=True)
    return np.where(used, 1.0 / np.maximum(count, 1), 0.0)


@ATTRIBUTION.register("purchase_share")
class PurchaseShare:
    """Equal split over the feeds a model bought.

    Formula, for model j with ``m_j`` used slots::

        share[j, s] = 1 / m_j  if slot s is used,  0 otherwise   (0 everywhere if m_j = 0)

    Source: the per-access payment of data marketplaces, where every purchase of a
    dataset earns the same whatever its use (Ocean Protocol datatokens, 1 token = 1
    access; MECHANISMS.md, "Ocean Protocol"), applied to a model's gain or loss.
    Deliberate difference: a feed counts once per model however many features it has.
    """

    @dataclass(frozen=True, config=PARAMS_CONFIG)
    class Params:
        """Parameters of ``purchase_share``."""

        gain_share: Annotated[float, _GAIN_SHARE] = 0.1

    def __init__(self, params: Params):
        self.params = params

    def attribute(self, a: AttributionInput) -> np.ndarray:
        return purchase_split(np.asarray(a.picks) >= 0)


@ATTRIBUTION.register("feature_shapley")
class FeatureShapley:
    """Shares from each feed's Shapley value in the model's resolved score.

    Formula, for model j with used slots N_j and slot terms ``C[j, s]`` (see
    :func:`slot_contributions`)::

        U_j(S) = numerai_corr(sum_{s in S} C[j, s], target),   U_j(empty) = 0
        phi[j, s] = sum_{S in N_j \\ {s}} |S|! (|N_j| - |S| - 1)! / |N_j|! [U_j(S + s) - U_j(S)]

    exact by enumerating the 2^|N_j| coalitions when |N_j| <= ``exact_max``, else
    truncated Monte Carlo (``permutations``, ``tolerance``; see
    :func:`mechanisms.valuation.tmc_shapley`; generator ``default_rng(seed)``, so the
    shares are a pure function of the input). Models with the same number of used
    slots are valued together in one batched call. Shares (``negative``)::

        clip: share[j, s] = max(phi[j, s], 0) / sum_t max(phi[j, t], 0)
        abs:  share[j, s] = |phi[j, s]| / sum_t |phi[j, t]|

    over used slots; a row whose denominator is 0 (every phi <= 0 under clip, or all
    0) falls back to the equal split of ``purchase_share``. ``clip`` gives a feed
    that hurt the model nothing of its gain; ``abs`` shares by influence either way.

    Source: Shapley (1953) applied to feature groups, as in data valuation
    (Ghorbani & Zou 2019, "Data Shapley"; MECHANISMS.md, "Data and model valuation");
    the utility is Numerai's CORR (numerai-tools ``numerai_corr``). Deliberate
    difference: the model is not refitted on each coalition; a coalition keeps the
    model's own weights on its slots (the "restricted model", cheap and exact).
    """

    @dataclass(frozen=True, config=PARAMS_CONFIG)
    class Params:
        """Parameters of ``feature_shapley``."""

        gain_share: Annotated[float, _GAIN_SHARE] = 0.1
        negative: Annotated[
            Literal["clip", "abs"],
            pydantic.Field(description="shares from max(phi, 0) ('clip') or from |phi| ('abs')"),
        ] = "clip"
        exact_max: Annotated[
            int,
            pydantic.Field(
                ge=0,
                le=MAX_EXACT_PLAYERS,
                description="largest number of used slots valued by exact enumeration (2^K)",
            ),
        ] = 10
        permutations: Annotated[
            int,
            pydantic.Field(
                ge=1, le=10_000, description="random permutations of truncated Monte Carlo"
            ),
        ] = 200
        tolerance: Annotated[
            float,
            pydantic.Field(
                ge=0.0,
                lt=1.0,
                description="a walk stops when |U(N) - U(prefix)| < tolerance * |U(N)|",
            ),
        ] = 0.0
        seed: Annotated[
            int,
            pydantic.Field(ge=0, le=2**32 - 1, description="seed of the Monte Carlo estimates"),
        ] = 0

    def __init__(self, params: Params):
        self.params = params

    def values(self, a: AttributionInput) -> np.ndarray:
        """Shapley value of each slot in its model's CORR, (n, K); 0 on unused slots."""
        p = self.params
        C, used = slot_contributions(a)
        n, K = used.shape
        phi = np.zeros((n, K))
        count = used.sum(axis=1)
        rng = np.random.default_rng(p.seed)
        for c in np.unique(count[count > 0]):
            exact = c <= min(p.exact_max, MAX_EXACT_PLAYERS)
            same = np.flatnonzero(count == c)
            # batches of models small enough that (models x coalitions) stays ~4M
            step = max(1, (1 << 22) // ((1 << int(c)) if exact else p.permutations * int(c)))
            for lo in range(0, same.size, step):
                rows = same[lo : lo + step]
                slots = np.argsort(~used[rows], axis=1, kind="stable")[:, :c]  # used first
                game = CorrGame(C[rows[:, None], slots], a.target)
                if exact:
                    v = exact_shapley(game)
                else:
                    v = tmc_shapley(game, rng, p.permutations, p.tolerance)
                phi[rows[:, None], slots] = v
        return phi

    def attribute(self, a: AttributionInput) -> np.ndarray:
        used = np.asarray(a.picks) >= 0
        phi = self.values(a)
        weight = np.abs(phi) if self.params.negative == "abs" else np.maximum(phi, 0.0)
        weight = np.where(used, weight, 0.0)
        total = weight.sum(axis=1, keepdims=True)
        ok = total[:, 0] > 0
        out = purchase_split(used)
        out[ok] = weight[ok] / total[ok]
        return out

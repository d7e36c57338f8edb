"""Aggregation rules: how submissions are weighted into the metamodel (registry ``AGGREGATION``).

Contract: ``weights(s: SubmissionSet) -> np.ndarray`` of weights >= 0 that sum to 1
when there is at least one submission, and an empty array when there is none.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
import pydantic
from pydantic.dataclasses import dataclass

from mechanisms.base import SubmissionSet
from mechanisms.registry import AGGREGATION, PARAMS_CONFIG

__all__ = [
    "Equal",
    "InverseVariance",
    "PerformanceWeighted",
    "PriceWeighted",
    "StakeWeighted",
]


def _equal(n: int) -> np.ndarray:
    return np.full(n, 1.0 / n) if n > 0 else np.zeros(0)


def _normalized(raw: np.ndarray) -> np.ndarray:
    """``raw / sum(raw)``, or equal weights when nothing is positive (or not finite)."""
    raw = np.asarray(raw, dtype=float)
    total = raw.sum()
    if raw.shape[0] and np.isfinite(total) and total > 0:
        return raw / total
    return _equal(raw.shape[0])


def _stake_weights(stakes: np.ndarray) -> np.ndarray:
    """Numerai's stake weights, negative stakes counted as 0 (equal when none is staked)."""
    return _normalized(np.maximum(np.asarray(stakes, dtype=float), 0.0))


@AGGREGATION.register("equal")
class Equal:
    """Every submission gets the same weight.

    Formula: ``w_i = 1 / n``.

    Source: the simple-average ensemble (model averaging; e.g. Dietterich 2000,
    "Ensemble methods in machine learning"), the baseline against which Numerai's
    stake-weighted meta model is compared.
    """

    @dataclass(frozen=True, config=PARAMS_CONFIG)
    class Params:
        """``equal`` has no parameters."""

    def __init__(self, params: Params):
        self.params = params

    def weights(self, s: SubmissionSet) -> np.ndarray:
        return _equal(int(np.shape(s.stakes)[0]))


@AGGREGATION.register("stake_weighted")
class StakeWeighted:
    """Submissions weighted by their stake, as in Numerai's meta model.

    Formula: ``w_i = s_i / sum_j s_j``, negative stakes counted as 0. When every
    stake is 0 the weights fall back to equal weights ``1 / n`` (Numerai's formula is
    undefined there; this keeps the metamodel defined in rounds nobody staked).

    Source: numerai-tools ``scoring.py`` ``stake_weight``
    (``sum(s_i p_i) / sum(s_i)``); MECHANISMS.md, "Meta model".
    """

    @dataclass(frozen=True, config=PARAMS_CONFIG)
    class Params:
        """``stake_weighted`` has no parameters."""

    def __init__(self, params: Params):
        self.params = params

    def weights(self, s: SubmissionSet) -> np.ndarray:
        return _stake_weights(s.stakes)


@AGGREGATION.register("price_weighted")
class PriceWeighted:
    """Submissions weighted by the market price of their model, listed like data.

    Formula: ``w_i = q_i / sum_j q_j`` with ``q_i = max(price_i, 0)`` the model's market
    price (``s.prices``). Fallbacks, in order: when ``s.prices`` is None (models are not
    listed) the weights are the stake weights of ``stake_weighted``; when every price
    is 0 they are equal weights ``1 / n``.

    Source: the project's design essay, quoted in the issue: "models are listed on the
    exchange like data; the weight is each model's market price". It is the
    capitalization weighting of the market portfolio (Sharpe 1964, "Capital asset
    prices", J. Finance 19(3)): the market's valuation, not the submitter's own stake,
    sets each model's share. Deliberate difference: the price is read as given; how
    models are listed and priced is the pricing rule's business.
    """

    @dataclass(frozen=True, config=PARAMS_CONFIG)
    class Params:
        """``price_weighted`` has no parameters."""

    def __init__(self, params: Params):
        self.params = params

    def weights(self, s: SubmissionSet) -> np.ndarray:
        if s.prices is None:
            return _stake_weights(s.stakes)
        return _normalized(np.maximum(np.asarray(s.prices, dtype=float), 0.0))


@AGGREGATION.register("performance_weighted")
class PerformanceWeighted:
    """Submissions weighted by a power of their positive trailing score, with a floor.

    Formula: ``raw_i = max(c_i ** power if c_i > 0 else 0, floor)`` with ``c_i`` the
    submitter's trailing mean CORR (``s.trailing_corr``), then ``w_i = raw_i / sum_j
    raw_j``; equal weights ``1 / n`` when every ``raw_i`` is 0 (``floor = 0`` and nobody
    has a positive record). ``power = 0`` weighs every positive scorer equally; a
    positive ``floor`` gives newcomers (trailing score 0) and poor scorers a small
    weight, so they are not shut out of the metamodel for good.

    Source: forecast combination with weights set by past performance (Bates & Granger
    1969, "The combination of forecasts", Oper. Res. Q. 20(4); Stock & Watson 2004,
    "Combination forecasts of output growth", J. Forecasting 23, weights proportional
    to a power of inverse past loss). Deliberate difference: the performance measure is
    the trailing CORR (higher is better) rather than an inverse squared error.
    """

    @dataclass(frozen=True, config=PARAMS_CONFIG)
    class Params:
        """Parameters of ``performance_weighted``."""

        power: Annotated[
            float,
            pydantic.Field(
                ge=0.0,
                le=10.0,
                description="exponent on the positive trailing score (0 = equal among "
                "positive scorers)",
            ),
        ] = 1.0
        floor: Annotated[
            float,
            pydantic.Field(
                ge=0.0,
                le=1.0,
                description="smallest raw weight any submission gets (before normalizing)",
            ),
        ] = 0.001

    def __init__(self, params: Params):
        self.params = params

    def weights(self, s: SubmissionSet) -> np.ndarray:
        c = np.nan_to_num(np.asarray(s.trailing_corr, dtype=float), nan=0.0)
        pos = c > 0
        perf = np.zeros(c.shape[0])
        perf[pos] = c[pos] ** self.params.power
        return _normalized(np.maximum(perf, self.params.floor))


@AGGREGATION.register("inverse_variance")
class InverseVariance:
    """Submissions weighted by positive trailing score over its variance (mean-variance).

    Formula: ``raw_i = max(c_i, 0) / max(v_i, var_floor)`` with ``c_i`` the trailing
    mean CORR and ``v_i`` the variance of the submitter's resolved CORR
    (``s.score_var``); ``w_i = raw_i / sum_j raw_j``. Fallbacks: when ``s.score_var``
    is None every variance is taken as equal, so ``w_i = max(c_i, 0) / sum_j
    max(c_j, 0)`` (the same formula with a common ``v``); when no trailing score is
    positive the weights are proportional to ``1 / max(v_i, var_floor)`` (the
    minimum-variance portfolio), or equal when the variances are missing too.
    ``var_floor`` keeps a submitter with one resolved round (variance 0) from taking
    the whole metamodel; a missing (NaN) variance counts as infinite (weight 0).

    Source: Markowitz (1952), "Portfolio selection", J. Finance 7(1): the mean-variance
    (tangency) portfolio ``w proportional to inv(Sigma) mu``, which for uncorrelated
    scores (diagonal Sigma) is ``w_i proportional to mu_i / sigma_i^2``, each model
    being an asset whose return is its score. Chosen over plain ``1 / sigma_i^2``
    (Bates & Granger 1969) because a steadily negative model has a small variance and
    would get a large weight. Deliberate differences: long-only (negative means count
    as 0) and the correlations between models are ignored.
    """

    @dataclass(frozen=True, config=PARAMS_CONFIG)
    class Params:
        """Parameters of ``inverse_variance``."""

        var_floor: Annotated[
            float,
            pydantic.Field(
                ge=1e-12,
                le=1.0,
                description="smallest score variance used (guards one-round records)",
            ),
        ] = 1e-4

    def __init__(self, params: Params):
        self.params = params

    def weights(self, s: SubmissionSet) -> np.ndarray:
        mean = np.maximum(np.nan_to_num(np.asarray(s.trailing_corr, dtype=float), nan=0.0), 0.0)
        if s.score_var is None:
            return _normalized(mean)
        var = np.nan_to_num(np.asarray(s.score_var, dtype=float), nan=np.inf, posinf=np.inf)
        precision = 1.0 / np.maximum(var, self.params.var_floor)
        if (mean > 0).any():
            return _normalized(mean * precision)
        return _normalized(precision)

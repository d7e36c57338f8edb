"""Aggregation rules: how submissions are weighted into the metamodel (registry ``AGGREGATION``).

Contract: ``weights(s: SubmissionSet) -> np.ndarray`` of weights >= 0 that sum to 1
when there is at least one submission, and an empty array when there is none.
"""

from __future__ import annotations

import numpy as np
from pydantic.dataclasses import dataclass

from mechanisms.base import SubmissionSet
from mechanisms.registry import AGGREGATION, PARAMS_CONFIG

__all__ = ["Equal", "StakeWeighted"]


def _equal(n: int) -> np.ndarray:
    return np.full(n, 1.0 / n) if n > 0 else np.zeros(0)


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
        stakes = np.maximum(np.asarray(s.stakes, dtype=float), 0.0)
        total = stakes.sum()
        if total > 0:
            return stakes / total
        return _equal(stakes.shape[0])

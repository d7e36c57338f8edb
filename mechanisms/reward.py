"""Reward rules: who is paid what when a round resolves (registry ``REWARD``).

Contract: ``payouts(r: ResolvedRound) -> np.ndarray`` of signed tokens per
submission. A positive entry is paid from the treasury; a negative entry is a
penalty that the slashing rule turns into a burn.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
import pydantic
from pydantic.dataclasses import dataclass

from mechanisms.base import ResolvedRound
from mechanisms.registry import PARAMS_CONFIG, REWARD

__all__ = ["Numerai", "StakeProportional"]


@REWARD.register("stake_proportional", claims={"sybil_proof", "budget_balanced"})
class StakeProportional:
    """The round's budget split in proportion to stake times positive correlation.

    Formula, for submission i with stake s_i and score c_i = CORR_i::

        w_i = s_i * max(c_i, 0)
        payout_i = budget * w_i / sum_j w_j                      if c_i > 0
        payout_i = -penalty * s_i * min(-c_i, clip)               if c_i < 0

    When no w_j is positive nobody is paid (the positive part is all zeros); the
    penalties of negative scores are still owed. Negative stakes count as 0 and a
    negative budget as 0.

    Claims: sybil-proof (both parts are linear in stake, so splitting a stake over k
    identical submissions leaves the total unchanged) and budget-balanced (positive
    payouts sum to exactly the budget, or to 0).

    Source: the stake-weighted reward of Numerai's original staking tournament and of
    stake-based prediction markets (docs.numer.ai, "Staking"; MECHANISMS.md,
    "sybil-proofness: stake-proportional payouts"). Deliberate difference: Numerai
    pays a fixed fraction of stake per unit of score (see the ``numerai`` rule); here
    a fixed budget is shared, which makes the rule budget-balanced.
    """

    @dataclass(frozen=True, config=PARAMS_CONFIG)
    class Params:
        """Parameters of ``stake_proportional``."""

        penalty: Annotated[
            float,
            pydantic.Field(
                ge=0.0,
                le=10.0,
                description="tokens owed per token staked per unit of negative corr",
            ),
        ] = 1.0
        clip: Annotated[
            float,
            pydantic.Field(
                gt=0.0,
                le=1.0,
                description="largest negative corr that is penalized (caps the penalty)",
            ),
        ] = 0.25

    def __init__(self, params: Params):
        self.params = params

    def payouts(self, r: ResolvedRound) -> np.ndarray:
        stakes = np.maximum(np.asarray(r.stakes, dtype=float), 0.0)
        corr = np.asarray(r.corr, dtype=float)
        weight = stakes * np.maximum(corr, 0.0)
        total = weight.sum()
        out = np.zeros(stakes.shape[0])
        if total > 0:
            out = max(float(r.budget), 0.0) * weight / total
        neg = corr < 0
        out[neg] = -self.params.penalty * stakes[neg] * np.minimum(-corr[neg], self.params.clip)
        return out


@REWARD.register("numerai", claims={"sybil_proof"})
class Numerai:
    """Numerai's payout: stake times a clipped, throttled mix of CORR and MMC.

    Formula, for submission i with stake s_i::

        pf = min(1, T / sum_j s_j)            (pf = 1 when nothing is staked)
        payout_i = s_i * clip(pf * (w_corr * CORR_i + w_mmc * MMC_i), -clip, +clip)

    with ``T = payout_target``, or the round's budget ``r.budget`` when
    ``payout_target`` is None. CORR and MMC are read from ``r.corr`` and ``r.mmc``.
    The defaults are the weights in force since 2024: w_corr = 0.5, w_mmc = 2,
    clip = 0.05 (T = 72,000 NMR in the main tournament). The earlier era paid
    ``stake * corr`` capped at +-25 %: ``w_corr=1, w_mmc=0, clip=0.25`` with a
    large ``payout_target`` reproduces it.

    Claims: sybil-proof (linear in stake; pf depends only on the total stake). Not
    claimed budget-balanced: with an explicit ``payout_target`` above the budget the
    positive payouts can exceed it, and burns happen outside any budget.

    Source: Numerai documentation (docs.numer.ai), "Staking": payout factor and the
    2024 payout formula; MECHANISMS.md, "Numerai (stake, score, burn)".
    """

    @dataclass(frozen=True, config=PARAMS_CONFIG)
    class Params:
        """Parameters of ``numerai``."""

        w_corr: Annotated[
            float, pydantic.Field(ge=0.0, le=10.0, description="weight of CORR in the score")
        ] = 0.5
        w_mmc: Annotated[
            float, pydantic.Field(ge=0.0, le=10.0, description="weight of MMC in the score")
        ] = 2.0
        clip: Annotated[
            float,
            pydantic.Field(
                gt=0.0,
                le=1.0,
                description="largest gain or loss per round, as a fraction of stake",
            ),
        ] = 0.05
        payout_target: Annotated[
            Annotated[float, pydantic.Field(ge=0.0, le=1e12)] | None,
            pydantic.Field(
                description=(
                    "T in pf = min(1, T / total stake), in tokens; None uses the round's budget"
                ),
            ),
        ] = None

    def __init__(self, params: Params):
        self.params = params

    def payouts(self, r: ResolvedRound) -> np.ndarray:
        p = self.params
        stakes = np.asarray(r.stakes, dtype=float)
        target = float(r.budget) if p.payout_target is None else p.payout_target
        at_risk = float(stakes.sum())
        pf = min(1.0, max(target, 0.0) / at_risk) if at_risk > 0 else 1.0
        score = pf * (p.w_corr * np.asarray(r.corr) + p.w_mmc * np.asarray(r.mmc))
        return stakes * np.clip(score, -p.clip, p.clip)

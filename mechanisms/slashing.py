"""Slashing rules: what happens to the stake behind a poor submission (registry ``SLASHING``).

Contract: ``slash(s: SlashInput) -> np.ndarray`` of tokens taken from each stake, with
``0 <= taken <= stake`` (a negative stake counts as 0). Every rule also carries:

- the class attribute ``destination``: ``"burn"`` (the engine burns what is taken) or
  ``"positive_contributors"`` (the engine hands it to the submissions with positive
  payouts, in proportion to those payouts; see :func:`share_among_positive`);
- the parameter ``cascade_to_providers``, read by the engine, not here: that fraction of
  what a developer loses is additionally burned from the bonds of the providers whose
  feeds the model used.

Claim ``only_on_loss``: nothing is taken from a submission whose payout is >= 0 (checked
for every rule that declares it by ``tests/unit/test_registry_contract.py``).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import numpy as np
import pydantic
from pydantic.dataclasses import dataclass

from mechanisms.base import SlashInput
from mechanisms.registry import PARAMS_CONFIG, SLASHING

__all__ = [
    "BurnNegative",
    "FullOnNegative",
    "NoSlashing",
    "Proportional",
    "Redistribute",
    "share_among_positive",
]

_CASCADE_DESCRIPTION = (
    "fraction of a developer's slash additionally burned from the bonds of the "
    "providers whose feeds the model used (the engine applies it)"
)

Cascade = Annotated[float, pydantic.Field(ge=0.0, le=1.0, description=_CASCADE_DESCRIPTION)]


def _stakes(s: SlashInput) -> np.ndarray:
    return np.maximum(np.asarray(s.stakes, dtype=float), 0.0)


def _negative_part_within_stake(s: SlashInput) -> np.ndarray:
    """``min(max(-payout, 0), max(stake, 0))``: the loss, never more than the stake."""
    owed = np.maximum(-np.asarray(s.payouts, dtype=float), 0.0)
    return np.minimum(owed, _stakes(s))


def share_among_positive(taken: np.ndarray, payouts: np.ndarray) -> np.ndarray:
    """Tokens each submission receives when ``taken`` goes to the positive contributors.

    Formula: ``received_i = sum(taken) * max(payout_i, 0) / sum_j max(payout_j, 0)``.
    When no payout is positive nobody receives anything (all zeros); the engine then
    burns the whole of ``sum(taken)``. Otherwise ``sum(received) == sum(taken)``.

    Source: Harris & Waggoner (2019), "Decentralized & Collaborative AI on Blockchain"
    (Microsoft 0xDeCA10B), prediction-market incentive: what the contributions with
    negative scores lose is paid to those with positive scores (MECHANISMS.md).
    Deliberate difference: shares follow the reward rule's positive payouts, not the
    replayed accuracy gains of the original contract.
    """
    taken = np.asarray(taken, dtype=float)
    gains = np.maximum(np.asarray(payouts, dtype=float), 0.0)
    total = gains.sum()
    if total <= 0:
        return np.zeros(gains.shape[0])
    return taken.sum() * (gains / total)  # shares first: no underflow for tiny payouts


@SLASHING.register("none", claims={"only_on_loss"})
class NoSlashing:
    """Nothing is taken: negative payouts cost the submitter nothing.

    Formula: ``taken_i = 0``.

    Source: the no-stake baseline, as in Numerai's unstaked submissions and
    Algorithmia DanKu (submitters stake nothing; MECHANISMS.md). It isolates the
    effect of slashing when compared with ``burn_negative``.
    """

    destination: ClassVar[str] = "burn"

    @dataclass(frozen=True, config=PARAMS_CONFIG)
    class Params:
        """Parameters of ``none``."""

        cascade_to_providers: Cascade = 0.0

    def __init__(self, params: Params):
        self.params = params

    def slash(self, s: SlashInput) -> np.ndarray:
        return np.zeros(np.shape(s.stakes), dtype=float)


@SLASHING.register("burn_negative", claims={"only_on_loss"})
class BurnNegative:
    """A negative payout is burned from the stake, never more than the stake.

    Formula: ``taken_i = min(max(-payout_i, 0), max(stake_i, 0))``, burned.

    Source: Numerai, "a negative payout is burned from the stake" (Numerai
    documentation, "Staking"; MECHANISMS.md, "Numerai (stake, score, burn)").
    """

    destination: ClassVar[str] = "burn"

    @dataclass(frozen=True, config=PARAMS_CONFIG)
    class Params:
        """Parameters of ``burn_negative``."""

        cascade_to_providers: Cascade = 0.0

    def __init__(self, params: Params):
        self.params = params

    def slash(self, s: SlashInput) -> np.ndarray:
        return _negative_part_within_stake(s)


@SLASHING.register("proportional")
class Proportional:
    """A fixed fraction of the stake is burned when the score falls below a threshold.

    Formula: ``taken_i = fraction * max(stake_i, 0)`` if ``x_i < threshold``, else 0,
    where ``x = s.scores`` (CORR) when ``measure = "corr"`` and ``x = s.contributions``
    (MMC) when ``measure = "mmc"``. The payout does not enter: a submission can be paid
    by the reward rule and still slashed (when ``threshold > 0``), or lose money and go
    unslashed (when its score is at or above the threshold), so this rule does not claim
    ``only_on_loss``.

    Source: fixed-fraction slashing of proof-of-stake protocols, e.g. the Cosmos SDK
    ``x/slashing`` module (``slash_fraction_downtime``, ``slash_fraction_double_sign``:
    a fixed share of the bonded stake is burned on a fault), with the fault being a
    score below a threshold as in the 0xDeCA10B prediction market, where contributions
    with a negative score lose balance (Harris & Waggoner 2019; MECHANISMS.md).
    Deliberate difference: the fraction is of the whole stake, not in proportion to
    the size of the score shortfall. ``measure = "mmc"`` raises ``ValueError`` when
    the engine supplies no contributions, rather than silently using CORR.
    """

    destination: ClassVar[str] = "burn"

    @dataclass(frozen=True, config=PARAMS_CONFIG)
    class Params:
        """Parameters of ``proportional``."""

        fraction: Annotated[
            float,
            pydantic.Field(
                ge=0.0, le=1.0, description="share of the stake taken when below the threshold"
            ),
        ] = 0.05
        threshold: Annotated[
            float,
            pydantic.Field(
                ge=-1.0,
                le=1.0,
                description="score (or contribution) below which the stake is slashed",
            ),
        ] = 0.0
        measure: Annotated[
            Literal["corr", "mmc"],
            pydantic.Field(
                description="what is compared with the threshold: CORR (scores) or MMC "
                "(contributions)"
            ),
        ] = "corr"
        cascade_to_providers: Cascade = 0.0

    def __init__(self, params: Params):
        self.params = params

    def slash(self, s: SlashInput) -> np.ndarray:
        p = self.params
        if p.measure == "mmc":
            if s.contributions is None:
                raise ValueError(
                    "slashing rule 'proportional' with measure 'mmc' needs "
                    "SlashInput.contributions (the MMC of each submission)"
                )
            x = np.asarray(s.contributions, dtype=float)
        else:
            x = np.asarray(s.scores, dtype=float)
        return np.where(x < p.threshold, p.fraction * _stakes(s), 0.0)


@SLASHING.register("full_on_negative", claims={"only_on_loss"})
class FullOnNegative:
    """The whole stake is burned when the payout is negative.

    Formula: ``taken_i = max(stake_i, 0)`` if ``payout_i < 0``, else 0.

    Source: forfeiture of the whole deposit by the loser of a dispute, as in Truebit's
    verification game ("the loser forfeits its deposit") and in 0xDeCA10B's
    Deposit-Refund-Take, where a bad contribution's deposit can be taken in full
    (MECHANISMS.md). Deliberate difference: the verdict is the sign of the reward
    rule's payout, not the outcome of a dispute.
    """

    destination: ClassVar[str] = "burn"

    @dataclass(frozen=True, config=PARAMS_CONFIG)
    class Params:
        """Parameters of ``full_on_negative``."""

        cascade_to_providers: Cascade = 0.0

    def __init__(self, params: Params):
        self.params = params

    def slash(self, s: SlashInput) -> np.ndarray:
        return np.where(np.asarray(s.payouts, dtype=float) < 0, _stakes(s), 0.0)


@SLASHING.register("redistribute", claims={"only_on_loss"})
class Redistribute:
    """A negative payout is taken from the stake and paid to the positive contributors.

    Formula: ``taken_i = min(max(-payout_i, 0), max(stake_i, 0))`` (as
    ``burn_negative``); the engine pays ``sum(taken)`` to the submissions with positive
    payouts in proportion to them, ``received_i = sum(taken) * max(payout_i, 0) /
    sum_j max(payout_j, 0)`` (:func:`share_among_positive`), and burns it when no payout
    is positive. ``destination = "positive_contributors"``.

    Source: the prediction-market incentive of Microsoft's 0xDeCA10B ("Decentralized &
    Collaborative AI on Blockchain", Harris & Waggoner 2019): contributions with
    negative scores lose balance to those with positive scores (MECHANISMS.md).
    Deliberate difference: what is lost is the reward rule's negative payout, and the
    split follows the positive payouts rather than the replayed accuracy changes.
    """

    destination: ClassVar[str] = "positive_contributors"

    @dataclass(frozen=True, config=PARAMS_CONFIG)
    class Params:
        """Parameters of ``redistribute``."""

        cascade_to_providers: Cascade = 0.0

    def __init__(self, params: Params):
        self.params = params

    def slash(self, s: SlashInput) -> np.ndarray:
        return _negative_part_within_stake(s)

"""The contracts of the mechanism families: what the engine hands a rule, what it gets back.

Every rule is pure: it takes numpy arrays and plain data and returns arrays. None of
these types refers to an agent or to the engine, so a rule is testable with a few
arrays.

Family        method                                   returns
-----------   --------------------------------------   ---------------------------------
reward        ``payouts(r: ResolvedRound)``            signed token payout per submission
slashing      ``slash(payouts, stakes)``               tokens burned from each stake (>= 0)
aggregation   ``weights(s: SubmissionSet)``            metamodel weights (>= 0, sum 1)
pricing       ``prices(m: FeedMarket)``                price per feed for this round (> 0)
verification  ``verify(v: VerificationInput, rng)``    :class:`VerificationOutcome`
privacy       ``training_cost(rows, features)``        :class:`ComputeCost` of one training
submission    ``visible_before_close()``               whether others see predictions early

A privacy rule also carries the class attribute ``leaks: bool`` (whether a buyer holds
the raw data, which can then leak to free riders).

Claims a rule may declare (checked for every registered rule by
``tests/unit/test_registry_contract.py``):
``sybil_proof`` — splitting one submission into k identical ones with the stake divided
leaves the total payout unchanged; ``budget_balanced`` — positive payouts sum to at most
``ResolvedRound.budget``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ResolvedRound:
    """One round's submissions, resolved against the realized target.

    ``n`` submissions over ``A`` assets. ``corr`` and ``mmc`` are precomputed by the
    engine with :func:`mechanisms.scoring.numerai_corr_rows` and
    :func:`mechanisms.scoring.correlation_contribution_rows`.
    """

    predictions: np.ndarray  # (n, A) raw predictions
    target: np.ndarray  # (A,) realized target
    stakes: np.ndarray  # (n,) tokens at risk on each submission
    meta: np.ndarray  # (A,) the metamodel's (gaussianized, weighted) prediction
    weights: np.ndarray  # (n,) aggregation weights that built ``meta``
    corr: np.ndarray  # (n,) numerai_corr of each submission
    mmc: np.ndarray  # (n,) correlation_contribution of each submission
    budget: float  # tokens the treasury can pay out this round
    pnl: float = 0.0  # the metamodel's realized profit or loss (usd) for the round

    @property
    def n(self) -> int:
        """Number of submissions."""
        return int(self.stakes.shape[0])


@dataclass(frozen=True)
class SubmissionSet:
    """What an aggregation rule may read about this round's submissions."""

    stakes: np.ndarray  # (n,) tokens staked on each submission
    trailing_corr: np.ndarray  # (n,) mean resolved corr of the submitter so far (0 if none)
    prices: np.ndarray | None = None  # (n,) market price of each model, where listed


@dataclass(frozen=True)
class FeedMarket:
    """The data market as a pricing rule sees it at the start of a round."""

    list_prices: np.ndarray  # (P,) each provider's own asking price
    current: np.ndarray  # (P,) price charged last round
    demand: np.ndarray  # (P,) buyers last round
    round: int = 0


@dataclass(frozen=True)
class VerificationInput:
    """Claims of computation to be checked this round."""

    did_work: np.ndarray  # (n,) bool: the claimant really computed its result
    deposits: np.ndarray  # (n,) tokens the claimant put up
    steps: np.ndarray  # (n,) size of the computation (steps of the trace)


@dataclass(frozen=True)
class VerificationOutcome:
    """Result of a verification round."""

    caught: np.ndarray  # (n,) bool: claim shown wrong; the claimant forfeits its deposit
    checked: np.ndarray  # (n,) bool: a verifier checked the claim
    fees: np.ndarray | None = None  # (n,) tokens spent on checking, if any


@dataclass(frozen=True)
class ComputeCost:
    """The cost of one secure (or plain) computation."""

    seconds: float = 0.0  # wall-clock latency
    bytes_sent: float = 0.0  # network traffic
    fee: float = 0.0  # tokens charged to the developer

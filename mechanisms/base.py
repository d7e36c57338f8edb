"""The contracts of the mechanism families: what the engine hands a rule, what it gets back.

Every rule is pure: it takes numpy arrays and plain data and returns arrays. None of
these types refers to an agent or to the engine, so a rule is testable with a few
arrays.

Family        method                                   returns
-----------   --------------------------------------   ---------------------------------
reward        ``payouts(r: ResolvedRound)``            signed token payout per submission
slashing      ``slash(s: SlashInput)``                 tokens taken from each stake (>= 0)
aggregation   ``weights(s: SubmissionSet)``            metamodel weights (>= 0, sum 1)
pricing       ``prices(m: FeedMarket)``                price per feed for this round (> 0)
verification  ``verify(v: VerificationInput, rng)``    :class:`VerificationOutcome`
privacy       ``training_cost(j: TrainingJob)``        :class:`ComputeCost` per trainer
submission    ``visible_before_close()``               whether others see predictions early
attribution   ``attribute(a: AttributionInput)``       each model's split over its feeds
hosting       ``host(h: HostingInput, rng)``           :class:`HostingOutcome` per item

A reward rule may set the class attribute ``funded_by_slashes = True`` when its winners
are paid from what its losers forfeit (the engine then pays positive payouts from the
round's slashed stake first). A verification rule sets ``takes_deposits`` when solvers
put up a deposit per claim. A privacy rule also carries the class attributes
``leaks: bool`` (whether a buyer holds the raw data, which can then leak to free riders)
and ``secure: bool`` (the model is trained inside a secure protocol that the engine
prices and times against the round's deadline), and a ``perturb(feeds, rng)`` method
(what buyers receive); see :mod:`mechanisms.privacy.rules`.

Claims a rule may declare (checked for every registered rule by
``tests/unit/test_registry_contract.py``):
``sybil_proof`` — splitting one submission into k identical ones with the stake divided
leaves the total payout unchanged (checked with the metamodel held fixed, i.e. under
stake-weighted aggregation); ``budget_balanced`` — positive payouts sum to at most
``ResolvedRound.budget`` (for the value rules this is a property of how values become
tokens, not of the valuation: Banzhaf and LOO values themselves are not efficient);
``only_on_loss`` (slashing) — nothing is taken behind a payout >= 0.
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
    order: np.ndarray | None = None  # (n,) submission order: smaller = earlier
    submitters: np.ndarray | None = None  # (n,) stable ids of the submitters (for state)
    round: int = 0  # the round being resolved

    @property
    def n(self) -> int:
        """Number of submissions."""
        return int(self.stakes.shape[0])


@dataclass(frozen=True)
class SlashInput:
    """What a slashing rule sees: the reward rule's verdict and the stakes behind it.

    A slashing rule returns the tokens taken from each stake (``0 <= taken <= stakes``).
    Its class attribute ``destination`` says where they go: ``"burn"`` (default) or
    ``"positive_contributors"`` (shared by the submissions with positive payouts, in
    proportion to those payouts).
    """

    payouts: np.ndarray  # (n,) signed payouts from the reward rule
    stakes: np.ndarray  # (n,) tokens each submitter has staked now
    scores: np.ndarray  # (n,) resolved numerai_corr of each submission
    contributions: np.ndarray | None = None  # (n,) MMC of each submission


@dataclass(frozen=True)
class AttributionInput:
    """A resolved round's models and the feeds inside them, for attribution to data.

    An attribution rule returns shares ``(n, K)``: for each model, how its gain or loss
    splits over the feeds in its slots (>= 0, summing to 1 over the used slots of a row,
    0 on unused slots and on rows without feeds).
    """

    picks: np.ndarray  # (n, K) provider index in each slot, -1 = unused
    weights: np.ndarray  # (n, K * k) each model's weights, slot by slot
    feeds: np.ndarray  # (P, A, k) every provider's feed in the resolved round
    target: np.ndarray  # (A,) the realized target


@dataclass(frozen=True)
class HostingInput:
    """Items (data feeds or models) to keep hosted for one more round."""

    sizes: np.ndarray  # (m,) bytes of each item
    pinned: np.ndarray  # (m,) bool: someone pays to keep the item available
    new_bytes: np.ndarray | None = None  # (m,) bytes written this round (None: all of it)


@dataclass(frozen=True)
class HostingOutcome:
    """What hosting costs this round and whether each item can be reached."""

    fees: np.ndarray  # (m,) tokens charged to the item's owner this round
    available: np.ndarray  # (m,) bool: the item can be fetched this round


@dataclass(frozen=True)
class AuctionInput:
    """Sealed bids for a limited number of access slots per feed (auction pricing)."""

    bids: np.ndarray  # (n, P) tokens each buyer offers for one round of each feed (0 = none)
    budgets: np.ndarray  # (n,) tokens each buyer can spend in total
    slots: np.ndarray  # (P,) buyers each feed admits this round
    reserve: np.ndarray  # (P,) each provider's reserve (list) price


@dataclass(frozen=True)
class AuctionOutcome:
    """Who won access to which feed and what each winner pays."""

    won: np.ndarray  # (n, P) bool
    payments: np.ndarray  # (n, P) tokens, 0 where not won


@dataclass(frozen=True)
class SubmissionSet:
    """What an aggregation rule may read about this round's submissions."""

    stakes: np.ndarray  # (n,) tokens staked on each submission
    trailing_corr: np.ndarray  # (n,) mean resolved corr of the submitter so far (0 if none)
    prices: np.ndarray | None = None  # (n,) market price of each model, where listed
    score_var: np.ndarray | None = None  # (n,) variance of the submitter's resolved corr


@dataclass(frozen=True)
class FeedMarket:
    """The data market as a pricing rule sees it at the start of a round."""

    list_prices: np.ndarray  # (P,) each provider's own asking price
    current: np.ndarray  # (P,) price charged last round
    demand: np.ndarray  # (P,) buyers last round
    round: int = 0
    curation: np.ndarray | None = None  # (P,) curation shares outstanding on each feed
    capacity: np.ndarray | None = None  # (P,) buyers a feed can serve per round


@dataclass(frozen=True)
class VerificationInput:
    """Claims of computation to be checked this round."""

    did_work: np.ndarray  # (n,) bool: the claimant really computed its result
    deposits: np.ndarray  # (n,) tokens the claimant put up
    steps: np.ndarray  # (n,) size of the computation (steps of the trace)
    jackpot: float | None = None  # tokens in the verification jackpot (None: the rule's own tally)


@dataclass(frozen=True)
class VerificationOutcome:
    """Result of a verification round."""

    caught: np.ndarray  # (n,) bool: claim shown wrong; the claimant forfeits its deposit
    checked: np.ndarray  # (n,) bool: a verifier checked the claim
    fees: np.ndarray | None = None  # (n,) tokens spent on checking, if any
    forced: np.ndarray | None = None  # (n,) bool: a forced error was injected into this claim
    dispute_rounds: np.ndarray | None = None  # (n,) on-chain rounds of each dispute (0 if none)
    tax: np.ndarray | None = None  # (n,) tokens each solver pays into the jackpot
    jackpot_paid: float = 0.0  # tokens paid from the jackpot to verifiers this round
    verifier_reward: float = 0.0  # total verifiers receive: jackpot payouts + forfeited deposits
    check_rate: float = 0.0  # the verifiers' checking probability this round
    verifier_cost: float = 0.0  # tokens verifiers spent on checking this round


@dataclass(frozen=True)
class TrainingJob:
    """One round's training and scoring work, one entry of ``feeds`` per trainer."""

    rows: int  # samples in the training window
    feeds: np.ndarray  # (n,) int: feeds (providers' blocks) each trainer's model uses
    feed_dim: int  # columns per feed
    assets: int  # samples scored this round (the live cross-section)
    ridge: float  # the ridge penalty lam of the objective


@dataclass(frozen=True)
class ComputeCost:
    """The cost of one secure (or plain) computation; arrays hold one entry per trainer."""

    seconds: float | np.ndarray = 0.0  # latency: compute + rounds * RTT + bytes / bandwidth
    bytes_sent: float | np.ndarray = 0.0  # network traffic, all parties and the dealer
    fee: float | np.ndarray = 0.0  # tokens charged to the developer
    compute_seconds: float | np.ndarray = 0.0  # core-seconds of computation

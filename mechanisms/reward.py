"""Reward rules: who is paid what when a round resolves (registry ``REWARD``).

Contract: ``payouts(r: ResolvedRound) -> np.ndarray`` of signed tokens per
submission. A positive entry is paid from the treasury; a negative entry is a
penalty that the slashing rule turns into a burn.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import numpy as np
import pydantic
from pydantic.dataclasses import dataclass

from mechanisms.base import ResolvedRound
from mechanisms.registry import PARAMS_CONFIG, REWARD
from mechanisms.valuation import (
    MAX_EXACT_PLAYERS,
    banzhaf,
    leave_one_out,
    metamodel_game,
    shapley,
)

__all__ = [
    "Banzhaf",
    "DepositRefundTake",
    "LeaveOneOut",
    "Numerai",
    "PredictionMarket",
    "Shapley",
    "StakeProportional",
    "ThresholdBounty",
    "market_settlement",
    "values_to_payouts",
]


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

    Claims: sybil-proof (linear in stake; pf depends only on the total stake), under
    stake-weighted aggregation (with other weightings a split changes the metamodel and
    hence MMC). Not claimed budget-balanced: pf bounds ``pf * total_at_risk`` by T, but
    a payout of ``stake * pf * (w_corr * CORR + w_mmc * MMC)`` can exceed
    ``stake * pf`` (weights above 1), so positive payouts can exceed the budget even with
    ``payout_target`` None; burns happen outside any budget. The engine never pays more
    than the treasury holds.

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


# --- contribution rules: Shapley, Banzhaf, leave-one-out -----------------------------


def values_to_payouts(
    values: np.ndarray,
    stakes: np.ndarray,
    budget: float,
    *,
    budget_share: float,
    penalty: float,
    scale: float,
    clip: float,
) -> np.ndarray:
    """Signed token payouts from contribution values (the one conversion of the value rules).

    For submission i with value v_i (Shapley, Banzhaf or leave-one-out, in units of the
    utility, e.g. CORR) and stake s_i::

        paid = budget_share * max(budget, 0)          (= min(budget, budget_share * budget))
        payout_i = paid * v_i / sum_{j : v_j > 0} v_j               if v_i > 0
        payout_i = -penalty * s_i * min(-v_i / scale, clip)          if v_i < 0
        payout_i = 0                                                 if v_i = 0

    Positive values share the round's budget in proportion to value, so positive
    payouts sum to ``paid <= budget`` (budget-balanced by construction, whatever the
    value rule); negative values owe a stake-proportional penalty, capped at
    ``penalty * clip`` of the stake, which the slashing rule turns into a burn.
    Negative stakes count as 0.
    """
    v = np.asarray(values, dtype=float)
    stakes = np.maximum(np.asarray(stakes, dtype=float), 0.0)
    out = np.zeros(v.shape[0])
    pos = np.maximum(v, 0.0)
    total = pos.sum()
    if total > 0:
        out = budget_share * max(float(budget), 0.0) * pos / total
    neg = v < 0
    with np.errstate(over="ignore"):  # a tiny scale: the ratio overflows to inf, capped
        units = np.minimum(-v[neg] / scale, clip)
    out[neg] = -penalty * stakes[neg] * units
    return out


@dataclass(frozen=True, config=PARAMS_CONFIG)
class ValuePayoutParams:
    """How contribution values become tokens (see :func:`values_to_payouts`)."""

    budget_share: Annotated[
        float,
        pydantic.Field(
            ge=0.0, le=1.0, description="fraction of the round's budget shared by positive values"
        ),
    ] = 1.0
    penalty: Annotated[
        float,
        pydantic.Field(
            ge=0.0,
            le=10.0,
            description="tokens owed per token staked per unit of negative value / scale",
        ),
    ] = 1.0
    scale: Annotated[
        float,
        pydantic.Field(
            gt=0.0, le=10.0, description="value (in utility units) that counts as one unit"
        ),
    ] = 1.0
    clip: Annotated[
        float,
        pydantic.Field(
            gt=0.0,
            le=1.0,
            description="largest negative value / scale that is penalized (caps the penalty)",
        ),
    ] = 0.25
    utility: Annotated[
        Literal["corr", "linear"],
        pydantic.Field(
            description=(
                "coalition utility: 'corr' = numerai_corr of the coalition's renormalized "
                "metamodel; 'linear' = sum of w_i * (g_i . t_c) / A (closed form)"
            )
        ),
    ] = "corr"


@dataclass(frozen=True, config=PARAMS_CONFIG)
class SampledValuePayoutParams(ValuePayoutParams):
    """:class:`ValuePayoutParams` plus the choice between enumeration and sampling."""

    seed: Annotated[
        int,
        pydantic.Field(
            ge=0,
            le=2**32 - 1,
            description="seed of the Monte Carlo estimates (combined with the round number)",
        ),
    ] = 0
    exact_max: Annotated[
        int,
        pydantic.Field(
            ge=0,
            le=MAX_EXACT_PLAYERS,
            description="largest number of submissions valued by exact enumeration (2^n)",
        ),
    ] = 10


def _round_rng(seed: int, r: ResolvedRound) -> np.random.Generator:
    """The generator of one round's estimates: a pure function of (seed, round)."""
    return np.random.default_rng(np.random.SeedSequence([seed, max(int(r.round), 0)]))


def _value_payouts(values: np.ndarray, r: ResolvedRound, p: ValuePayoutParams) -> np.ndarray:
    return values_to_payouts(
        values,
        r.stakes,
        r.budget,
        budget_share=p.budget_share,
        penalty=p.penalty,
        scale=p.scale,
        clip=p.clip,
    )


@REWARD.register("shapley", claims={"budget_balanced"})
class Shapley:
    """Each submission's Shapley value in the metamodel's score, turned into tokens.

    Formula: the coalition game over the round's n submissions (``utility``)::

        corr:   U(S) = numerai_corr(sum_{i in S} w_i g_i / sum_{i in S} w_i, target),
                g_i = rank_gaussianize(p_i), equal weights when sum_{i in S} w_i = 0,
                U(empty) = 0
        linear: U(S) = sum_{i in S} w_i (g_i . t_c) / A

        phi_i = sum_{S not containing i} |S|! (n - |S| - 1)! / n! * [U(S + i) - U(S)]

    computed exactly by enumerating the 2^n coalitions when n <= ``exact_max``, by
    truncated Monte Carlo beyond (``permutations`` random orders, a walk stopped when
    |U(N) - U(prefix)| < ``tolerance`` * |U(N)|, the residual split over the players
    not reached so the values still sum to U(N) exactly; sampling error about the
    marginals' standard deviation / sqrt(permutations)), and in closed form
    (phi_i = w_i (g_i . t_c) / A) for the linear utility. Values become payouts by
    :func:`values_to_payouts`: positive values share ``budget_share * budget`` in
    proportion to value; a negative value owes
    ``penalty * stake * min(|phi| / scale, clip)``. The Monte Carlo draws come from
    ``SeedSequence([seed, round])``, so a round's payouts are a pure function of the
    parameters and the round.

    Claims: budget-balanced (positive payouts sum to budget_share * budget). Not
    sybil-proof: splitting a submission into k copies changes the coalition game, so
    the copies together earn a different amount from the original, and a replicator
    can gain (MECHANISMS.md, "sybil-proofness ... fails for Shapley under
    replication").

    Source: Shapley (1953); Ghorbani & Zou (2019), "Data Shapley: Equitable Valuation
    of Data for Machine Learning", Algorithm 1 (TMC-Shapley); MECHANISMS.md, "Data and
    model valuation". Deliberate difference: Ghorbani & Zou give the players after
    the truncation point 0; here they share the residual equally, which keeps the
    estimate exactly efficient (see :func:`mechanisms.valuation.tmc_shapley`).
    """

    @dataclass(frozen=True, config=PARAMS_CONFIG)
    class Params(SampledValuePayoutParams):
        """Parameters of ``shapley``."""

        permutations: Annotated[
            int,
            pydantic.Field(
                ge=1, le=10_000, description="random permutations of truncated Monte Carlo"
            ),
        ] = 100
        tolerance: Annotated[
            float,
            pydantic.Field(
                ge=0.0,
                lt=1.0,
                description="a walk stops when |U(N) - U(prefix)| < tolerance * |U(N)|",
            ),
        ] = 0.01

    def __init__(self, params: Params):
        self.params = params

    def values(self, r: ResolvedRound) -> np.ndarray:
        """Shapley value of each submission (utility units)."""
        p = self.params
        game = metamodel_game(r.predictions, r.weights, r.target, p.utility)
        return shapley(
            game,
            _round_rng(p.seed, r),
            exact_max=p.exact_max,
            permutations=p.permutations,
            tolerance=p.tolerance,
        )

    def payouts(self, r: ResolvedRound) -> np.ndarray:
        return _value_payouts(self.values(r), r, self.params)


@REWARD.register("banzhaf", claims={"budget_balanced"})
class Banzhaf:
    """Each submission's Banzhaf value in the metamodel's score, turned into tokens.

    Formula, with the coalition game U of ``shapley`` (``utility`` corr or linear)::

        phi_i = 2^-(n-1) * sum_{S not containing i} [U(S + i) - U(S)]

    exact by enumeration when n <= ``exact_max``; beyond, the Maximum Sample Reuse
    estimator: ``samples`` coalitions, each submission in each with probability 1/2,
    phi_i = mean U(S : i in S) - mean U(S : i not in S) (sampling error about
    2 sd(U) / sqrt(samples)); closed form w_i (g_i . t_c) / A for the linear
    utility. Tokens by :func:`values_to_payouts`, as for ``shapley``.

    Claims: budget-balanced, by the value-to-token conversion (Banzhaf values
    themselves are not efficient: they need not sum to U(N)). Not sybil-proof.

    Source: Banzhaf (1965); Wang & Jia (2023), "Data Banzhaf: A Robust Data Valuation
    Framework for Machine Learning" (the MSR estimator); MECHANISMS.md, "Data and
    model valuation" (not efficient, most robust to noise in U).
    """

    @dataclass(frozen=True, config=PARAMS_CONFIG)
    class Params(SampledValuePayoutParams):
        """Parameters of ``banzhaf``."""

        samples: Annotated[
            int,
            pydantic.Field(ge=1, le=100_000, description="sampled coalitions of the MSR estimator"),
        ] = 2000

    def __init__(self, params: Params):
        self.params = params

    def values(self, r: ResolvedRound) -> np.ndarray:
        """Banzhaf value of each submission (utility units)."""
        p = self.params
        game = metamodel_game(r.predictions, r.weights, r.target, p.utility)
        return banzhaf(game, _round_rng(p.seed, r), exact_max=p.exact_max, samples=p.samples)

    def payouts(self, r: ResolvedRound) -> np.ndarray:
        return _value_payouts(self.values(r), r, self.params)


@REWARD.register("leave_one_out", claims={"budget_balanced"})
class LeaveOneOut:
    """Each submission's leave-one-out value in the metamodel's score, turned into tokens.

    Formula, with the coalition game U of ``shapley`` (``utility`` corr or linear)::

        phi_i = U(N) - U(N \\ {i})

    (n + 1 evaluations of U; the linear utility gives w_i (g_i . t_c) / A). Tokens
    by :func:`values_to_payouts`, as for ``shapley``. The rule is exact and
    deterministic.

    Claims: budget-balanced, by the conversion. Not sybil-proof, and exposed to
    duplicates the other way: two copies of a good submission each get ~0 (removing
    one changes nothing), MECHANISMS.md "monotonic in data quality ... fails for LOO
    with duplicates".

    Source: MECHANISMS.md, "Data and model valuation" (leave-one-out); Ghorbani & Zou
    (2019), section 2 (LOO as the baseline of data valuation).
    """

    @dataclass(frozen=True, config=PARAMS_CONFIG)
    class Params(ValuePayoutParams):
        """Parameters of ``leave_one_out``."""

    def __init__(self, params: Params):
        self.params = params

    def values(self, r: ResolvedRound) -> np.ndarray:
        """Leave-one-out value of each submission (utility units)."""
        p = self.params
        return leave_one_out(metamodel_game(r.predictions, r.weights, r.target, p.utility))

    def payouts(self, r: ResolvedRound) -> np.ndarray:
        return _value_payouts(self.values(r), r, self.params)


# --- Algorithmia DanKu ---------------------------------------------------------------

#: Scores closer than this are a tie (so identical submissions always tie exactly).
TIE_TOLERANCE = 1e-12


def submission_order(r: ResolvedRound) -> np.ndarray:
    """Indices of the submissions from earliest to latest (``r.order``, ties by index)."""
    n = r.n
    if r.order is None:
        return np.arange(n)
    return np.argsort(np.asarray(r.order, dtype=float), kind="stable")


@REWARD.register("threshold_bounty", claims={"budget_balanced", "sybil_proof"})
class ThresholdBounty:
    """DanKu: the whole bounty to the best submission above a threshold, ties to the earliest.

    Formula, with c_i = CORR_i (``r.corr``, the submission's numerai_corr against the
    target revealed after submission)::

        bounty = min(bounty_amount, budget)           if bounty_amount is set
               = bounty_share * budget                otherwise
        Q = {i : c_i >= threshold}
        winner = the earliest i in Q with c_i >= max_{j in Q} c_j - 1e-12
        payout_winner = bounty;  payout_i = 0 for everyone else
        (Q empty: nobody is paid; the bounty stays in the treasury = the refund)

    "Earliest" is the smallest ``r.order`` (the index when ``r.order`` is None or on
    equal order). Losers lose nothing: submitters stake nothing in DanKu.

    Claims: budget-balanced (one payment of at most the budget); sybil-proof in the
    registry's sense (k identical copies of a submission score the same, so the
    bounty still goes to the group, or to the same other winner, and the total is
    unchanged). Not free-rider resistant: a copy of a public model submitted earlier
    wins the tie (MECHANISMS.md, "free-rider resistance ... fails for DanKu").

    Source: Algorithmia, "DanKu" contract (Kurtulmus & Daniel 2018, "Trustless Machine
    Learning Contracts; Evaluating and Exchanging Machine Learning Models on the
    Ethereum Blockchain"); MECHANISMS.md, "Algorithmia DanKu". Mapping: the
    contract's test-set accuracy is the resolved CORR; one submission is one
    contract entry. Deliberate difference: one bounty per round instead of one per
    contract, and scores within 1e-12 count as equal (floating point).
    """

    @dataclass(frozen=True, config=PARAMS_CONFIG)
    class Params:
        """Parameters of ``threshold_bounty``."""

        threshold: Annotated[
            float,
            pydantic.Field(
                ge=-1.0, le=1.0, description="CORR a submission must reach to be eligible"
            ),
        ] = 0.01
        bounty_share: Annotated[
            float,
            pydantic.Field(
                ge=0.0, le=1.0, description="bounty as a fraction of the round's budget"
            ),
        ] = 1.0
        bounty_amount: Annotated[
            Annotated[float, pydantic.Field(ge=0.0, le=1e12)] | None,
            pydantic.Field(
                description=(
                    "fixed bounty in tokens, capped by the round's budget; None uses bounty_share"
                )
            ),
        ] = None

    def __init__(self, params: Params):
        self.params = params

    def winner(self, r: ResolvedRound) -> int | None:
        """Index of the winning submission, or None when nobody meets the threshold."""
        corr = np.asarray(r.corr, dtype=float)
        ok = corr >= self.params.threshold
        if not ok.any():
            return None
        best = corr[ok].max()
        contenders = ok & (corr >= best - TIE_TOLERANCE)
        seq = submission_order(r)
        return int(seq[contenders[seq]][0])

    def payouts(self, r: ResolvedRound) -> np.ndarray:
        p = self.params
        budget = max(float(r.budget), 0.0)
        if p.bounty_amount is None:
            bounty = budget * p.bounty_share
        else:
            bounty = min(p.bounty_amount, budget)
        out = np.zeros(r.n)
        i = self.winner(r)
        if i is not None:
            out[i] = bounty
        return out


# --- Microsoft 0xDeCA10B -------------------------------------------------------------


def _ids(r: ResolvedRound) -> tuple[np.ndarray, np.ndarray]:
    """(unique submitter ids, index of each submission's id); one id per submission if None."""
    if r.submitters is None:
        return np.arange(r.n), np.arange(r.n)
    uniq, inv = np.unique(np.asarray(r.submitters), return_inverse=True)
    return uniq, inv.reshape(-1)


def _split_by_id(per_id: np.ndarray, inv: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Share each id's amount over its submissions in proportion to ``weight``.

    An id whose submissions all have weight 0 shares equally.
    """
    w = np.maximum(np.asarray(weight, dtype=float), 0.0)
    tot = np.bincount(inv, w, minlength=per_id.shape[0])
    cnt = np.bincount(inv, minlength=per_id.shape[0])
    frac = np.where(tot[inv] > 0, w / np.where(tot[inv] > 0, tot[inv], 1.0), 1.0 / cnt[inv])
    return per_id[inv] * frac


@REWARD.register("deposit_refund_take")
class DepositRefundTake:
    """0xDeCA10B Deposit-Refund-Take: good submissions get their deposit back, bad ones lose it.

    Formula, for the round's n submissions (spaced evenly over a round of
    ``round_seconds``, so the time since the previous model update is dt = round_seconds
    / n)::

        deposit_i = min(stake_i, cost_weight * cost_constant / sqrt(max(dt, 1)))
        good_i    = CORR_i > good_threshold      ("the model agrees with the contribution")
        numGood[u] += number of good submissions of submitter u this round  (the refunds)
        T = sum_u numGood[u]                      (over every submitter seen so far)
        good i:  refund of deposit_i       -> net 0
        bad i:   deposit_i is lost; every submitter u of this round with numGood[u] > 0,
                 other than i's author, takes deposit_i * numGood[u] / T;
                 what no reporter takes goes to the treasury ("anyone may take what
                 remains" after the long window)
        payout_i = (takes of i's submitter, shared over its submissions by deposit)
                   - (deposit_i if bad else 0)

    ``cost_constant = 60`` (default) is the project's Python simulator
    (``cost_weight * 60 / sqrt(dt)``, i.e. dt in hours); 3600 is the Solidity contract
    (``costWeight * 1 hours / sqrt(dt)``).

    Mapping onto a round: one contribution is one developer's submission for one
    round; the contract's data is revealed (the target), so "the model agrees with
    the contribution" is read as the submission's resolved CORR exceeding
    ``good_threshold`` (the contract's model is a proxy for the truth; here the truth
    is known); the refund window, the reporting window and the any-address window all
    end within the round, every good submitter claims its refund before reports, and
    every eligible submitter of the round reports every bad submission (reporting is
    free money). Submitters with a history but no submission this round do not
    report.

    State: ``numGood`` per submitter id (``r.submitters``) is kept on the instance
    across rounds (``self.num_good``); :meth:`settle` is the pure function
    ``(num_good, round) -> (payouts, new num_good)`` that :meth:`payouts` calls. With
    ``r.submitters`` None each submission is its own submitter and nothing is stored.

    Not budget-balanced: the takes are paid from the bad deposits, not from the
    budget (positive payouts <= sum of bad deposits); the engine should fund them
    from the burned deposits. Individually rational for good submissions (payout >= 0).

    Source: microsoft/0xDeCA10B, ``demo/client/contracts/incentive/Stakeable.sol``
    (``Stakeable64``: ``getNextAddDataCost``, ``handleRefund``, ``handleReport``) and
    ``simulation/decai/simulation/contract/incentive/stakeable.py``; Harris & Waggoner
    (2019), "Decentralized and Collaborative AI on Blockchain"; MECHANISMS.md,
    "Microsoft ... (0xDeCA10B)". Deliberate differences: continuous tokens (no integer
    rounding or minimum deposit of 1 wei), the deposit is capped by the stake, and
    numGood counts submissions, not data samples.
    """

    #: Winners are paid from what the losers forfeit (the engine pays positive payouts
    #: from the round's slashed stake first, and from the treasury only for the rest).
    funded_by_slashes: ClassVar[bool] = True

    @dataclass(frozen=True, config=PARAMS_CONFIG)
    class Params:
        """Parameters of ``deposit_refund_take``."""

        cost_weight: Annotated[
            float,
            pydantic.Field(ge=0.0, le=1e6, description="multiplicative factor of the deposit"),
        ] = 1.0
        cost_constant: Annotated[
            float,
            pydantic.Field(
                ge=1.0,
                le=3600.0,
                description=(
                    "C in deposit = cost_weight * C / sqrt(dt): 60 the Python simulator, "
                    "3600 the Solidity contract"
                ),
            ),
        ] = 60.0
        round_seconds: Annotated[
            float,
            pydantic.Field(
                ge=1.0,
                le=3.2e7,
                description="length of a round in seconds (submissions are spread evenly)",
            ),
        ] = 604_800.0
        good_threshold: Annotated[
            float,
            pydantic.Field(
                ge=-1.0,
                le=1.0,
                description="a submission is good (refunded) when its CORR exceeds this",
            ),
        ] = 0.0

    def __init__(self, params: Params):
        self.params = params
        self.num_good: dict = {}

    def deposits(self, r: ResolvedRound) -> np.ndarray:
        """Deposit of each submission: ``min(stake, cost_weight * C / sqrt(max(dt, 1)))``."""
        p = self.params
        n = r.n
        if n == 0:
            return np.zeros(0)
        dt = p.round_seconds / n
        cost = p.cost_weight * p.cost_constant / np.sqrt(max(dt, 1.0))
        return np.minimum(np.maximum(np.asarray(r.stakes, dtype=float), 0.0), cost)

    def settle(self, num_good: dict, r: ResolvedRound) -> tuple[np.ndarray, dict]:
        """Payouts of round ``r`` given the history ``num_good``; returns the new history."""
        uniq, inv = _ids(r)
        deposit = self.deposits(r)
        good = np.asarray(r.corr, dtype=float) > self.params.good_threshold
        keys = uniq.tolist()
        known = dict(num_good) if r.submitters is not None else {}
        before = np.array([known.get(k, 0) for k in keys], dtype=float)
        after = before + np.bincount(inv, good.astype(float), minlength=len(keys))
        total = sum(known.values()) + float(good.sum())
        bad_by_id = np.bincount(inv, np.where(good, 0.0, deposit), minlength=len(keys))
        takes = np.zeros(len(keys))
        if total > 0:
            takes = after / total * (bad_by_id.sum() - bad_by_id)
        out = _split_by_id(takes, inv, deposit) - np.where(good, 0.0, deposit)
        if r.submitters is not None:
            known.update({k: int(v) for k, v in zip(keys, after, strict=True)})
        return out, known

    def payouts(self, r: ResolvedRound) -> np.ndarray:
        out, new = self.settle(self.num_good, r)
        if r.submitters is not None:
            self.num_good = new
        return out


@REWARD.register("prediction_market")
class PredictionMarket:
    """0xDeCA10B prediction market: contributions stake, the bounty pays accuracy gains.

    Formula, for one round (one market). Each submission deposits
    ``d_i = deposit_share * stake_i``; a submitter's balance starts at the sum of its
    deposits; the bounty is ``B = bounty_share * budget`` "rounds"::

        repeat:
            replay the remaining submissions in submission order (r.order);
            accuracy after the first j = numerai_corr of their metamodel
              (U of the coalition game of ``shapley``: renormalized weights, U(empty) = 0);
            score[u] = sum over u's submissions of (accuracy after - accuracy before)
            if no score < 0: balance[u] += B_left * score[u]; stop
            pick the removed submitters and t:
              lowest_score:  u* = argmin score, t = balance[u*] / -score[u*]
              first_to_zero: t = min over score[u] < 0 of balance[u] / -score[u],
                             every u reaching 0 at t is removed
            t = min(t, B_left); B_left -= t; balance[u] += t * score[u] for all u;
            remove the picked submitters' submissions; stop when none remain or B_left = 0
        payout of u = max(balance[u], 0) - sum of u's deposits, shared over u's
        submissions in proportion to deposit

    One bounty "round" moves score[u] tokens to each submitter (scores are accuracy
    changes, so a round pays at most 1 token in total); the bounty therefore pays at
    most ``B`` tokens beyond the forfeited deposits. ``removal = "lowest_score"``
    (default) is the project's simulator (``process_contribution``: the worst
    contributor is removed; another negative scorer's balance may go below 0, and its
    refund is then 0); ``"first_to_zero"`` stops at the first balance to reach 0, so no
    balance goes negative.

    Mapping onto a round: one contribution is one developer's submission for one
    round, the model is the metamodel, the test set is the target revealed after
    submission, accuracy is the resolved CORR of the metamodel, the initial model is
    the empty metamodel (accuracy 0). No state is kept: each round is one market.

    Not budget-balanced: positive payouts are paid from the bounty and from the
    forfeited balances of negative scorers (zero-sum with the bounty), so they can
    exceed the budget; the engine should fund them from the burned deposits first.
    Cost: one replay (one CORR per submission) per removal; removals stop when the
    bounty runs out, at most one per submitter.

    Source: microsoft/0xDeCA10B, ``simulation/decai/simulation/contract/incentive/
    prediction_market.py`` (``PredictionMarket.handle_add_data``, ``end_market``,
    ``process_contribution``, ``handle_refund``); Harris & Waggoner (2019),
    "Decentralized and Collaborative AI on Blockchain", prediction-market incentive;
    MECHANISMS.md, "Microsoft ... (0xDeCA10B)". Deliberate differences: continuous
    tokens and rounds (no integer units, ``min_stake`` becomes ``deposit_share`` of the
    stake), the model is not retrained but re-aggregated, and the accuracy of a
    submitter's run of consecutive submissions is summed per submitter over the
    whole replay (the simulator adds each run's change to the same score, so the
    totals agree).
    """

    #: Winners are paid from what the losers forfeit (the engine pays positive payouts
    #: from the round's slashed stake first, and from the treasury only for the rest).
    funded_by_slashes: ClassVar[bool] = True

    @dataclass(frozen=True, config=PARAMS_CONFIG)
    class Params:
        """Parameters of ``prediction_market``."""

        bounty_share: Annotated[
            float,
            pydantic.Field(
                ge=0.0, le=1.0, description="bounty as a fraction of the round's budget"
            ),
        ] = 1.0
        deposit_share: Annotated[
            float,
            pydantic.Field(
                ge=0.0, le=1.0, description="fraction of each stake deposited in the market"
            ),
        ] = 1.0
        removal: Annotated[
            Literal["lowest_score", "first_to_zero"],
            pydantic.Field(
                description=(
                    "who leaves after a paid phase: the lowest scorer (the simulator) or "
                    "the first balance to reach 0"
                )
            ),
        ] = "lowest_score"

    def __init__(self, params: Params):
        self.params = params

    def payouts(self, r: ResolvedRound) -> np.ndarray:
        p = self.params
        if r.n == 0:
            return np.zeros(0)
        uniq, inv = _ids(r)
        deposit = p.deposit_share * np.maximum(np.asarray(r.stakes, dtype=float), 0.0)
        game = metamodel_game(r.predictions, r.weights, r.target, "corr")
        one = np.zeros(1, dtype=np.intp)

        def accuracy(idx: np.ndarray) -> np.ndarray:
            return game.walk(game.start(one), one, idx[None])[0][0]

        net = market_settlement(
            np.bincount(inv, deposit, minlength=uniq.shape[0]),
            inv,
            submission_order(r),
            accuracy,
            p.bounty_share * max(float(r.budget), 0.0),
            p.removal,
        )
        return _split_by_id(net, inv, deposit)


def market_settlement(
    balance: np.ndarray,
    owner: np.ndarray,
    seq: np.ndarray,
    accuracy,
    bounty: float,
    removal: str = "lowest_score",
) -> np.ndarray:
    """The reward phase of the 0xDeCA10B prediction market; returns each submitter's net.

    ``balance`` (u,) the submitters' deposits, ``owner`` (n,) the submitter of each
    contribution, ``seq`` the contributions in replay order, ``accuracy(idx)`` the
    model's accuracy after each prefix of the contributions ``idx`` (the initial
    model scores 0), ``bounty`` the bounty in rounds (tokens). See
    :class:`PredictionMarket` for the loop; returns ``max(balance, 0) - deposit``.
    """
    start = np.asarray(balance, dtype=float)
    balance = start.copy()
    n_ids = balance.shape[0]
    alive = np.ones(n_ids, dtype=bool)
    left = float(bounty)
    while left > 0:
        idx = seq[alive[owner[seq]]]
        if idx.size == 0:
            break
        gain = np.diff(np.asarray(accuracy(idx), dtype=float), prepend=0.0)
        score = np.bincount(owner[idx], gain, minlength=n_ids)
        neg = alive & (score < 0)
        if not neg.any():
            balance[alive] += left * score[alive]
            break
        if removal == "lowest_score":
            worst = np.flatnonzero(neg)[np.argmin(score[neg])]
            t = balance[worst] / -score[worst]
            leaving = np.array([worst])
        elif removal == "first_to_zero":
            ratio = np.full(n_ids, np.inf)
            ratio[neg] = balance[neg] / -score[neg]
            t = ratio.min()
            leaving = np.flatnonzero(ratio <= t * (1 + 1e-12))
        else:
            raise ValueError(f"unknown removal {removal!r} (allowed: lowest_score, first_to_zero)")
        t = min(max(t, 0.0), left)
        left -= t
        balance[alive] += t * score[alive]
        alive[leaving] = False
    return np.maximum(balance, 0.0) - start

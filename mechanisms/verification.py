"""Verification rules: how claimed computation is checked (registry ``VERIFICATION``).

Contract: ``verify(v: VerificationInput, rng) -> VerificationOutcome``.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

import numpy as np
import pydantic
from pydantic.dataclasses import dataclass

from mechanisms.base import VerificationInput, VerificationOutcome
from mechanisms.registry import PARAMS_CONFIG, VERIFICATION

__all__ = ["NoVerification", "Truebit", "dispute_rounds"]


@VERIFICATION.register("none")
class NoVerification:
    """Claims are accepted unchecked: nothing is checked, nothing caught, no fees.

    Formula: ``checked_i = caught_i = False``, ``fee_i = 0``.

    Source: the baseline Truebit argues against (Teutsch & Reitwiessner 2017, "A
    scalable verification solution for blockchains": without verifiers a wrong
    result is never challenged); MECHANISMS.md, "Truebit".
    """

    #: Whether solvers put up a deposit per claim (the engine escrows it).
    takes_deposits: ClassVar[bool] = False

    @dataclass(frozen=True, config=PARAMS_CONFIG)
    class Params:
        """``none`` has no parameters."""

    def __init__(self, params: Params):
        self.params = params

    def verify(self, v: VerificationInput, rng: np.random.Generator) -> VerificationOutcome:
        n = int(np.shape(v.did_work)[0])
        return VerificationOutcome(
            caught=np.zeros(n, dtype=bool), checked=np.zeros(n, dtype=bool), fees=np.zeros(n)
        )


def dispute_rounds(steps) -> np.ndarray:
    """On-chain rounds of a Truebit verification game over a trace of ``steps`` steps.

    Formula: ``max(1, ceil(log2(steps)))``: each round of the binary search halves the
    disputed interval of the execution trace until one step is left, which is executed
    on-chain; a one-step trace still takes that one on-chain round. Exact for integer
    step counts (via the binary exponent, no floating-point ``log2``); a fractional
    step count is rounded up. Source: Teutsch & Reitwiessner (2017), "A scalable
    verification solution for blockchains", the verification game; MECHANISMS.md,
    "Truebit".
    """
    s = np.maximum(np.ceil(np.asarray(steps, dtype=float)), 1.0)
    _, exponent = np.frexp(s - 1.0)  # s - 1 = m * 2**e, m in [0.5, 1): e = ceil(log2(s))
    return np.maximum(exponent, 1).astype(np.int64)


@VERIFICATION.register("truebit")
class Truebit:
    """Truebit: claims checked at a learned rate, forced errors paid from a taxed jackpot.

    Each round, for claims ``i = 1..n`` (draws in this order from ``rng``):

    - forced error: ``forced_i = U_i < rho`` (``rho = forced_error_rate``); the solver
      must submit a wrong answer, through no fault of its own.
    - checked: ``checked_i = U'_i < q`` with ``q`` the current probability that a claim
      is checked by at least one verifier (starts at ``check_probability``).
    - caught (deposit forfeited): ``caught_i = checked_i and not did_work_i``: a lazy
      solver who skipped the work is shown wrong when checked, and not otherwise. A
      lazy solver hit by a forced error is caught too (its "correct" fallback answer is
      wrong as well, and the verifier who checked already holds the right one). A
      forced error alone is never ``caught``: the solver is not penalized, its claim
      stands and it is paid as if correct.
    - dispute: ``dispute_rounds_i = max(1, ceil(log2(steps_i)))`` if caught, else 0 (see
      :func:`dispute_rounds`); the loser (the caught solver) pays
      ``fees_i = dispute_rounds_i * dispute_fee_per_round``.
    - tax: ``tax_i = tax_rate * task_reward``, paid into the jackpot.
    - jackpot: ``J = jackpot + sum(tax)`` (the balance passed in ``v.jackpot``, or the
      rule's own tally if None, plus this round's taxes); each of the ``m = sum(checked
      and forced)`` caught forced errors pays ``jackpot_share`` of what is left:
      ``jackpot_paid = J * (1 - (1 - jackpot_share) ** m)``.
    - verifiers: ``V = verifiers`` verifiers each check a claim independently with
      probability ``p = 1 - (1 - q) ** (1 / V)`` (so that ``q = 1 - (1 - p) ** V``); a
      checked claim is checked ``E[k | k >= 1] = V p / q`` times in expectation, so
      ``verifier_cost = sum(checked) * check_cost * V p / q`` (``= check_cost *
      sum(checked)`` for ``V = 1``); ``verifier_reward = jackpot_paid + sum(deposits of
      caught)``.
    - learning (after the round): replicator dynamics of checking on the realized profit,
      ``q <- clip(q + adaptation * (verifier_reward - verifier_cost) / (n * check_cost),
      0, 1)``. In expectation the step is ``adaptation * q * (gain per check / cost per
      check - 1)``: checking spreads when ``rho * jackpot_share * J + (lazy share) *
      deposit >= check_cost * V p / q`` and dies out otherwise. With ``rho = 0`` and no
      lazy solvers ``q`` shrinks by ``about adaptation * q`` every round (the verifier's
      dilemma; then laziness pays). With honest solvers, ``rho > 0`` and only taxes
      funding the jackpot, a steady jackpot pays out what flows in, ``n * tax`` a round,
      so ``q`` settles where ``q * V p / q = tax / check_cost`` (``q* = min(1, tax /
      check_cost)`` for ``V = 1``): the tax pays for verification. ``q = 0`` is absorbing
      (nobody checks, nobody learns); with ``check_cost = 0`` any reward sends ``q`` to 1.

    Units: ``check_cost`` is tokens per check of one claim (a verifier re-runs the whole
    computation, so it is of the order of the solver's cost, below ``task_reward``);
    ``tax_rate`` is a fraction of ``task_reward`` per claim.

    Source: Teutsch & Reitwiessner (2017), "A scalable verification solution for
    blockchains" (incentive layer: jackpots, taxes, deposits, forced errors; dispute
    layer: the verification game; the verifier's dilemma of Luu et al. 2015); the
    TrueBit wiki, "Incentive Layer" (reward >= cost + tax; at most a third of the jackpot
    per payout, hence the default ``jackpot_share``); MECHANISMS.md, "Truebit".

    Deliberate differences: the verifiers are one pool with one aggregate checking
    probability ``q`` (symmetric strategy), learned by the replicator rule above instead
    of each verifier's equilibrium reasoning; redundant checks cost their expectation
    ``V p / q`` rather than a drawn count; a caught forced error pays the verifier pool
    ``jackpot_share`` of the jackpot, not the paper's payout halving with every extra
    challenger; the whole forfeited deposit goes to the verifiers (the paper gives the
    challenger at most half and the rest to the jackpot); the solver never loses a game
    it is right in and verifiers never challenge a correct claim (checking is exact), so
    the loser of a dispute is always the caught solver; a forced error is revealed
    without a verification game (no dispute rounds); no timeouts, no solver election, no
    commit-reveal of the random bits. The engine owns the money: this rule only reports
    what moves (see :class:`mechanisms.base.VerificationOutcome`) and keeps a tally of the
    jackpot it believes is left.
    """

    #: Whether solvers put up a deposit per claim (the engine escrows it).
    takes_deposits: ClassVar[bool] = True

    @dataclass(frozen=True, config=PARAMS_CONFIG)
    class Params:
        """Parameters of ``truebit``."""

        check_probability: Annotated[
            float,
            pydantic.Field(
                ge=0.0,
                le=1.0,
                description="initial probability that a claim is checked by some verifier",
            ),
        ] = 0.5
        forced_error_rate: Annotated[
            float,
            pydantic.Field(
                ge=0.0,
                le=1.0,
                description="rho: probability that a claim carries a forced (injected) error",
            ),
        ] = 0.02
        tax_rate: Annotated[
            float,
            pydantic.Field(
                ge=0.0,
                le=100.0,
                description="tax per claim paid into the jackpot, as a fraction of task_reward",
            ),
        ] = 1.0
        task_reward: Annotated[
            float,
            pydantic.Field(
                ge=0.0, le=1e9, description="tokens the task giver pays for one solved claim"
            ),
        ] = 1.0
        check_cost: Annotated[
            float,
            pydantic.Field(
                ge=0.0,
                le=1e9,
                description="tokens one verifier spends to check one claim (re-running it)",
            ),
        ] = 0.5
        dispute_fee_per_round: Annotated[
            float,
            pydantic.Field(
                ge=0.0,
                le=1e9,
                description="on-chain fee of one round of the verification game (loser pays)",
            ),
        ] = 0.01
        verifiers: Annotated[
            float,
            pydantic.Field(
                ge=1.0,
                le=1e6,
                description="verifiers watching the claims and sharing the jackpot "
                "(a float: the formulas are smooth in it)",
            ),
        ] = 3.0
        jackpot_share: Annotated[
            float,
            pydantic.Field(
                ge=0.0,
                le=1.0,
                description="fraction of the jackpot paid out per caught forced error",
            ),
        ] = 1.0 / 3.0
        adaptation: Annotated[
            float,
            pydantic.Field(
                ge=0.0,
                le=1.0,
                description="learning rate of the check probability on the realized "
                "profit of checking",
            ),
        ] = 0.1

    def __init__(self, params: Params):
        self.params = params
        #: probability that the next round's claims are each checked (learned)
        self.check_probability = float(params.check_probability)
        #: tokens the rule believes are left in the jackpot after the last round
        self.jackpot = 0.0

    def redundancy(self, q: float) -> float:
        """Expected checks of a checked claim, ``V p / q`` with ``p = 1 - (1 - q)**(1/V)``.

        1 when ``V = 1`` or ``q -> 0``, ``V`` when ``q = 1``.
        """
        V = self.params.verifiers
        if q <= 0.0 or V == 1.0:
            return 1.0
        p = -np.expm1(np.log1p(-q) / V) if q < 1.0 else 1.0
        return float(V * p / q)

    def verify(self, v: VerificationInput, rng: np.random.Generator) -> VerificationOutcome:
        p = self.params
        did_work = np.asarray(v.did_work, dtype=bool)
        n = int(did_work.shape[0])
        deposits = np.asarray(v.deposits, dtype=float)
        q = self.check_probability
        forced = rng.random(n) < p.forced_error_rate
        checked = rng.random(n) < q
        caught = checked & ~did_work
        rounds = np.where(caught, dispute_rounds(v.steps), 0)
        tax = np.full(n, p.tax_rate * p.task_reward)
        pot = (self.jackpot if v.jackpot is None else float(v.jackpot)) + float(tax.sum())
        hits = int(np.count_nonzero(checked & forced))
        jackpot_paid = pot * (1.0 - (1.0 - p.jackpot_share) ** hits) if hits else 0.0
        reward = jackpot_paid + float(deposits[caught].sum())
        cost = int(np.count_nonzero(checked)) * p.check_cost * self.redundancy(q)
        self.jackpot = pot - jackpot_paid
        if n:
            scale = n * p.check_cost
            if scale > 0.0:
                step = p.adaptation * (reward - cost) / scale
            else:
                step = np.inf if reward > 0.0 and p.adaptation > 0.0 else 0.0
            self.check_probability = float(np.clip(q + step, 0.0, 1.0))
        return VerificationOutcome(
            caught=caught,
            checked=checked,
            fees=rounds * p.dispute_fee_per_round,
            forced=forced,
            dispute_rounds=rounds,
            tax=tax,
            jackpot_paid=float(jackpot_paid),
            verifier_reward=reward,
            check_rate=q,
            verifier_cost=cost,
        )

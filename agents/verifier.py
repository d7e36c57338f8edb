"""The verifiers of claimed computation, as one pool (Truebit-style games)."""

from __future__ import annotations

from agents.base import MarketAgent


class VerifierPool(MarketAgent):
    """Verifiers who check solvers' claims, modelled as one pool with one wallet.

    The verification rule decides how often they check (and learns it from the
    realized profit of checking: the verifier's dilemma); the pool's wallet receives
    jackpot payouts and forfeited deposits and pays for the checks.
    """

    kind = "verifier"

    def __init__(self, model, wallet: int):
        super().__init__(model, 0, wallet, None)

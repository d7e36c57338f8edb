"""Investors: fund listed models by holding their tokens."""

from __future__ import annotations

from agents.base import MarketAgent


class Investor(MarketAgent):
    """Buys the tokens of listed models it expects to pay, sells those that stop paying.

    Each round an investor sells its tokens of models whose trailing score is no longer
    positive (or whose developer left) and puts ``rebalance`` of its liquid tokens into
    the listed model with the best trailing score (momentum: past scores predict payouts).
    Holders of a model's tokens receive a share of its payouts, so a model earns for
    whoever funds it.
    """

    kind = "investor"

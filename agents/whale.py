"""Whales: large holders who move the token's price around payout times.

A whale is an investor-type agent (its accounts are ``investor:ID`` and it has a row in
the investors' column store, with strategy ``whale``) that never invests in models: it
trades the token/usd pool around the moment rewards are paid.
"""

from __future__ import annotations

from agents.investor import Investor

#: The strategies a whale can follow (``population.whales.strategy``).
WHALE_STRATEGIES = ("pump_before_payout", "dump_before_payout")


class Whale(Investor):
    """A large holder that trades the token/usd pool just before and just after payouts.

    In every round ``t`` that resolves a round (``t > lag``), at the end of the trade
    phase (after the metamodel's trades, before the resolve phase pays rewards and the
    treasury's buyback) the whale opens a position, and at the start of round ``t + 1``
    (before anything else trades) it swaps back exactly what it received:

    - ``pump_before_payout``: pay ``U = min(trade_usd, usd held)`` usd for
      ``D = (1 - f) U x / (y + (1 - f) U)`` tokens, then sell the ``D`` tokens.
    - ``dump_before_payout``: sell ``Q = min(trade_usd / p, tokens held)`` tokens for
      ``V = (1 - f) Q y / (x + (1 - f) Q)`` usd, then spend the ``V`` usd on tokens.

    Here ``x`` and ``y`` are the pool's token and usd reserves, ``p = y / x`` the spot
    price and ``f`` the swap fee: the Uniswap v2 constant-product swap (Adams,
    Zinsmeister & Robinson 2020, "Uniswap v2 Core", section 3.2; ``mechanisms.amm``).
    Buying with ``U`` usd moves the price from ``p`` to
    ``p' = p (1 + U / y) (1 + (1 - f) U / y)``; selling ``Q`` tokens moves it to
    ``p' = p / ((1 + Q / x) (1 + (1 - f) Q / x))``. With nothing traded between the two
    legs, the round trip loses the fee twice (``x * y`` only grows); it gains when other
    flows between the legs move the price its way: a pump sandwiches the treasury's
    buyback and the entrants' purchases (Daian et al. 2020, "Flash Boys 2.0", IEEE S&P,
    on sandwich trades around known orders), and it raises the price at which the
    round's rewards and the agents' returns are valued (pump-and-dump manipulation of
    token prices: Gandal, Hamrick, Moore & Oberman 2018, "Price manipulation in the
    Bitcoin ecosystem", J. Monetary Economics 95).

    The realized profit of a round trip (``payoff`` in the agent table, in tokens) is
    ``(usd back - U) / p_after`` for a pump and ``tokens back - Q`` for a dump.
    """


def opening_trade(
    strategy: str, trade_usd: float, price: float, usd: float, tokens: float
) -> tuple[str, float]:
    """The asset and amount a whale pays into the token/usd pool before the payouts.

    ``pump_before_payout``: ``("usd", min(trade_usd, usd))``;
    ``dump_before_payout``: ``("token", min(trade_usd / price, tokens))``.
    """
    if strategy == "pump_before_payout":
        return "usd", min(trade_usd, usd)
    if strategy == "dump_before_payout":
        return "token", min(trade_usd / price, tokens)
    raise ValueError(f"unknown whale strategy {strategy!r}; allowed: {', '.join(WHALE_STRATEGIES)}")

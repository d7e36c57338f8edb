"""Agents are Mesa agents for identity; their state lives in columns of a population.

Each agent type keeps a :class:`Columns` store (one numpy array per attribute, one
row per agent that ever existed). A :class:`MarketAgent` knows its row (``slot``) and
its ledger accounts, so ``agent.tokens`` reads the ledger and ``agent.status`` reads
the column, while whole-population work (choosing feeds, training, staking) runs on
the columns in one call.
"""

from __future__ import annotations

from typing import Any

import mesa
import numpy as np

#: Lifecycle of an agent: active -> leaving (no new exposure, waits for its open rounds)
#: -> gone (stake released, tokens sold, removed from the Mesa model).
ACTIVE, LEAVING, GONE = 0, 1, 2

#: What an agent does, beside its type: ``honest`` (the type's ordinary behaviour) or an
#: adversarial strategy. Codes index this tuple (column ``strategy`` of a population);
#: the agent table and the summary report by (type, strategy).
STRATEGIES = (
    "honest",
    "noise",  # provider: a feed of pure noise
    "flipped",  # provider: the feed's sign flipped at random rounds
    "stale",  # provider: the feed of some rounds ago
    "resold",  # provider: a copy of another provider's feed
    "sybil",  # one of several identities of one owner
    "colluder",  # member of a ring that buys from and votes up its own
    "lazy",  # developer that skips training and submits noise or a copy
    "whale",  # large holder moving the token price around payouts
)
STRATEGY = {name: code for code, name in enumerate(STRATEGIES)}


class Columns:
    """Growable column store: ``cols.name`` is the array of the rows so far.

    Each ``cols.name`` is a view of the first rows of its buffer, kept as an instance
    attribute and renewed when rows are added, so reading a column (hundreds of times
    a round) is a plain attribute lookup.
    """

    def __init__(self, spec: dict[str, tuple[Any, tuple[int, ...], Any]], capacity: int = 16):
        clash = [k for k in spec if k.startswith("_") or hasattr(Columns, k)]
        if clash:
            raise ValueError(f"column names {clash} clash with the store's own attributes")
        self._spec = spec
        self._cap = max(1, capacity)
        self._n = 0
        self._data = {
            k: np.full((self._cap, *tail), fill, dtype=dt) for k, (dt, tail, fill) in spec.items()
        }
        self._views()

    def _views(self) -> None:
        n = self._n
        self.__dict__.update({k: v[:n] for k, v in self._data.items()})

    def __len__(self) -> int:
        return self._n

    def add(self, n: int) -> np.ndarray:
        """Append ``n`` rows filled with defaults; return their indices."""
        need = self._n + n
        if need > self._cap:
            cap = max(need, 2 * self._cap)
            for k, (dt, tail, fill) in self._spec.items():
                grown = np.full((cap, *tail), fill, dtype=dt)
                grown[: self._n] = self._data[k][: self._n]
                self._data[k] = grown
            self._cap = cap
        idx = np.arange(self._n, need)
        self._n = need
        self._views()
        return idx


class MarketAgent(mesa.Agent):
    """A participant: a Mesa agent with a row in its population and ledger accounts."""

    kind = "agent"

    def __init__(self, model: mesa.Model, slot: int, wallet: int = -1, locked: int | None = None):
        super().__init__(model)
        self.slot = slot
        self.wallet = wallet
        self.locked = locked

    @property
    def account(self) -> str:
        """Ledger name of the agent's wallet."""
        return self.model.ledger.account_name(self.wallet)

    @property
    def tokens(self) -> float:
        """Liquid tokens (from the ledger)."""
        return self.model.ledger.balance(self.wallet, "token")

    @property
    def locked_tokens(self) -> float:
        """Tokens staked or bonded (from the ledger)."""
        return 0.0 if self.locked is None else self.model.ledger.balance(self.locked, "token")

    @property
    def usd(self) -> float:
        """Stable-asset holdings (from the ledger)."""
        return self.model.ledger.balance(self.wallet, "usd")

    def step(self) -> None:
        """Agents act through their population's vectorized phases, not one by one."""

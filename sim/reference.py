"""A reference implementation of the round, one Python object per agent.

:class:`ReferenceModel` runs the same market as :class:`sim.model.MarketModel` for the
plaintext path, written the straightforward way: every provider and developer is a
Python object holding its own state as attributes (a developer's value of each feed
it tried is a dict, its picks a list, its open submissions a dict by round), and every
phase is a loop over agents, each doing its own work: a developer chooses its feeds
one by one, pays each provider through the ledger, builds its own design matrix from
the raw feeds of the training window, solves its own ridge normal equations with
``np.linalg.solve``, predicts, pays its fees, stakes, and is paid or slashed when its
round resolves. It is the specification the fast path is checked against
(``tests/integration/test_reference.py``) and the slow side of the speed comparison
(``benchmarks/``); it is deliberately not vectorized across agents.

The one concession to the fast path: random numbers. To produce the same numbers, the
reference draws from the same streams (``Streams.from_seed``: task, population,
market, mechanisms) in the same order and with the same call shapes as
``MarketModel``. Where the fast path draws one array for a whole population, the
reference draws that same array once and hands each agent its row or element:

- observe: ``task.draw()``, then the providers' observation shocks
  ``standard_normal((P, A, k))`` for every provider row ever created (each provider
  takes its slice); under ``dp`` the privacy rule perturbs the ``(P, A, k)`` stack of
  feeds in one call (its Laplace noise, from the privacy stream);
- buy (the epsilon-greedy feed choice of :meth:`agents.forecaster.FeedBandit.choose`):
  ``integers(0, n_avail, (n_buyers, kk + 4))`` candidate draws, then
  ``random((n_short, n_avail))`` ranking keys for the buyers whose draws ran short,
  then ``random(n_buyers)`` exploration coins, then ``integers(0, n_avail,
  n_explorers)`` exploration picks;
- submit: ``random(n_trained)`` submission times;
- hosting rules are called once per phase with one item per agent (their draws are
  per item); entry draws one Poisson count per type, then, as genesis does, one
  ``sample(rng, n)`` per parameter for the ``n`` entrants of a type (population
  stream).

Mechanisms (reward, slashing, aggregation, pricing, hosting, attribution,
verification, scoring) are called as the fast path calls them, with arrays assembled
from the agents' objects: the reference checks the engine (who buys what, training,
staking, payouts, ledger bookkeeping, entry and exit), not the rules, which have
their own tests against published numbers. The exchange's pools
(:class:`agents.exchange.Exchange`, Uniswap v2 arithmetic) and the ledger
(:class:`sim.ledger.Ledger`) are used as they are, one swap or transfer per agent.

Scope: ``privacy: plaintext`` (and ``dp``, whose noise the rule adds to the feeds
buyers receive), ``verification: none``, ``submission: open`` or ``commit_reveal``,
pricing ``fixed`` or ``posted_adaptive``, any reward, slashing, aggregation,
attribution and hosting rule, entry and exit (``population.dynamics``) on or off,
investors (who, without listed models, only hold their capital), the complete leak
network. Not covered (a scenario using one raises :class:`UnsupportedScenario` naming
the key): free riders (leaks and copies), lazy solvers, sybils, collusion rings,
whales, bad data, model listings, curation and auction pricing, the secure privacy
rules, verification games.

Use::

    from sim.config import load_scenario
    from sim.reference import ReferenceModel, run_reference

    sc = load_scenario("small", ["population.free_riders.count=0"])
    ref = ReferenceModel(sc)
    ref.step()                 # one round; ref.model_rows[-1] is its model row
    tables = run_reference(sc) # .model, .agents, .ledger as sim.runner.run gives them

Where floating-point sums are formed in another order than in the fast path (a
developer's own ``X'X`` and a smaller solve against the fast path's shared, running
window Gram matrix and padded batched solve; predictions slot by slot), weights and
predictions agree to a relative ~1e-15 rather than bit for bit. Scores depend on a
prediction only through its ranks, so everything downstream (payouts, stakes,
balances, entry and exit) has come out identical in the differential test; a rank
flipped by such a difference would show as a divergence there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from agents.base import ACTIVE, GONE, LEAVING, STRATEGY
from agents.exchange import Exchange
from mechanisms.base import (
    AttributionInput,
    FeedMarket,
    HostingInput,
    ResolvedRound,
    SlashInput,
    SubmissionSet,
    VerificationInput,
)
from mechanisms.scoring import (
    correlation_contribution_rows,
    numerai_corr,
    numerai_corr_rows,
    rank_gaussianize,
)
from mechanisms.slashing import share_among_positive
from sim.config import Scenario
from sim.ledger import Ledger
from sim.model import SimulationError, Streams
from sim.task import make_task

__all__ = ["ReferenceModel", "ReferenceResult", "UnsupportedScenario", "run_reference"]


#: The float columns of an agent row (``sim.runner.agent_table``).
RECORD_FLOATS = (
    "quality",
    "capital",
    "tokens",
    "stake",
    "usd",
    "revenue",
    "payout",
    "burned",
    "spent",
    "payoff",
    "score",
    "contribution",
    "wealth",
)


class UnsupportedScenario(ValueError):
    """The scenario uses a feature the reference implementation does not implement."""


def check_scope(sc: Scenario) -> None:
    """Raise :class:`UnsupportedScenario` naming the first key outside the reference's scope."""
    pop, mkt = sc.population, sc.market
    allowed = {
        "privacy": ("plaintext", "dp"),
        "verification": ("none",),
        "submission": ("open", "commit_reveal"),
        "pricing": ("fixed", "posted_adaptive"),
    }
    for fam, names in allowed.items():
        name = sc.mechanism(fam).name
        if name not in names:
            raise UnsupportedScenario(
                f"mechanisms.{fam}.name = {name!r} is not implemented by the reference "
                f"(supported: {', '.join(names)})"
            )
    zero = {
        "population.free_riders.count": pop.free_riders.count,
        "population.developers.lazy_fraction": pop.developers.lazy_fraction,
        "population.sybils.owners": pop.sybils.owners,
        "population.collusion.providers": pop.collusion.providers,
        "population.collusion.developers": pop.collusion.developers,
        "population.whales.count": pop.whales.count,
        "population.providers.bad.noise": pop.providers.bad.noise,
        "population.providers.bad.flipped": pop.providers.bad.flipped,
        "population.providers.bad.stale": pop.providers.bad.stale,
        "population.providers.bad.resold": pop.providers.bad.resold,
    }
    for key, value in zero.items():
        if value:
            raise UnsupportedScenario(
                f"{key} = {value!r} is not implemented by the reference (it must be 0)"
            )
    if mkt.listings.enabled:
        raise UnsupportedScenario(
            "market.listings.enabled = True is not implemented by the reference"
        )
    if mkt.leak_network != "complete":
        raise UnsupportedScenario(
            f"market.leak_network = {mkt.leak_network!r} is not implemented by the "
            "reference (supported: complete)"
        )
    if sc.task.kind != "cross_section":
        raise UnsupportedScenario(f"task.kind = {sc.task.kind!r} is not implemented")


# ----------------------------------------------------------------------------- agents


@dataclass
class Submission:
    """One developer's submission to one round, kept until the round resolves."""

    round: int
    prediction: np.ndarray  # (A,)
    stake: float  # tokens staked when it was submitted
    time: float  # when in the round it was submitted (uniform draw)
    picks: list[int]  # provider row in each slot, -1 = empty
    weights: np.ndarray  # (K * k,) the model behind it
    weight: float = 0.0  # its weight in the metamodel


@dataclass
class Participant:
    """What every agent shares: identity, accounts and entry/exit state."""

    TYPE: ClassVar[int] = -1  # code in the agent table (sim.model.AGENT_TYPES)

    row: int  # position among the agents of its type (the fast path's column row)
    agent_id: int  # Mesa-style unique id
    wallet: int  # ledger account
    locked: int  # ledger account of its bond (provider) or stake (developer)
    capital: float = 0.0  # usd value brought in at entry
    entered: int = 0
    status: int = ACTIVE
    losing: int = 0  # consecutive losing rounds
    ret_ema: float = 0.0  # moving average of the per-round return
    leave_round: int = -1
    final_wealth: float = np.nan
    burned: float = 0.0  # this round
    spent: float = 0.0  # this round
    payoff: float = 0.0  # this round

    def row_of(self, L: Ledger, price: float) -> dict:
        """Its row of the agent table this round (``sim.model.MarketModel._record_agents``)."""
        tokens, usd = L.balance(self.wallet, "token"), L.balance(self.wallet, "usd")
        stake = L.balance(self.locked, "token") if self.locked >= 0 else 0.0
        return {
            "id": self.agent_id,
            "type": self.TYPE,
            "active": self.status == ACTIVE,
            "quality": np.nan,
            "capital": self.capital,
            "tokens": tokens,
            "stake": stake,
            "usd": usd,
            "revenue": 0.0,
            "payout": 0.0,
            "burned": self.burned,
            "spent": self.spent,
            "payoff": self.payoff,
            "score": np.nan,
            "contribution": np.nan,
            "wealth": (tokens + stake) * price + usd,
        }

    def judge(self, payoff: float, price: float, t: int, lag: int, dyn) -> None:
        """Update the return average and losing streak; start leaving after sustained losses.

        ``ret = payoff * price / capital``, ``ret_ema <- (1 - 1/memory) ret_ema + ret /
        memory`` for rounds with a payoff; leave after ``exit_after`` losing rounds in a
        row, once the open rounds resolved (``t + lag``). Source: ``MarketModel._judge``
        (the entry/exit rule of docs/design.md, "adapt").
        """
        if self.status != ACTIVE:
            return
        if payoff != 0:
            a = 1.0 / dyn.memory
            ret = payoff * price / max(self.capital, 1e-12)
            self.ret_ema = (1 - a) * self.ret_ema + a * ret
        if payoff < 0:
            self.losing += 1
        if payoff > 0:
            self.losing = 0
        if dyn.enabled and self.losing >= dyn.exit_after:
            self.status = LEAVING
            self.leave_round = t + lag


@dataclass
class ProviderAgent(Participant):
    """A data provider: one feed (a feature group seen through its own noise), a price."""

    TYPE: ClassVar[int] = 0

    group: int = 0
    noise: float = 0.0
    quality: float = 0.0
    list_price: float = 0.0
    price: float = 0.0
    available: bool = False  # its feed can be fetched this round
    demand: int = 0  # buyers this round
    revenue: float = 0.0  # this round: sales and royalties

    def row_of(self, L: Ledger, price: float) -> dict:
        return {**super().row_of(L, price), "quality": self.quality, "revenue": self.revenue}

    def observe(self, x: np.ndarray, shock: np.ndarray, k: int) -> np.ndarray:
        """Its feed ``(A, k)``: its group's columns of ``x`` plus ``noise * shock``.

        Source: ``CrossSectionTask.observe`` (``z = x[:, group] + sigma * u``).
        """
        cols = self.group * k + np.arange(k)
        return x[:, cols] + self.noise * shock


@dataclass
class DeveloperAgent(Participant):
    """A model developer: its bandit over feeds, its model and its open submissions."""

    TYPE: ClassVar[int] = 1

    stake_fraction: float = 0.0
    values: dict[int, float] = field(default_factory=dict)  # feed -> running score
    tried: list[int] = field(default_factory=list)  # feeds in the order first used
    picks: list[int] = field(default_factory=list)  # this round's feeds, one per slot
    weights: np.ndarray | None = None  # (K * k,) the last model it trained
    trailing_corr: float = 0.0
    score_var: float = 0.0
    resolved: int = 0
    payout: float = 0.0  # this round
    contribution: float = np.nan  # MMC of the submission that resolved this round
    open: dict[int, Submission] = field(default_factory=dict)  # round -> submission
    # the choice in progress (filled by the buy phase)
    fresh: list[int] = field(default_factory=list)
    short: bool = False

    def row_of(self, L: Ledger, price: float) -> dict:
        score = self.trailing_corr if self.resolved > 0 else np.nan
        return {
            **super().row_of(L, price),
            "payout": self.payout,
            "score": score,
            "contribution": self.contribution,
        }

    # --- buy: epsilon-greedy choice (FeedBandit.choose, one buyer) -------------------

    def draw_fresh(self, draws: np.ndarray, avail: list[int], available: set[int], kk: int) -> None:
        """Untried feeds to rank beside the tried ones: the first ``kk`` distinct
        untried feeds among this buyer's row of uniform draws over the available feeds
        (rejection sampling). ``short`` when the row ran out before
        ``min(kk, untried available feeds)``. Source: :meth:`FeedBandit.choose`.
        """
        seen: set[int] = set()
        fresh: list[int] = []
        for j in draws:
            f = avail[j]
            if f not in seen and f not in self.values and len(fresh) < kk:
                fresh.append(f)
            seen.add(f)
        untried = len(avail) - sum(1 for f in self.tried if f in available)
        self.fresh = fresh
        self.short = len(fresh) < min(kk, untried)

    def rank_untried(self, keys: np.ndarray, avail: list[int], kk: int) -> None:
        """A buyer short of draws ranks every untried feed by a uniform key instead."""
        order = np.argsort(np.where([f in self.values for f in avail], np.inf, keys))[:kk]
        self.fresh = [avail[j] for j in order if avail[j] not in self.values]

    def rank(self, available: set[int], kk: int) -> list[int]:
        """The ``kk`` best candidates: tried available feeds by value and the fresh
        untried ones (value 0), ties in the order tried feeds were first used, then
        the order drawn (a stable sort)."""
        cand = [(self.values[f], f) for f in self.tried if f in available]
        cand += [(0.0, f) for f in self.fresh]
        cand.sort(key=lambda c: -c[0])  # stable
        return [f for _, f in cand[:kk]]

    @staticmethod
    def explore(picks: list[int], feed: int) -> list[int]:
        """Exploration: swap the last pick for a random available feed (unless it is
        already one of the others)."""
        if feed not in picks[:-1]:
            picks = [*picks[:-1], feed]
        return picks

    @staticmethod
    def afford(picks: list[int], prices: dict[int, float], budget: float, K: int) -> list[int]:
        """Take picks in rank order while their cumulative price fits the budget."""
        out, cost = [], 0.0
        for f in picks:
            cost += prices[f]
            out.append(f if cost <= budget + 1e-12 else -1)
        return out + [-1] * (K - len(out))

    # --- train: ridge regression on its own design matrix ----------------------------

    def train(self, window: list, A: int, k: int, K: int, ridge: float, n_hist: int) -> None:
        """Fit ridge on the window's raw feeds of the providers it bought.

        ``(X'X + (ridge * n + 1e-9 (1 + n)) I) w = X'y`` with ``X`` the window's rows
        (``n = A x rounds``) of its feeds' columns (a feed's rows of rounds before the
        provider joined are zero; a feed with no history at all is left out and gets
        weight 0): the normal equations of ``min ||y - X w||^2 + ridge n ||w||^2``
        (Hoerl & Kennard 1970), as :func:`agents.forecaster.fit_ridge`.
        """
        slots = [s for s, p in enumerate(self.picks) if 0 <= p < n_hist]
        w = np.zeros(K * k)
        if slots:
            n = A * len(window)
            X = np.zeros((n, len(slots) * k))
            for i, (_, feeds, _) in enumerate(window):
                for j, s in enumerate(slots):
                    z = feeds.get(self.picks[s])
                    if z is not None:
                        X[i * A : (i + 1) * A, j * k : (j + 1) * k] = z
            y = np.concatenate([y for _, _, y in window])
            a = X.T @ X + np.eye(X.shape[1]) * (ridge * n + 1e-9 * (1.0 + n))
            coef = np.linalg.solve(a, X.T @ y)
            for j, s in enumerate(slots):
                w[s * k : (s + 1) * k] = coef[j * k : (j + 1) * k]
        self.weights = w

    def predict(self, feeds: dict[int, np.ndarray], A: int, k: int) -> np.ndarray:
        """Its linear model on this round's feeds of its picks: ``sum_s z_s w_s``."""
        out = np.zeros(A)
        for s, p in enumerate(self.picks):
            if p >= 0:
                out += feeds[p] @ self.weights[s * k : (s + 1) * k]
        return out

    # --- resolve: learning ------------------------------------------------------------

    def learn(self, corr: float, picks: list[int], lr: float) -> None:
        """Trailing score (exponentially weighted mean and variance, Finch 2009,
        "Incremental calculation of weighted mean and variance": ``d = x - m;
        m += a d; v = (1 - a)(v + a d^2)``) and the bandit's value of every feed used,
        ``v <- (1 - lr) v + lr corr``. Source: ``MarketModel.phase_resolve``."""
        d = corr - self.trailing_corr
        if self.resolved == 0:
            self.trailing_corr, self.score_var = corr, 0.0
        else:
            self.trailing_corr = self.trailing_corr + lr * d
            self.score_var = (1 - lr) * (self.score_var + lr * (d * d))
        self.resolved += 1
        for f in picks:
            if f >= 0:
                if f not in self.values:
                    self.tried.append(f)
                self.values[f] = (1 - lr) * self.values.get(f, 0.0) + lr * corr


@dataclass
class InvestorAgent(Participant):
    """An investor: it funds listed models; with no listings it only holds its capital."""

    TYPE: ClassVar[int] = 3


@dataclass
class MetamodelAgent:
    """The metamodel contract: positions opened each round, closed ``lag`` rounds later.

    Source: :class:`agents.metamodel.Metamodel` (long the assets ranked above the
    median, in proportion to the positive part of the gaussianized metamodel).
    """

    wallet: int
    units: dict[int, np.ndarray] = field(default_factory=dict)  # round -> units per asset
    cost: dict[int, float] = field(default_factory=dict)  # round -> usd paid

    def close(self, u: int, exchange: Exchange, pools: list) -> float:
        """Sell round ``u``'s positions, pool by pool; the realized P&L in usd."""
        units = self.units.pop(u, None)
        cost = self.cost.pop(u, 0.0)
        got = []
        if units is not None:
            for a, x in enumerate(units):
                if x > 0:
                    got.append(
                        exchange.swap(
                            self.wallet,
                            pools[a],
                            pools[a].base,
                            float(x),
                            phase="trade",
                            reason="metamodel_close",
                        )
                    )
        return float(np.sum(got)) - cost

    def open(self, t: int, meta: np.ndarray, fraction: float, exchange: Exchange, pools):
        """Invest ``fraction`` of its usd along the positive part of ``meta``."""
        budget = fraction * exchange.ledger.balance(self.wallet, "usd")
        w = np.maximum(meta, 0.0)
        if budget <= 0 or w.sum() <= 0:
            return
        spend = budget * w / w.sum()
        units = np.zeros(meta.size)
        for a, s in enumerate(spend):
            if s > 0:
                units[a] = exchange.swap(
                    self.wallet, pools[a], "usd", float(s), phase="trade", reason="metamodel_open"
                )
        self.units[t] = units
        self.cost[t] = float(spend[spend > 0].sum())


# ----------------------------------------------------------------------------- model


@dataclass
class ReferenceResult:
    """The reference run's tables, in the layout of :class:`sim.runner.RunResult`."""

    model: object  # pandas DataFrame
    agents: object
    ledger: object


class ReferenceModel:
    """The market of :class:`sim.model.MarketModel`, one object per agent (see the module
    docstring). ``step()`` runs one round; ``model_rows`` and ``agent_chunks`` hold the
    records in the fast path's layout."""

    def __init__(self, scenario: Scenario):
        check_scope(scenario)
        self.config = sc = scenario
        self.streams = Streams.from_seed(sc.run.seed)
        self.t = 0
        self.lag = sc.task.lag
        self.task = make_task(sc.task, self.streams.task)
        self.A = sc.task.assets
        self.k = self.task.feed_dim
        self.K = sc.population.developers.max_feeds
        self.rules = {fam: sc.mechanism(fam).build() for fam in sc.mechanisms}
        assets = ["token", "usd", *(f"asset_{a}" for a in range(self.A))]
        self.ledger = L = Ledger(assets)
        self.exchange = Exchange(L, fee=sc.market.exchange.fee)
        self.treasury = L.open_account("treasury")
        self.fees = L.open_account("fees")
        self.escrow = L.open_account("escrow")
        self.jackpot = L.open_account("jackpot")
        self.curation = L.open_account("curation")
        self.providers: list[ProviderAgent] = []
        self.developers: list[DeveloperAgent] = []
        self.investors: list[InvestorAgent] = []
        self.next_id = 1  # Mesa numbers agents from 1 in creation order
        self.feeds: dict[int, np.ndarray] = {}  # this round's feed of each provider row
        self.pending: dict[int, dict[int, np.ndarray]] = {}  # round -> feeds
        self.targets: dict[int, np.ndarray] = {}
        self.window: list[tuple[int, dict[int, np.ndarray], np.ndarray]] = []
        self.n_hist = 0  # providers with a feed in some window round (rows 0..n_hist-1)
        self.meta: dict[int, np.ndarray] = {}  # round -> metamodel prediction (if any)
        self.pnl: dict[int, float] = {}
        self.last_demand: dict[int, int] = {}
        self.model_rows: list[dict] = []
        self.agent_chunks: list[dict[str, np.ndarray]] = []
        self._genesis()

    # ----------------------------------------------------------------- genesis

    def _new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    @property
    def token_price(self) -> float:
        return self.exchange.price(self.token_pool)

    def _genesis(self) -> None:
        """Round 0: the pools, the treasury, the metamodel, the arbitrageurs, the agents.

        Source: ``MarketModel._genesis`` (same accounts in the same order).
        """
        sc, L = self.config, self.ledger
        L.begin_round(0)
        ex = sc.market.exchange
        self.token_pool = self.exchange.create_pool(
            "token", "usd", ex.token_reserve, ex.token_reserve * ex.token_price
        )
        units = ex.asset_reserve_usd / ex.asset_price
        self.asset_pools = [
            self.exchange.create_pool(f"asset_{a}", "usd", units, ex.asset_reserve_usd)
            for a in range(self.A)
        ]
        self.fair_prices = np.full(self.A, ex.asset_price)
        L.transfer(
            L.MINT, self.treasury, "token", sc.market.treasury, phase="genesis", reason="genesis"
        )
        self._new_id()  # the exchange agent
        mm = L.open_account("metamodel")
        L.transfer(
            L.MINT, mm, "usd", sc.market.metamodel.capital, phase="genesis", reason="genesis"
        )
        self.metamodel = MetamodelAgent(mm)
        self._new_id()
        self.verifiers = L.open_account("verifiers")
        L.transfer(
            L.MINT,
            self.verifiers,
            "token",
            sc.population.verifiers.tokens,
            phase="genesis",
            reason="genesis",
        )
        self._new_id()
        self.arbitrageurs = []
        for i in range(sc.population.arbitrageurs.count):
            acct = L.open_account(f"arbitrageur:{i}")
            usd = sc.population.arbitrageurs.usd
            L.transfer(L.MINT, acct, "usd", usd, phase="genesis", reason="genesis")
            inventory = np.full(self.A, usd / self.A / ex.asset_price)
            L.transfer(
                L.MINT, acct, np.arange(2, 2 + self.A), inventory, phase="genesis", reason="genesis"
            )
            self.arbitrageurs.append(acct)
            self._new_id()
        self._add_providers(sc.population.providers.count, genesis=True)
        self._add_developers(sc.population.developers.count, genesis=True)
        self._add_investors(sc.population.investors.count)
        L.check_invariants()
        self.supply_start = L.supply("token")
        self._record_agents()

    def _fund(self, agents: list[Participant], tokens, usd, genesis: bool, phase: str) -> None:
        """New agents' capital: minted at genesis; later entrants bring usd (minted) and
        buy their tokens on the exchange, one after another. Source: ``MarketModel._fund``."""
        L, price = self.ledger, self.token_price
        for a, tok, cash in zip(agents, tokens, usd, strict=True):
            if genesis:
                L.transfer(L.MINT, a.wallet, "token", tok, phase=phase, reason="genesis")
            else:
                L.transfer(L.MINT, a.wallet, "usd", cash + tok * price, phase=phase, reason="entry")
        for a, tok, cash in zip(agents, tokens, usd, strict=True):
            if genesis:
                L.transfer(L.MINT, a.wallet, "usd", cash, phase=phase, reason="genesis")
                a.capital = tok * price + cash
            else:
                spend = tok * price
                if spend > 0:
                    self.exchange.swap(
                        a.wallet,
                        self.token_pool,
                        "usd",
                        float(spend),
                        phase=phase,
                        reason="entry_buy",
                    )
                a.capital = cash + spend

    def _new_agents(self, cls: type, population: list, kind: str, locked: str, n: int) -> list:
        """``n`` new agents of ``cls`` after the ``population`` so far, each with its id, a
        wallet ``KIND:ID`` and a locked account ``KIND:ID:LOCKED``."""
        ids = [self._new_id() for _ in range(n)]
        wallets = self.ledger.open_accounts([f"{kind}:{i}" for i in ids]).tolist()
        lockeds = self.ledger.open_accounts([f"{kind}:{i}:{locked}" for i in ids]).tolist()
        return [
            cls(row=len(population) + i, agent_id=aid, wallet=w, locked=lk, entered=self.t)
            for i, (aid, w, lk) in enumerate(zip(ids, wallets, lockeds, strict=True))
        ]

    def _add_providers(self, n: int, genesis: bool = False) -> None:
        """Providers join: group, noise, price, tokens (plus the bond) and usd drawn from
        the population stream, one array per parameter. Source: ``MarketModel._add_providers``."""
        if n <= 0:
            return
        cfg, rng = self.config.population.providers, self.streams.population
        new = self._new_agents(ProviderAgent, self.providers, "provider", "bond", n)
        groups = rng.integers(0, self.task.n_groups, n)
        noise = cfg.noise.sample(rng, n)
        prices = cfg.price.sample(rng, n)
        for p, g, s, q in zip(new, groups, noise, prices, strict=True):
            p.group, p.noise = int(g), float(s)
            p.quality = float(self.task.quality(np.float64(s)))
            p.list_price = p.price = float(q)
        tokens = cfg.tokens.sample(rng, n) + cfg.bond
        usd = cfg.usd.sample(rng, n)
        phase = "genesis" if genesis else "adapt"
        self._fund(new, tokens, usd, genesis, phase)
        for p in new:
            self.ledger.transfer(p.wallet, p.locked, "token", cfg.bond, phase=phase, reason="bond")
        self.providers.extend(new)

    def _add_developers(self, n: int, genesis: bool = False) -> None:
        """Developers join: stake fraction, tokens and usd drawn from the population stream.
        Source: ``MarketModel._add_forecasters``."""
        if n <= 0:
            return
        cfg, rng = self.config.population.developers, self.streams.population
        new = self._new_agents(DeveloperAgent, self.developers, "developer", "stake", n)
        for d, f in zip(new, cfg.stake_fraction.sample(rng, n), strict=True):
            d.stake_fraction = float(f)
            d.weights = np.zeros(self.K * self.k)
        tokens = cfg.tokens.sample(rng, n)
        usd = cfg.usd.sample(rng, n)
        self._fund(new, tokens, usd, genesis, "genesis" if genesis else "adapt")
        self.developers.extend(new)

    def _add_investors(self, n: int) -> None:
        """Investors join at genesis with tokens and usd drawn from the population stream.
        Without listed models they hold what they were given. Source:
        ``MarketModel._add_investors``."""
        if n <= 0:
            return
        cfg, rng = self.config.population.investors, self.streams.population
        ids = [self._new_id() for _ in range(n)]
        wallets = self.ledger.open_accounts([f"investor:{i}" for i in ids])
        new = [
            InvestorAgent(row=len(self.investors) + j, agent_id=i, wallet=int(w), locked=-1)
            for j, (i, w) in enumerate(zip(ids, wallets, strict=True))
        ]
        self._fund(new, cfg.tokens.sample(rng, n), cfg.usd.sample(rng, n), True, "genesis")
        self.investors.extend(new)

    # ------------------------------------------------------------------- round

    def step(self) -> None:
        """One round: every phase in order (as ``MarketModel.step``)."""
        self.t += 1
        self.ledger.begin_round(self.t)
        self._round: dict = {}
        for p in self.providers:
            p.revenue = p.burned = p.spent = 0.0
            p.demand = 0
        for d in self.developers:
            d.spent = d.payout = d.burned = 0.0
            d.contribution = np.nan
            d.picks = [-1] * self.K
        for phase in (
            self.phase_observe,
            self.phase_price,
            self.phase_buy,
            self.phase_train,
            self.phase_verify,
            self.phase_submit,
            self.phase_aggregate,
            self.phase_trade,
            self.phase_resolve,
            self.phase_adapt,
            self.phase_record,
        ):
            phase()

    # 1
    def phase_observe(self) -> None:
        """The round's features; every provider's feed; round t - lag's target enters
        the training window (the oldest round leaves it) and moves the fair prices."""
        x, r = self.task.draw()
        shocks = self.task.rng.standard_normal((len(self.providers), self.A, self.k))
        honest = [p.observe(x, shocks[p.row], self.k) for p in self.providers]
        # what buyers receive: the privacy rule's perturbation of every feed (identity
        # under plaintext; clipping and Laplace noise under dp, drawn for all at once)
        sent = self.rules["privacy"].perturb(
            np.array(honest).reshape(len(honest), self.A, self.k), self.streams.privacy
        )
        self.feeds = {p.row: sent[p.row] for p in self.providers}
        self.pending[self.t] = self.feeds
        self.targets[self.t] = r
        u = self.t - self.lag
        if u >= 1:
            feeds = self.pending.pop(u)
            self.resolved_feeds = feeds
            self.window.append((u, feeds, self.targets[u]))
            self.n_hist = max(self.n_hist, len(feeds))
            if len(self.window) > self.config.population.developers.window:
                self.window.pop(0)
            self.fair_prices = self.fair_prices * np.exp(
                self.config.task.return_scale * self.targets[u]
            )

    # 2
    def phase_price(self) -> None:
        """Active providers pay the hosting rule for their feed (an unpaid feed is not for
        sale); the pricing rule sets the prices. Source: ``MarketModel.phase_price``."""
        L = self.ledger
        live = [p for p in self.providers if p.status == ACTIVE]
        for p in self.providers:
            p.available = False
        if live:
            size = self.A * self.k * 8.0 * self.config.population.developers.window
            out = self.rules["hosting"].host(
                HostingInput(
                    np.full(len(live), size),
                    np.ones(len(live), bool),
                    np.full(len(live), self.A * self.k * 8.0),
                ),
                self.streams.mechanisms,
            )
            for p, fee, ok in zip(live, np.asarray(out.fees, float), out.available, strict=True):
                can = L.balance(p.wallet, "token") >= fee - 1e-12
                fee = float(fee) if can else 0.0
                L.transfer(p.wallet, self.fees, "token", fee, phase="price", reason="hosting")
                p.spent += fee
                p.available = bool(ok) and bool(can)
        P = self.providers
        prices = self.rules["pricing"].prices(
            FeedMarket(
                np.array([p.list_price for p in P]),
                np.array([p.price for p in P]),
                np.array([self.last_demand.get(p.row, 0) for p in P], dtype=np.int64),
                self.t,
                curation=np.zeros(len(P)),
                capacity=np.full(len(P), self.config.population.providers.slots),
            )
        )
        for p, q in zip(P, np.asarray(prices, float), strict=True):
            p.price = float(q)

    # 3
    def phase_buy(self) -> None:
        """Each active developer chooses up to K feeds within ``data_budget`` of its liquid
        tokens and pays each provider. Source: ``MarketModel.phase_buy`` and
        :meth:`agents.forecaster.FeedBandit.choose` (epsilon-greedy over feed values)."""
        if not self.window:
            return
        L, cfg, rng = self.ledger, self.config.population.developers, self.streams.market
        buyers = [d for d in self.developers if d.status == ACTIVE]
        avail = [p.row for p in self.providers if p.status == ACTIVE and p.available]
        if buyers and avail:
            n_avail, kk = len(avail), min(self.K, len(avail))
            budgets = [cfg.data_budget * L.balance(d.wallet, "token") for d in buyers]
            available = set(avail)
            draws = rng.integers(0, n_avail, (len(buyers), kk + 4))
            for d, row in zip(buyers, draws, strict=True):
                d.draw_fresh(row, avail, available, kk)
            short = [d for d in buyers if d.short]
            if short:
                keys = rng.random((len(short), n_avail))
                for d, row in zip(short, keys, strict=True):
                    d.rank_untried(row, avail, kk)
            ranked = [d.rank(available, kk) for d in buyers]
            explore = rng.random(len(buyers)) < cfg.exploration
            rand = rng.integers(0, n_avail, int(explore.sum())) if explore.any() else []
            j = 0
            for i in range(len(buyers)):
                if explore[i]:
                    ranked[i] = DeveloperAgent.explore(ranked[i], avail[rand[j]])
                    j += 1
            prices = {p.row: p.price for p in self.providers}
            for d, picks, budget in zip(buyers, ranked, budgets, strict=True):
                d.picks = DeveloperAgent.afford(picks, prices, budget, self.K)
            for d in buyers:
                for f in d.picks:
                    if f < 0:
                        continue
                    p = self.providers[f]
                    L.transfer(
                        d.wallet, p.wallet, "token", p.price, phase="buy", reason="data_purchase"
                    )
                    p.demand += 1
                    p.revenue += p.price
                    d.spent += p.price
        self.last_demand = {p.row: p.demand for p in self.providers}

    # 4
    def phase_train(self) -> None:
        """Every active developer that bought feeds fits its ridge model."""
        ridge = self.config.population.developers.ridge
        self.trained = [
            d for d in self.developers if d.status == ACTIVE and any(f >= 0 for f in d.picks)
        ]
        for d in self.trained:
            d.train(self.window, self.A, self.k, self.K, ridge, self.n_hist)

    # 5
    def phase_verify(self) -> None:
        """``verification: none``: every claim stands (the rule is asked, as the fast
        path asks it, for what it records)."""
        n = len(self.trained)
        out = self.rules["verification"].verify(
            VerificationInput(
                did_work=np.ones(n, bool),
                deposits=np.zeros(n),
                steps=np.full(n, self.A * len(self.window) * self.K * self.k),
                jackpot=self.ledger.balance(self.jackpot, "token"),
            ),
            self.streams.mechanisms,
        )
        self._round.update(check_rate=float(out.check_rate), caught=0, lazy=0, forced=0)

    # 6
    def phase_submit(self) -> None:
        """Each trained developer predicts, pays the submission and training fees and the
        hosting of its model, moves its stake toward ``stake_fraction`` of its tokens and
        submits. Source: ``MarketModel.phase_submit``, ``_host_models`` and ``_stake``."""
        L, sc = self.ledger, self.config
        times = self.streams.market.random(len(self.trained))
        paid = []
        for d, when in zip(self.trained, times, strict=True):
            n_feat = sum(1 for f in d.picks if f >= 0) * self.k
            fee = sc.market.costs.submission_fee + sc.market.costs.train_per_feature * n_feat
            if L.balance(d.wallet, "token") >= fee - 1e-12:
                L.transfer(d.wallet, self.fees, "token", fee, phase="submit", reason="fees")
                d.spent += fee
                paid.append((d, float(when)))
        size = (self.K * self.k + self.A) * 8.0
        n = len(paid)
        out = self.rules["hosting"].host(
            HostingInput(np.full(n, size), np.ones(n, bool), np.full(n, size)),
            self.streams.mechanisms,
        )
        hosted = []
        for (d, when), fee, ok in zip(
            paid, np.asarray(out.fees, float), out.available, strict=True
        ):
            can = L.balance(d.wallet, "token") >= fee - 1e-12
            fee = float(fee) if can else 0.0
            L.transfer(d.wallet, self.fees, "token", fee, phase="submit", reason="hosting")
            d.spent += fee
            if can and ok:
                hosted.append((d, when))
        for d, _ in hosted:
            self._stake(d)
        for d, when in hosted:
            d.open[self.t] = Submission(
                self.t,
                d.predict(self.feeds, self.A, self.k),
                L.balance(d.locked, "token"),
                when,
                list(d.picks),
                d.weights.copy(),
            )

    def _stake(self, d: DeveloperAgent) -> None:
        """Move the stake toward ``stake_fraction`` of token wealth; only stake not at
        risk in open rounds can be withdrawn. Source: ``MarketModel._stake``."""
        L = self.ledger
        wallet, stake = L.balance(d.wallet, "token"), L.balance(d.locked, "token")
        target = d.stake_fraction * (wallet + stake)
        add = min(max(target - stake, 0.0), wallet)
        locked = max([0.0, *(s.stake for s in d.open.values())])
        take = min(max(stake - target, 0.0), max(stake - locked, 0.0))
        L.transfer(d.wallet, d.locked, "token", add, phase="submit", reason="stake")
        L.transfer(d.locked, d.wallet, "token", take, phase="submit", reason="unstake")

    # 7
    def phase_aggregate(self) -> None:
        """The aggregation rule weights this round's submissions (developers in row order);
        the metamodel is the weighted sum of their gaussianized predictions. A submission
        whose reveal fails (``commit_reveal``) is void and forfeits stake."""
        L = self.ledger
        subs = [d for d in self.developers if self.t in d.open]
        rule = self.rules["submission"]
        if subs and hasattr(rule, "reveal_outcome"):
            ok = np.asarray(rule.reveal_outcome(len(subs), self.streams.mechanisms), bool)
            missed = [d for d, good in zip(subs, ok, strict=True) if not good]
            for d in missed:
                s = d.open.pop(self.t)
                at_risk = min(s.stake, L.balance(d.locked, "token"))
                forfeit = rule.params.forfeit * at_risk
                L.transfer(
                    d.locked, L.BURN, "token", forfeit, phase="aggregate", reason="reveal_forfeit"
                )
                d.burned += forfeit
            if missed:
                self._round["missed_reveals"] = len(missed)
            subs = [d for d, good in zip(subs, ok, strict=True) if good]
        if not subs:
            return
        known = [d.score_var for d in subs if d.resolved > 1]
        fill = np.mean(known) if known else 1.0
        w = self.rules["aggregation"].weights(
            SubmissionSet(
                np.array([d.open[self.t].stake for d in subs]),
                np.array([d.trailing_corr for d in subs]),
                None,
                np.array([d.score_var if d.resolved > 1 else fill for d in subs]),
            )
        )
        for d, wi in zip(subs, w, strict=True):
            d.open[self.t].weight = float(wi)
        self._round["ring_weight"] = 0.0
        gauss = np.array([rank_gaussianize(d.open[self.t].prediction) for d in subs])
        self.meta[self.t] = np.asarray(w) @ gauss

    # 8
    def phase_trade(self) -> None:
        """The arbitrageur on turn pulls every asset pool to its fair price; the metamodel
        closes round t - lag's positions and opens round t's."""
        if self.arbitrageurs:
            trader = self.arbitrageurs[self.t % len(self.arbitrageurs)]
            self.exchange.arbitrage(trader, self.asset_pools, self.fair_prices, phase="trade")
        u = self.t - self.lag
        self.pnl[u] = self.metamodel.close(u, self.exchange, self.asset_pools) if u >= 1 else 0.0
        if self.t in self.meta:
            self.metamodel.open(
                self.t,
                self.meta[self.t],
                self.config.market.metamodel.position_fraction,
                self.exchange,
                self.asset_pools,
            )

    # 9
    def phase_resolve(self) -> None:
        """Round t - lag resolves: issuance, buyback, scores, the reward rule's payouts,
        the slashing rule's slashes, royalties and cascades to the providers, learning.
        Source: ``MarketModel.phase_resolve``, ``_settle`` and ``_attribute``."""
        sc, L = self.config, self.ledger
        L.transfer(
            L.MINT,
            self.treasury,
            "token",
            sc.market.issuance_per_round,
            phase="resolve",
            reason="issuance",
        )
        u = self.t - self.lag
        self._round.update(meta_corr=np.nan, pnl=0.0)
        if u < 1:
            return
        pnl = float(self.pnl.pop(u))
        self._round["pnl"] = pnl
        if pnl > 0 and sc.market.metamodel.buyback_share > 0:
            got = self.exchange.swap(
                self.metamodel.wallet,
                self.token_pool,
                "usd",
                pnl * sc.market.metamodel.buyback_share,
                phase="resolve",
                reason="buyback",
            )
            L.transfer(
                self.metamodel.wallet,
                self.treasury,
                "token",
                got,
                phase="resolve",
                reason="buyback",
            )
        subs = [d for d in self.developers if u in d.open]
        mine = [d.open.pop(u) for d in subs]
        meta = self.meta.pop(u, None)
        if not subs or meta is None:
            return
        target = self.targets[u]
        preds = np.array([s.prediction for s in mine])
        self._round["meta_corr"] = numerai_corr(meta, target)
        corr = numerai_corr_rows(preds, target)
        mmc = correlation_contribution_rows(preds, meta, target)
        for d, c in zip(subs, mmc.tolist(), strict=True):
            d.contribution = c
        stake_now = np.array([L.balance(d.locked, "token") for d in subs])
        at_risk = np.minimum(np.array([s.stake for s in mine]), stake_now)
        budget = sc.market.round_budget * L.balance(self.treasury, "token")
        pay = np.asarray(
            self.rules["reward"].payouts(
                ResolvedRound(
                    preds,
                    target,
                    at_risk,
                    meta,
                    np.array([s.weight for s in mine]),
                    corr,
                    mmc,
                    budget,
                    pnl,
                    order=np.array([s.time for s in mine]),
                    submitters=np.array([d.agent_id for d in subs], dtype=np.int64),
                    round=u,
                )
            ),
            dtype=float,
        )
        pos = np.maximum(pay, 0.0)
        taken = np.clip(
            np.asarray(self.rules["slashing"].slash(SlashInput(pay, stake_now, corr, mmc)), float),
            0,
            stake_now,
        )
        if getattr(self.rules["reward"], "funded_by_slashes", False):
            taken = np.maximum(taken, np.minimum(np.maximum(-pay, 0.0), stake_now))
        paid = self._settle(subs, pos, taken, budget)
        for d, x, y in zip(subs, paid, taken, strict=True):
            d.payout += float(x)
            d.burned += float(y)
        self._attribute(subs, mine, paid, taken, target)
        lr = sc.population.developers.learning_rate
        for d, s, c in zip(subs, mine, corr, strict=True):
            d.learn(float(c), s.picks, lr)
        self._round.update(
            payouts=float(paid.sum()), slashed=float(taken.sum()), mean_corr=float(corr.mean())
        )

    def _settle(self, subs, pos: np.ndarray, taken: np.ndarray, budget: float) -> np.ndarray:
        """Slashes go to escrow; a self-funded reward rule pays from them first, the
        treasury (at most ``budget``, pro rata) pays the rest; what is left is shared among
        the positive payouts (``destination: positive_contributors``), returned to the
        treasury (self-funded rules) or burned. Source: ``MarketModel._settle``."""
        L = self.ledger
        for d, x in zip(subs, taken, strict=True):
            L.transfer(d.locked, self.escrow, "token", float(x), phase="resolve", reason="slash")
        pool, want = float(taken.sum()), float(pos.sum())
        self_funded = getattr(self.rules["reward"], "funded_by_slashes", False)
        from_pool = min(pool, want) if self_funded else 0.0
        from_treasury = min(want - from_pool, budget)
        paid = pos * ((from_pool + from_treasury) / want) if want > 0 else pos
        if from_pool > 0:
            for d, x in zip(subs, pos * (from_pool / want), strict=True):
                L.transfer(
                    self.escrow,
                    d.wallet,
                    "token",
                    float(x),
                    phase="resolve",
                    reason="reward_from_slashes",
                )
        if from_treasury > 0:
            for d, x in zip(subs, pos * (from_treasury / want), strict=True):
                L.transfer(
                    self.treasury, d.wallet, "token", float(x), phase="resolve", reason="reward"
                )
        rest = pool - from_pool
        destination = getattr(self.rules["slashing"], "destination", "burn")
        if rest > 0 and destination == "positive_contributors" and want > 0:
            share = share_among_positive(rest, pos)
            for d, x in zip(subs, share, strict=True):
                L.transfer(
                    self.escrow,
                    d.wallet,
                    "token",
                    float(x),
                    phase="resolve",
                    reason="slash_redistribution",
                )
            paid = paid + share
        elif rest > 0 and self_funded:
            L.transfer(
                self.escrow,
                self.treasury,
                "token",
                rest,
                phase="resolve",
                reason="forfeit_to_treasury",
            )
        elif rest > 0:
            L.transfer(self.escrow, L.BURN, "token", rest, phase="resolve", reason="slash_burn")
        return paid

    def _attribute(
        self, subs, mine, paid: np.ndarray, taken: np.ndarray, target: np.ndarray
    ) -> None:
        """Of a positive payout, ``gain_share`` goes from the developer to the providers of
        its feeds (royalties); of a slash, ``cascade_to_providers`` is burned from their
        bonds; split by the attribution rule. Source: ``MarketModel._attribute``."""
        L = self.ledger
        gain = float(getattr(self.rules["attribution"].params, "gain_share", 0.0))
        frac = float(getattr(self.rules["slashing"].params, "cascade_to_providers", 0.0))
        due_gain = [
            min(gain * x, L.balance(d.wallet, "token")) for d, x in zip(subs, paid, strict=True)
        ]
        due_loss = frac * taken
        if not (any(g != 0 for g in due_gain) or due_loss.any()):
            return
        feeds = np.array([self.resolved_feeds[p] for p in sorted(self.resolved_feeds)])
        shares = np.asarray(
            self.rules["attribution"].attribute(
                AttributionInput(
                    np.array([s.picks for s in mine], dtype=np.int64),
                    np.array([s.weights for s in mine]),
                    feeds,
                    target,
                )
            ),
            float,
        )
        due: dict[int, float] = {}
        for i, (d, s) in enumerate(zip(subs, mine, strict=True)):
            for slot, f in enumerate(s.picks):
                if f < 0 or shares[i, slot] <= 0:
                    continue
                royalty = due_gain[i] * shares[i, slot]
                if royalty:
                    p = self.providers[f]
                    L.transfer(
                        d.wallet, p.wallet, "token", royalty, phase="resolve", reason="attribution"
                    )
                    d.spent += royalty
                    p.revenue += royalty
                due[f] = due.get(f, 0.0) + due_loss[i] * shares[i, slot]
        for f in sorted(due):
            if due[f] > 0:
                p = self.providers[f]
                amount = min(due[f], L.balance(p.locked, "token"))
                L.transfer(
                    p.locked, L.BURN, "token", amount, phase="resolve", reason="cascade_slash"
                )
                p.burned += amount

    # 10
    def phase_adapt(self) -> None:
        """Providers pay to serve; payoffs; returns and losing streaks; agents whose open
        rounds resolved leave (stake released, tokens sold); entrants join.
        Source: ``MarketModel.phase_adapt``, ``_judge``, ``_leave`` and ``_enter``."""
        sc, L = self.config, self.ledger
        dyn = sc.population.dynamics
        price = self.token_price
        for p in self.providers:
            p.payoff = 0.0
            if p.status == ACTIVE:
                cost = min(sc.population.providers.cost_per_round, L.balance(p.wallet, "token"))
                L.transfer(
                    p.wallet, self.fees, "token", cost, phase="adapt", reason="provider_cost"
                )
                p.spent += cost
                p.payoff = p.revenue - cost - p.burned
        for d in self.developers:
            d.payoff = d.payout - d.burned - d.spent
        for a in [*self.providers, *self.developers]:
            a.judge(a.payoff, price, self.t, self.lag, dyn)
        self._leave(self.providers)
        self._leave(self.developers)
        if dyn.enabled:
            self._enter(dyn)

    def _leave(self, agents: list) -> None:
        """Agents whose open rounds have all resolved release their bond or stake, sell
        their tokens into the token pool one after another, and are gone."""
        L = self.ledger
        done = [a for a in agents if a.status == LEAVING and a.leave_round <= self.t]
        for a in done:
            L.transfer(
                a.locked,
                a.wallet,
                "token",
                L.balance(a.locked, "token"),
                phase="adapt",
                reason="release",
            )
        for a in done:
            self.exchange.swap(
                a.wallet,
                self.token_pool,
                "token",
                max(L.balance(a.wallet, "token"), 0.0),
                phase="adapt",
                reason="exit_sell",
            )
        for a in done:
            a.status = GONE
            a.leave_round = self.t
            a.final_wealth = L.balance(a.wallet, "usd")
        if done:
            self._round["exits"] = self._round.get("exits", 0) + len(done)

    def _enter(self, dyn) -> None:
        """Entrants of each type ~ Poisson(sensitivity x active x (mean ret_ema - outside
        option)), at most ``max_entrants``, decided on the returns seen before anyone
        enters. Source: ``MarketModel._enter``."""
        rng = self.streams.population
        arrivals = {}
        for kind, agents in (("provider", self.providers), ("developer", self.developers)):
            live = [a.ret_ema for a in agents if a.status == ACTIVE]
            if not live:
                continue
            expected = float(np.mean(live))
            rate = dyn.entry_sensitivity * len(live) * (expected - dyn.outside_option)
            if rate > 0:
                arrivals[kind] = int(min(dyn.max_entrants, rng.poisson(rate)))
        for kind, n in arrivals.items():
            if kind == "provider":
                self._add_providers(n)
            else:
                self._add_developers(n)
        self._round["entries"] = sum(arrivals.values())

    # 11
    def phase_record(self) -> None:
        """The model row and the agent rows of the round; the ledger's invariants."""
        L = self.ledger
        try:
            L.check_invariants()
        except Exception as e:
            raise SimulationError(f"round {self.t}: ledger invariant broken: {e}") from e
        minted, burned = L.round_flows(self.t, "token")
        r = self._round
        cum = (self.model_rows[-1]["metamodel_cum_pnl"] if self.model_rows else 0.0) + r.get(
            "pnl", 0.0
        )
        D, P = self.developers, self.providers
        row = {
            "round": self.t,
            "token_price": self.token_price,
            "token_supply": L.supply("token"),
            "minted": minted,
            "burned": burned,
            "treasury": L.balance(self.treasury, "token"),
            "metamodel_corr": r.get("meta_corr", np.nan),
            "metamodel_pnl": r.get("pnl", 0.0),
            "metamodel_cum_pnl": cum,
            "metamodel_usd": L.balance(self.metamodel.wallet, "usd"),
            "submissions": sum(1 for d in D if self.t in d.open),
            "mean_corr": r.get("mean_corr", np.nan),
            "data_sales": float(np.sum([p.revenue for p in P])),
            "payouts": r.get("payouts", 0.0),
            "slashed": r.get("slashed", 0.0),
            "total_stake": float(np.sum([L.balance(d.locked, "token") for d in D])),
            "leaks": 0,
            "leaks_held": 0,
            "lazy_claims": r.get("lazy", 0),
            "caught": r.get("caught", 0),
            "forced_errors": r.get("forced", 0),
            "check_rate": r.get("check_rate", 0.0),
            "missed_reveals": r.get("missed_reveals", 0),
            "compute_fees": 0.0,
            "compute_seconds": 0.0,
            "compute_bytes": 0.0,
            "latency_mean": np.nan,
            "latency_max": np.nan,
            "missed_deadline": 0,
            "curation_reserve": L.balance(self.curation, "token"),
            "jackpot": L.balance(self.jackpot, "token"),
            "entries": r.get("entries", 0),
            "exits": r.get("exits", 0),
            "active_provider": sum(1 for p in P if p.status == ACTIVE),
            "active_developer": sum(1 for d in D if d.status == ACTIVE),
            "active_free_rider": 0,
            "active_investor": sum(1 for v in self.investors if v.status == ACTIVE),
            "listed_models": 0,
            "ring_weight": r.get("ring_weight", 0.0),
            "ring_pump": 0.0,
        }
        self.model_rows.append(row)
        self._record_agents()

    def _record_agents(self) -> None:
        """One row per agent present this round (active, leaving, or leaving now), in the
        fast path's order (providers, developers, investors, each by row) and columns;
        ``wealth = (tokens + stake) * price + usd`` (no model tokens: nothing is listed)."""
        price = self.token_price
        rows = [
            a.row_of(self.ledger, price)
            for a in (*self.providers, *self.developers, *self.investors)
            if a.status != GONE or a.leave_round == self.t
        ]
        n = len(rows)
        chunk = {
            "id": np.array([r["id"] for r in rows], np.int64),
            "type": np.array([r["type"] for r in rows], np.int8),
            "strategy": np.full(n, STRATEGY["honest"], np.int8),
            "active": np.array([r["active"] for r in rows], bool),
        }
        for k in RECORD_FLOATS:
            chunk[k] = np.array([r[k] for r in rows], float)
        chunk["model_tokens"] = np.zeros(n)
        chunk["round"] = np.full(n, self.t, np.int32)
        self.agent_chunks.append(chunk)


def run_reference(scenario: Scenario) -> ReferenceResult:
    """Run ``scenario`` for ``run.rounds`` rounds with :class:`ReferenceModel`; its tables."""
    import pandas as pd

    from sim.runner import agent_table

    model = ReferenceModel(scenario)
    for _ in range(scenario.run.rounds):
        model.step()
    return ReferenceResult(
        pd.DataFrame(model.model_rows), agent_table(model), model.ledger.to_frame()
    )

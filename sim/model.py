"""``MarketModel``: one round of the marketplace per ``step()``, in named phases.

The phases (see docs/design.md) run in this order, each recorded with its time:

 1. observe   draw this round's features; every feed; reveal the target of t - lag
 2. price     the pricing rule sets each listed feed's price
 3. buy       developers choose feeds (bandit) within budget and pay; plaintext leaks
 4. train     every forecaster fits ridge on the window's shared sufficient statistics
 5. verify    the verification rule checks claimed computation
 6. submit    fees, stakes, predictions (free riders copy what is visible)
 7. aggregate the aggregation rule weights submissions into the metamodel
 8. trade     arbitrageurs pull pools to fair prices; the metamodel closes and opens
 9. resolve   round t - lag: scores, reward, slashing (cascading to providers), issuance
10. adapt     bandit and trailing scores; exits and entries; agents leave or join;
              held leaks decay and spread over the leak network
11. record    model and agent rows; ledger invariants

Populations are column stores (``agents.base.Columns``); every hot phase is array
code over the whole population. Money moves only through ``self.ledger``.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import mesa
import numpy as np

from agents import leaks
from agents.arbitrageur import Arbitrageur
from agents.base import ACTIVE, GONE, LEAVING, STRATEGIES, STRATEGY, Columns
from agents.exchange import Exchange, ExchangeAgent
from agents.forecaster import (
    DEVELOPER,
    FREE_RIDER,
    KIND_NAMES,
    Developer,
    FeedBandit,
    FreeRider,
    feed_columns,
    fit_ridge,
    fit_ridge_gd,
    predict,
)
from agents.investor import Investor
from agents.metamodel import Metamodel
from agents.provider import Provider
from agents.verifier import VerifierPool
from agents.whale import Whale, opening_trade
from mechanisms import amm
from mechanisms.base import (
    AttributionInput,
    AuctionInput,
    ComputeCost,
    FeedMarket,
    HostingInput,
    ResolvedRound,
    SlashInput,
    SubmissionSet,
    TrainingJob,
    VerificationInput,
)
from mechanisms.pricing import curve_reserve
from mechanisms.scoring import (
    correlation_contribution_rows,
    numerai_corr,
    numerai_corr_rows,
    rank_gaussianize_rows,
    twice_ranks,
)
from mechanisms.slashing import share_among_positive
from sim.config import Scenario
from sim.ledger import Ledger
from sim.syrk import dsyrk, nogil_dsyrk
from sim.task import make_task

PHASES = (
    "observe",
    "price",
    "buy",
    "train",
    "verify",
    "submit",
    "aggregate",
    "trade",
    "resolve",
    "adapt",
    "record",
)

AGENT_TYPES = ("provider", "developer", "free_rider", "investor")


class SimulationError(RuntimeError):
    """A run that cannot go on (for example a broken ledger invariant)."""


@dataclass
class Streams:
    """Independent random streams, all derived from the run's seed."""

    task: np.random.Generator
    population: np.random.Generator
    market: np.random.Generator
    mechanisms: np.random.Generator
    mesa: np.random.Generator
    privacy: np.random.Generator  # dp noise and the secure kernels' randomness

    @classmethod
    def from_seed(cls, seed: int) -> Streams:
        """Spawn one child ``SeedSequence`` per stream from ``seed``.

        (Child ``i`` depends only on ``seed`` and ``i``, so adding a stream at the end
        leaves the others unchanged.)
        """
        kids = np.random.SeedSequence(seed).spawn(6)
        return cls(*(np.random.default_rng(k) for k in kids))


class MarketModel(mesa.Model):
    """A blockchain marketplace for machine learning, one round per ``step()``.

    ``threads``: threads for the operations of a round big enough to gain from them
    in a large market. The training window's Gram update (:meth:`_advance_gram`,
    BLAS) runs in a background thread beside the round's other phases, the batched
    ridge fits (:meth:`_by_rows`) are split by model, and the task's next normals are
    drawn ahead in a background thread (:class:`sim.task.NormalStream`). Each sum is
    computed in the same order and each random number drawn in the same order
    either way, so outputs are identical for any count (checked by the tests); runs
    in parallel processes (sweeps, checks) keep 1.
    """

    #: fewest rows (models) worth splitting among threads (:meth:`_by_rows`)
    THREAD_ROWS = 2048
    #: fewest feed normals a round worth drawing ahead in a thread (phase_observe)
    AHEAD_NORMALS = 100_000

    def __init__(self, scenario: Scenario, threads: int = 1):
        streams = Streams.from_seed(scenario.run.seed)
        super().__init__(rng=streams.mesa)
        self.threads = max(int(threads), 1)
        # (Mesa 3.5 has a `scenario` attribute of its own; ours is `config`)
        self.config = sc = scenario
        self.streams = streams
        self.t = 0
        self.lag = sc.task.lag
        self.ring = self.lag + 1
        self.task = make_task(sc.task, streams.task)
        self.A = sc.task.assets
        self.k = self.task.feed_dim
        self.K = sc.population.developers.max_feeds
        self.rules = {fam: sc.mechanism(fam).build() for fam in sc.mechanisms}
        self.leaks = bool(getattr(self.rules["privacy"], "leaks", False))
        self.visible = bool(self.rules["submission"].visible_before_close())

        self.listings = sc.market.listings
        n_models = self.listings.max_models if self.listings.enabled else 0
        self.model_assets = [f"model_{i}" for i in range(n_models)]
        assets = ["token", "usd", *(f"asset_{a}" for a in range(self.A)), *self.model_assets]
        self.model_pools: list = []  # pool of listed model i (token i of model_assets)
        self.model_owner = np.zeros(0, dtype=np.int64)  # forecaster row of listed model i
        self.ledger = Ledger(assets)
        self.exchange = Exchange(self.ledger, fee=sc.market.exchange.fee)
        self.dex = ExchangeAgent(self, self.exchange)
        self.treasury = self.ledger.open_account("treasury")
        self.fees = self.ledger.open_account("fees")
        self.escrow = self.ledger.open_account("escrow")
        self.jackpot = self.ledger.open_account("jackpot")
        self.curation = self.ledger.open_account("curation")
        self.agent_of: dict[int, object] = {}

        self._init_columns()
        self.phase_seconds = dict.fromkeys(PHASES, 0.0)
        # the window Gram update (_advance_gram), wherever it ran, and how long the
        # train phase waited for it when it ran in the background
        self.gram_seconds = {"update": 0.0, "waited": 0.0}
        self.model_rows: list[dict] = []
        self.agent_chunks: list[dict[str, np.ndarray]] = []
        self._genesis()

    # ------------------------------------------------------------------ setup

    def _init_columns(self) -> None:
        sc = self.config
        n_p = sc.population.providers.count
        n_f = sc.population.developers.count + sc.population.free_riders.count
        self.providers = Columns(
            {
                "status": (np.int8, (), ACTIVE),
                "strategy": (np.int8, (), STRATEGY["honest"]),
                "agent_id": (np.int64, (), -1),
                "wallet": (np.int64, (), -1),
                "bond": (np.int64, (), -1),
                "group": (np.int64, (), 0),
                "noise": (np.float64, (), 0.0),
                "quality": (np.float64, (), 0.0),
                "source": (np.int64, (), -1),  # resold: the row whose feed it copies
                "list_price": (np.float64, (), 0.0),
                "curation": (np.float64, (), 0.0),
                "price": (np.float64, (), 0.0),
                "demand": (np.int64, (), 0),
                "revenue": (np.float64, (), 0.0),
                "spent": (np.float64, (), 0.0),
                "payoff": (np.float64, (), 0.0),
                "burned": (np.float64, (), 0.0),
                "capital": (np.float64, (), 0.0),
                "entered": (np.int64, (), 0),
                "losing": (np.int64, (), 0),
                "ret_ema": (np.float64, (), 0.0),
                "leave_round": (np.int64, (), -1),
                "final_wealth": (np.float64, (), np.nan),
            },
            capacity=n_p,
        )
        # bad data: its own generator (a child of the task stream's seed, spawned only
        # when some provider may be bad, so honest runs draw exactly what they did), and
        # the honest feeds of stale providers over the last `stale_lag` rounds
        bad = sc.population.providers.bad
        self.bad_rng = self.streams.task.spawn(1)[0] if bad.any else None
        self.stale_feeds: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.forecasters = Columns(
            {
                "kind": (np.int8, (), DEVELOPER),
                "status": (np.int8, (), ACTIVE),
                "strategy": (np.int8, (), STRATEGY["honest"]),
                "owner": (np.int64, (), -1),  # sybils: the row of the identity that owns them
                "agent_id": (np.int64, (), -1),
                "wallet": (np.int64, (), -1),
                "stake": (np.int64, (), -1),
                "stake_fraction": (np.float64, (), 0.0),
                "copy_probability": (np.float64, (), 0.0),
                "picks": (np.int64, (self.K,), -1),
                "weights": (np.float64, (self.K * self.k,), 0.0),
                "lazy": (bool, (), False),
                "listed": (np.int64, (), -1),
                "trailing_corr": (np.float64, (), 0.0),
                # MMC of the submission that resolved this round (NaN: none resolved)
                "contribution": (np.float64, (), np.nan),
                "score_var": (np.float64, (), 0.0),
                "resolved": (np.int64, (), 0),
                "payout": (np.float64, (), 0.0),
                "burned": (np.float64, (), 0.0),
                "spent": (np.float64, (), 0.0),
                "payoff": (np.float64, (), 0.0),
                "capital": (np.float64, (), 0.0),
                "entered": (np.int64, (), 0),
                "losing": (np.int64, (), 0),
                "ret_ema": (np.float64, (), 0.0),
                "leave_round": (np.int64, (), -1),
                "final_wealth": (np.float64, (), np.nan),
                # open rounds, indexed by round % (lag + 1)
                "r_pred": (np.float64, (self.ring, self.A), 0.0),
                "r_ranks2": (np.int32, (self.ring, self.A), 0),  # twice_ranks of r_pred
                "r_sub": (bool, (self.ring,), False),
                "r_stake": (np.float64, (self.ring,), 0.0),
                "r_weight": (np.float64, (self.ring,), 0.0),
                "r_time": (np.float64, (self.ring,), 0.0),
                "r_wts": (np.float64, (self.ring, self.K * self.k), 0.0),
                "r_picks": (np.int64, (self.ring, self.K), -1),
            },
            capacity=n_f,
        )
        self.investors = Columns(
            {
                "status": (np.int8, (), ACTIVE),
                "agent_id": (np.int64, (), -1),
                "wallet": (np.int64, (), -1),
                "capital": (np.float64, (), 0.0),
                "payout": (np.float64, (), 0.0),
                "strategy": (np.int8, (), STRATEGY["honest"]),  # or "whale"
                "w_paid": (np.float64, (), 0.0),  # whale: what its open position paid in
                "w_got": (np.float64, (), 0.0),  # whale: what it got, to swap back
                "trade_pnl": (np.float64, (), 0.0),  # whale: this round's realized P&L
            },
            capacity=max(sc.population.investors.count + sc.population.whales.count, 1),
        )
        self.bandit = FeedBandit(max(n_f, 1), max(n_p, 1))  # each buyer's value of each feed
        # leaked feeds each forecaster holds (kept across rounds; see _age_leaks) and the
        # leak network over forecaster rows (CSR adjacency; None: the complete graph)
        self.leaked = np.zeros((max(n_f, 1), max(n_p, 1)), dtype=bool)
        self.leak_adj = None
        self.shares = np.zeros((max(n_f, 1), max(n_p, 1)), dtype=bool)  # curation shares held
        self.meta_ring = np.zeros((self.ring, self.A))
        self.meta_sub = np.zeros(self.ring, dtype=bool)
        self.pnl_ring = np.zeros(self.ring)
        self.last_demand = np.zeros(max(n_p, 1), dtype=np.int64)
        self.available = np.zeros(max(n_p, 1), dtype=bool)
        # shared sufficient statistics of the training window (grown as providers enter)
        self.window: list[tuple[int, np.ndarray, np.ndarray]] = []
        self.pending: dict[int, np.ndarray] = {}
        self.targets: dict[int, np.ndarray] = {}
        self._gram = np.zeros((0, 0), order="F")  # window X'X by slot, upper triangle
        self.xty = np.zeros(0)
        self.slot_of = np.zeros(0, np.int64)  # each provider row's slot in G (-1: none)
        self.slot_owner = np.zeros(0, np.int64)  # each slot's provider row (-1: free)
        self.feed_cols = 0  # the most provider-row feature columns a round has had
        self.window_rows = 0
        # the rounds summed in the Gram, each with its feeds (rows, A, k): after a train
        # phase, the window of the next one (:meth:`_advance_gram`)
        self.gram_rounds: list[tuple[int, np.ndarray]] = []
        self._slot_feeds: tuple = (0, None, None)  # the round G took last, by slot
        self._gram_job = None  # the Gram update running beside the round, if any
        self._gram_pool: ThreadPoolExecutor | None = None
        self._task_pool: ThreadPoolExecutor | None = None  # draws the task's normals ahead

    def _genesis(self) -> None:
        """Round 0: mint every genesis allocation and create the pools and agents."""
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
        mm = L.open_account("metamodel")
        L.transfer(
            L.MINT, mm, "usd", sc.market.metamodel.capital, phase="genesis", reason="genesis"
        )
        self.metamodel = Metamodel(self, mm, self.lag, self.A)
        vp = L.open_account("verifiers")
        L.transfer(
            L.MINT,
            vp,
            "token",
            sc.population.verifiers.tokens,
            phase="genesis",
            reason="genesis",
        )
        self.verifier_pool = VerifierPool(self, vp)
        self.arbitrageurs = []
        for i in range(sc.population.arbitrageurs.count):
            acct = L.open_account(f"arbitrageur:{i}")
            usd = sc.population.arbitrageurs.usd
            L.transfer(L.MINT, acct, "usd", usd, phase="genesis", reason="genesis")
            inventory = np.full(self.A, usd / self.A / ex.asset_price)  # as much in assets
            L.transfer(
                L.MINT, acct, np.arange(2, 2 + self.A), inventory, phase="genesis", reason="genesis"
            )
            self.arbitrageurs.append(Arbitrageur(self, i, acct))
        pop = sc.population
        self._add_providers(pop.providers.count, genesis=True)
        self._add_forecasters(DEVELOPER, pop.developers.count, genesis=True)
        self._add_forecasters(FREE_RIDER, pop.free_riders.count, genesis=True)
        self._add_sybils()
        self._build_leak_network()
        self._add_investors(pop.investors.count)
        self._mark_ring()
        self._add_whales(pop.whales.count)
        L.check_invariants()
        self.supply_start = L.supply("token")
        self._record_agents()

    # -------------------------------------------------------------- entry

    @property
    def token_price(self) -> float:
        """Usd per token in the token/usd pool."""
        return self.exchange.price(self.token_pool)

    def _fund(
        self, accts: np.ndarray, tokens: np.ndarray, usd: np.ndarray, genesis: bool, phase: str
    ) -> np.ndarray:
        """Give new agents their capital; return it valued in usd.

        At genesis tokens are minted; later entrants bring usd from outside (minted) and
        buy their tokens on the exchange, so entry lifts the token's price.
        """
        L = self.ledger
        price = self.token_price
        if genesis:
            L.transfer(L.MINT, accts, "token", tokens, phase=phase, reason="genesis")
            L.transfer(L.MINT, accts, "usd", usd, phase=phase, reason="genesis")
            return tokens * price + usd
        spend = tokens * price
        L.transfer(L.MINT, accts, "usd", usd + spend, phase=phase, reason="entry")
        for a, s in zip(accts, spend, strict=True):
            if s > 0:
                self.exchange.swap(
                    int(a), self.token_pool, "usd", float(s), phase=phase, reason="entry_buy"
                )
        return usd + spend

    def _add_providers(self, n: int, genesis: bool = False) -> None:
        if n <= 0:
            return
        cfg, rng, P = self.config.population.providers, self.streams.population, self.providers
        idx = P.add(n)
        wallets, bonds = self._enroll(Provider, idx, P, "bond")
        P.group[idx] = rng.integers(0, self.task.n_groups, n)
        P.noise[idx] = cfg.noise.sample(rng, n)
        P.quality[idx] = self.task.quality(P.noise[idx])
        self._draw_bad_data(idx)
        P.list_price[idx] = cfg.price.sample(rng, n)
        P.price[idx] = P.list_price[idx]
        P.entered[idx] = self.t
        phase = "genesis" if genesis else "adapt"
        tokens = cfg.tokens.sample(rng, n) + cfg.bond
        P.capital[idx] = self._fund(wallets, tokens, cfg.usd.sample(rng, n), genesis, phase)
        self.ledger.transfer(
            wallets, bonds, "token", np.full(n, cfg.bond), phase=phase, reason="bond"
        )
        self._grow_matrices()

    #: Bad-data strategies of providers, in the order their shares are cumulated.
    BAD_DATA = ("noise", "flipped", "stale", "resold")

    def _draw_bad_data(self, idx: np.ndarray) -> None:
        """Bad-data strategies of new providers ``idx`` (``population.providers.bad``).

        One uniform draw ``u`` per provider from the population stream: with shares
        ``s = (noise, flipped, stale, resold)`` it takes the first strategy whose
        cumulative share exceeds ``u`` (honest when ``u >= sum(s)``). Nothing is drawn
        when every share is 0, so honest runs are unchanged. A reseller draws its source
        there too (:meth:`_pick_sources`).

        ``quality`` becomes the feed's true usefulness, the share of its variance a linear
        model can use: 0 for ``noise`` and ``stale`` (rounds are independent in this task,
        so features of ``stale_lag`` rounds ago say nothing about this round's target);
        ``(1 - 2 p)^2 * q`` for ``flipped`` with flip probability ``p`` (the feed's
        expected sign is ``1 - 2 p``, so its covariance with the target shrinks by that
        factor: 0, unlearnable, at the default ``p = 0.5``); the source's quality for
        ``resold``.
        """
        bad = self.config.population.providers.bad
        if not bad.any:
            return
        P, rng = self.providers, self.streams.population
        edges = np.cumsum([getattr(bad, k) for k in self.BAD_DATA])
        codes = np.array([*(STRATEGY[k] for k in self.BAD_DATA), STRATEGY["honest"]], np.int8)
        P.strategy[idx] = codes[np.searchsorted(edges, rng.random(idx.size), side="right")]
        s = P.strategy[idx]
        P.quality[idx[(s == STRATEGY["noise"]) | (s == STRATEGY["stale"])]] = 0.0
        P.quality[idx[s == STRATEGY["flipped"]]] *= (1.0 - 2.0 * bad.flip_probability) ** 2
        resellers = idx[s == STRATEGY["resold"]]
        if resellers.size:
            self._pick_sources(resellers, rng)

    def _pick_sources(self, rows: np.ndarray, rng: np.random.Generator) -> None:
        """Resellers ``rows`` copy the feed of a uniformly drawn active provider whose feed
        is genuine (any strategy but the bad-data ones); with none, ``source = -1`` and
        the reseller sells noise until one is found (quality 0)."""
        P = self.providers
        genuine = np.flatnonzero(
            (P.status == ACTIVE) & ~np.isin(P.strategy, [STRATEGY[k] for k in self.BAD_DATA])
        )
        if genuine.size == 0:
            P.source[rows] = -1
            P.quality[rows] = 0.0
            return
        src = genuine[rng.integers(0, genuine.size, rows.size)]
        P.source[rows] = src
        P.quality[rows] = P.quality[src]

    def _enroll(self, cls, idx: np.ndarray, cols: Columns, locked: str):
        """Create Mesa agents for rows ``idx`` and open their accounts, named by unique_id."""
        agents = [cls(self, int(i)) for i in idx]
        names = [f"{cls.kind}:{a.unique_id}" for a in agents]
        wallets = self.ledger.open_accounts(names)
        lockeds = self.ledger.open_accounts([f"{s}:{locked}" for s in names])
        for a, w, lk in zip(agents, wallets, lockeds, strict=True):
            a.wallet, a.locked = int(w), int(lk)
            self.agent_of[a.unique_id] = a
        cols.agent_id[idx] = [a.unique_id for a in agents]
        cols.wallet[idx] = wallets
        getattr(cols, locked)[idx] = lockeds
        return wallets, lockeds

    def _add_forecasters(self, kind: int, n: int, genesis: bool = False) -> None:
        if n <= 0:
            return
        pop = self.config.population
        cfg = pop.developers if kind == DEVELOPER else pop.free_riders
        rng, F = self.streams.population, self.forecasters
        idx = F.add(n)
        F.kind[idx] = kind
        cls = Developer if kind == DEVELOPER else FreeRider
        wallets, _ = self._enroll(cls, idx, F, "stake")
        F.stake_fraction[idx] = cfg.stake_fraction.sample(rng, n)
        if kind == FREE_RIDER:
            F.copy_probability[idx] = pop.free_riders.copy_probability
        elif pop.developers.lazy_fraction > 0:  # lazy solvers (no draw when there are none)
            lazy = rng.random(n) < pop.developers.lazy_fraction
            F.strategy[idx[lazy]] = STRATEGY["lazy"]
        F.entered[idx] = self.t
        phase = "genesis" if genesis else "adapt"
        F.capital[idx] = self._fund(
            wallets, cfg.tokens.sample(rng, n), cfg.usd.sample(rng, n), genesis, phase
        )
        self._grow_matrices()
        if not genesis:
            self._attach_to_leak_network()

    def _add_sybils(self) -> None:
        """Genesis: ``owners`` groups of ``identities`` developer rows (strategy ``sybil``).

        The first row of a group is its owner (``owner`` = its own row); the others point
        to it. Each group draws one developer's stake fraction, tokens and usd (in that
        order, one draw per group, from the population stream) and each identity gets
        1/k of the tokens and usd and the group's stake fraction, so the group's capital
        and target stake equal one developer's. Nothing is drawn when ``owners`` is 0.
        """
        cfg = self.config.population.sybils
        n_own, k = cfg.owners, cfg.identities
        if n_own <= 0:
            return
        dev, rng, F = self.config.population.developers, self.streams.population, self.forecasters
        n = n_own * k
        idx = F.add(n)
        F.kind[idx] = DEVELOPER
        F.strategy[idx] = STRATEGY["sybil"]
        F.owner[idx] = idx[::k].repeat(k)
        wallets, _ = self._enroll(Developer, idx, F, "stake")
        F.stake_fraction[idx] = dev.stake_fraction.sample(rng, n_own).repeat(k)
        tokens = dev.tokens.sample(rng, n_own).repeat(k) / k
        usd = dev.usd.sample(rng, n_own).repeat(k) / k
        F.entered[idx] = self.t
        F.capital[idx] = self._fund(wallets, tokens, usd, True, "genesis")
        self._grow_matrices()

    def _sybil_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """Rows of the sybil identities that are not owners, and their owners' rows."""
        F = self.forecasters
        rows = np.flatnonzero((F.owner >= 0) & (F.owner != np.arange(len(F))))
        return rows, F.owner[rows]

    def _add_investors(self, n: int) -> None:
        """Investors join at genesis with tokens and usd (they fund listed models)."""
        if n <= 0:
            return
        cfg, rng, V = self.config.population.investors, self.streams.population, self.investors
        idx, wallets = self._enroll_investors(Investor, n)
        V.capital[idx] = self._fund(
            wallets, cfg.tokens.sample(rng, n), cfg.usd.sample(rng, n), True, "genesis"
        )

    def _enroll_investors(self, cls, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``n`` investor-type Mesa agents of class ``cls``: rows and ``investor:ID`` wallets."""
        V = self.investors
        idx = V.add(n)
        agents = [cls(self, int(i)) for i in idx]
        wallets = self.ledger.open_accounts([f"investor:{a.unique_id}" for a in agents])
        for a, w in zip(agents, wallets, strict=True):
            a.wallet = int(w)
            self.agent_of[a.unique_id] = a
        V.agent_id[idx] = [a.unique_id for a in agents]
        V.wallet[idx] = wallets
        return idx, wallets

    def _add_whales(self, n: int) -> None:
        """Whales join at genesis as investor-type agents with strategy ``whale``.

        They hold ``population.whales.tokens`` and ``.usd`` each (no draw) and never
        invest in models; see :class:`agents.whale.Whale` for what they trade.
        """
        if n <= 0:
            return
        cfg, V = self.config.population.whales, self.investors
        idx, wallets = self._enroll_investors(Whale, n)
        V.strategy[idx] = STRATEGY["whale"]
        V.capital[idx] = self._fund(
            wallets, np.full(n, cfg.tokens), np.full(n, cfg.usd), True, "genesis"
        )

    def _mark_ring(self) -> None:
        """Draw the collusion ring among the honest genesis providers and developers.

        ``population.collusion.providers`` and ``.developers`` members, uniformly without
        replacement from the population stream (nothing is drawn for a count of 0, so a
        run without a ring is unchanged); they get strategy ``colluder``.
        """
        cfg, rng = self.config.population.collusion, self.streams.population
        P, F = self.providers, self.forecasters
        honest = STRATEGY["honest"]
        for cols, n, pool in (
            (P, cfg.providers, np.flatnonzero(P.strategy == honest)),
            (F, cfg.developers, np.flatnonzero((F.kind == DEVELOPER) & (F.strategy == honest))),
        ):
            if n > 0 and pool.size:
                members = rng.choice(pool, min(n, pool.size), replace=False)
                cols.strategy[members] = STRATEGY["colluder"]

    def _grow_matrices(self) -> None:
        nf, np_ = len(self.forecasters), len(self.providers)
        rows, cols = self.leaked.shape
        if nf > rows or np_ > cols:
            r, c = (
                max(rows, nf, 2 * rows if nf > rows else 0),
                max(cols, np_, 2 * cols if np_ > cols else 0),
            )
            self.bandit.grow(r, c)
            for name in ("leaked", "shares"):
                old = getattr(self, name)
                new = np.zeros((r, c), dtype=old.dtype)
                new[:rows, :cols] = old
                setattr(self, name, new)

    # --------------------------------------------------------------- round

    def step(self) -> None:
        """Run one round: every phase in order."""
        self.t += 1
        self.ledger.begin_round(self.t)
        self._round: dict = {}
        P, F = self.providers, self.forecasters
        for col in (
            P.revenue,
            P.burned,
            P.spent,
            F.spent,
            F.payout,
            F.burned,
            self.investors.payout,
        ):
            col[:] = 0.0
        P.demand[:] = 0
        F.picks[:] = -1
        F.contribution[:] = np.nan
        for name in PHASES:
            t0 = time.perf_counter()
            getattr(self, f"phase_{name}")()
            self.phase_seconds[name] += time.perf_counter() - t0

    # 1
    def phase_observe(self) -> None:
        """Draw the round's features, every provider's feed, and reveal round t - lag."""
        self._whales_close()  # whales first undo last round's trade around the payouts
        x, r = self.task.draw()
        P = self.providers
        # what buyers receive: the feeds, corrupted by bad-data providers, then noised by
        # the providers under `dp`
        feeds = self.rules["privacy"].perturb(
            self._bad_feeds(self.task.observe(x, P.group, P.noise)), self.streams.privacy
        )
        self.feeds = feeds
        self.pending[self.t] = feeds
        self.targets[self.t] = r
        if self.threads > 1 and feeds.size >= self.AHEAD_NORMALS:
            # the next round's normals, drawn on the other core meanwhile (same numbers)
            if self._task_pool is None:
                self._task_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="task")
            self.task.draw_ahead(len(P), self._task_pool)
        u = self.t - self.lag
        if u >= 1:
            self._add_to_window(u)
            # the revealed target moves each asset's external fair price
            self.fair_prices = self.fair_prices * np.exp(
                self.config.task.return_scale * self.targets[u]
            )

    def _bad_feeds(self, feeds: np.ndarray) -> np.ndarray:
        """What bad-data providers sell instead of their honest feeds ``(P, A, k)``.

        Applied to the honest feeds before the privacy rule's noise (the provider
        corrupts its data; privacy noise, if any, comes on top). For every provider not
        gone, by strategy (draws from ``self.bad_rng``, in this order):

        - ``stale``: ``z'_t = z_{t - L}``, its own honest feed of ``L = stale_lag`` rounds
          ago (a ring of the last ``L`` rounds' honest feeds of stale providers); standard
          normal noise until it has ``L`` rounds of history.
        - ``resold``: ``z'_t = z^{src}_t``, an exact copy of its source's feed this round.
          The source was drawn at entry; when it is no longer active (leaving or gone),
          the reseller draws a new active genuine source, and sells noise while there is
          none.
        - ``flipped``: ``z'_t = s_t z_t`` with ``s_t = -1`` with ``flip_probability``
          (independently per provider and round), else ``+1``: no consistent sign for a
          model to learn.
        - ``noise``: ``z'_t ~ N(0, I)``, the shape of a feed without any signal.

        These are the essay's concerns (data that is stale, or resold copies of someone
        else's) and feature poisoning in the sense of Steinhardt, Koh & Liang (2017),
        "Certified defenses for data poisoning attacks" (NeurIPS): the attacker controls
        part of the training data; here whole feeds, and the market's defence is economic
        (bandit buyers stop paying, slashing cascades to the bonds of the feeds used).
        """
        if self.bad_rng is None:
            return feeds
        P, rng, bad = self.providers, self.bad_rng, self.config.population.providers.bad
        s = np.where(P.status != GONE, P.strategy, -1)
        tail = feeds.shape[1:]
        stale = np.flatnonzero(s == STRATEGY["stale"])
        self.stale_feeds[self.t] = (stale, feeds[stale].copy())
        rows, old = self.stale_feeds.pop(self.t - bad.stale_lag, (stale[:0], feeds[:0]))
        if stale.size:
            at = np.minimum(np.searchsorted(rows, stale), max(rows.size - 1, 0))
            have = rows[at] == stale if rows.size else np.zeros(stale.size, bool)
            feeds[stale[have]] = old[at[have]]
            feeds[stale[~have]] = rng.standard_normal((int((~have).sum()), *tail))
        resold = np.flatnonzero(s == STRATEGY["resold"])
        if resold.size:
            src = P.source[resold]
            lost = resold[(src < 0) | (P.status[np.maximum(src, 0)] != ACTIVE)]
            if lost.size:
                self._pick_sources(lost, rng)
            src = P.source[resold]
            ok = src >= 0
            feeds[resold[ok]] = feeds[src[ok]]  # sources are genuine: still their own feed
            feeds[resold[~ok]] = rng.standard_normal((int((~ok).sum()), *tail))
        flipped = np.flatnonzero(s == STRATEGY["flipped"])
        if flipped.size:
            feeds[flipped[rng.random(flipped.size) < bad.flip_probability]] *= -1.0
        noise = np.flatnonzero(s == STRATEGY["noise"])
        if noise.size:
            feeds[noise] = rng.standard_normal((noise.size, *tail))
        return feeds

    def _add_to_window(self, u: int) -> None:
        """Round ``u`` resolved: its feeds and target enter the training window.

        The window's sufficient statistics are ``G = X'X`` and ``X'y`` over the feeds
        of the providers present. ``X'y`` is updated here: the new round added, the
        round leaving the window subtracted. ``G`` needs only the feeds, which were
        known before the target: it was brought to this window at the end of the
        previous round's train phase (:meth:`_advance_gram`), together with the slot
        layout both are indexed by.
        """
        feeds = self.pending.pop(u)
        self.resolved_feeds = feeds  # read by attribution when round u resolves
        y = self.targets[u]
        entered, zs, zs0 = self._slot_feeds
        if entered != u:  # _advance_gram prepares exactly this round
            raise SimulationError(f"round {self.t}: the Gram holds round {entered}, not {u}")
        self.feed_cols = max(self.feed_cols, feeds.shape[0] * self.k)
        self.xty += zs.T @ y
        self.window.append((u, feeds, y))
        self.window_rows += self.A
        if len(self.window) > self.config.population.developers.window:
            _, _, y0 = self.window.pop(0)
            self.xty -= zs0.T @ y0
            self.window_rows -= self.A
        self.targets.pop(u - self.ring - 1, None)

    def _advance_gram(self) -> None:
        """End of the train phase: bring ``G`` to the next round's window.

        Round ``u = t + 1 - lag`` enters the window in the next round's observe phase,
        when its target is revealed; its feeds are known already, and ``G`` needs only
        those. So as soon as this round's models are fitted (the last reader of ``G``
        in the round), ``G`` is updated in place: the new round added, the round leaving
        the window subtracted, each a symmetric rank-``A`` update (BLAS ``dsyrk``) of
        the upper triangle only, half the work and one pass over ``G``. Readers use the
        upper triangle (:func:`agents.forecaster.fit_ridge`).

        With ``threads > 1`` and a large ``G`` the update runs in a background thread
        (the BLAS call releases the GIL, :mod:`sim.syrk`), beside the next phases of
        this round and the next one's observe, price and buy phases, on the other
        core; the next train phase waits for it (:meth:`_gram_ready`). The sums and the
        slot layout are the same either way, so outputs do not depend on ``threads``.

        ``G`` is indexed by *slots*, not provider rows: a provider takes a slot when its
        first round enters ``G`` and gives it back once it has left the market (nobody
        can buy its feed again), the slot's rows and columns reset to zero
        (:meth:`_assign_slots`). The entries of present providers are the same sums, in
        the same order, as in a matrix with a column for every provider ever seen,
        without the departed ones' columns: with providers coming and going, ``G``
        stays the size of the market present, not of everyone who ever was in it.
        """
        u = self.t + 1 - self.lag
        if u < 1:
            return
        feeds = self.pending[u]
        self._assign_slots(feeds.shape[0])
        zs = self._by_slot(feeds)
        self.gram_rounds.append((u, feeds))
        zs0 = None
        if len(self.gram_rounds) > self.config.population.developers.window:
            _, feeds0 = self.gram_rounds.pop(0)
            zs0 = self._by_slot(feeds0)
        self._slot_feeds = (u, zs, zs0)  # X'y takes the same columns (_add_to_window)
        background = self.threads > 1 and nogil_dsyrk is not None and zs.shape[1] >= 512
        if not background:
            self._update_gram(zs, zs0, dsyrk)
            return
        if self._gram_pool is None:
            self._gram_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gram")
        self._gram_job = self._gram_pool.submit(self._update_gram, zs, zs0, nogil_dsyrk)

    def _update_gram(self, zs: np.ndarray, zs0: np.ndarray | None, syrk) -> None:
        """``G += zs'zs - zs0'zs0`` on the upper triangle, in place, in that order."""
        t0 = time.perf_counter()
        syrk(1.0, zs, self._gram)
        if zs0 is not None:
            syrk(-1.0, zs0, self._gram)
        self.gram_seconds["update"] += time.perf_counter() - t0

    @property
    def gram(self) -> np.ndarray:
        """The Gram matrix ``X'X`` by slot (upper triangle, Fortran order). Between steps
        it holds the window of the next train phase (:meth:`_advance_gram`); reading it
        waits for an update running in the background, so it is never seen half done."""
        self._gram_ready()
        return self._gram

    def _gram_ready(self) -> None:
        """Wait for the Gram update running in the background, if any (its errors raise
        here)."""
        job, self._gram_job = self._gram_job, None
        if job is not None:
            t0 = time.perf_counter()
            job.result()
            self.gram_seconds["waited"] += time.perf_counter() - t0

    def _assign_slots(self, n_rows: int) -> None:
        """Departed providers free their slots (reset to zero); providers among the first
        ``n_rows`` rows without a slot take the lowest free ones, in row order."""
        P, k = self.providers, self.k
        if self.slot_of.size < len(P):
            self.slot_of = np.concatenate(
                [self.slot_of, np.full(len(P) - self.slot_of.size, -1, np.int64)]
            )
        gone = np.flatnonzero((self.slot_of >= 0) & (P.status == GONE))
        if gone.size:
            slots = self.slot_of[gone]
            cols = (slots[:, None] * k + np.arange(k)).ravel()
            self._gram[cols, :] = 0.0
            self._gram[:, cols] = 0.0
            self.xty[cols] = 0.0
            self.slot_owner[slots] = -1
            self.slot_of[gone] = -1
            self._compact_slots()
        new = np.flatnonzero((self.slot_of[:n_rows] < 0) & (P.status[:n_rows] != GONE))
        if new.size == 0:
            return
        free = np.flatnonzero(self.slot_owner < 0)
        if free.size < new.size:  # grow, with room for providers yet to join
            n0 = self.slot_owner.size
            n1 = n0 + new.size - free.size
            n1 += max(n1 // 10, 8)
            g = np.zeros((n1 * k, n1 * k), order="F")
            g[: n0 * k, : n0 * k] = self._gram
            self._gram = g
            self.xty = np.concatenate([self.xty, np.zeros((n1 - n0) * k)])
            self.slot_owner = np.concatenate([self.slot_owner, np.full(n1 - n0, -1, np.int64)])
            free = np.flatnonzero(self.slot_owner < 0)
        take = free[: new.size]
        self.slot_of[new] = take
        self.slot_owner[take] = new

    def _compact_slots(self) -> None:
        """When fewer than three quarters of the slots are taken, move the taken ones to
        the front (in their order, so the upper triangle stays the upper triangle) and
        shrink ``G``: entries are moved, never recomputed, and ``G`` (whose update costs
        the square of its size) follows the market as it shrinks."""
        owner, k = self.slot_owner, self.k
        live = np.flatnonzero(owner >= 0)
        if owner.size <= 16 or live.size * 4 >= owner.size * 3:
            return
        n1 = live.size + max(live.size // 10, 8)
        cols = (live[:, None] * k + np.arange(k)).ravel()
        g = np.zeros((n1 * k, n1 * k), order="F")
        g[: cols.size, : cols.size] = self._gram[np.ix_(cols, cols)]
        xty = np.zeros(n1 * k)
        xty[: cols.size] = self.xty[cols]
        self._gram, self.xty = g, xty
        self.slot_owner = np.full(n1, -1, np.int64)
        self.slot_owner[: live.size] = owner[live]
        self.slot_of[owner[live]] = np.arange(live.size)

    def _by_slot(self, feeds: np.ndarray) -> np.ndarray:
        """A round's feeds ``(rows, A, k)`` as the window's matrix by slot ``(A,
        slots*k)`` (C order): slot ``s``'s ``k`` columns are its provider's feed, zero
        for a free slot or a provider that was not in the market that round.

        The slots' feeds are gathered first and transposed after, so only the
        providers holding a slot are moved, not every row that round had.
        """
        n_rows, A, k = feeds.shape
        owner = self.slot_owner
        ok = (owner >= 0) & (owner < n_rows)
        by_slot = feeds.take(np.where(ok, owner, 0), axis=0)  # (slots, A, k)
        if not ok.all():
            by_slot[~ok] = 0.0
        out = np.empty((A, owner.size, k))
        np.copyto(out, np.transpose(by_slot, (1, 0, 2)))
        return out.reshape(A, -1)

    def _gram_cols(self, cols: np.ndarray) -> np.ndarray:
        """Provider-row feature columns (-1 unused) -> columns of ``G`` (-1: no history:
        the provider's first round has not entered the window yet)."""
        k = self.k
        prov = np.where(cols >= 0, cols // k, 0)
        slot = np.full(prov.shape, -1, np.int64)
        known = prov < self.slot_of.size
        slot[known] = self.slot_of[prov[known]]
        return np.where((cols >= 0) & (slot >= 0), slot * k + cols % k, -1)

    def _by_rows(self, fn, rows: np.ndarray) -> np.ndarray:
        """``fn(rows)`` for an array whose rows are independent problems (one model
        each), split among ``threads`` threads when there are many rows (NumPy's
        gathers and LAPACK release the GIL). Each row's result is computed exactly as
        in one call, so the output is the same for any number of threads."""
        n = rows.shape[0]
        if self.threads == 1 or n < self.THREAD_ROWS:
            return fn(rows)
        parts = np.array_split(np.arange(n), self.threads)
        with ThreadPoolExecutor(max_workers=self.threads) as pool:
            return np.concatenate(list(pool.map(lambda ix: fn(rows[ix]), parts)))

    # 2
    def phase_price(self) -> None:
        """Providers pay to host their feeds; the pricing rule sets this round's prices."""
        P = self.providers
        self._host_feeds()
        prices = self.rules["pricing"].prices(
            FeedMarket(
                P.list_price.copy(),
                P.price.copy(),
                self._last_demand(),
                self.t,
                curation=P.curation.copy(),
                capacity=np.full(len(P), self.config.population.providers.slots),
            )
        )
        P.price[:] = np.asarray(prices, dtype=float)

    def _last_demand(self) -> np.ndarray:
        """Buyers of each feed last round (0 for feeds listed since)."""
        out = np.zeros(len(self.providers), dtype=np.int64)
        n = min(out.size, self.last_demand.size)
        out[:n] = self.last_demand[:n]
        return out

    def _host_feeds(self) -> None:
        """The hosting rule charges each listed feed; a feed nobody can fetch is not sold.

        A feed's size is its archive over the training window (assets x features x 8
        bytes per round), of which one round's rows are new each round (what on-chain
        storage charges for); a provider whose wallet cannot pay the fee cannot pin its
        feed, which is then not for sale this round.
        """
        P, L = self.providers, self.ledger
        live = np.flatnonzero(P.status == ACTIVE)
        self.available = np.zeros(len(P), bool)
        if live.size == 0:
            return
        size = self.A * self.k * 8.0 * self.config.population.developers.window
        out = self.rules["hosting"].host(
            HostingInput(
                np.full(live.size, size),
                np.ones(live.size, bool),
                np.full(live.size, self.A * self.k * 8.0),  # this round's new rows
            ),
            self.streams.mechanisms,
        )
        fees = np.asarray(out.fees, float)
        can = L.balances(P.wallet[live], "token") >= fees - 1e-12  # else it cannot pin
        fees = np.where(can, fees, 0.0)
        L.transfer(P.wallet[live], self.fees, "token", fees, phase="price", reason="hosting")
        P.spent[live] += fees
        self.available[live] = np.asarray(out.available, bool) & can

    # 3
    def phase_buy(self) -> None:
        """Developers pick feeds within their data budget and pay their providers."""
        F, P, L = self.forecasters, self.providers, self.ledger
        if not self.window:
            return
        cfg = self.config.population.developers
        buyers = np.flatnonzero((F.kind == DEVELOPER) & (F.status == ACTIVE))
        identities = self._sybil_rows()[0]
        if identities.size:  # the owner buys for its group
            buyers = np.setdiff1d(buyers, identities)
        available = (P.status == ACTIVE) & self.available
        if buyers.size and available.any():
            budgets = cfg.data_budget * L.balances(F.wallet[buyers], "token")
            budgets = self._sybil_budgets(buyers, budgets)
            picks = self._choose_feeds(buyers, available, budgets)
            auction = getattr(self.rules["pricing"], "auction", False)
            if auction:
                picks, paid = self._auction(buyers, picks, budgets)
            F.picks[buyers] = picks
            b_rows, b_slot = np.nonzero(picks >= 0)
            feeds = picks[b_rows, b_slot]
            cost = paid[b_rows, feeds] if auction else P.price[feeds]
            L.transfer(
                F.wallet[buyers[b_rows]],
                P.wallet[feeds],
                "token",
                cost,
                phase="buy",
                reason="data_purchase",
            )
            np.add.at(P.demand, feeds, 1)
            np.add.at(P.revenue, feeds, cost)
            np.add.at(F.spent, buyers[b_rows], cost)
            if self.leaks:
                self._leak(buyers[b_rows], feeds)
        self.last_demand = P.demand.copy()
        if hasattr(self.rules["pricing"], "spot"):
            self._curate(buyers)
        # free riders use the leaked feeds they hold (up to K of those for sale)
        # leaks are kept: they decay and spread in the adapt phase (_age_leaks); only
        # free riders' rows can hold any, and only in the columns of providers
        rider_rows, block = self._rider_rows()
        held = self.leaked[block, : len(P)]
        active = F.status[rider_rows] == ACTIVE
        riders = rider_rows[active]
        if riders.size:  # the first K held feeds for sale, in feed order
            usable = held[active]
            usable &= available[None, :]
            # the lowest usable column of every row, K times: argmax of a boolean row
            # stops at its first True, where listing every True column (nonzero) costs
            # the whole matrix, and riders hold more leaks as a run goes on
            picks = np.full((riders.size, self.K), -1, dtype=np.int64)
            at = np.arange(riders.size)
            for j in range(self.K):
                c = usable.argmax(axis=1)
                got = usable[at, c]
                if not got.any():
                    break
                picks[got, j] = c[got]
                usable[at[got], c[got]] = False
            F.picks[riders] = picks
        self._round["leaks_held"] = int(np.count_nonzero(held))

    def _choose_feeds(
        self, buyers: np.ndarray, available: np.ndarray, budgets: np.ndarray
    ) -> np.ndarray:
        """The buyers' bandit choice (:meth:`FeedBandit.choose`); a ring buys only from its own.

        Ring developers (strategy ``colluder``) choose among the ring providers' feeds
        only; everyone else among all available feeds. Without a ring this is one call.
        """
        F, P = self.forecasters, self.providers
        cfg, rng = self.config.population.developers, self.streams.market
        ring = F.strategy[buyers] == STRATEGY["colluder"]
        choose = self.bandit.choose
        if not ring.any():
            return choose(buyers, P.price, available, budgets, self.K, cfg.exploration, rng)
        picks = np.full((buyers.size, self.K), -1, dtype=np.int64)
        own = available & (P.strategy == STRATEGY["colluder"])
        for group, feeds in ((~ring, available), (ring, own)):
            if group.any():
                picks[group] = choose(
                    buyers[group], P.price, feeds, budgets[group], self.K, cfg.exploration, rng
                )
        return picks

    def _sybil_budgets(self, buyers: np.ndarray, budgets: np.ndarray) -> np.ndarray:
        """A sybil group pools its liquid tokens; its owner's data budget is the group's.

        One operator holds every identity's keys, so before buying, the active
        identities of each group even out their liquid tokens (an identity above the
        group's mean sends the excess to the owner, the owner tops up those below;
        reason ``sybil_pool``). The owner's budget is then ``data_budget`` of the
        group's liquid tokens, capped by its own wallet (which pays; the cap binds only
        when ``data_budget > 1/k``). Without pooling, the owner would pay for the whole
        group's data from 1/k of its capital, run dry, and stall the group.
        """
        F, L = self.forecasters, self.ledger
        own = np.flatnonzero(F.owner[buyers] == buyers)
        if own.size == 0:
            return budgets
        live = np.flatnonzero((F.owner >= 0) & (F.status == ACTIVE))
        group = np.zeros(len(F))
        np.add.at(group, F.owner[live], L.balances(F.wallet[live], "token"))
        size = np.bincount(F.owner[live], minlength=len(F))
        ids = live[F.owner[live] != live]
        gap = L.balances(F.wallet[ids], "token") - group[F.owner[ids]] / size[F.owner[ids]]
        owner_wallets = F.wallet[F.owner[ids]]
        L.transfer(
            F.wallet[ids],
            owner_wallets,
            "token",
            np.maximum(gap, 0.0),
            phase="buy",
            reason="sybil_pool",
        )
        L.transfer(
            owner_wallets,
            F.wallet[ids],
            "token",
            np.maximum(-gap, 0.0),
            phase="buy",
            reason="sybil_pool",
        )
        out = budgets.copy()
        rows = buyers[own]
        wallet = L.balances(F.wallet[rows], "token")
        out[own] = np.minimum(self.config.population.developers.data_budget * group[rows], wallet)
        return out

    def _curate(self, buyers: np.ndarray) -> None:
        """Curation on bonding curves: a developer holds one share of each feed it uses.

        A developer that starts using a feed buys one share on the feed's curve and one
        that stops sells its share back, so early curators of a feed that becomes popular
        sell for more than they paid (de la Rouviere 2017, curation markets). Per feed,
        this round's sells clear first, then its buys, each as one batch at the average
        price along the curve: ``cost = R(S + m) - R(S)`` with ``R`` the curve's reserve.
        The reserves are held by the ``curation`` account; a buyer that cannot pay for
        its new shares goes without them.
        """
        F, P = self.forecasters, self.providers
        n_p = len(P)
        using = np.zeros((buyers.size, n_p), bool)
        r, c = np.nonzero(F.picks[buyers] >= 0)
        using[r, F.picks[buyers][r, c]] = True
        held = self.shares[buyers][:, :n_p]
        self._trade_shares(buyers, held & ~using, sell=True)
        self._trade_shares(buyers, using & ~held, sell=False)

    def _trade_shares(self, rows: np.ndarray, mask: np.ndarray, sell: bool) -> None:
        """Sell (or buy) one curation share for every True of ``mask`` (rows x feeds).

        Buyers are priced as one batch per feed; a buyer that cannot pay for all its new
        shares buys none, and the batch is priced again without it (a smaller batch
        costs less per share on a rising curve, so the rest can still pay).
        """
        F, P, L = self.forecasters, self.providers, self.ledger
        if not mask.any():
            return
        r, f = np.nonzero(mask)
        who = rows[r]
        supply = P.curation.copy()
        while True:
            unit, counts = self._share_price(f, supply, sell)
            amount = unit[f]
            if sell:
                break
            cum = np.zeros(len(F))
            np.add.at(cum, who, amount)
            ok = L.balances(F.wallet[who], "token") >= cum[who] - 1e-12
            if ok.all():
                break
            who, f = who[ok], f[ok]
        if sell:
            L.transfer(
                self.curation, F.wallet[who], "token", amount, phase="buy", reason="curation_sell"
            )
            np.add.at(F.spent, who, -amount)
        else:
            L.transfer(
                F.wallet[who], self.curation, "token", amount, phase="buy", reason="curation_buy"
            )
            np.add.at(F.spent, who, amount)
        self.shares[who, f] = not sell
        P.curation[:] = supply - counts if sell else supply + counts

    def _share_price(
        self, feeds: np.ndarray, supply: np.ndarray, sell: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Average price per share of a batch moving each feed's supply along its curve.

        ``|R(S +- m) - R(S)| / m`` with ``R`` the curve's reserve and ``m`` the shares of
        that feed in the batch; returns the per-feed price and counts.
        """
        p = self.rules["pricing"].params
        counts = np.bincount(feeds, minlength=supply.size).astype(float)
        after = supply - counts if sell else supply + counts
        batch = np.abs(
            curve_reserve(p.slope, p.exponent, after) - curve_reserve(p.slope, p.exponent, supply)
        )
        return np.divide(batch, counts, out=np.zeros_like(batch), where=counts > 0), counts

    def _auction(
        self, buyers: np.ndarray, wanted: np.ndarray, budgets: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Sealed bids on the feeds each buyer wants; the pricing rule clears them.

        A buyer bids its willingness to pay for one round of a feed: the reserve (list)
        price plus ``bid_per_corr`` tokens per unit of the feed's estimated score.
        Returns the feeds won in the buyer's slots and the (n, P) payments.
        """
        P, cfg = self.providers, self.config.population.developers
        n = buyers.size
        bids = np.zeros((n, len(P)))
        rows, slots = np.nonzero(wanted >= 0)
        feeds = wanted[rows, slots]
        value = np.maximum(self.bandit.value(buyers[rows], feeds), 0.0)
        bids[rows, feeds] = P.list_price[feeds] + cfg.bid_per_corr * value
        out = self.rules["pricing"].clear(
            AuctionInput(
                bids,
                budgets,
                np.full(len(P), self.config.population.providers.slots),
                P.list_price.copy(),
            )
        )
        won = np.asarray(out.won, bool)
        picks = np.where(
            won[np.arange(n)[:, None], np.maximum(wanted, 0)] & (wanted >= 0), wanted, -1
        )
        return picks, np.asarray(out.payments, float)

    def _leak(self, buyers: np.ndarray, feeds: np.ndarray) -> None:
        """Each plaintext purchase leaks, with ``market.leak_probability``, to one random
        active free rider among its buyer's neighbours on the leak network (agents/leaks.py).
        """
        F = self.forecasters
        self._attach_to_leak_network()  # rows added by any other path
        riders = (F.kind == FREE_RIDER) & (F.status == ACTIVE)
        to, which = leaks.leak(
            self.leak_adj, buyers, riders, self.config.market.leak_probability, self.streams.market
        )
        if to.size:
            self.leaked[to, feeds[which]] = True
            self._round["leaks"] = int(to.size)

    def _build_leak_network(self) -> None:
        """Genesis: the leak network among the forecasters (``market.leak_network``).

        The complete graph is not built (``None``) and draws nothing; a random graph is
        seeded from the population stream.
        """
        m = self.config.market
        seed = 0 if m.leak_network == "complete" else int(self.streams.population.integers(2**32))
        self.leak_adj = leaks.network(
            m.leak_network, len(self.forecasters), m.leak_degree, m.leak_rewire, seed
        )

    def _attach_to_leak_network(self) -> None:
        """Forecaster rows added since the network was last grown (entrants) link to
        ``leak_degree`` active forecasters (chosen by degree under barabasi_albert)."""
        m, F = self.config.market, self.forecasters
        if self.leak_adj is None or self.leak_adj.shape[0] >= len(F):
            return
        old = self.leak_adj.shape[0]
        n = len(F) - old
        self.leak_adj = leaks.attach(
            self.leak_adj,
            n,
            m.leak_degree,
            F.status[:old] == ACTIVE,
            m.leak_network == "barabasi_albert",
            self.streams.population,
        )

    def _age_leaks(self) -> None:
        """Adapt: held leaks of riders and feeds no longer active are dropped; the rest
        decay by ``leak_half_life`` and then spread to neighbouring free riders with
        ``leak_spread`` (agents/leaks.py). With the defaults (half-life 0) every leak is
        dropped after the round it happened, and nothing spreads.
        """
        F, P, m = self.forecasters, self.providers, self.config.market
        np_ = len(P)
        # only free riders receive leaks (_leak), so only their rows can hold any: the
        # work is done on those rows (the same draws, in the same order, as on all rows)
        rows, block = self._rider_rows()
        held = self.leaked[block, :np_]  # (a view when the rows are contiguous)
        if not held.any():
            return
        riders = F.status[rows] == ACTIVE
        held[~riders] = False  # (rows of riders gone: a fill, not a broadcast and)
        held &= (P.status == ACTIVE)[None, :]
        self._attach_to_leak_network()  # rows added by any other path
        adj = None if self.leak_adj is None else self.leak_adj[rows][:, rows]
        rng = self.streams.market
        held = leaks.decay(held, m.leak_half_life, rng)
        held = leaks.spread(adj, held, riders, m.leak_spread, rng)
        self.leaked[block, :np_] = held

    def _rider_rows(self) -> tuple[np.ndarray, slice | np.ndarray]:
        """The free riders' rows, and the same rows as an index into ``leaked``: a slice
        when they are contiguous (genesis creates them together; later entrants may
        not be), so that reading and writing their block copies nothing."""
        rows = np.flatnonzero(self.forecasters.kind == FREE_RIDER)
        if rows.size and rows[-1] - rows[0] + 1 == rows.size:
            return rows, slice(int(rows[0]), int(rows[-1]) + 1)
        return rows, rows

    # 4
    def phase_train(self) -> None:
        """Fit the forecasters' models (:meth:`_fit_models`); sybils take their owners'.

        Then ``G`` moves on to the next round's window (:meth:`_advance_gram`).
        """
        self._gram_ready()
        self._fit_models()
        self._sybils_follow()
        self._advance_gram()

    def _sybils_follow(self) -> None:
        """Sybil identities take their owner's model; they train nothing themselves.

        An active identity whose owner trained this round copies the owner's picks and
        weights and joins the round's trained forecasters (so it is verified, pays its
        fees, stakes from its own wallet and submits). Under ``sybils.split: models``
        each identity adds independent normal noise to each of the owner's weights on
        feeds with history, ``noise`` times their root mean square, drawn afresh every
        round from the market stream. Secure training is paid once, by the owner; in
        faithful mode an identity's prediction is the owner's secure prediction plus the
        prediction of its noise (predictions are linear in the weights).
        """
        rows, owners = self._sybil_rows()
        if rows.size == 0 or self._trained.size == 0:
            return
        F = self.forecasters
        ok = (F.status[rows] == ACTIVE) & np.isin(owners, self._trained)
        rows, owners = rows[ok], owners[ok]
        if rows.size == 0:
            return
        F.picks[rows] = F.picks[owners]
        F.weights[rows] = F.weights[owners]
        cfg = self.config.population.sybils
        dw = None
        if cfg.split == "models" and cfg.noise > 0:
            used = self._gram_cols(feed_columns(F.picks[owners], self.k)) >= 0
            w = F.weights[owners] * used
            rms = np.sqrt((w**2).sum(axis=1) / np.maximum(used.sum(axis=1), 1))
            z = self.streams.market.standard_normal(w.shape)
            dw = cfg.noise * rms[:, None] * z * used
            F.weights[rows] += dw
        trained = np.concatenate([self._trained, rows])
        order = np.argsort(trained, kind="stable")
        if self._secure_preds is not None:
            at = np.full(len(F), -1)
            at[self._trained] = np.arange(self._trained.size)
            extra = self._secure_preds[at[owners]]
            if dw is not None:
                extra = extra + predict(self.feeds, F.picks[rows], dw)
            self._secure_preds = np.concatenate([self._secure_preds, extra])[order]
        self._trained = trained[order]

    def _fit_models(self) -> None:
        """Fit every forecaster's model; secure training is paid for and must meet the deadline.

        Plaintext (and ``dp``): ridge in closed form from the window's shared statistics.
        Secure rules (``mpc``, ``he``): the protocol's model, ``epochs`` epochs of gradient
        descent, computed in closed form (``modeled``) or by running the kernels for each
        developer (``faithful``); each developer pays the rule's compute fee to ``fees``
        (or cannot train), and a model whose latency exceeds ``market.round_deadline``
        misses the round. The protocol verifies the computation, so nobody is lazy.
        """
        F = self.forecasters
        has = (F.picks >= 0).any(axis=1) & (F.status == ACTIVE)
        rows = np.flatnonzero(has)
        self._trained = rows
        self._secure_preds = None
        F.lazy[:] = False
        if rows.size == 0:
            return
        cfg = self.config.population.developers
        cols = feed_columns(F.picks[rows], self.k)
        g_cols = self._gram_cols(cols)
        cols = np.where(g_cols >= 0, cols, -1)  # feeds with no history yet
        rule = self.rules["privacy"]
        if getattr(rule, "secure", False):
            self._train_secure(rule, rows, cols, g_cols)
            return
        F.weights[rows] = self._by_rows(
            lambda c: fit_ridge(self._gram, self.xty, c, cfg.ridge, self.window_rows), g_cols
        )
        # lazy solvers skip the work (some rounds) and will submit noise or a copy,
        # claiming they trained
        devs = rows[(F.kind[rows] == DEVELOPER) & (F.strategy[rows] == STRATEGY["lazy"])]
        if devs.size and cfg.lazy_probability > 0:
            F.lazy[devs] = self.streams.market.random(devs.size) < cfg.lazy_probability
            if cfg.lazy_adapts:  # skip only when it pays against last round's checking
                F.lazy[devs] &= self._skipping_pays(devs, cols[np.isin(rows, devs)])

    def _skipping_pays(self, devs: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """A lazy solver's bet: skip when the training cost saved beats the expected loss.

        ``saved = train_per_feature * features`` against ``q * (deposit + dispute fee)``,
        with ``q`` the checking rate the verification rule showed last round (its
        initial ``check_probability`` before any round): the best response of the
        verifier's dilemma (Luu et al. 2015, "Demystifying incentives in the consensus
        computer", CCS; Teutsch & Reitwiessner 2017, Sec. 4). Under verification rules
        that take no deposits the expected loss is 0 and skipping always pays.
        """
        cfg = self.config
        rule = self.rules["verification"]
        if self.model_rows:
            q = float(self.model_rows[-1]["check_rate"])
        else:
            q = float(getattr(getattr(rule, "params", None), "check_probability", 0.0))
        at_risk = 0.0
        if getattr(rule, "takes_deposits", False):
            fee = float(getattr(rule.params, "dispute_fee_per_round", 0.0))
            at_risk = cfg.population.developers.deposit + fee
        saved = cfg.market.costs.train_per_feature * (cols >= 0).sum(axis=1)
        return saved > q * at_risk

    def _train_secure(self, rule, rows: np.ndarray, cols: np.ndarray, g_cols: np.ndarray) -> None:
        F, L = self.forecasters, self.ledger
        ridge = self.config.population.developers.ridge
        p = rule.params
        n_feeds = ((cols >= 0).reshape(rows.size, self.K, self.k).any(axis=2)).sum(axis=1)
        if p.mode == "faithful":
            cost, weights, preds = self._run_kernels(rule, rows, cols, ridge)
            F.weights[rows] = weights
        else:
            F.weights[rows] = fit_ridge_gd(
                self._gram, self.xty, g_cols, ridge, self.window_rows, p.epochs, p.lr
            )
            cost = rule.training_cost(TrainingJob(self.window_rows, n_feeds, self.k, self.A, ridge))
            preds = None
        fee = np.asarray(cost.fee, float)
        latency = np.asarray(cost.seconds, float)
        paid = L.balances(F.wallet[rows], "token") >= fee - 1e-12
        L.transfer(
            F.wallet[rows[paid]], self.fees, "token", fee[paid], phase="train", reason="compute"
        )
        np.add.at(F.spent, rows[paid], fee[paid])
        on_time = latency <= self.config.market.round_deadline
        ok = paid & on_time & (n_feeds > 0)
        self._round.update(
            compute_fees=float(fee[paid].sum()),
            compute_seconds=float(np.asarray(cost.compute_seconds, float)[paid].sum()),
            compute_bytes=float(np.asarray(cost.bytes_sent, float)[paid].sum()),
            latency_mean=float(latency[paid].mean()) if paid.any() else np.nan,
            latency_max=float(latency[paid].max()) if paid.any() else np.nan,
            missed_deadline=int((paid & ~on_time).sum()),
            unpaid_compute=int((~paid).sum()),
        )
        F.picks[rows[~ok]] = -1
        self._trained = rows[ok]
        if preds is not None:
            self._secure_preds = preds[ok]

    def _run_kernels(self, rule, rows: np.ndarray, cols: np.ndarray, ridge: float):
        """Faithful mode: each developer's secure training and scoring, one kernel run each.

        Returns the priced counts (per developer), the weights and the securely computed
        predictions of this round (the feeds each developer bought, in its slots' order).
        """
        width = self.feed_cols
        Z = np.zeros((self.window_rows, width))
        at = 0
        for _, feeds, _ in self.window:  # older rounds may lack late providers' columns
            z = np.transpose(feeds, (1, 0, 2)).reshape(self.A, -1)
            Z[at : at + z.shape[0], : z.shape[1]] = z
            at += z.shape[0]
        y = np.concatenate([w[2] for w in self.window])
        live = np.transpose(self.feeds, (1, 0, 2)).reshape(self.A, -1)
        rng = self.streams.privacy
        weights = np.zeros((rows.size, self.K * self.k))
        preds = np.zeros((rows.size, self.A))
        fields = ("seconds", "bytes_sent", "fee", "compute_seconds")
        out = {f: np.zeros(rows.size) for f in fields}
        for i in range(rows.size):
            c = cols[i]
            slots = [c[s * self.k : (s + 1) * self.k] for s in range(self.K)]
            slots = [(s, v) for s, v in enumerate(slots) if (v >= 0).all()]
            if not slots:
                continue
            w, train = rule.train([Z[:, v] for _, v in slots], y, ridge, rng)
            yhat, score = rule.predict([live[:, v] for _, v in slots], w, rng)
            for j, (s, _) in enumerate(slots):
                weights[i, s * self.k : (s + 1) * self.k] = w[j * self.k : (j + 1) * self.k]
            preds[i] = yhat
            c = rule.price(train, score)
            for f in fields:
                out[f][i] = getattr(c, f)
        return ComputeCost(**out), weights, preds

    # 5
    def phase_verify(self) -> None:
        """The verification rule checks the training claims; caught claims are void.

        Money (Truebit-style rules): each solver puts ``deposit`` in escrow and pays the
        rule's tax into the ``jackpot``; the jackpot pays ``jackpot_paid`` to the
        verifier pool; a caught solver's deposit goes to the verifiers and it pays the
        dispute fees; the verifiers pay for their checks; uncaught deposits come back.
        Every amount is capped by what its payer holds.
        """
        rows = self._trained
        F, L = self.forecasters, self.ledger
        rule = self.rules["verification"]
        n = rows.size
        deposit = (
            np.minimum(
                self.config.population.developers.deposit, L.balances(F.wallet[rows], "token")
            )
            if getattr(rule, "takes_deposits", False)
            else np.zeros(n)
        )
        L.transfer(F.wallet[rows], self.escrow, "token", deposit, phase="verify", reason="deposit")
        out = rule.verify(
            VerificationInput(
                did_work=~F.lazy[rows],
                deposits=deposit,
                steps=np.full(n, self.window_rows * self.K * self.k),
                jackpot=L.balance(self.jackpot, "token"),
            ),
            self.streams.mechanisms,
        )
        caught = np.asarray(out.caught, bool)
        if out.tax is not None:
            tax = np.minimum(np.asarray(out.tax, float), L.balances(F.wallet[rows], "token"))
            L.transfer(F.wallet[rows], self.jackpot, "token", tax, phase="verify", reason="tax")
            np.add.at(F.spent, rows, tax)
        vp = self.verifier_pool.wallet
        paid = min(float(out.jackpot_paid), L.balance(self.jackpot, "token"))
        L.transfer(self.jackpot, vp, "token", paid, phase="verify", reason="jackpot")
        L.transfer(self.escrow, vp, "token", deposit[caught], phase="verify", reason="forfeit")
        L.transfer(
            self.escrow,
            F.wallet[rows[~caught]],
            "token",
            deposit[~caught],
            phase="verify",
            reason="refund",
        )
        if out.fees is not None and caught.any():
            fee = np.minimum(
                np.asarray(out.fees, float)[caught], L.balances(F.wallet[rows[caught]], "token")
            )
            L.transfer(
                F.wallet[rows[caught]],
                self.fees,
                "token",
                fee,
                phase="verify",
                reason="dispute_fee",
            )
            np.add.at(F.spent, rows[caught], fee)
        np.add.at(F.burned, rows[caught], deposit[caught])
        cost = min(float(out.verifier_cost), L.balance(vp, "token"))
        L.transfer(vp, self.fees, "token", cost, phase="verify", reason="checking")
        self._round.update(
            check_rate=float(out.check_rate),
            caught=int(caught.sum()),
            lazy=int(F.lazy[rows].sum()),
            forced=int(np.asarray(out.forced).sum()) if out.forced is not None else 0,
        )
        if caught.any():
            F.picks[rows[caught]] = -1
            self._trained = rows[~caught]
            if self._secure_preds is not None:
                self._secure_preds = self._secure_preds[~caught]

    # 6
    def phase_submit(self) -> None:
        """Forecasters pay fees, stake, and submit; free riders may copy what is visible."""
        F, L, sc = self.forecasters, self.ledger, self.config
        slot = self.t % self.ring
        F.r_sub[:, slot] = False
        F.r_stake[:, slot] = 0.0
        F.r_picks[:, slot] = -1
        rows = self._trained
        if self._secure_preds is not None:  # faithful secure scoring, computed in train
            preds = self._secure_preds
        else:
            preds = predict(self.feeds, F.picks[rows], F.weights[rows]) if rows.size else None
        lazy = F.lazy[rows]
        if lazy.any():  # what a lazy solver submits in place of a model's output
            preds[lazy] = self._lazy_predictions(rows, lazy, preds)
        # when in the round each forecaster submits (orders ties, e.g. for bounties)
        rng = self.streams.market
        times = rng.random(rows.size)
        # copiers: free riders who copy a visible prediction instead
        # (population.free_riders.copy_source: the best one, or the metamodel)
        copiers = np.zeros(0, dtype=np.int64)
        copy_times = np.zeros(0)
        riders = np.flatnonzero((F.kind == FREE_RIDER) & (F.status == ACTIVE))
        if self.visible and riders.size and rows.size:
            devs = rows[F.kind[rows] == DEVELOPER]
            if devs.size:
                draw = self.streams.market.random(riders.size) < F.copy_probability[riders]
                copiers = riders[draw]
                if sc.population.free_riders.copy_source == "metamodel":
                    # a copy of the metamodel: filled in below, once developers have
                    # staked; made after the last developer's prediction was published
                    source = np.zeros(self.A)
                    published = times[F.kind[rows] == DEVELOPER].max()
                else:
                    best = int(np.argmax(F.trailing_corr[devs]))
                    at = np.flatnonzero(rows == devs[best])[0]
                    source = preds[at]
                    published = times[at]
                # a copy can only be made after what it copies was published
                copy_times = published + (1.0 - published) * rng.random(copiers.size)
        # submitters: trained forecasters not copying, plus the copiers
        if copiers.size:
            keep = ~np.isin(rows, copiers)
            subs = np.concatenate([rows[keep], copiers])
            sub_times = np.concatenate([times[keep], copy_times])
            sub_preds = np.concatenate(
                [
                    preds[keep] if preds is not None else np.zeros((0, self.A)),
                    np.repeat(source[None], copiers.size, axis=0),
                ]
            )
        else:  # (no copies of the whole (n, A) predictions when nobody copies)
            subs, sub_times = rows, times
            sub_preds = preds if preds is not None else np.zeros((0, self.A))
        if subs.size == 0:
            return
        # fees: per-feature training cost and the submission fee (secure compute was
        # paid in the train phase)
        n_feat = (F.picks[subs] >= 0).sum(axis=1) * self.k * ~F.lazy[subs]
        fee = sc.market.costs.submission_fee + sc.market.costs.train_per_feature * n_feat
        wallet = L.balances(F.wallet[subs], "token")
        can = wallet >= fee - 1e-12
        if not can.all():
            subs, sub_preds, fee, sub_times = subs[can], sub_preds[can], fee[can], sub_times[can]
        L.transfer(F.wallet[subs], self.fees, "token", fee, phase="submit", reason="fees")
        np.add.at(F.spent, subs, fee)
        hosted = self._host_models(subs)
        if not hosted.all():
            subs, sub_preds, sub_times = subs[hosted], sub_preds[hosted], sub_times[hosted]
        self._stake(subs)
        stake = L.balances(F.stake[subs], "token")
        if copiers.size and sc.population.free_riders.copy_source == "metamodel":
            # the metamodel as stake_weighted aggregation forms it from the developers
            # who submitted: w_i = s_i / sum_j s_j over their stakes (equal weights when
            # nothing is staked) applied to their rank-gaussianized predictions. The
            # copies weighted in with them do not change its ranks, so MMC sees a copy.
            # With no developer submitting, a copy is a constant (it scores 0).
            dev = F.kind[subs] == DEVELOPER
            if dev.any():
                s = np.maximum(stake[dev], 0.0)
                w = s / s.sum() if s.sum() > 0 else np.full(s.size, 1.0 / s.size)
                sub_preds[np.isin(subs, copiers)] = w @ rank_gaussianize_rows(sub_preds[dev])
        F.r_pred[subs, slot] = sub_preds
        F.r_sub[subs, slot] = True
        F.r_stake[subs, slot] = stake
        F.r_picks[subs, slot] = F.picks[subs]
        F.r_time[subs, slot] = sub_times
        F.r_wts[subs, slot] = F.weights[subs]  # the model behind each submission

    def _lazy_predictions(self, rows: np.ndarray, lazy: np.ndarray, preds: np.ndarray):
        """What lazy solvers submit (``population.developers.lazy_submits``).

        ``noise``: standard normal predictions. ``copy``: when submissions are visible
        before the close, the prediction of the working developer with the best trailing
        score this round; otherwise the solver's own previous submission (noise if it
        has none).
        """
        F = self.forecasters
        n = int(lazy.sum())
        noise = self.streams.market.standard_normal((n, self.A))
        if self.config.population.developers.lazy_submits == "noise":
            return noise
        workers = np.flatnonzero(~lazy & (F.kind[rows] == DEVELOPER))
        if self.visible and workers.size:
            best = workers[np.argmax(F.trailing_corr[rows[workers]])]
            return np.repeat(preds[best][None], n, axis=0)
        prev = (self.t - 1) % self.ring
        lz = rows[lazy]
        had = F.r_sub[lz, prev]
        return np.where(had[:, None], F.r_pred[lz, prev], noise)

    def _host_models(self, subs: np.ndarray) -> np.ndarray:
        """Developers pay the hosting rule for their models (weights and predictions).

        Returns which submissions can be fetched: a model whose developer cannot pay to
        pin it, or that the hosting network cannot serve this round, is not submitted.
        """
        F, L = self.forecasters, self.ledger
        size = (self.K * self.k + self.A) * 8.0
        out = self.rules["hosting"].host(
            HostingInput(
                np.full(subs.size, size), np.ones(subs.size, bool), np.full(subs.size, size)
            ),
            self.streams.mechanisms,
        )
        fees = np.asarray(out.fees, float)
        can = L.balances(F.wallet[subs], "token") >= fees - 1e-12
        fees = np.where(can, fees, 0.0)
        L.transfer(F.wallet[subs], self.fees, "token", fees, phase="submit", reason="hosting")
        np.add.at(F.spent, subs, fees)
        return can & np.asarray(out.available, bool)

    def _stake(self, rows: np.ndarray) -> None:
        """Move each submitter's stake toward ``stake_fraction`` of its token wealth.

        Withdrawals are limited to the stake not at risk in open rounds.
        """
        F, L = self.forecasters, self.ledger
        wallet = L.balances(F.wallet[rows], "token")
        stake = L.balances(F.stake[rows], "token")
        target = F.stake_fraction[rows] * (wallet + stake)
        add = np.clip(target - stake, 0.0, wallet)
        locked = F.r_stake[rows].max(axis=1)
        take = np.clip(stake - target, 0.0, np.maximum(stake - locked, 0.0))
        L.transfer(F.wallet[rows], F.stake[rows], "token", add, phase="submit", reason="stake")
        L.transfer(F.stake[rows], F.wallet[rows], "token", take, phase="submit", reason="unstake")

    # 7
    def phase_aggregate(self) -> None:
        """The aggregation rule weights this round's submissions into the metamodel."""
        self._pump_ring()
        F = self.forecasters
        slot = self.t % self.ring
        subs = np.flatnonzero(F.r_sub[:, slot])
        subs = self._reveal(subs, slot)
        F.r_weight[:, slot] = 0.0
        self.meta_sub[slot] = subs.size > 0
        self.meta_ring[slot] = 0.0
        if subs.size == 0:
            return
        w = self.rules["aggregation"].weights(
            SubmissionSet(
                F.r_stake[subs, slot].copy(),
                F.trailing_corr[subs].copy(),
                self._model_prices(subs) if self.model_pools else None,
                self._score_var(subs),
            )
        )
        F.r_weight[subs, slot] = w
        self._round["ring_weight"] = float(np.sum(w[F.strategy[subs] == STRATEGY["colluder"]]))
        preds = F.r_pred[subs, slot]
        ranks2 = twice_ranks(preds)  # ranked once: scored again when the round resolves
        F.r_ranks2[subs, slot] = ranks2
        self.meta_ring[slot] = w @ rank_gaussianize_rows(preds, ranks2)

    def _score_var(self, subs: np.ndarray) -> np.ndarray:
        """Each submitter's score variance; the mean of the known ones where too new."""
        F = self.forecasters
        known = F.resolved[subs] > 1
        var = F.score_var[subs].copy()
        var[~known] = var[known].mean() if known.any() else 1.0
        return var

    def _reveal(self, subs: np.ndarray, slot: int) -> np.ndarray:
        """Commit-reveal: a submission not validly revealed is void and forfeits stake."""
        rule = self.rules["submission"]
        if subs.size == 0 or not hasattr(rule, "reveal_outcome"):
            return subs
        F, L = self.forecasters, self.ledger
        ok = np.asarray(rule.reveal_outcome(subs.size, self.streams.mechanisms), bool)
        missed = subs[~ok]
        if missed.size:
            at_risk = np.minimum(F.r_stake[missed, slot], L.balances(F.stake[missed], "token"))
            forfeit = rule.params.forfeit * at_risk
            L.transfer(
                F.stake[missed],
                L.BURN,
                "token",
                forfeit,
                phase="aggregate",
                reason="reveal_forfeit",
            )
            F.burned[missed] += forfeit
            F.r_sub[missed, slot] = False
            F.r_stake[missed, slot] = 0.0
            self._round["missed_reveals"] = int(missed.size)
        return subs[ok]

    # 8
    def phase_trade(self) -> None:
        """Arbitrage to fair prices, then the metamodel closes round t-lag and opens round t."""
        if self.arbitrageurs:
            self.arbitrageurs[self.t % len(self.arbitrageurs)].step()
        slot = self.t % self.ring
        old = (self.t - self.lag) % self.ring
        self.pnl_ring[old] = self.metamodel.close(old) if self.t > self.lag else 0.0
        self._invest()
        if self.meta_sub[slot]:
            self.metamodel.open(
                slot, self.meta_ring[slot], self.config.market.metamodel.position_fraction
            )
        self._whales_open()

    # 9
    def phase_resolve(self) -> None:
        """Resolve round t - lag: score, reward, slash, cascade, issue, buy back."""
        sc, L, F = self.config, self.ledger, self.forecasters
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
        slot = u % self.ring
        pnl = float(self.pnl_ring[slot])
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
        subs = np.flatnonzero(F.r_sub[:, slot])
        F.r_sub[:, slot] = False
        if subs.size == 0 or not self.meta_sub[slot]:
            return
        target = self.targets[u]
        preds = F.r_pred[subs, slot]
        meta = self.meta_ring[slot]
        self._round["meta_corr"] = numerai_corr(meta, target)
        ranks2 = F.r_ranks2[subs, slot]  # ranked in the aggregate phase
        corr = numerai_corr_rows(preds, target, ranks2)
        mmc = correlation_contribution_rows(preds, meta, target, ranks2)
        F.contribution[subs] = mmc
        stake_now = L.balances(F.stake[subs], "token")
        # stake lost since submission (slashes in other open rounds) is no longer at risk
        at_risk = np.minimum(F.r_stake[subs, slot], stake_now)
        budget = sc.market.round_budget * L.balance(self.treasury, "token")
        pay = np.asarray(
            self.rules["reward"].payouts(
                ResolvedRound(
                    preds,
                    target,
                    at_risk,
                    meta,
                    F.r_weight[subs, slot],
                    corr,
                    mmc,
                    budget,
                    pnl,
                    order=F.r_time[subs, slot].copy(),
                    submitters=F.agent_id[subs].copy(),
                    round=u,
                )
            ),
            dtype=float,
        )
        pos = np.maximum(pay, 0.0)
        rule = self.rules["slashing"]
        taken = np.clip(
            np.asarray(rule.slash(SlashInput(pay, stake_now, corr, mmc)), float), 0, stake_now
        )
        if getattr(self.rules["reward"], "funded_by_slashes", False):
            # the rule's own forfeits (losers' deposits) are collected whatever the
            # slashing rule: they are what its winners are paid from
            taken = np.maximum(taken, np.minimum(np.maximum(-pay, 0.0), stake_now))
        pos, _ = self._settle(subs, pos, taken, budget)
        F.payout[subs] += pos
        self._pay_holders(subs, pos)
        F.burned[subs] += taken
        self._attribute(subs, slot, pos, taken, target)
        # learning: trailing score and the bandit's value of every feed used
        # exponentially weighted mean and variance of each submitter's score:
        # d = x - m; m += a d; v = (1 - a)(v + a d^2)   (Finch 2009, "Incremental
        # calculation of weighted mean and variance")
        lr = sc.population.developers.learning_rate
        first = F.resolved[subs] == 0
        d = corr - F.trailing_corr[subs]
        F.trailing_corr[subs] = np.where(first, corr, F.trailing_corr[subs] + lr * d)
        F.score_var[subs] = np.where(first, 0.0, (1 - lr) * (F.score_var[subs] + lr * d**2))
        F.resolved[subs] += 1
        picks = F.r_picks[subs, slot]
        r_idx, s_idx = np.nonzero(picks >= 0)
        rows, feeds = subs[r_idx], picks[r_idx, s_idx]
        self.bandit.update(rows, feeds, corr[r_idx], lr)
        self._round.update(
            payouts=float(pos.sum()), slashed=float(taken.sum()), mean_corr=float(corr.mean())
        )

    def _settle(
        self, subs: np.ndarray, pos: np.ndarray, taken: np.ndarray, budget: float
    ) -> tuple[np.ndarray, float]:
        """Move the round's rewards and slashes through the ledger; return what was paid.

        Slashed stake goes to the ``escrow`` account first. A self-funded reward rule
        (``funded_by_slashes``, e.g. the 0xDeCA10B mechanisms, whose winners take the
        losers' deposits) pays its positive payouts from that escrow first and from the
        treasury only for the rest. A slashing rule whose ``destination`` is
        ``positive_contributors`` shares what is left in escrow among the submissions
        with positive payouts, pro rata; otherwise what is left is burned. The treasury
        never pays more than it holds (payouts are scaled down pro rata). A self-funded
        rule always collects its losers' forfeits, and what its winners do not take goes
        back to the treasury.
        """
        F, L = self.forecasters, self.ledger
        L.transfer(F.stake[subs], self.escrow, "token", taken, phase="resolve", reason="slash")
        pool = float(taken.sum())
        want = float(pos.sum())
        self_funded = getattr(self.rules["reward"], "funded_by_slashes", False)
        from_pool = min(pool, want) if self_funded else 0.0
        from_treasury = min(want - from_pool, budget)
        paid = pos * ((from_pool + from_treasury) / want) if want > 0 else pos
        if from_pool > 0:
            L.transfer(
                self.escrow,
                F.wallet[subs],
                "token",
                pos * (from_pool / want),
                phase="resolve",
                reason="reward_from_slashes",
            )
        if from_treasury > 0:
            L.transfer(
                self.treasury,
                F.wallet[subs],
                "token",
                pos * (from_treasury / want),
                phase="resolve",
                reason="reward",
            )
        rest = pool - from_pool
        redistribute = getattr(self.rules["slashing"], "destination", "burn") == (
            "positive_contributors"
        )
        if rest > 0 and redistribute and want > 0:
            share = share_among_positive(rest, pos)
            L.transfer(
                self.escrow,
                F.wallet[subs],
                "token",
                share,
                phase="resolve",
                reason="slash_redistribution",
            )
            paid = paid + share
        elif rest > 0 and self_funded:
            # forfeits nobody took return to the contract (0xDeCA10B: anyone may take
            # what remains after the longer window; here the treasury does)
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
        return paid, rest

    def _attribute(
        self, subs: np.ndarray, slot: int, pos: np.ndarray, taken: np.ndarray, target: np.ndarray
    ) -> None:
        """A model's gain and loss flow on to the providers of its feeds.

        The attribution rule splits each model over the feeds in its slots. Of a positive
        payout, ``gain_share`` goes from the developer to those providers (royalties); of
        a slash, ``cascade_to_providers`` is burned again from their bonds (capped by
        what each bond holds).
        """
        gain = float(getattr(self.rules["attribution"].params, "gain_share", 0.0))
        frac = float(getattr(self.rules["slashing"].params, "cascade_to_providers", 0.0))
        # royalties come out of the developer's wallet, never more than it holds
        due_gain = np.minimum(
            gain * pos, self.ledger.balances(self.forecasters.wallet[subs], "token")
        )
        due_loss = frac * taken
        if not (due_gain.any() or due_loss.any()):
            return
        F, P, L = self.forecasters, self.providers, self.ledger
        picks = F.r_picks[subs, slot]
        shares = np.asarray(
            self.rules["attribution"].attribute(
                AttributionInput(picks, F.r_wts[subs, slot], self.resolved_feeds, target)
            ),
            float,
        )
        r_idx, s_idx = np.nonzero((picks >= 0) & (shares > 0))
        feeds = picks[r_idx, s_idx]
        royalty = due_gain[r_idx] * shares[r_idx, s_idx]
        if royalty.any():
            L.transfer(
                F.wallet[subs[r_idx]],
                P.wallet[feeds],
                "token",
                royalty,
                phase="resolve",
                reason="attribution",
            )
            np.add.at(F.spent, subs[r_idx], royalty)
            np.add.at(P.revenue, feeds, royalty)
        due = np.zeros(len(P))
        np.add.at(due, feeds, due_loss[r_idx] * shares[r_idx, s_idx])
        hit = np.flatnonzero(due > 0)
        if hit.size:
            amount = np.minimum(due[hit], L.balances(P.bond[hit], "token"))
            L.transfer(
                P.bond[hit], L.BURN, "token", amount, phase="resolve", reason="cascade_slash"
            )
            P.burned[hit] += amount

    # 10
    def phase_adapt(self) -> None:
        """Costs, payoffs, exits after sustained losses, entry while returns beat the outside;
        held leaks decay and spread."""
        sc, L, P, F = self.config, self.ledger, self.providers, self.forecasters
        dyn = sc.population.dynamics
        price = self.token_price
        # providers pay to serve their feeds
        live = np.flatnonzero(P.status == ACTIVE)
        cost = np.minimum(
            sc.population.providers.cost_per_round, L.balances(P.wallet[live], "token")
        )
        L.transfer(P.wallet[live], self.fees, "token", cost, phase="adapt", reason="provider_cost")
        P.spent[live] += cost
        P.payoff[:] = 0.0
        P.payoff[live] = P.revenue[live] - cost - P.burned[live]
        F.payoff[:] = F.payout - F.burned - F.spent
        self._judge(P, P.payoff, price, dyn)
        self._judge(F, self._group_payoffs(F.payoff), price, dyn)
        self._sybil_exits()
        self._leave(P, "bond")
        self._leave(F, "stake")
        if self.listings.enabled:
            self._list_models()
        if dyn.enabled:
            self._enter(price, dyn)
        self._age_leaks()  # held leaks decay, then spread over the leak network

    # ------------------------------------------------------- model listings

    def _model_price(self, i: int) -> float:
        """Marketplace tokens per token of listed model ``i`` (its pool's spot price)."""
        return self.exchange.price(self.model_pools[i])

    def _model_prices(self, subs: np.ndarray) -> np.ndarray:
        """Each submission's model price in tokens; 0 for models that are not listed."""
        listed = self.forecasters.listed[subs]
        prices = np.array([self._model_price(i) for i in range(len(self.model_pools))])
        return np.where(listed >= 0, prices[np.maximum(listed, 0)], 0.0)

    def _model_value(self, accounts: np.ndarray) -> np.ndarray:
        """Marketplace tokens each account would get by selling its model tokens.

        Holdings are valued at what selling them into the model's pool would pay (fee
        and price impact included), not at the spot price, which would overstate a
        position that is large against the pool's liquidity.
        """
        out = np.zeros(accounts.size)
        for i, pool in enumerate(self.model_pools):
            units = self.ledger.balances(accounts, self.model_assets[i])
            if units.any():
                x, y = self.exchange.reserves(pool)
                out += amm.amount_out(units, x, y, self.exchange.fee)
        return out

    def _list_models(self) -> None:
        """Developers with a positive track record list their models, best first.

        Listing mints ``supply`` model tokens to the developer, which opens the model's
        pool with ``pool_fraction`` of them against ``pool_tokens`` of its tokens.
        """
        F, L, cfg = self.forecasters, self.ledger, self.listings
        free = cfg.max_models - len(self.model_pools)
        if free <= 0:
            return
        ok = (
            (F.kind == DEVELOPER)
            & (F.status == ACTIVE)
            & (F.listed < 0)
            & (F.resolved >= cfg.min_resolved)
            & (F.trailing_corr > 0)
        )
        rows = np.flatnonzero(ok)
        if rows.size == 0:
            return
        rows = rows[L.balances(F.wallet[rows], "token") >= cfg.pool_tokens]
        rows = rows[np.argsort(-F.trailing_corr[rows], kind="stable")][:free]
        for j in rows:
            i = len(self.model_pools)
            name = self.model_assets[i]
            wallet = int(F.wallet[j])
            L.transfer(L.MINT, wallet, name, cfg.supply, phase="adapt", reason="listing")
            pool = self.exchange.create_pool(
                name,
                "token",
                cfg.supply * cfg.pool_fraction,
                cfg.pool_tokens,
                phase="adapt",
                funder=wallet,
            )
            self.model_pools.append(pool)
            self.model_owner = np.append(self.model_owner, j)
            F.listed[j] = i
        self._round["listings"] = int(rows.size)

    def _pay_holders(self, subs: np.ndarray, pos: np.ndarray) -> None:
        """``holder_share`` of a listed model's positive payout goes to its token holders.

        Pro rata to holdings over every account; the developer keeps the part its own
        holdings earn, and the pool's part stays in the pool (it lifts the price).
        """
        if not self.model_pools:
            return
        F, L = self.forecasters, self.ledger
        listed = F.listed[subs]
        paying = np.flatnonzero((listed >= 0) & (pos > 0))
        accounts = np.arange(2, L.n_accounts)  # every account but mint and burn
        for r in paying:
            i, dev = int(listed[r]), int(F.wallet[subs[r]])
            held = L.balances(accounts, self.model_assets[i])
            held[accounts == dev] = 0.0  # its own share simply stays with the developer
            total = L.supply(self.model_assets[i])
            amount = self.listings.holder_share * pos[r] * held / total
            scale = min(1.0, L.balance(dev, "token") / max(amount.sum(), 1e-300))
            amount *= scale
            hit = amount > 0
            L.transfer(
                dev, accounts[hit], "token", amount[hit], phase="resolve", reason="holder_payout"
            )
            F.spent[subs[r]] += amount.sum()
            V = self.investors
            V.payout += (
                scale
                * self.listings.holder_share
                * pos[r]
                * L.balances(V.wallet, self.model_assets[i])
                / total
            )

    def _invest(self) -> None:
        """Investors sell models that stopped scoring and buy the best listed model."""
        V, F, L = self.investors, self.forecasters, self.ledger
        if not self.model_pools or len(V) == 0:
            return
        owners = self.model_owner
        good = (F.trailing_corr[owners] > 0) & (F.status[owners] == ACTIVE)
        best = int(np.argmax(np.where(good, F.trailing_corr[owners], -np.inf)))
        rate = self.config.population.investors.rebalance
        honest = (V.status == ACTIVE) & (V.strategy == STRATEGY["honest"])  # not whales
        for v in np.flatnonzero(honest):  # investors are few; each trades alone
            w = int(V.wallet[v])
            for i in np.flatnonzero(~good):
                units = L.balance(w, self.model_assets[i])
                if units > 0:
                    self.exchange.swap(
                        w,
                        self.model_pools[i],
                        self.model_assets[i],
                        units,
                        phase="trade",
                        reason="investor_sell",
                    )
            spend = rate * L.balance(w, "token")
            if good[best] and spend > 0:
                self.exchange.swap(
                    w, self.model_pools[best], "token", spend, phase="trade", reason="investor_buy"
                )

    # ------------------------------------------- adversaries: the ring and the whales

    def _pump_ring(self) -> None:
        """Ring developers buy their ring's listed model tokens, just before aggregation.

        Each active ring developer pays ``pump * liquid tokens`` into the pools of the
        ring's listed models whose developer is still active, split equally, through the
        exchange: a pool of ``x`` model tokens and ``y`` tokens pays
        ``(1 - f) dy x / (y + (1 - f) dy)`` model tokens for ``dy`` tokens, so the model's
        price ``y / x`` rises to ``(y + dy) (y + (1 - f) dy) / (x y)`` times itself
        (Uniswap v2, ``mechanisms.amm``). Under ``price_weighted`` aggregation that price
        is the model's weight: the ring votes its own models up (self-dealing, the wash
        trading of a thin market). The purchase is a swap, not a cost: the model tokens
        count in the developer's wealth at what selling them would pay.
        """
        pump = self.config.population.collusion.pump
        if pump <= 0 or not self.model_pools:
            return
        F, L = self.forecasters, self.ledger
        ring = STRATEGY["colluder"]
        owners = self.model_owner
        models = np.flatnonzero((F.strategy[owners] == ring) & (F.status[owners] == ACTIVE))
        buyers = np.flatnonzero((F.kind == DEVELOPER) & (F.status == ACTIVE) & (F.strategy == ring))
        if models.size == 0 or buyers.size == 0:
            return
        spend = pump * L.balances(F.wallet[buyers], "token") / models.size
        for b, s in zip(buyers, spend, strict=True):
            if s <= 0:
                continue
            for i in models:
                self.exchange.swap(
                    int(F.wallet[b]),
                    self.model_pools[i],
                    "token",
                    float(s),
                    phase="aggregate",
                    reason="ring_pump",
                )
        self._round["ring_pump"] = float(spend.sum() * models.size)

    def _whales(self) -> np.ndarray:
        V = self.investors
        return np.flatnonzero((V.strategy == STRATEGY["whale"]) & (V.status == ACTIVE))

    def _whales_open(self) -> None:
        """End of the trade phase of a round that resolves: whales trade before the payouts.

        :func:`agents.whale.opening_trade` on the token/usd pool; what each paid and got
        is kept to be swapped back at the start of the next round (:meth:`_whales_close`).
        Not in the run's last round, which has no next round to close in (the final
        prices and wealth are not left at a level the whale pushed them to).
        """
        last = self.t >= self.config.run.rounds
        if self.t <= self.lag or last or len(self.investors) == 0:
            return
        V, L, cfg = self.investors, self.ledger, self.config.population.whales
        for v in self._whales():
            w = int(V.wallet[v])
            asset, amount = opening_trade(
                cfg.strategy,
                cfg.trade_usd,
                self.token_price,
                L.balance(w, "usd"),
                L.balance(w, "token"),
            )
            V.w_paid[v] = amount
            V.w_got[v] = self.exchange.swap(
                w, self.token_pool, asset, amount, phase="trade", reason="whale_open"
            )

    def _whales_close(self) -> None:
        """Start of the round after the payouts: whales swap back what they got.

        Realized profit (tokens): ``(usd back - usd paid) / price after`` for a pump,
        ``tokens back - tokens sold`` for a dump (``trade_pnl``, the agent table's payoff).
        """
        V = self.investors
        if len(V) == 0:
            return
        V.trade_pnl[:] = 0.0
        pump = self.config.population.whales.strategy == "pump_before_payout"
        for v in self._whales():
            if V.w_got[v] <= 0:
                continue
            back = self.exchange.swap(
                int(V.wallet[v]),
                self.token_pool,
                "token" if pump else "usd",
                float(V.w_got[v]),
                phase="observe",
                reason="whale_close",
            )
            gain = back - V.w_paid[v]
            V.trade_pnl[v] = gain / self.token_price if pump else gain
            V.w_paid[v] = V.w_got[v] = 0.0

    def _judge(self, cols: Columns, payoff: np.ndarray, price: float, dyn) -> None:
        """Update return averages and losing streaks; start the exit of sustained losers."""
        live = cols.status == ACTIVE
        participating = live & (payoff != 0)
        ret = payoff * price / np.maximum(cols.capital, 1e-12)
        a = 1.0 / dyn.memory
        cols.ret_ema[participating] = (1 - a) * cols.ret_ema[participating] + a * ret[participating]
        cols.losing[live & (payoff < 0)] += 1
        cols.losing[live & (payoff > 0)] = 0
        if dyn.enabled:
            quit_ = live & (cols.losing >= dyn.exit_after)
            cols.status[quit_] = LEAVING
            cols.leave_round[quit_] = self.t + self.lag

    def _group_payoffs(self, payoff: np.ndarray) -> np.ndarray:
        """Forecasters' payoffs with each sybil group's members given the group's mean.

        A group is judged as one owner would be: every identity holds 1/k of the
        group's capital, so each member's return is the group's return, and the members'
        losing streaks (hence their exits) move together.
        """
        F = self.forecasters
        g = np.flatnonzero(F.owner >= 0)
        if g.size == 0:
            return payoff
        total = np.bincount(F.owner[g], weights=payoff[g], minlength=len(F))
        count = np.bincount(F.owner[g], minlength=len(F))
        out = payoff.copy()
        out[g] = total[F.owner[g]] / count[F.owner[g]]
        return out

    def _sybil_exits(self) -> None:
        """A sybil group leaves together: once any member leaves, its active ones follow."""
        F = self.forecasters
        g = np.flatnonzero(F.owner >= 0)
        if g.size == 0:
            return
        out = np.zeros(len(F), bool)
        out[F.owner[g[F.status[g] != ACTIVE]]] = True
        follow = g[(F.status[g] == ACTIVE) & out[F.owner[g]]]
        F.status[follow] = LEAVING
        F.leave_round[follow] = self.t + self.lag

    def _leave(self, cols: Columns, locked_name: str) -> None:
        """Agents whose open rounds have all resolved release their stake and sell out."""
        L = self.ledger
        done = np.flatnonzero((cols.status == LEAVING) & (cols.leave_round <= self.t))
        if done.size == 0:
            return
        if cols is self.forecasters and self.shares[done].any():
            self._trade_shares(done, self.shares[done][:, : len(self.providers)], sell=True)
        locked = getattr(cols, locked_name)[done]
        L.transfer(
            locked,
            cols.wallet[done],
            "token",
            L.balances(locked, "token"),
            phase="adapt",
            reason="release",
        )
        # each sells its tokens into the pool in turn (each sale moves the price)
        self.exchange.swap_sequence(
            cols.wallet[done],
            self.token_pool,
            "token",
            np.maximum(L.balances(cols.wallet[done], "token"), 0.0),
            phase="adapt",
            reason="exit_sell",
        )
        cols.status[done] = GONE
        cols.leave_round[done] = self.t  # the round it left: its last row in the tables
        cols.final_wealth[done] = L.balances(cols.wallet[done], "usd")
        for aid in cols.agent_id[done]:
            self.agent_of.pop(int(aid)).remove()
        self._round["exits"] = self._round.get("exits", 0) + int(done.size)

    def _enter(self, price: float, dyn) -> None:
        """Entrants of each type ~ Poisson(sensitivity * active * (expected - outside))."""
        rng = self.streams.population
        P, F = self.providers, self.forecasters
        # every type decides on the returns seen before anyone enters this round
        live = {
            "provider": (P, P.status == ACTIVE),
            "developer": (F, (F.status == ACTIVE) & (F.kind == DEVELOPER)),
            "free_rider": (F, (F.status == ACTIVE) & (F.kind == FREE_RIDER)),
        }
        arrivals = {}
        for kind, (cols, mask) in live.items():
            n_live = int(mask.sum())
            if n_live == 0:
                continue
            expected = float(cols.ret_ema[mask].mean())
            rate = dyn.entry_sensitivity * n_live * (expected - dyn.outside_option)
            if rate > 0:
                arrivals[kind] = int(min(dyn.max_entrants, rng.poisson(rate)))
        for kind, n in arrivals.items():
            if kind == "provider":
                self._add_providers(n)
            else:
                self._add_forecasters(DEVELOPER if kind == "developer" else FREE_RIDER, n)
        entered = sum(arrivals.values())
        self._round["entries"] = entered

    # 11
    def phase_record(self) -> None:
        """Model and agent rows for this round; the ledger's invariants must hold."""
        L, P, F = self.ledger, self.providers, self.forecasters
        try:
            L.check_invariants()
        except Exception as e:  # the ledger names what broke
            raise SimulationError(f"round {self.t}: ledger invariant broken: {e}") from e
        minted, burned = L.round_flows(self.t, "token")
        r = self._round
        cum = (self.model_rows[-1]["metamodel_cum_pnl"] if self.model_rows else 0.0) + r.get(
            "pnl", 0.0
        )
        live_f = F.status == ACTIVE
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
            "submissions": int(F.r_sub[:, self.t % self.ring].sum()),
            "mean_corr": r.get("mean_corr", np.nan),
            "data_sales": float(P.revenue.sum()),
            "payouts": r.get("payouts", 0.0),
            "slashed": r.get("slashed", 0.0),
            "total_stake": float(L.balances(F.stake, "token").sum()) if len(F) else 0.0,
            "leaks": r.get("leaks", 0),
            "leaks_held": r.get("leaks_held", 0),
            "lazy_claims": r.get("lazy", 0),
            "caught": r.get("caught", 0),
            "forced_errors": r.get("forced", 0),
            "check_rate": r.get("check_rate", 0.0),
            "missed_reveals": r.get("missed_reveals", 0),
            "compute_fees": r.get("compute_fees", 0.0),
            "compute_seconds": r.get("compute_seconds", 0.0),
            "compute_bytes": r.get("compute_bytes", 0.0),
            "latency_mean": r.get("latency_mean", np.nan),
            "latency_max": r.get("latency_max", np.nan),
            "missed_deadline": r.get("missed_deadline", 0),
            "curation_reserve": L.balance(self.curation, "token"),
            "jackpot": L.balance(self.jackpot, "token"),
            "entries": r.get("entries", 0),
            "exits": r.get("exits", 0),
            "active_provider": int((P.status == ACTIVE).sum()),
            "active_developer": int((live_f & (F.kind == DEVELOPER)).sum()),
            "active_free_rider": int((live_f & (F.kind == FREE_RIDER)).sum()),
            "active_investor": int((self.investors.status == ACTIVE).sum()),
            "listed_models": len(self.model_pools),
            "ring_weight": r.get("ring_weight", 0.0),  # the ring's share of the metamodel
            "ring_pump": r.get("ring_pump", 0.0),  # tokens the ring paid into its pools
        }
        self.model_rows.append(row)
        self._record_agents()

    def _record_agents(self) -> None:
        """One row per agent present this round (active, leaving, or leaving now)."""
        L, P, F = self.ledger, self.providers, self.forecasters
        price = self.token_price
        chunks = []
        p = np.flatnonzero((P.status != GONE) | (P.leave_round == self.t))
        if p.size:
            chunks.append(
                {
                    "id": P.agent_id[p],
                    "type": np.zeros(p.size, np.int8),
                    "strategy": P.strategy[p].copy(),
                    "quality": P.quality[p].copy(),
                    "capital": P.capital[p].copy(),
                    "active": P.status[p] == ACTIVE,
                    "tokens": L.balances(P.wallet[p], "token"),
                    "stake": L.balances(P.bond[p], "token"),
                    "usd": L.balances(P.wallet[p], "usd"),
                    "revenue": P.revenue[p].copy(),
                    "payout": np.zeros(p.size),
                    "burned": P.burned[p].copy(),
                    "spent": P.spent[p].copy(),
                    "payoff": P.payoff[p].copy(),
                    "score": np.full(p.size, np.nan),
                    "contribution": np.full(p.size, np.nan),
                }
            )
        f = np.flatnonzero((F.status != GONE) | (F.leave_round == self.t))
        if f.size:
            chunks.append(
                {
                    "id": F.agent_id[f],
                    "type": (F.kind[f] + 1).astype(np.int8),
                    "strategy": F.strategy[f].copy(),
                    "quality": np.full(f.size, np.nan),
                    "capital": F.capital[f].copy(),
                    "active": F.status[f] == ACTIVE,
                    "tokens": L.balances(F.wallet[f], "token"),
                    "stake": L.balances(F.stake[f], "token"),
                    "usd": L.balances(F.wallet[f], "usd"),
                    "revenue": np.zeros(f.size),
                    "payout": F.payout[f].copy(),
                    "burned": F.burned[f].copy(),
                    "spent": F.spent[f].copy(),
                    "payoff": F.payoff[f].copy(),
                    "score": np.where(F.resolved[f] > 0, F.trailing_corr[f], np.nan),
                    "contribution": F.contribution[f].copy(),
                    "model_tokens": self._model_value(F.wallet[f]),
                }
            )
        V = self.investors
        if len(V):
            chunks.append(
                {
                    "id": V.agent_id.copy(),
                    "type": np.full(len(V), 3, np.int8),
                    "strategy": V.strategy.copy(),
                    "quality": np.full(len(V), np.nan),
                    "capital": V.capital.copy(),
                    "active": V.status == ACTIVE,
                    "tokens": L.balances(V.wallet, "token"),
                    "stake": np.zeros(len(V)),
                    "usd": L.balances(V.wallet, "usd"),
                    "revenue": np.zeros(len(V)),
                    "payout": V.payout.copy(),
                    "burned": np.zeros(len(V)),
                    "spent": np.zeros(len(V)),
                    "payoff": V.payout + V.trade_pnl,
                    "score": np.full(len(V), np.nan),
                    "contribution": np.full(len(V), np.nan),
                    "model_tokens": self._model_value(V.wallet),
                }
            )
        for c in chunks:
            c["round"] = np.full(c["id"].size, self.t, np.int32)
            c.setdefault("model_tokens", np.zeros(c["id"].size))
            c["wealth"] = (c["tokens"] + c["stake"] + c["model_tokens"]) * price + c["usd"]
            self.agent_chunks.append(c)

    # ------------------------------------------------------------ summary

    def _populations(self):
        """``(type name, columns, row mask, adversarial mask)`` of every agent population."""
        P, F, V = self.providers, self.forecasters, self.investors
        out = [("provider", P, np.ones(len(P), bool), P.strategy != STRATEGY["honest"])]
        for kind, name in KIND_NAMES.items():
            m = F.kind == kind
            bad = (F.strategy != STRATEGY["honest"]) | (F.kind == FREE_RIDER)
            out.append((name, F, m, bad))
        vs = getattr(V, "strategy", None) if len(V) else None
        vbad = vs != STRATEGY["honest"] if vs is not None else np.zeros(len(V), bool)
        out.append(("investor", V, np.ones(len(V), bool), vbad))
        return out

    def outcome_table(self):
        """One row per agent that ever took part: type, strategy, id, final wealth (usd),
        capital (usd at entry) and whether it is an adversary (a free rider, or any
        strategy but ``honest``)."""
        import pandas as pd

        wealth = self.final_wealth()
        frames = []
        for name, cols, mask, bad in self._populations():
            w, cap = wealth[name]
            strat = getattr(cols, "strategy", None) if len(cols) else None
            codes = strat[mask] if strat is not None else np.zeros(int(mask.sum()), np.int8)
            frames.append(
                pd.DataFrame(
                    {
                        "type": name,
                        "strategy": np.asarray(STRATEGIES, dtype=object)[codes]
                        if codes.size
                        else np.zeros(0, dtype=object),
                        "id": cols.agent_id[mask] if len(cols) else np.zeros(0, np.int64),
                        "wealth": w,
                        "capital": cap,
                        "adversary": bad[mask] if len(cols) else np.zeros(0, bool),
                    }
                )
            )
        return pd.concat(frames, ignore_index=True)

    def transfer_to_adversaries(self) -> float:
        """Net tokens from honest participants and shared accounts into adversaries'.

        Shared accounts: treasury, escrow, jackpot, curation and the verifier pool.
        Exchange pools, the metamodel, arbitrageurs, minting, burning and fees are
        neither side (trades are exchanges of value, not transfers).
        """
        L = self.ledger
        side = np.zeros(L.n_accounts, np.int8)  # 0 neither, 1 honest/shared, 2 adversary
        for acct in (self.treasury, self.escrow, self.jackpot, self.curation):
            side[acct] = 1
        side[self.verifier_pool.wallet] = 1
        for _, cols, mask, bad in self._populations():
            if not len(cols):
                continue
            for locked in ("bond", "stake"):
                accts = getattr(cols, locked, None)
                if accts is not None:
                    side[accts[mask & ~bad]] = 1
                    side[accts[mask & bad]] = 2
            side[cols.wallet[mask & ~bad]] = 1
            side[cols.wallet[mask & bad]] = 2
        c = L.columns()
        tok = c["asset"] == L.asset_id("token")
        src, dst = side[c["src"]], side[c["dst"]]
        into = tok & (src == 1) & (dst == 2)
        out = tok & (src == 2) & (dst == 1)
        return float(c["amount"][into].sum() - c["amount"][out].sum())

    def final_wealth(self) -> dict[str, np.ndarray]:
        """Wealth (usd) and capital of every agent that ever took part, by type."""
        L, P, F = self.ledger, self.providers, self.forecasters
        price = self.token_price
        out = {}
        pw = (
            np.where(
                P.status == GONE,
                P.final_wealth,
                (L.balances(P.wallet, "token") + L.balances(P.bond, "token")) * price
                + L.balances(P.wallet, "usd"),
            )
            if len(P)
            else np.zeros(0)
        )
        out["provider"] = (pw, P.capital.copy())
        fw = (
            np.where(
                F.status == GONE,
                F.final_wealth,
                (
                    L.balances(F.wallet, "token")
                    + L.balances(F.stake, "token")
                    + self._model_value(F.wallet)
                )
                * price
                + L.balances(F.wallet, "usd"),
            )
            if len(F)
            else np.zeros(0)
        )
        for kind, name in KIND_NAMES.items():
            m = F.kind == kind
            out[name] = (fw[m], F.capital[m])
        V = self.investors
        vw = (L.balances(V.wallet, "token") + self._model_value(V.wallet)) * price + L.balances(
            V.wallet, "usd"
        )
        out["investor"] = (vw, V.capital.copy())
        return out

"""Scenario files: the typed schema, its defaults, loading, ``extends`` and ``--set``.

A scenario is a YAML mapping with the sections ``run``, ``task``, ``population``,
``market`` and ``mechanisms``. Every key has a default (the baseline economy), so a
file states only what differs; ``extends: NAME_OR_PATH`` starts from another scenario.
Validation happens once, at load: unknown keys (with the nearest valid name), wrong
types and out-of-range values raise :class:`ScenarioError` naming the key path, the
value and what is allowed. Nothing runs before a scenario has validated.

Key paths that sweeps and property files address are stable: ``run.rounds``,
``run.seed``, ``population.<type>.count``, ``mechanisms.<family>.name`` and
``mechanisms.<family>.<param>``.

Mechanism entries merge like this: when a later layer (an extending file, or
``--set mechanisms.<family>.name=...``) names a *different* rule, that family starts
again from the new rule's defaults and the old rule's parameters are dropped unless
they are given again in the same layer.
"""

from __future__ import annotations

import copy
import difflib
import math
import re
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import numpy as np
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    model_validator,
)
from pydantic.fields import FieldInfo

from mechanisms.registry import FAMILIES, UnknownRuleError, load_all

MAX_FILE_BYTES = 1 << 20  # 1 MiB of YAML is far more than any scenario needs
MAX_DEPTH = 16
MAX_NODES = 20_000
MAX_EXTENDS = 16
MAX_COUNT = 100_000
MAX_SHOWN = 80  # characters of a bad value quoted back in a message


class ScenarioError(ValueError):
    """A scenario (file, override or value) that cannot be used, with a message for people."""


def _show(value: object) -> str:
    """``repr(value)``, cut short so a huge bad value cannot flood a message."""
    r = repr(value)
    return r if len(r) <= MAX_SHOWN else f"{r[:MAX_SHOWN]}... ({len(r)} characters)"


# --------------------------------------------------------------------------------------
# Parameter distributions
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dist:
    """A parameter drawn per agent: ``constant``, ``uniform``, ``normal`` or ``lognormal``.

    Written in YAML as a number (a constant) or a mapping:
    ``{dist: uniform, low: a, high: b}``, ``{dist: normal, mean: m, std: s}``,
    ``{dist: lognormal, median: m, sigma: s}`` or ``{dist: choice, values: [...]}``.
    Draws are clipped to the quantity's allowed range.
    """

    kind: str
    a: float = 0.0
    b: float = 0.0
    values: tuple[float, ...] = ()
    lo: float = -math.inf
    hi: float = math.inf

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` independent draws."""
        if self.kind == "constant":
            x = np.full(n, self.a)
        elif self.kind == "uniform":
            x = rng.uniform(self.a, self.b, n)
        elif self.kind == "normal":
            x = rng.normal(self.a, self.b, n)
        elif self.kind == "lognormal":
            x = self.a * np.exp(rng.normal(0.0, self.b, n))
        else:  # choice
            x = rng.choice(np.asarray(self.values, dtype=float), n)
        return np.clip(x, self.lo, self.hi)

    @property
    def mean(self) -> float:
        """The distribution's mean before clipping (used for expectations)."""
        if self.kind == "constant":
            return self.a
        if self.kind == "uniform":
            return (self.a + self.b) / 2
        if self.kind == "normal":
            return self.a
        if self.kind == "lognormal":
            return self.a * math.exp(self.b**2 / 2)
        return float(np.mean(self.values))

    def to_yaml(self) -> float | dict[str, Any]:
        """Plain YAML form (a number for constants)."""
        if self.kind == "constant":
            return self.a
        if self.kind == "uniform":
            return {"dist": "uniform", "low": self.a, "high": self.b}
        if self.kind == "normal":
            return {"dist": "normal", "mean": self.a, "std": self.b}
        if self.kind == "lognormal":
            return {"dist": "lognormal", "median": self.a, "sigma": self.b}
        return {"dist": "choice", "values": list(self.values)}


_DIST_KEYS = {
    "constant": ("value",),
    "uniform": ("low", "high"),
    "normal": ("mean", "std"),
    "lognormal": ("median", "sigma"),
    "choice": ("values",),
}


def _is_number(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _parse_dist(lo: float, hi: float, v: object) -> Dist:
    allowed = f"a number in [{lo:g}, {hi:g}] or a mapping with 'dist' in {list(_DIST_KEYS)}"
    if isinstance(v, Dist):
        return v
    if _is_number(v):
        if not lo <= v <= hi:
            raise ValueError(f"out of range; allowed: {allowed}")
        return Dist("constant", float(v), lo=lo, hi=hi)
    if not isinstance(v, Mapping):
        raise ValueError(f"expected {allowed}")
    kind = v.get("dist")
    if kind not in _DIST_KEYS:
        raise ValueError(f"'dist' is {_show(kind)}; allowed: {', '.join(_DIST_KEYS)}")
    keys = _DIST_KEYS[kind]
    extra = sorted(set(v) - {"dist", *keys})
    if extra:
        raise ValueError(
            f"unknown key {_show(extra[0])} for dist {kind}; allowed: dist, {', '.join(keys)}"
        )
    missing = [k for k in keys if k not in v]
    if missing:
        raise ValueError(f"dist {kind} needs {', '.join(keys)}; missing {', '.join(missing)}")
    if kind == "choice":
        vals = v["values"]
        if (
            not isinstance(vals, list)
            or not 1 <= len(vals) <= 1000
            or not all(_is_number(x) and lo <= x <= hi for x in vals)
        ):
            raise ValueError(f"'values' must be a list of 1..1000 numbers in [{lo:g}, {hi:g}]")
        return Dist("choice", values=tuple(float(x) for x in vals), lo=lo, hi=hi)
    nums = [v[k] for k in keys]
    for k, x in zip(keys, nums, strict=True):
        if not _is_number(x):
            raise ValueError(f"{k!r} must be a finite number, not {_show(x)}")
    if kind == "constant":
        return _parse_dist(lo, hi, nums[0])
    a, b = float(nums[0]), float(nums[1])
    if kind == "uniform":
        if not (lo <= a <= b <= hi):
            raise ValueError(f"uniform needs {lo:g} <= low <= high <= {hi:g}")
    elif kind == "normal":
        if not lo <= a <= hi or not 0 <= b <= 1e6:
            raise ValueError(f"normal needs mean in [{lo:g}, {hi:g}] and std in [0, 1e6]")
    else:
        if not (max(lo, 0.0) < a <= hi) or not 0 <= b <= 5:
            raise ValueError(
                f"lognormal needs median in ({max(lo, 0.0):g}, {hi:g}] and sigma in [0, 5]"
            )
    return Dist(kind, a, b, lo=lo, hi=hi)


def DistField(lo: float, hi: float):  # noqa: N802 - reads like a type in the schema
    """A field holding a :class:`Dist` whose draws lie in ``[lo, hi]``."""
    return Annotated[
        Dist,
        BeforeValidator(lambda v: _parse_dist(lo, hi, v)),
        PlainSerializer(lambda d: d.to_yaml()),
    ]


def _f(default: Any, lo: float, hi: float, doc: str, **kw: Any) -> Any:
    return Field(default, ge=lo, le=hi, description=doc, **kw)


def _d(default: Any, lo: float, hi: float, doc: str) -> Any:
    return Field(default_factory=lambda: _parse_dist(lo, hi, default), description=doc)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# --------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------


class RunConfig(_Section):
    """How long and from which seed."""

    rounds: int = _f(200, 1, 100_000, "rounds to simulate")
    seed: int = _f(0, 0, 2**63 - 1, "root seed; every random stream derives from it")
    counterfactual: bool = Field(
        False,
        description="also run the market with every adversary removed (same seed) and "
        "report the damage they do (summary: counterfactual)",
    )


class TaskConfig(_Section):
    """The prediction task: a cross-section of assets per round (Numerai-style eras).

    Latent features ``x`` (assets x groups*features_per_group, standard normal) drive
    the target ``r = x @ beta + noise * e``; ``beta`` is drawn once per run with total
    explained variance ``signal``. The target of round t resolves at round t + lag and
    moves each asset's external fair price by ``exp(return_scale * r)``.
    """

    kind: Literal["cross_section"] = Field("cross_section", description="task model")
    assets: int = _f(50, 2, 5_000, "assets in the cross-section (one exchange pool each)")
    feature_groups: int = _f(10, 1, 1_000, "feature groups; each provider observes one")
    features_per_group: int = _f(4, 1, 64, "latent features in each group")
    signal: float = _f(0.5, 0.0, 100.0, "variance of x @ beta (the learnable part)")
    noise: float = _f(1.0, 0.0, 100.0, "standard deviation of the target's unlearnable noise")
    lag: int = _f(2, 1, 52, "rounds until a round's target resolves")
    return_scale: float = _f(0.05, 0.0, 0.2, "log-return of an asset per unit of target")


class BadDataConfig(_Section):
    """Providers whose feeds are bad data (strategies ``noise``, ``flipped``, ``stale``,
    ``resold``); the rest are honest.

    Every provider, at genesis and on entry, draws its strategy with these
    probabilities (one uniform draw from the population stream; nothing is drawn when
    every fraction is 0). What it sells, before any privacy noise (sim/model.py,
    ``_bad_feeds``): ``noise`` a standard normal feed; ``flipped`` its honest feed
    times -1 in rounds drawn with ``flip_probability``; ``stale`` its honest feed of
    ``stale_lag`` rounds ago; ``resold`` an exact copy of another, genuine provider's
    feed. Data poisoning as in Steinhardt, Koh & Liang (2017), "Certified defenses for
    data poisoning attacks" (NeurIPS), here applied to the features a market sells.
    """

    noise: float = _f(0.0, 0.0, 1.0, "share of providers whose feed is pure noise")
    flipped: float = _f(
        0.0, 0.0, 1.0, "share of providers whose feed's sign is flipped in random rounds"
    )
    stale: float = _f(
        0.0, 0.0, 1.0, "share of providers who sell their feed of stale_lag rounds ago"
    )
    resold: float = _f(
        0.0, 0.0, 1.0, "share of providers who resell an exact copy of another provider's feed"
    )
    stale_lag: int = _f(3, 1, 100, "rounds a stale feed lags behind the provider's honest one")
    flip_probability: float = _f(
        0.5, 0.0, 1.0, "chance per round that a flipped provider's feed is negated"
    )

    @model_validator(mode="after")
    def _check(self) -> BadDataConfig:
        total = self.noise + self.flipped + self.stale + self.resold
        if total > 1.0 + 1e-9:
            raise ValueError(
                f"the shares noise + flipped + stale + resold add up to {total:g}, "
                "more than 1 (they split one population of providers)"
            )
        return self

    @property
    def any(self) -> bool:
        """Whether any provider can draw a bad-data strategy."""
        return self.noise + self.flipped + self.stale + self.resold > 0


class ProvidersConfig(_Section):
    """Data providers: each sells one feed, a feature group seen through its own noise."""

    count: int = _f(20, 0, MAX_COUNT, "providers at the start")
    noise: DistField(0.0, 100.0) = _d(
        {"dist": "uniform", "low": 0.1, "high": 3.0},
        0.0,
        100.0,
        "std of the provider's observation noise; true quality = 1 / (1 + noise^2)",
    )
    price: DistField(0.0, 1e6) = _d(
        {"dist": "uniform", "low": 0.1, "high": 0.5},
        0.0,
        1e6,
        "asking price in tokens for one round of access to the feed",
    )
    tokens: DistField(0.0, 1e9) = _d(200.0, 0.0, 1e9, "tokens at genesis")
    usd: DistField(0.0, 1e9) = _d(1000.0, 0.0, 1e9, "usd at genesis")
    bond: float = _f(50.0, 0.0, 1e9, "tokens bonded on the feed while listed")
    cost_per_round: float = _f(1.0, 0.0, 1e6, "tokens a provider spends per round to serve")
    slots: int = _f(
        20,
        1,
        MAX_COUNT,
        "buyers a feed admits per round under auction pricing (the demand adaptive prices aim at)",
    )
    bad: BadDataConfig = Field(
        default_factory=BadDataConfig,
        description="shares of providers selling bad data (noise, flipped, stale, resold)",
    )


class DevelopersConfig(_Section):
    """Model developers: buy feeds, train ridge models, stake on predictions."""

    count: int = _f(200, 0, MAX_COUNT, "developers at the start")
    tokens: DistField(0.0, 1e9) = _d(
        {"dist": "lognormal", "median": 100.0, "sigma": 0.5}, 0.0, 1e9, "tokens at genesis"
    )
    usd: DistField(0.0, 1e9) = _d(1000.0, 0.0, 1e9, "usd at genesis")
    max_feeds: int = _f(3, 1, 32, "feeds a developer buys at most per round")
    data_budget: float = _f(0.1, 0.0, 1.0, "share of liquid tokens spendable on data per round")
    window: int = _f(20, 1, 1_000, "rounds of resolved history the model trains on")
    ridge: float = _f(1.0, 0.0, 1e6, "ridge penalty per training row")
    exploration: float = _f(0.1, 0.0, 1.0, "bandit: probability of trying a random feed")
    learning_rate: float = _f(0.2, 0.0, 1.0, "bandit: weight of the newest feed reward")
    lazy_fraction: float = _f(
        0.0, 0.0, 1.0, "share of developers who are lazy solvers (strategy 'lazy')"
    )
    lazy_probability: float = _f(
        1.0, 0.0, 1.0, "chance per round a lazy solver skips training and submits instead"
    )
    lazy_adapts: bool = Field(
        False,
        description="a lazy solver skips only when the training cost saved beats the "
        "deposit and fee it expects to lose at last round's checking rate",
    )
    lazy_submits: Literal["noise", "copy"] = Field(
        "noise",
        description="what a lazy solver submits: noise, or a copy (of the best visible "
        "prediction, else its own previous one)",
    )
    deposit: float = _f(
        1.0, 0.0, 1e9, "tokens a solver puts up per claim under verification (lost if caught)"
    )
    bid_per_corr: float = _f(
        20.0, 0.0, 1e6, "auction pricing: tokens bid above the reserve per unit of estimated score"
    )
    stake_fraction: DistField(0.0, 1.0) = _d(
        {"dist": "uniform", "low": 0.3, "high": 0.8},
        0.0,
        1.0,
        "target share of token wealth kept staked",
    )


class FreeRidersConfig(_Section):
    """Free riders: train on leaked plaintext data or copy published predictions."""

    count: int = _f(0, 0, MAX_COUNT, "free riders at the start")
    tokens: DistField(0.0, 1e9) = _d(100.0, 0.0, 1e9, "tokens at genesis")
    usd: DistField(0.0, 1e9) = _d(1000.0, 0.0, 1e9, "usd at genesis")
    copy_probability: float = _f(
        0.5, 0.0, 1.0, "chance per round of copying a visible prediction over leaks"
    )
    copy_source: Literal["best", "metamodel"] = Field(
        "best",
        description="what a copier submits: best, the visible developer prediction with "
        "the best trailing score; metamodel, the stake-weighted mean of the developers' "
        "rank-gaussianized predictions, by the stakes they submit with (a copy of the "
        "metamodel under stake_weighted aggregation)",
    )
    stake_fraction: DistField(0.0, 1.0) = _d(0.5, 0.0, 1.0, "target staked share of tokens")


class ArbitrageursConfig(_Section):
    """Arbitrageurs pull every exchange pool to its external fair price."""

    count: int = _f(1, 0, 100, "arbitrageur agents (they take turns)")
    usd: float = _f(
        1e9, 0.0, 1e13, "usd each arbitrageur holds at genesis (and as much again in assets)"
    )


class InvestorsConfig(_Section):
    """Investors fund listed models by buying their tokens."""

    count: int = _f(0, 0, 10_000, "investors at the start")
    tokens: DistField(0.0, 1e9) = _d(500.0, 0.0, 1e9, "tokens at genesis")
    usd: DistField(0.0, 1e9) = _d(1000.0, 0.0, 1e9, "usd at genesis")
    rebalance: float = _f(
        0.1, 0.0, 1.0, "share of its liquid tokens an investor puts in its best model each round"
    )


class VerifiersConfig(_Section):
    """The verifier pool that checks claimed computation (used by verification rules)."""

    tokens: float = _f(1000.0, 0.0, 1e12, "tokens the verifier pool holds at genesis")


class SybilsConfig(_Section):
    """Sybils: developer owners who each split themselves over ``identities`` identities
    (strategy ``sybil``).

    At genesis, ``owners`` groups of ``identities`` developer rows are created beside
    ``population.developers.count`` (after the free riders, so the other agents' draws
    do not change). The first row of a group is the owner; every row's ``owner`` column
    points to it. Each group draws one developer's tokens, usd and stake fraction
    (``population.developers``) and every identity gets ``1 / identities`` of the
    tokens and usd, so the group holds exactly what one developer would. Only the
    owner buys data (its purchases, paid once, serve the group); after training, every
    identity takes the owner's picks and weights, stakes from its own wallet and
    submits. ``split: stake`` submits the same model k times, each with 1/k of the
    stake; ``split: models`` submits k slightly different models: every identity but
    the owner adds independent noise, ``noise`` times the root mean square of the
    owner's weights, to each of the owner's weights, drawn afresh every round. A group
    is judged as one (its mean payoff) and leaves together.
    """

    owners: int = _f(0, 0, MAX_COUNT, "developer owners who split over several identities")
    identities: int = _f(
        4,
        1,
        1_000,
        "identities per owner (k), the owner's own included; 1 keeps each owner whole "
        "(the same owners and capital undivided: the control of a paired comparison)",
    )
    split: Literal["stake", "models"] = Field(
        "stake",
        description="stake: k identical models, each with 1/k of the stake; models: k "
        "slightly different models (the owner's weights plus independent noise)",
    )
    noise: float = _f(
        0.1,
        0.0,
        10.0,
        "split models: noise on each weight, relative to the root mean square of the "
        "owner's weights",
    )

    @model_validator(mode="after")
    def _check(self) -> SybilsConfig:
        n = self.owners * self.identities
        if n > MAX_COUNT:
            raise ValueError(
                f"population.sybils.owners * population.sybils.identities is {n}; "
                f"allowed: at most {MAX_COUNT}"
            )
        return self


class CollusionConfig(_Section):
    """A collusion ring: providers and developers that deal with each other (strategy
    ``colluder``).

    ``providers`` and ``developers`` ring members are drawn at genesis, uniformly
    without replacement among the honest genesis providers and developers (nothing is
    drawn when both are 0). Ring developers buy only ring providers' feeds. With
    ``pump > 0`` every ring developer spends ``pump`` of its liquid tokens each round
    buying the tokens of the ring's listed models on their pools, just before
    aggregation: it votes its own models up where the weight is the market price
    (``market.listings.enabled`` and ``price_weighted`` aggregation; elsewhere pumping
    only moves tokens into the pools).
    """

    providers: int = _f(0, 0, MAX_COUNT, "ring providers, drawn among the genesis providers")
    developers: int = _f(0, 0, MAX_COUNT, "ring developers, drawn among the genesis developers")
    pump: float = _f(
        0.0,
        0.0,
        1.0,
        "share of a ring developer's liquid tokens spent each round buying the ring's "
        "listed model tokens (before aggregation)",
    )


class WhalesConfig(_Section):
    """Whales: large holders who move the token price around payouts (strategy ``whale``).

    A whale is an investor-type agent (``investor:ID`` accounts, rows in the investors'
    table) that does not invest in models. In every round that resolves, it swaps
    ``trade_usd`` on the token/usd pool at the end of the trade phase, just before the
    payouts, and swaps back what it got at the start of the next round:
    ``pump_before_payout`` buys tokens with usd then sells them; ``dump_before_payout``
    sells tokens worth ``trade_usd`` then buys back with the usd (agents/whale.py).
    """

    count: int = _f(0, 0, 100, "whales at the start")
    tokens: float = _f(200_000.0, 0.0, 1e12, "tokens each whale holds at genesis")
    usd: float = _f(200_000.0, 0.0, 1e12, "usd each whale holds at genesis")
    trade_usd: float = _f(
        50_000.0, 0.0, 1e12, "usd value a whale swaps per manipulation (capped by its holdings)"
    )
    strategy: Literal["pump_before_payout", "dump_before_payout"] = Field(
        "pump_before_payout",
        description="buy tokens before the payouts and sell after (pump), or the reverse (dump)",
    )


class EntryExitConfig(_Section):
    """Entry while expected return beats the outside option; exit after sustained losses."""

    enabled: bool = Field(True, description="whether agents enter and leave")
    outside_option: float = _f(0.002, -1.0, 1.0, "per-round return an entrant could earn elsewhere")
    max_entrants: int = _f(5, 0, 10_000, "most entrants of each type per round")
    entry_sensitivity: float = _f(
        5.0, 0.0, 1e4, "entrants per round per unit of return above the outside option"
    )
    exit_after: int = _f(10, 1, 10_000, "consecutive losing rounds before an agent leaves")
    memory: int = _f(10, 1, 1_000, "rounds of payoff history agents judge returns by")


class PopulationConfig(_Section):
    """Counts and parameter distributions of each agent type."""

    providers: ProvidersConfig = Field(default_factory=ProvidersConfig)
    developers: DevelopersConfig = Field(default_factory=DevelopersConfig)
    free_riders: FreeRidersConfig = Field(default_factory=FreeRidersConfig)
    arbitrageurs: ArbitrageursConfig = Field(default_factory=ArbitrageursConfig)
    verifiers: VerifiersConfig = Field(default_factory=VerifiersConfig)
    investors: InvestorsConfig = Field(default_factory=InvestorsConfig)
    sybils: SybilsConfig = Field(default_factory=SybilsConfig)
    collusion: CollusionConfig = Field(default_factory=CollusionConfig)
    whales: WhalesConfig = Field(default_factory=WhalesConfig)
    dynamics: EntryExitConfig = Field(default_factory=EntryExitConfig)


class ExchangeConfig(_Section):
    """Constant-product pools (Uniswap v2) for the token and for every traded asset."""

    fee: float = _f(0.003, 0.0, 0.1, "swap fee kept by the pool (0.003 = Uniswap v2)")
    token_reserve: float = _f(200_000.0, 1.0, 1e12, "tokens in the token/usd pool at genesis")
    token_price: float = _f(1.0, 1e-6, 1e6, "usd per token at genesis")
    asset_reserve_usd: float = _f(1e7, 1.0, 1e12, "usd on each asset's pool at genesis")
    asset_price: float = _f(100.0, 1e-6, 1e6, "usd per unit of every asset at genesis")


class MetamodelConfig(_Section):
    """The metamodel contract: trades on the combined prediction and funds the rewards."""

    capital: float = _f(1e6, 0.0, 1e12, "usd the contract trades with at genesis")
    position_fraction: float = _f(
        0.05, 0.0, 1.0, "share of its usd the contract invests each round"
    )
    buyback_share: float = _f(
        0.5, 0.0, 1.0, "share of a round's realized profit that buys tokens for the treasury"
    )


class CostsConfig(_Section):
    """Fees and costs paid in tokens to the network (the ``fees`` account)."""

    submission_fee: float = _f(0.01, 0.0, 1e6, "tokens per submitted prediction (gas)")
    train_per_feature: float = _f(0.002, 0.0, 1e6, "tokens per model feature per training")


class ListingsConfig(_Section):
    """Tokenized models: developers list their models as tokens with their own pools.

    A developer with a track record lists its model: ``supply`` model tokens are minted
    to it, and it opens a constant-product pool of ``pool_fraction`` of them against
    ``pool_tokens`` marketplace tokens. Holders of a model's tokens receive
    ``holder_share`` of its positive payouts, pro rata (the pool's part stays in the
    pool and lifts the price). Investors buy the tokens of the models they expect to
    pay; ``price_weighted`` aggregation reads each model's pool price.
    """

    enabled: bool = Field(False, description="whether developers list their models")
    max_models: int = _f(50, 1, 1_000, "most models listed in a run")
    min_resolved: int = _f(5, 1, 10_000, "resolved rounds a model needs before listing")
    supply: float = _f(1000.0, 1.0, 1e12, "model tokens minted at listing")
    pool_fraction: float = _f(0.5, 0.01, 1.0, "share of the supply put in the model's pool")
    pool_tokens: float = _f(
        20.0, 1e-6, 1e12, "marketplace tokens the developer pairs with it in the pool"
    )
    holder_share: float = _f(
        0.5, 0.0, 1.0, "share of a listed model's positive payouts paid to holders"
    )


class MarketConfig(_Section):
    """Token supply, exchange pools, the metamodel's capital, fees and costs."""

    treasury: float = _f(50_000.0, 0.0, 1e12, "tokens in the reward treasury at genesis")
    issuance_per_round: float = _f(200.0, 0.0, 1e9, "tokens minted into the treasury every round")
    round_budget: float = _f(
        0.05, 0.0, 1.0, "share of the treasury that one round's rewards may pay out (r.budget)"
    )
    leak_probability: float = _f(
        0.05, 0.0, 1.0, "chance that a plaintext purchase leaks the feed to free riders"
    )
    leak_network: Literal["complete", "erdos_renyi", "barabasi_albert", "watts_strogatz"] = Field(
        "complete",
        description="graph among developers and free riders that leaks travel on "
        "(complete: a leak can reach any free rider); a purchase leaks to one random "
        "free-rider neighbour of its buyer (agents/leaks.py)",
    )
    leak_degree: int = _f(
        4,
        1,
        1000,
        "mean degree of the random leak networks (barabasi_albert and watts_strogatz "
        "round it up to even); forecasters who enter later link to this many",
    )
    leak_rewire: float = _f(0.1, 0.0, 1.0, "watts_strogatz: chance each lattice edge is rewired")
    leak_spread: float = _f(
        0.0,
        0.0,
        1.0,
        "chance per round that a held leak passes along each edge to a neighbouring free "
        "rider (one with k holding neighbours gets it with 1 - (1 - spread)^k)",
    )
    leak_half_life: float = _f(
        0.0,
        0.0,
        1e6,
        "rounds until half the held leaks are gone (each survives a round with "
        "2^(-1/half_life)); 0 drops a leak after the round it happened",
    )
    round_deadline: float = _f(
        3600.0,
        0.0,
        1e9,
        "seconds a model has to train and score each round; a secure training whose "
        "latency exceeds it misses the round (Numerai's daily rounds close an hour after "
        "they open: docs.numer.ai, Submissions)",
    )
    exchange: ExchangeConfig = Field(default_factory=ExchangeConfig)
    metamodel: MetamodelConfig = Field(default_factory=MetamodelConfig)
    costs: CostsConfig = Field(default_factory=CostsConfig)
    listings: ListingsConfig = Field(default_factory=ListingsConfig)


#: The rule each family uses when a scenario does not say.
DEFAULT_MECHANISMS: dict[str, str] = {
    "reward": "numerai",
    "slashing": "burn_negative",
    "aggregation": "stake_weighted",
    "pricing": "fixed",
    "verification": "none",
    "privacy": "plaintext",
    "submission": "open",
    "attribution": "purchase_share",
    "hosting": "ipfs",
}


@dataclass(frozen=True)
class MechanismChoice:
    """One family's rule: its name and validated parameters."""

    family: str
    name: str
    params: Any

    def build(self) -> Any:
        """A fresh instance of the rule."""
        return FAMILIES[self.family].get(self.name).cls(self.params)

    def to_yaml(self) -> dict[str, Any]:
        """``{name: ..., <param>: ...}`` with every parameter filled in."""
        from pydantic import TypeAdapter

        info = FAMILIES[self.family].get(self.name)
        dumped = TypeAdapter(info.params_type).dump_python(self.params, mode="json")
        return {"name": self.name, **dumped}


class Scenario(_Section):
    """A validated scenario with every default filled in."""

    run: RunConfig = Field(default_factory=RunConfig)
    task: TaskConfig = Field(default_factory=TaskConfig)
    population: PopulationConfig = Field(default_factory=PopulationConfig)
    market: MarketConfig = Field(default_factory=MarketConfig)
    mechanisms: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> Scenario:
        p = self.population
        n = p.developers.count + p.free_riders.count
        if n > MAX_COUNT:
            raise ValueError(
                f"population.developers.count + population.free_riders.count is {n}; "
                f"allowed: at most {MAX_COUNT}"
            )
        for kind in ("providers", "developers"):
            ring, have = getattr(p.collusion, kind), getattr(p, kind).count
            if ring > have:
                raise ValueError(
                    f"population.collusion.{kind} is {ring}; allowed: at most "
                    f"population.{kind}.count ({have})"
                )
        return self

    def mechanism(self, family: str) -> MechanismChoice:
        """The validated choice for ``family``."""
        return self.mechanisms[family]

    def to_dict(self) -> dict[str, Any]:
        """Plain data (numbers, strings, lists, mappings) for YAML and JSON."""
        out = self.model_dump(mode="json", exclude={"mechanisms"})
        out["mechanisms"] = {f: c.to_yaml() for f, c in self.mechanisms.items()}
        return out

    def to_yaml(self) -> str:
        """The resolved scenario as YAML that :func:`load_scenario` reads back."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def get(self, path: str) -> Any:
        """Value at a dotted key path, as plain data."""
        node: Any = self.to_dict()
        for part in path.split("."):
            node = node[part]
        return node


# --------------------------------------------------------------------------------------
# Reading YAML safely
# --------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses custom tags and duplicate keys with a message."""

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        # every mapping passes here once before merge keys (<<) rewrite its items
        if not getattr(node, "_dup_checked", False):
            node._dup_checked = True
            first: dict[tuple[str, str], int] = {}
            for key, _ in node.value:
                if not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
                    continue
                line = key.start_mark.line + 1
                if (key.tag, key.value) in first:
                    raise ScenarioError(
                        f"key {_show(key.value)} appears twice (lines "
                        f"{first[(key.tag, key.value)]} and {line}); each key may appear once"
                    )
                first[(key.tag, key.value)] = line
        super().flatten_mapping(node)


def _refuse_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    raise ScenarioError(
        f"YAML tag {node.tag!r} at line {node.start_mark.line + 1} is not allowed: "
        "scenarios hold plain numbers, strings, lists and mappings"
    )


# YAML 1.2 floats such as 1e7 (PyYAML's YAML 1.1 resolver reads them as strings)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)
_Loader.add_multi_constructor("!", _refuse_tag)
_Loader.add_multi_constructor("tag:", _refuse_tag)


def _count(node: Any, depth: int, budget: list[int], where: str) -> None:
    if depth > MAX_DEPTH:
        raise ScenarioError(f"{where}: nested deeper than {MAX_DEPTH} levels")
    budget[0] -= 1
    if budget[0] < 0:
        raise ScenarioError(f"{where}: more than {MAX_NODES} values (aliases expanded)")
    if isinstance(node, dict):
        for v in node.values():
            _count(v, depth + 1, budget, where)
    elif isinstance(node, list):
        for v in node:
            _count(v, depth + 1, budget, where)


def parse_yaml(text: str | bytes, where: str) -> dict[str, Any]:
    """Parse one scenario document; ``where`` names it in errors."""
    if isinstance(text, bytes):
        if len(text) > MAX_FILE_BYTES:
            raise ScenarioError(f"{where}: {len(text)} bytes is larger than the 1 MiB allowed")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ScenarioError(f"{where}: not UTF-8 text (byte {e.start})") from None
    if len(text) > MAX_FILE_BYTES:
        raise ScenarioError(f"{where}: larger than the 1 MiB allowed")
    try:
        docs = list(yaml.load_all(text, Loader=_Loader))  # noqa: S506 - _Loader is a SafeLoader
    except ScenarioError as e:
        raise ScenarioError(f"{where}: {e}") from None
    except RecursionError:
        raise ScenarioError(f"{where}: nested deeper than {MAX_DEPTH} levels") from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = "; ".join(x for x in (e.context, e.problem) if x)
        raise ScenarioError(f"{where}: malformed YAML{at}: {what}") from None
    except yaml.YAMLError as e:
        raise ScenarioError(f"{where}: malformed YAML: {e}".replace("\n", " ")) from None
    except ValueError as e:  # e.g. an integer of more than 4300 digits, a bad date
        raise ScenarioError(f"{where}: unreadable value: {str(e).split(';')[0][:200]}") from None
    if not docs:  # only comments or blank: every key keeps its default
        docs = [{}]
    if len(docs) != 1:
        raise ScenarioError(f"{where}: expected one YAML document, found {len(docs)}")
    data = docs[0]
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ScenarioError(
            f"{where}: a scenario must be a mapping of sections, not {type(data).__name__}"
        )
    _count(data, 0, [MAX_NODES], where)
    bad = [k for k in data if not isinstance(k, str)]
    if bad:
        raise ScenarioError(f"{where}: keys must be strings; got {bad[0]!r}")
    return data


# --------------------------------------------------------------------------------------
# Layers: extends, overrides, merge
# --------------------------------------------------------------------------------------


def shipped_scenarios() -> dict[str, str]:
    """Names of the scenarios shipped in the ``scenarios`` package -> first comment line."""
    out: dict[str, str] = {}
    for entry in sorted(resources.files("scenarios").iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".yaml"):
            first = ""
            for line in entry.read_text(encoding="utf-8").splitlines():
                if line.startswith("#"):
                    first = line.lstrip("# ").strip()
                    break
            out[entry.name[:-5]] = first
    return out


def _read_source(ref: str, base_dir: Path | None) -> tuple[dict[str, Any], str, Path | None]:
    """Raw mapping of a scenario named ``ref`` (a shipped name or a path)."""
    try:
        return _read_source_at(ref, base_dir)
    except (OSError, ValueError) as e:  # name too long, NUL byte, ...
        if isinstance(e, ScenarioError):
            raise
        why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise ScenarioError(f"scenario {_show(ref)} cannot be opened: {why}") from None


def _read_source_at(ref: str, base_dir: Path | None) -> tuple[dict[str, Any], str, Path | None]:
    p = Path(ref)
    candidates = [p] if p.is_absolute() else [(base_dir or Path.cwd()) / p]
    if not ref.endswith((".yaml", ".yml")) and "/" not in ref and "\\" not in ref:
        res = resources.files("scenarios") / f"{ref}.yaml"
        if res.is_file():
            return parse_yaml(res.read_bytes(), f"{ref}.yaml"), f"shipped:{ref}", None
    for c in candidates:
        if c.is_file():
            try:
                raw = c.read_bytes()
            except OSError as e:
                raise ScenarioError(f"{c}: cannot be read ({e.strerror})") from None
            return parse_yaml(raw, str(c)), str(c.resolve()), c.resolve().parent
        if c.exists():
            raise ScenarioError(f"{c}: is not a file")
    names = list(shipped_scenarios())
    tried = ", ".join(str(c) for c in candidates)[:300]
    msg = f"scenario {_show(ref)} not found: no such file {tried}"
    close = difflib.get_close_matches(ref, names, n=1, cutoff=0.5)
    if close:
        msg += f"; did you mean the shipped scenario {close[0]!r}?"
    raise ScenarioError(msg + f" (shipped: {', '.join(names)})")


def merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``top`` over ``base`` (mechanism families restart on a new rule name)."""
    out = copy.deepcopy(base)
    for k, v in top.items():
        if k == "mechanisms" and isinstance(v, Mapping) and isinstance(out.get(k), dict):
            mech = out[k]
            for fam, entry in v.items():
                old = mech.get(fam)
                old = {"name": old} if isinstance(old, str) else old
                entry = {"name": entry} if isinstance(entry, str) else entry
                if (
                    isinstance(entry, Mapping)
                    and isinstance(old, dict)
                    and ("name" not in entry or entry.get("name") == old.get("name"))
                ):
                    mech[fam] = merge(old, entry)
                else:
                    mech[fam] = copy.deepcopy(entry)
        elif isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _resolve_layers(ref: str, base_dir: Path | None, seen: list[str]) -> dict[str, Any]:
    data, ident, own_dir = _read_source(ref, base_dir)
    if ident in seen:
        chain = " -> ".join([*seen, ident])
        raise ScenarioError(f"'extends' loops: {chain}")
    if len(seen) >= MAX_EXTENDS:
        raise ScenarioError(f"'extends' chain longer than {MAX_EXTENDS} files")
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str) or not parent:
        raise ScenarioError(f"{ident}: 'extends' must be a scenario name or path; got {parent!r}")
    try:
        base = _resolve_layers(parent, own_dir, [*seen, ident])
    except ScenarioError as e:
        if str(e).startswith("'extends' loops"):  # the chain already names every file
            raise
        raise ScenarioError(f"{e} (extended by {ident})") from None
    return merge(base, data)


def parse_override(text: str) -> tuple[str, Any]:
    """``'a.b.c=value'`` -> ``('a.b.c', value)``; the value is read as a YAML scalar or list."""
    if "=" not in text:
        raise ScenarioError(f"--set {_show(text)}: expected KEY.PATH=VALUE (one pair each)")
    path, _, raw = text.partition("=")
    path = path.strip()
    if not path or any(not p for p in path.split(".")):
        raise ScenarioError(
            f"--set {_show(text)}: the key path {_show(path)} is empty or has an empty part"
        )
    try:
        value = parse_yaml(f"v: {raw}" if raw.strip() else "v: ''", "--set")["v"]
    except ScenarioError as e:
        raise ScenarioError(f"--set {_show(text)}: cannot read the value ({e})") from None
    return path, value


def apply_overrides(data: dict[str, Any], overrides: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    """Set each dotted key path; ``mechanisms.F.name`` resets family F first."""
    out = copy.deepcopy(data)
    ordered = sorted(overrides, key=lambda kv: not _is_rule_name(kv[0]))
    for path, value in ordered:
        parts = path.split(".")
        if _is_rule_name(path):
            mech = out.setdefault("mechanisms", {})
            if not isinstance(mech, dict):
                raise ScenarioError("mechanisms: must be a mapping of families")
            old = mech.get(parts[1])
            if not (isinstance(old, dict) and old.get("name") == value):
                mech[parts[1]] = {"name": value}
            continue
        node = out
        for i, part in enumerate(parts[:-1]):
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            if i == 1 and parts[0] == "mechanisms" and isinstance(nxt, str):
                nxt = node[part] = {"name": nxt}  # the shorthand `family: rule`
            if not isinstance(nxt, dict):
                where = ".".join(parts[: i + 1])
                raise ScenarioError(
                    f"--set {_show(path)}: {where} is a value ({_show(nxt)}), not a section "
                    f"with keys; set {where}=VALUE instead"
                )
            node = nxt
        node[parts[-1]] = value
    return out


def _is_rule_name(path: str) -> bool:
    parts = path.split(".")
    return len(parts) == 3 and parts[0] == "mechanisms" and parts[2] == "name"


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------


def _check_keys(data: Any, model: type[BaseModel], path: str) -> None:
    if not isinstance(data, Mapping):
        return
    fields = model.model_fields
    for key, value in data.items():
        shown = str(key) if len(str(key)) <= MAX_SHOWN else f"{str(key)[:MAX_SHOWN]}..."
        where = f"{path}.{shown}" if path else shown
        if key not in fields:
            raise ScenarioError(_unknown_key(where, key, list(fields)))
        ann = fields[key].annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            _check_keys(value, ann, where)


def _unknown_key(where: str, key: object, allowed: list[str]) -> str:
    msg = f"{where}: unknown key {_show(key)}"
    close = difflib.get_close_matches(str(key)[:200], allowed, n=1, cutoff=0.5)
    if close:
        msg += f"; did you mean {close[0]!r}?"
    return msg + f" (allowed: {', '.join(allowed)})"


def _num(x: float) -> str:
    if isinstance(x, int) or (x.is_integer() and abs(x) < 1e6):
        return str(int(x))
    return f"{x:g}"


def _fields_of(owner: Any) -> Mapping[str, FieldInfo]:
    """Fields of a pydantic model or pydantic dataclass (empty for anything else)."""
    if isinstance(owner, type) and issubclass(owner, BaseModel):
        return owner.model_fields
    return getattr(owner, "__pydantic_fields__", {})


def _describe(ann: Any, metadata: Sequence[Any] = ()) -> str:
    """What a field with type ``ann`` and constraints ``metadata`` accepts, for people."""
    origin = get_origin(ann)
    if origin is Annotated:
        base, *extra = get_args(ann)
        more = [m for x in extra for m in (x.metadata if isinstance(x, FieldInfo) else [x])]
        return _describe(base, [*metadata, *more])
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(ann))
    if origin is Union or origin is types.UnionType:
        return " or ".join(d for d in (_describe(a, metadata) for a in get_args(ann)) if d)
    if ann is type(None):
        return "null"
    if ann is bool:
        return "true or false"
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return f"a mapping with keys {', '.join(ann.model_fields)}"
    if ann in (int, float):
        lo = hi = None
        lo_br, hi_br = "[", "]"
        for m in metadata:
            if getattr(m, "ge", None) is not None:
                lo = m.ge
            if getattr(m, "gt", None) is not None:
                lo, lo_br = m.gt, "("
            if getattr(m, "le", None) is not None:
                hi = m.le
            if getattr(m, "lt", None) is not None:
                hi, hi_br = m.lt, ")"
        kind = "an integer" if ann is int else "a number"
        if lo is None and hi is None:
            return kind
        if hi is None:
            return f"{kind} {'>=' if lo_br == '[' else '>'} {_num(lo)}"
        if lo is None:
            return f"{kind} {'<=' if hi_br == ']' else '<'} {_num(hi)}"
        return f"{kind} in {lo_br}{_num(lo)}, {_num(hi)}{hi_br}"
    return ""


def _allowed_at(owner: Any, loc: Sequence[Any]) -> str:
    """:func:`_describe` of the field at ``loc`` under ``owner`` ('' if unknown)."""
    node = owner
    field = None
    for part in loc:
        field = _fields_of(node).get(part) if isinstance(part, str) else None
        if field is None:
            return ""
        node = field.annotation
    return _describe(field.annotation, field.metadata) if field is not None else ""


def _format_error(err: Mapping[str, Any], prefix: str = "", owner: Any = None) -> str:
    parts = [p for p in err["loc"] if not str(p).startswith("function-")]
    loc = ".".join(str(p) for p in parts)
    where = f"{prefix}.{loc}" if prefix and loc else (prefix or loc or "scenario")
    msg = str(err["msg"]).removeprefix("Value error, ")
    if not parts and not prefix:  # a check across keys: its message names them
        return f"{where}: {msg}"
    allowed = _allowed_at(owner, parts) if owner is not None else ""
    if not allowed:
        ctx = err.get("ctx") or {}
        ops = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
        allowed = ", ".join(f"{ops[k]} {v}" for k, v in ctx.items() if k in ops)
    return f"{where}: {msg}; got {_show(err['input'])}" + (
        f" (allowed: {allowed})" if allowed else ""
    )


def _validate_mechanisms(raw: Any) -> dict[str, MechanismChoice]:
    load_all()
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ScenarioError(
            f"mechanisms: must be a mapping of families; got {_show(raw)} "
            f"(allowed: a mapping with keys {', '.join(FAMILIES)})"
        )
    for fam in raw:
        if fam not in FAMILIES:
            raise ScenarioError(_unknown_key(f"mechanisms.{fam}", fam, list(FAMILIES)))
    out: dict[str, MechanismChoice] = {}
    for fam, registry in FAMILIES.items():
        entry = raw.get(fam, {"name": DEFAULT_MECHANISMS[fam]})
        where = f"mechanisms.{fam}"
        if isinstance(entry, str):
            entry = {"name": entry}
        if not isinstance(entry, Mapping):
            raise ScenarioError(
                f"{where}: expected {{name: RULE, <params>}}; got {_show(entry)} "
                f"(allowed rules: {', '.join(registry.names())})"
            )
        params = dict(entry)
        name = params.pop("name", DEFAULT_MECHANISMS[fam])
        if not isinstance(name, str) or len(name) > MAX_SHOWN:
            raise ScenarioError(
                f"{where}.name: must be a rule name; got {_show(name)} "
                f"(allowed: {', '.join(registry.names())})"
            )
        try:
            info = registry.get(name)
        except UnknownRuleError as e:
            raise ScenarioError(f"{where}.name: {e}") from None
        allowed = list(info.defaults())
        for k in params:
            if k not in allowed:
                kw = f"{where}.{str(k)[:MAX_SHOWN]}"
                raise ScenarioError(
                    _unknown_key(kw, k, allowed)
                    if allowed
                    else f"{kw}: unknown key {_show(k)}; rule {name!r} takes no parameters"
                )
        try:
            validated = registry.validate_params(name, params)
        except ValidationError as e:
            raise ScenarioError(_format_error(e.errors()[0], where, info.params_type)) from None
        out[fam] = MechanismChoice(fam, name, validated)
    return out


def validate(data: Mapping[str, Any]) -> Scenario:
    """A :class:`Scenario` from plain data, or a :class:`ScenarioError`."""
    data = dict(data)
    data.pop("extends", None)
    mech_raw = data.pop("mechanisms", None)
    _check_keys(data, Scenario, "")
    try:
        sc = Scenario.model_validate(data)
    except ValidationError as e:
        raise ScenarioError(_format_error(e.errors()[0], "", Scenario)) from None
    mechanisms = _validate_mechanisms(mech_raw)
    return sc.model_copy(update={"mechanisms": mechanisms})


def load_scenario(
    ref: str | Path | Mapping[str, Any] = "baseline",
    overrides: Sequence[str | tuple[str, Any]] | Mapping[str, Any] = (),
) -> Scenario:
    """Load a scenario by shipped name, path or mapping, apply overrides, validate.

    ``overrides`` are ``"key.path=value"`` strings, ``(path, value)`` pairs or a
    mapping of paths to values.
    """
    if isinstance(ref, Mapping):
        raw = dict(ref)
        parent = raw.pop("extends", None)
        if parent is not None:
            raw = merge(_resolve_layers(str(parent), None, []), raw)
    else:
        raw = _resolve_layers(str(ref), None, [])
    if isinstance(overrides, Mapping):
        pairs = list(overrides.items())
    else:
        pairs = [parse_override(o) if isinstance(o, str) else tuple(o) for o in overrides]
    for path, _ in pairs:
        if not isinstance(path, str) or not path:
            raise ScenarioError(f"override key {path!r} must be a dotted key path")
    return validate(apply_overrides(raw, pairs))


def describe_schema() -> list[tuple[str, Any, str]]:
    """Every key path with its default and description (for docs and ``mlmarket list``)."""
    rows: list[tuple[str, Any, str]] = []

    def walk(model: type[BaseModel], inst: BaseModel, prefix: str) -> None:
        for name, f in model.model_fields.items():
            if name == "mechanisms":
                continue
            val = getattr(inst, name)
            path = f"{prefix}{name}"
            if isinstance(val, BaseModel):
                walk(type(val), val, path + ".")
            else:
                shown = val.to_yaml() if isinstance(val, Dist) else val
                rows.append((path, shown, f.description or ""))

    walk(Scenario, Scenario(), "")
    return rows

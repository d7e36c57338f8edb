"""Incentive properties: statistical assertions over runs across seeds (``mlmarket check``).

A property file (YAML) lists properties. Each names a scenario, the seeds to run it
with and one assertion; ``mlmarket check FILE`` runs them, prints a table (property,
verdict, estimate, confidence interval, seeds used, time), optionally writes JUnit XML
(:mod:`analysis.junit`) and exits 0 when every property came out as expected, 1
otherwise, 2 on bad input::

    defaults:                      # optional; every key may also be set per property
      seeds: {min: 4, max: 16, step: 4}   # sequential: add 4 seeds until decided, at most 16
      confidence: 0.95
      quick: {seeds: 3, rounds: 50}       # what --quick runs
    properties:
      - name: free riding does not pay under MPC
        scenario: free_riding_mpc  # a shipped name or a path relative to this file
        overrides: {run.rounds: 150}      # key paths, as `mlmarket run --set`
        seeds: 8                   # a fixed number, or {min, max, step}
        seed: 0                    # root seed (run seeds as in sweeps: sim.sweep.run_seed)
        expect: holds              # or violated: the property is a known failure
        assert: {kind: compare, left: roi_by_type.free_rider, op: "<",
                 right: roi_by_type.developer}

``scenario`` may instead be a sweep point: ``sweep: NAME_OR_PATH`` and ``point: I`` (the
sweep's base, overrides and the point's parameters; its root seed by default).

Metrics
-------
Assertions name per-run numbers by expressions of a small grammar (parsed here, never
``eval``-ed)::

    expr   := term (("+" | "-") term)*       term := unary (("*" | "/") unary)*
    unary  := "-" unary | atom               atom := NUMBER | PATH | CALL | "(" expr ")"
    CALL   := AGG "(" TABLE "." COLUMN ("," WINDOW "=" INTEGER)* ")"

* ``PATH`` is a dotted path into the run summary (``roi_by_type.free_rider``,
  ``sybils.roi_vs_honest``, ``by_strategy.developer/lazy.roi_mean``; see
  :func:`sim.runner.summarize`) or, under ``config.``, into the resolved scenario
  (``config.market.treasury``). A ``/`` inside a name belongs to the name: write
  division with spaces (``a / b``).
* ``model.COLUMN`` (one value per round) and ``agents.COLUMN`` (one per agent per
  round) must be aggregated: ``AGG`` is one of mean, sum, min, max, median, std, first,
  last, count over the rounds in the window ``from=R``, ``to=R`` (inclusive round
  numbers), ``head=N`` (the first N rounds) or ``tail=N`` (the last N). Over
  ``agents`` the aggregate is taken per agent, which only ``monotonic`` uses.

Assertion kinds (``assert: {kind: ...}``)
-----------------------------------------
``compare``   ``left OP right + margin`` in the mean over seeds. ``left`` and ``right``
              are expressions or ``{metric: EXPR, overrides: {...}}`` (the same seeds
              under other settings: common random numbers). The per-seed difference
              ``d_s = left_s - right_s`` is paired over seeds.
``threshold`` ``STAT(metric) OP bound``; STAT is the mean (default) or ``quantile: q``.
``monotonic`` Spearman's rank correlation, per seed, between two per-agent quantities
              ``x`` and ``y`` over the agents selected by ``where`` ({type, strategy,
              genesis}); ``rho OP bound`` (default ``>=``).
``invariant`` Holds in every round of every seed: ``checks`` from
              ``token_conservation`` (supply, minted and burned of the model table agree
              with each other and with the ledger), ``no_negative_balances`` (no account
              but ``mint`` below zero at the end of any round, recomputed from the
              ledger), ``amm_k`` (every pool's ``x * y`` never falls from one round to
              the next; fees stay in the pool) and ``ledger`` (the engine's own check,
              summary ``invariants_ok``; a run whose ledger breaks stops with an error,
              which this kind counts as a violation).
``no_profitable_deviation``  Each of ``deviations`` (``{name, overrides, deviators}``)
              is run beside the undeviated scenario with the same seed. Deviators are
              the agents present at genesis whose strategy differs from the undeviated
              run (or who are not in it), narrowed by ``deviators: {type, strategy}``.
              Their gain ``g_s`` = mean ``metric`` (``roi``, final wealth / capital - 1,
              or ``payoff``, final wealth - capital in usd) in the deviated run minus
              the same agents' mean in the undeviated run (agents not in it: the honest
              genesis agents of their type). Holds when ``g <= epsilon`` for every
              deviation.
``sybil_proof``  ``metric`` (default ``sybils.roi_vs_honest``: the sybil groups' mean
              return minus honest developers') ``<= epsilon``; the scenario needs
              ``population.sybils.owners > 0``. With ``against: undivided``, paired:
              each seed also runs the same owners whole
              (``population.sybils.identities = 1``) and ``metric(split) -
              metric(undivided)`` (default metric ``sybils.roi_mean``) ``<= epsilon``.
``budget_balance``  In every seed ``spend <= budget`` (expressions; default spend
              ``flows.payouts - flows.slashed``, the tokens rewards paid beyond what
              slashing took, and budget ``config.market.treasury +
              config.market.issuance_per_round * rounds``, everything the reward
              treasury was ever given).

Statistics and verdicts
-----------------------
Seed ``s`` of a property runs with ``run.seed = sim.sweep.run_seed(seed, s)`` under every
setting it compares (common random numbers), so differences are paired. A statistical
property computes a two-sided confidence interval at level ``c`` of its estimate and
**holds** when the whole interval clears the bound, is **violated** when the whole
interval lies on the wrong side, and is **undecided** otherwise. With a sequential plan
``{min, max, step}`` seeds are added ``step`` at a time while undecided; to keep the
error rate of the repeated looks at most ``1 - c`` each look uses the Bonferroni level
``1 - (1 - c) / (looks * tests)`` (``tests``: deviations of a
``no_profitable_deviation``), a conservative bound (Jennison & Turnbull 2000,
"Group sequential methods", ch. 1; group-sequential boundaries would be tighter). A
property still undecided after ``max`` seeds counts as violated, and the report says
so. ``invariant`` and ``budget_balance`` hold only when every seed passes.

Intervals (see each function): the mean by Student's t (:func:`t_interval`) or by the
expanded percentile bootstrap (:func:`bootstrap_interval`, the default; under
:data:`MIN_BOOTSTRAP` seeds the t interval is used and the report says so); a quantile
by order statistics (:func:`quantile_interval`); Spearman correlations through Fisher's
z (:func:`spearman_interval`, :func:`fisher_mean_interval`).
"""

from __future__ import annotations

import contextlib
import difflib
import math
import os
import re
import shlex
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from sim.config import ScenarioError, load_scenario, parse_override, parse_yaml, shipped_scenarios

KINDS = (
    "compare",
    "threshold",
    "monotonic",
    "invariant",
    "no_profitable_deviation",
    "sybil_proof",
    "budget_balance",
)
OPS = ("<", "<=", ">", ">=")
TESTS = ("bootstrap", "t")
EXPECT = ("holds", "violated")
CHECKS = ("token_conservation", "no_negative_balances", "amm_k", "ledger")
AGGREGATORS = ("mean", "sum", "min", "max", "median", "std", "first", "last", "count")
WINDOWS = ("from", "to", "head", "tail")
TABLES = ("model", "agents")
CONFIG = "config"
DEVIATION_METRICS = ("roi", "payoff")
WHERE_KEYS = ("type", "strategy", "genesis")

#: Fewer seeds than this make the bootstrap unreliable; the t interval is used instead.
MIN_BOOTSTRAP = 6
BOOTSTRAP_RESAMPLES = 4000
#: Relative tolerance of the accounting checks (as the ledger's own, sim/ledger.py).
TOLERANCE = 1e-9
MAX_SEEDS = 10_000
MAX_FILE_BYTES = 1 << 20
#: SeedSequence spawn key of the bootstrap draws (sweeps use 0 for runs, 1 for designs).
_BOOT_STREAM = 2
_SHOWN = 80


class PropertyError(ScenarioError):
    """A property file, option or metric that cannot be used, with a message for people.

    A :class:`~sim.config.ScenarioError`, so the command line reports it the same way:
    one line, exit code 2.
    """


def _show(value: object, limit: int = _SHOWN) -> str:
    r = repr(value)
    return r if len(r) <= limit else f"{r[:limit]}... ({len(r)} characters)"


def _suggest(name: str, options: Iterable[str], cutoff: float = 0.6) -> str:
    close = difflib.get_close_matches(str(name)[:200], list(options), n=1, cutoff=cutoff)
    return f"; did you mean {close[0]!r}?" if close else ""


# ======================================================================================
# Statistics
# ======================================================================================


@dataclass(frozen=True)
class Interval:
    """An estimate with a two-sided confidence interval ``[low, high]`` at ``confidence``.

    ``low = -inf`` or ``high = inf`` when the data cannot bound that side (too few
    observations).
    """

    estimate: float
    low: float
    high: float
    n: int
    confidence: float
    method: str


def _alpha(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    return 1.0 - confidence


def t_interval(x: Sequence[float], confidence: float = 0.95) -> Interval:
    """Student's t interval of the mean: ``xbar +- t_{1-a/2, n-1} s / sqrt(n)``.

    ``s`` is the sample standard deviation (``n - 1`` in the denominator), ``a = 1 -
    confidence``. Applied to paired differences ``d_s = left_s - right_s`` this is the
    paired t interval (Student 1908, "The probable error of a mean", Biometrika 6;
    any textbook, e.g. Casella & Berger 2002, "Statistical Inference", 9.2). Exact for
    normal data, approximately right for others by the central limit theorem. Fewer than
    two observations bound nothing; identical observations give the point.
    """
    a = _alpha(confidence)
    x = np.asarray(x, dtype=float)
    n = int(x.size)
    if n == 0:
        return Interval(math.nan, -math.inf, math.inf, 0, confidence, "t")
    m = float(x.mean())
    if n < 2:
        return Interval(m, -math.inf, math.inf, n, confidence, "t")
    s = float(x.std(ddof=1))
    if s == 0.0:
        return Interval(m, m, m, n, confidence, "t")
    from scipy import stats

    h = float(stats.t.ppf(1.0 - a / 2.0, n - 1)) * s / math.sqrt(n)
    return Interval(m, m - h, m + h, n, confidence, "t")


def bootstrap_interval(
    x: Sequence[float],
    confidence: float = 0.95,
    rng: np.random.Generator | None = None,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> Interval:
    """Expanded percentile bootstrap interval of the mean.

    Draw ``B`` resamples of the ``n`` observations with replacement and take the mean of
    each (Efron & Tibshirani 1993, "An Introduction to the Bootstrap", ch. 13, the
    percentile interval). The plain percentile interval is too narrow in small samples
    (it behaves like ``xbar +- z s sqrt((n-1)/n) / sqrt(n)``); the *expanded* percentile
    interval (Hesterberg 2015, "What teachers should know about the bootstrap", The
    American Statistician 69(4), sec. 5) takes the percentiles ``a'/2`` and ``1 - a'/2``
    instead, with ``a' = 2 Phi(-sqrt(n / (n - 1)) t_{1-a/2, n-1})``, which corrects both
    the width and the z-for-t. Unlike the t interval it follows skewed distributions.
    ``rng`` makes it reproducible (the caller seeds it); fewer than two observations
    bound nothing, identical ones give the point.
    """
    a = _alpha(confidence)
    x = np.asarray(x, dtype=float)
    n = int(x.size)
    method = "bootstrap"
    if n == 0:
        return Interval(math.nan, -math.inf, math.inf, 0, confidence, method)
    m = float(x.mean())
    if n < 2:
        return Interval(m, -math.inf, math.inf, n, confidence, method)
    if float(np.ptp(x)) == 0.0:
        return Interval(m, m, m, n, confidence, method)
    from scipy import stats

    rng = rng if rng is not None else np.random.default_rng(0)
    means = x[rng.integers(0, n, size=(resamples, n))].mean(axis=1)
    expanded = math.sqrt(n / (n - 1)) * float(stats.t.ppf(1.0 - a / 2.0, n - 1))
    a2 = 2.0 * float(stats.norm.cdf(-expanded))
    low, high = np.quantile(means, [a2 / 2.0, 1.0 - a2 / 2.0])
    return Interval(m, float(low), float(high), n, confidence, method)


def mean_interval(
    x: Sequence[float], confidence: float, test: str, rng: np.random.Generator | None = None
) -> Interval:
    """The mean's interval by ``test`` (``bootstrap`` or ``t``).

    The bootstrap needs :data:`MIN_BOOTSTRAP` observations; with fewer the t interval is
    used, and its ``method`` says ``t (n < 6)``.
    """
    if test == "t":
        return t_interval(x, confidence)
    if len(x) < MIN_BOOTSTRAP:
        iv = t_interval(x, confidence)
        return Interval(iv.estimate, iv.low, iv.high, iv.n, confidence, f"t (n < {MIN_BOOTSTRAP})")
    return bootstrap_interval(x, confidence, rng)


def quantile_interval(x: Sequence[float], q: float, confidence: float = 0.95) -> Interval:
    """Distribution-free interval of the ``q`` quantile from order statistics.

    With ``B ~ Binomial(n, q)`` (observations below the true quantile), the interval
    ``[X_(l), X_(u)]`` of the sorted sample (1-based ranks) covers the quantile with
    probability ``P(l <= B <= u - 1)``; ``l - 1`` is the largest ``k`` with ``P(B <= k)
    <= a/2`` and ``u - 1`` the smallest with ``P(B <= k) >= 1 - a/2``, so coverage is at
    least ``1 - a`` for continuous data (Hahn & Meeker 1991, "Statistical Intervals",
    5.2; Conover 1999, "Practical Nonparametric Statistics", 3.2). A side the sample is
    too small to bound is infinite. The estimate is the sample quantile (linear
    interpolation).
    """
    a = _alpha(confidence)
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be in [0, 1], got {q!r}")
    x = np.sort(np.asarray(x, dtype=float))
    n = int(x.size)
    if n == 0:
        return Interval(math.nan, -math.inf, math.inf, 0, confidence, "order statistics")
    from scipy import stats

    cdf = stats.binom.cdf(np.arange(n + 1), n, q)
    below = np.flatnonzero(cdf <= a / 2.0)
    above = np.flatnonzero(cdf >= 1.0 - a / 2.0)
    low = float(x[below[-1]]) if below.size else -math.inf  # rank l = k + 1 -> index k
    k_up = int(above[0]) if above.size else n
    high = float(x[k_up]) if k_up < n else math.inf  # rank u = k + 1 -> index k
    return Interval(
        float(np.quantile(x, q)), low, high, n, confidence, f"order statistics (q = {q:g})"
    )


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation: Pearson's correlation of the ranks (ties averaged).

    ``nan`` when either side is constant or there are fewer than two pairs (Spearman
    1904, "The proof and measurement of association between two things").
    """
    from scipy.stats import rankdata

    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.size != y.size:
        raise ValueError(f"x and y differ in length: {x.size} and {y.size}")
    if x.size < 2:
        return math.nan
    rx, ry = rankdata(x), rankdata(y)
    rx -= rx.mean()
    ry -= ry.mean()
    den = math.sqrt(float(rx @ rx) * float(ry @ ry))
    return float(rx @ ry) / den if den > 0 else math.nan


_Z_CLIP = 1.0 - 1e-12


def spearman_interval(x: Sequence[float], y: Sequence[float], confidence: float = 0.95) -> Interval:
    """Spearman's rho of one sample with Fisher's z interval.

    ``z = atanh(rho)`` is nearly normal with standard error ``sqrt(1.06 / (n - 3))``
    (Fieller, Hartley & Pearson 1957, "Tests for rank correlation coefficients. I",
    Biometrika 44); the interval ``tanh(z -+ z_{1-a/2} se)``. Needs ``n > 3`` pairs.
    """
    from scipy import stats

    a = _alpha(confidence)
    rho = spearman(x, y)
    n = len(x)
    method = "Spearman, Fisher z"
    if not math.isfinite(rho) or n <= 3:
        return Interval(rho, -1.0, 1.0, n, confidence, method)
    z = math.atanh(max(-_Z_CLIP, min(_Z_CLIP, rho)))
    h = float(stats.norm.ppf(1.0 - a / 2.0)) * math.sqrt(1.06 / (n - 3))
    return Interval(rho, math.tanh(z - h), math.tanh(z + h), n, confidence, method)


def fisher_mean_interval(rhos: Sequence[float], confidence: float = 0.95) -> Interval:
    """Combine correlations of independent replications (seeds) through Fisher's z.

    ``z_s = atanh(rho_s)``; the estimate is ``tanh(mean z)`` and the interval ``tanh`` of
    the t interval of the ``z_s`` (:func:`t_interval`), which uses the spread between
    seeds rather than a model of each correlation's error (Fisher 1921, "On the probable
    error of a coefficient of correlation deduced from a small sample", Metron 1).
    """
    r = np.clip(np.asarray(rhos, dtype=float), -_Z_CLIP, _Z_CLIP)
    iv = t_interval(np.arctanh(r), confidence)
    f = np.tanh
    return Interval(
        float(f(iv.estimate)) if r.size else math.nan,
        float(f(iv.low)),
        float(f(iv.high)),
        iv.n,
        confidence,
        "Spearman per seed, Fisher z, t over seeds",
    )


def decide(iv: Interval, op: str, bound: float) -> str:
    """``holds`` when the whole interval satisfies ``value OP bound``, ``violated`` when
    the whole interval fails it, ``undecided`` when it straddles the bound."""
    lo, hi = iv.low, iv.high
    if math.isnan(lo) or math.isnan(hi):
        return "undecided"
    if op == "<":
        return "holds" if hi < bound else "violated" if lo >= bound else "undecided"
    if op == "<=":
        return "holds" if hi <= bound else "violated" if lo > bound else "undecided"
    if op == ">":
        return "holds" if lo > bound else "violated" if hi <= bound else "undecided"
    if op == ">=":
        return "holds" if lo >= bound else "violated" if hi < bound else "undecided"
    raise ValueError(f"unknown comparison {op!r}")


def look_confidence(confidence: float, looks: int, tests: int = 1) -> float:
    """Per-look level of a sequential plan: Bonferroni over looks and tests.

    ``1 - (1 - c) / (looks * tests)``: the chance that any of the ``looks * tests``
    intervals misses is at most ``1 - c`` (Bonferroni's inequality), whatever the
    dependence between looks.
    """
    return 1.0 - (1.0 - confidence) / max(1, looks * tests)


def bootstrap_rng(root: int, n: int, test: int = 0) -> np.random.Generator:
    """The generator of a property's bootstrap at ``n`` seeds (spawn key ``(2, n, test)``)."""
    return np.random.default_rng(np.random.SeedSequence(root, spawn_key=(_BOOT_STREAM, n, test)))


# ======================================================================================
# Expressions
# ======================================================================================


class MetricError(PropertyError):
    """A metric that a run does not have (an unknown summary path, column or agent type)."""


@dataclass(frozen=True)
class Num:
    """A number literal."""

    value: float


@dataclass(frozen=True)
class Ref:
    """A dotted path into the run summary, or (``config.``) into the resolved scenario."""

    path: str


@dataclass(frozen=True)
class Agg:
    """An aggregate over the rounds of a table column: ``fn(table.column, window...)``."""

    fn: str
    table: str
    column: str
    window: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class Neg:
    """Unary minus."""

    arg: Any


@dataclass(frozen=True)
class Bin:
    """A binary operation ``left op right`` (``+ - * /``)."""

    op: str
    left: Any
    right: Any


_TOKEN = re.compile(
    r"\s*(?:(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*(?:[./][A-Za-z0-9_]+)*)"
    r"|(?P<op>[-+*/(),=]))"
)


class _Parser:
    def __init__(self, text: str, where: str):
        self.text, self.where = text, where
        self.tokens: list[tuple[str, str, int]] = []
        pos = 0
        stripped = text.rstrip()
        while pos < len(stripped):
            m = _TOKEN.match(stripped, pos)
            if m is None or m.end() == pos:
                bad = stripped[pos:].lstrip()[:1]
                if bad in "<>!=":
                    self.fail(
                        f"unexpected {bad!r}: a metric is arithmetic only; the comparison "
                        "goes in the assertion's op",
                        len(stripped) - len(stripped[pos:].lstrip()),
                    )
                self.fail(
                    f"unexpected character {bad!r}", len(stripped) - len(stripped[pos:].lstrip())
                )
            kind = m.lastgroup or "op"
            self.tokens.append((kind, m.group(kind), m.start(kind)))
            pos = m.end()
        self.i = 0

    def fail(self, message: str, at: int | None = None) -> None:
        if at is None:
            at = self.tokens[self.i][2] if self.i < len(self.tokens) else len(self.text)
        raise PropertyError(f"{self.where}: {message} at column {at + 1} of {_show(self.text)}")

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str, int]:
        tok = self.peek()
        if tok is None:
            self.fail(f"expected {value!r}, found the end" if value else "unexpected end")
        if value is not None and tok[1] != value:
            self.fail(f"expected {value!r}, found {tok[1]!r}")
        self.i += 1
        return tok

    def parse(self):
        if not self.tokens:
            self.fail("empty expression", 0)
        node = self.expr()
        if self.peek() is not None:
            self.fail(f"unexpected {self.peek()[1]!r}; expected an operator (+ - * /)")
        return node

    def expr(self):
        node = self.term()
        while (tok := self.peek()) is not None and tok[1] in ("+", "-"):
            self.i += 1
            node = Bin(tok[1], node, self.term())
        return node

    def term(self):
        node = self.unary()
        while (tok := self.peek()) is not None and tok[1] in ("*", "/"):
            self.i += 1
            node = Bin(tok[1], node, self.unary())
        return node

    def unary(self):
        tok = self.peek()
        if tok is not None and tok[1] in ("-", "+"):
            self.i += 1
            arg = self.unary()
            return Neg(arg) if tok[1] == "-" else arg
        return self.atom()

    def atom(self):
        tok = self.take()
        kind, value, at = tok
        if kind == "num":
            return Num(float(value))
        if value == "(":
            node = self.expr()
            self.take(")")
            return node
        if kind != "name":
            self.fail(f"unexpected {value!r}", at)
        nxt = self.peek()
        if nxt is not None and nxt[1] == "(":
            return self.call(value, at)
        head = value.split(".")[0].split("/")[0]
        if head in TABLES:
            example = f"mean({value})" if head == "model" else f"sum({value})"
            per = "round" if head == "model" else "agent per round"
            self.fail(
                f"{value} has one value per {per}; aggregate it, e.g. {example} "
                f"({', '.join(AGGREGATORS)})",
                at,
            )
        return Ref(value)

    def call(self, fn: str, at: int):
        if fn not in AGGREGATORS:
            self.fail(
                f"unknown function {fn!r}{_suggest(fn, AGGREGATORS)} "
                f"(allowed: {', '.join(AGGREGATORS)})",
                at,
            )
        self.take("(")
        kind, value, vat = self.take()
        parts = value.split(".")
        if kind != "name" or len(parts) != 2 or parts[0] not in TABLES:
            self.fail(
                f"{fn}(...) aggregates a table column: model.COLUMN or agents.COLUMN; "
                f"got {value!r}",
                vat,
            )
        window: dict[str, int] = {}
        while self.peek() is not None and self.peek()[1] == ",":
            self.i += 1
            kkind, key, kat = self.take()
            if kkind != "name" or key not in WINDOWS:
                self.fail(
                    f"unknown window {key!r}{_suggest(key, WINDOWS)} "
                    f"(allowed: {', '.join(w + '=N' for w in WINDOWS)})",
                    kat,
                )
            self.take("=")
            nkind, num, nat = self.take()
            if nkind != "num" or not re.fullmatch(r"\d+", num):
                self.fail(f"{key}= takes a whole number of rounds; got {num!r}", nat)
            n = int(num)
            if key in ("head", "tail") and n < 1:
                self.fail(f"{key}= takes at least 1 round; got {n}", nat)
            if key in window:
                self.fail(f"{key}= given twice", kat)
            window[key] = n
        if "head" in window and "tail" in window:
            self.fail("give head= or tail=, not both", at)
        if "from" in window and "to" in window and window["from"] > window["to"]:
            self.fail(f"from={window['from']} is after to={window['to']}", at)
        self.take(")")
        return Agg(fn, parts[0], parts[1], tuple(sorted(window.items())))


def _walk(node) -> Iterable[Any]:
    yield node
    if isinstance(node, Neg):
        yield from _walk(node.arg)
    elif isinstance(node, Bin):
        yield from _walk(node.left)
        yield from _walk(node.right)


@dataclass(frozen=True)
class Expr:
    """A parsed metric expression (plain data, so workers can receive it)."""

    text: str
    node: Any

    @property
    def refs(self) -> list[str]:
        """Summary and ``config.`` paths it reads."""
        return [n.path for n in _walk(self.node) if isinstance(n, Ref)]

    @property
    def aggregates(self) -> list[Agg]:
        """Table aggregates it reads."""
        return [n for n in _walk(self.node) if isinstance(n, Agg)]

    @property
    def per_agent(self) -> bool:
        """Whether it reads the agent table (one value per agent)."""
        return any(a.table == "agents" for a in self.aggregates)

    def evaluate(self, view: RunView, where: Mapping[str, Any] | None = None) -> Any:
        """Its value in one run: a float, or per agent a pandas Series."""
        return _evaluate(self.node, view, where or {}, self.text)

    def __str__(self) -> str:
        return self.text


def parse_expression(text: Any, where: str) -> Expr:
    """Parse a metric expression; a :class:`PropertyError` names ``where`` and the column."""
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise PropertyError(f"{where}: expected a metric expression (text); got {_show(text)}")
    text = str(text)
    if len(text) > 1000:
        raise PropertyError(f"{where}: the expression is {len(text)} characters; at most 1000")
    return Expr(text, _Parser(text, where).parse())


def _evaluate(node, view: RunView, where: Mapping[str, Any], text: str) -> Any:
    if isinstance(node, Num):
        return node.value
    if isinstance(node, Ref):
        return view.value(node.path)
    if isinstance(node, Agg):
        return view.aggregate(node, where)
    if isinstance(node, Neg):
        return -_evaluate(node.arg, view, where, text)
    left = _evaluate(node.left, view, where, text)
    right = _evaluate(node.right, view, where, text)
    with np.errstate(divide="ignore", invalid="ignore"):
        if node.op == "+":
            return left + right
        if node.op == "-":
            return left - right
        if node.op == "*":
            return left * right
        if isinstance(right, float | int) and right == 0:
            return math.nan
        return left / right


# ======================================================================================
# One run's outputs as metrics
# ======================================================================================


def flat_paths(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Every leaf of a nested mapping by dotted path (lists and None included)."""
    out: dict[str, Any] = {}
    for k, v in tree.items():
        p = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(flat_paths(v, p + "."))
        else:
            out[p] = v
    return out


class RunView:
    """One run's summary, tables and resolved scenario, looked up by metric names.

    ``summary`` is :attr:`sim.runner.RunResult.summary`, ``model`` and ``agents`` the
    per-round tables, ``config`` the resolved scenario as plain data.
    """

    def __init__(self, summary: Mapping[str, Any], model, agents, config: Mapping[str, Any]):
        self.summary = summary
        self.model = model
        self.agents = agents
        self.config = config

    # ---------------------------------------------------------------- paths

    def value(self, path: str) -> float:
        """The number at a summary path, or at ``config.PATH`` of the scenario."""
        if path == CONFIG or path.startswith(CONFIG + "."):
            tree, rest, label = self.config, path[len(CONFIG) + 1 :], "the scenario"
        else:
            tree, rest, label = self.summary, path, "the run summary"
        node: Any = tree
        parts = rest.split(".") if rest else []
        for i, part in enumerate(parts):
            if isinstance(node, Mapping) and part in node:
                node = node[part]
                continue
            self._missing(path, tree, parts[:i], part, label)
        if isinstance(node, Mapping):
            keys = ", ".join(list(node)[:12])
            raise MetricError(f"{path} is a section of {label} ({keys}); name one of its values")
        if isinstance(node, bool):
            return 1.0 if node else 0.0
        if isinstance(node, int | float) and not isinstance(node, bool):
            return float(node)
        if isinstance(node, np.generic):
            return float(node)
        raise MetricError(f"{path} is {_show(node, 40)} in {label}, not a number")

    def _missing(self, path: str, tree: Mapping, found: list[str], part: str, label: str):
        prefix = CONFIG + "." if tree is self.config else ""
        leaves = [prefix + p for p in flat_paths(tree)]
        sections = sorted({p.rsplit(".", 1)[0] for p in leaves if "." in p})
        msg = f"unknown metric {path!r}: {label} has no {'.'.join([*found, part])!r}"
        hint = _suggest(path, [*leaves, *sections], cutoff=0.5)
        if not hint and not found:
            tops = sorted({p.split(".")[0] for p in leaves})
            if tree is self.summary:
                tops += [CONFIG, "model (aggregated)", "agents (aggregated)"]
            hint = f" (top-level names: {', '.join(tops)})"
        if "/" in part and not hint:
            hint = "; for a division put spaces around /"
        raise MetricError(msg + hint)

    # --------------------------------------------------------------- tables

    def _table(self, agg: Agg):
        df = self.model if agg.table == "model" else self.agents
        if agg.column not in df.columns or agg.column in ("round", "id", "account"):
            cols = [
                c for c in df.columns if c not in ("round", "id", "account", "type", "strategy")
            ]
            raise MetricError(
                f"unknown column {agg.table}.{agg.column}{_suggest(agg.column, cols, 0.5)} "
                f"(columns: {', '.join(cols)})"
            )
        return df

    @staticmethod
    def _window(df, window: Mapping[str, int]):
        if not window or not len(df):
            return df
        r = df["round"]
        lo, hi = max(1, int(r.min())), int(r.max())  # round 0 (genesis) is no round of play
        keep = np.ones(len(df), dtype=bool)
        if "from" in window:
            keep &= (r >= window["from"]).to_numpy()
        if "to" in window:
            keep &= (r <= window["to"]).to_numpy()
        if "head" in window:
            keep &= (r <= lo + window["head"] - 1).to_numpy()
        if "tail" in window:
            keep &= (r > hi - window["tail"]).to_numpy()
        return df[keep]

    def aggregate(self, agg: Agg, where: Mapping[str, Any]) -> Any:
        """A model column aggregated over rounds (a float) or an agent column per agent."""
        df = self._table(agg)
        window = dict(agg.window)
        if agg.table == "model":
            rows = self._window(df, window)
            vals = rows[agg.column].astype(float).dropna().to_numpy()
            return _reduce(agg.fn, vals, f"{agg.fn}({agg.table}.{agg.column})")
        rows = self._window(self.select_agents(where), window)
        col = rows[["type", "id", agg.column]].dropna(subset=[agg.column])
        g = col.groupby(["type", "id"], observed=True, sort=True)[agg.column]
        return g.agg(agg.fn).astype(float)  # pandas' std, like _reduce's, has ddof 1

    def select_agents(self, where: Mapping[str, Any]):
        """Rows of the agents table of the agents selected by ``where``.

        ``type`` and ``strategy`` (a name or a list of names) match the agent's columns;
        ``genesis: true`` keeps agents present at round 0 (``false``: later entrants).
        """
        df = self.agents
        if not where:
            return df
        keep = np.ones(len(df), dtype=bool)
        for key in ("type", "strategy"):
            if key not in where:
                continue
            wanted = where[key]
            wanted = [wanted] if isinstance(wanted, str) else list(wanted)
            known = [str(c) for c in df[key].cat.categories] if len(df) else []
            for w in wanted:
                if known and w not in known:
                    raise MetricError(
                        f"where.{key}: unknown {key} {w!r}{_suggest(w, known, 0.5)} "
                        f"(known: {', '.join(known)})"
                    )
            keep &= df[key].astype(str).isin(wanted).to_numpy()
        if "genesis" in where:
            at0 = df.loc[df["round"] == 0, ["type", "id"]]
            key0 = set(zip(at0["type"].astype(str), at0["id"], strict=True))
            mine = np.fromiter(
                ((t, i) in key0 for t, i in zip(df["type"].astype(str), df["id"], strict=True)),
                dtype=bool,
                count=len(df),
            )
            keep &= mine if where["genesis"] else ~mine
        return df[keep]


def _reduce(fn: str, vals: np.ndarray, label: str) -> float:
    if fn == "count":
        return float(vals.size)
    if vals.size == 0:  # e.g. no round resolved yet: a value error of this run, not bad input
        raise ValueError(f"{label}: no rounds with a value in the window")
    if fn == "first":
        return float(vals[0])
    if fn == "last":
        return float(vals[-1])
    if fn == "std":
        return float(np.std(vals, ddof=1)) if vals.size > 1 else 0.0
    return float(getattr(np, fn)(vals))


# ======================================================================================
# Checks computed in a run (invariants, per-agent outcomes)
# ======================================================================================


def _check_result(bad_rounds: Sequence[int], worst: float, message: str) -> dict[str, Any]:
    rounds = sorted({int(r) for r in bad_rounds})
    return {
        "ok": not rounds,
        "bad_rounds": len(rounds),
        "first_round": rounds[0] if rounds else None,
        "worst": float(worst),
        "message": message if rounds else "",
    }


def _ledger_codes(ledger):
    """``(round, src, dst, asset, amount, account names, asset names)`` of a ledger frame."""
    src = ledger["src"].cat
    dst = ledger["dst"].cat
    if list(src.categories) != list(dst.categories):  # pragma: no cover - to_frame shares them
        raise ValueError("ledger src and dst use different account lists")
    return (
        ledger["round"].to_numpy(np.int64),
        src.codes.to_numpy(np.int64),
        dst.codes.to_numpy(np.int64),
        ledger["asset"].cat.codes.to_numpy(np.int64),
        ledger["amount"].to_numpy(float),
        [str(c) for c in src.categories],
        [str(c) for c in ledger["asset"].cat.categories],
    )


def round_end_balances(ledger) -> tuple[np.ndarray, np.ndarray, np.ndarray, list, list]:
    """Every (account, asset) balance at the end of each round it changed, from the ledger.

    Returns ``(keys, rounds, balances, account names, asset names)``: ``keys`` is
    ``account * n_assets + asset``, rows sorted by key then round; ``balances`` the
    cumulative sum of inflows minus outflows up to and including that round.
    """
    rnd, src, dst, asset, amount, names, assets = _ledger_codes(ledger)
    n_assets = max(1, len(assets))
    keys = np.concatenate([dst * n_assets + asset, src * n_assets + asset])
    rounds = np.concatenate([rnd, rnd])
    flows = np.concatenate([amount, -amount])
    order = np.lexsort((rounds, keys))
    keys, rounds, flows = keys[order], rounds[order], flows[order]
    # net flow per (key, round), then the running sum per key
    edge = np.ones(keys.size, dtype=bool)
    edge[1:] = (keys[1:] != keys[:-1]) | (rounds[1:] != rounds[:-1])
    starts = np.flatnonzero(edge)
    net = np.add.reduceat(flows, starts) if flows.size else flows
    k, r = keys[starts], rounds[starts]
    total = np.cumsum(net)
    first = np.ones(k.size, dtype=bool)
    first[1:] = k[1:] != k[:-1]
    base = np.maximum.accumulate(np.where(first, np.arange(k.size), 0))
    before = np.where(base > 0, total[base - 1], 0.0)
    balances = total - before
    return k, r, balances, names, assets


def check_invariants(result, checks: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Run the named invariant ``checks`` (see the module docstring) on a finished run."""
    out: dict[str, dict[str, Any]] = {}
    model, ledger, summary = result.model, result.ledger, result.summary
    need_balances = any(c in checks for c in ("no_negative_balances", "amm_k"))
    bal = round_end_balances(ledger) if need_balances else None
    if "ledger" in checks:
        ok = bool(summary.get("invariants_ok", False))
        out["ledger"] = _check_result(
            [] if ok else [0], 0.0, "the run summary's invariants_ok is false"
        )
    if "token_conservation" in checks:
        out["token_conservation"] = _token_conservation(model, ledger, summary)
    if "no_negative_balances" in checks:
        k, r, b, names, assets = bal
        n_assets = max(1, len(assets))
        acct = k // n_assets
        mint = names.index("mint") if "mint" in names else -1
        # the scale of each asset: what was ever minted of it (as the ledger's own check)
        minted = np.zeros(n_assets)
        _, src, _, asset, amount, _, _ = _ledger_codes(ledger)
        np.add.at(minted, asset[src == mint], amount[src == mint])
        tol = TOLERANCE * np.maximum(1.0, minted[k % n_assets])
        bad = (acct != mint) & (b < -tol)
        worst = float(b[bad].min()) if bad.any() else 0.0
        msg = ""
        if bad.any():
            i = int(np.flatnonzero(bad)[np.argmin(b[bad])])
            msg = (
                f"account {names[acct[i]]!r} holds {b[i]:.6g} {assets[k[i] % n_assets]} "
                f"at the end of round {int(r[i])}"
            )
        out["no_negative_balances"] = _check_result(r[bad], worst, msg)
    if "amm_k" in checks:
        out["amm_k"] = _amm_k(*bal)
    return out


def _token_conservation(model, ledger, summary) -> dict[str, Any]:
    """``supply_t = supply_{t-1} + minted_t - burned_t`` in the model table, and minted and
    burned per round equal the ledger's flows from ``mint`` and into ``burn``."""
    if not len(model):
        return _check_result([], 0.0, "")
    rnd, src, dst, asset, amount, names, assets = _ledger_codes(ledger)
    tok = assets.index("token") if "token" in assets else -1
    rounds = model["round"].to_numpy(np.int64)
    top = int(max(rounds.max(), rnd.max() if rnd.size else 0)) + 1
    is_tok = asset == tok
    mint_i = names.index("mint") if "mint" in names else -1
    burn_i = names.index("burn") if "burn" in names else -1
    minted = np.bincount(rnd[is_tok & (src == mint_i)], amount[is_tok & (src == mint_i)], top)
    burned = np.bincount(rnd[is_tok & (dst == burn_i)], amount[is_tok & (dst == burn_i)], top)
    supply_ledger = np.cumsum(minted - burned)
    supply = model["token_supply"].to_numpy(float)
    scale = np.maximum(1.0, np.abs(supply))
    errors = {
        "token_supply differs from the ledger": np.abs(supply - supply_ledger[rounds]) / scale,
        "minted differs from the ledger": np.abs(model["minted"].to_numpy(float) - minted[rounds])
        / scale,
        "burned differs from the ledger": np.abs(model["burned"].to_numpy(float) - burned[rounds])
        / scale,
    }
    prev = np.concatenate([[float(summary["tokens"]["supply_start"])], supply[:-1]])
    step = prev + model["minted"].to_numpy(float) - model["burned"].to_numpy(float)
    errors["supply_t != supply_(t-1) + minted_t - burned_t"] = np.abs(supply - step) / scale
    bad_rounds: list[int] = []
    worst, msg = 0.0, ""
    for what, err in errors.items():
        bad = err > 1e-9
        if bad.any():
            bad_rounds += list(rounds[bad])
            i = int(np.argmax(err))
            if err[i] > worst:
                worst, msg = (
                    float(err[i]),
                    f"{what} in round {int(rounds[i])} (by {err[i]:.3g} of supply)",
                )
    return _check_result(bad_rounds, worst, msg)


def _amm_k(keys, rounds, balances, names, assets) -> dict[str, Any]:
    """Every pool's ``x * y`` at the end of a round is at least the previous round's."""
    n_assets = max(1, len(assets))
    bad_rounds: list[int] = []
    worst, msg = 0.0, ""
    acct = keys // n_assets
    for i, name in enumerate(names):
        if not name.startswith("pool:") or "/" not in name:
            continue
        base, quote = name[5:].split("/", 1)
        if base not in assets or quote not in assets:
            continue
        series = {}
        for a in (assets.index(base), assets.index(quote)):
            m = (acct == i) & (keys % n_assets == a)
            series[a] = (rounds[m], balances[m])
        rs = np.union1d(series[assets.index(base)][0], series[assets.index(quote)][0])
        if rs.size < 2:
            continue
        levels = []
        for a in (assets.index(base), assets.index(quote)):
            r, b = series[a]
            pos = np.searchsorted(r, rs, side="right") - 1
            levels.append(np.where(pos >= 0, b[np.maximum(pos, 0)], 0.0))
        k = levels[0] * levels[1]
        drop = (k[:-1] - k[1:]) / np.maximum(k[:-1], 1e-300)
        bad = (k[:-1] > 0) & (drop > TOLERANCE)
        if bad.any():
            j = int(np.argmax(np.where(bad, drop, -np.inf)))
            bad_rounds += list(rs[1:][bad])
            if drop[j] > worst:
                worst = float(drop[j])
                msg = f"{name}: x*y fell by {drop[j]:.3g} (relative) in round {int(rs[j + 1])}"
    return _check_result(bad_rounds, worst, msg)


def agent_outcomes(agents) -> dict[str, list]:
    """Per agent present at genesis: type, id, strategy, final wealth, capital, roi, payoff.

    From the agents table: the agent's last row gives its final wealth (usd, tokens at
    that round's price), its first its capital; ``roi = wealth / capital - 1``,
    ``payoff = wealth - capital``.
    """
    if not len(agents):
        return {k: [] for k in ("type", "id", "strategy", "wealth", "capital", "roi", "payoff")}
    g = agents.sort_values("round", kind="stable").groupby(["type", "id"], observed=True)
    t = g.agg(
        first_round=("round", "first"),
        strategy=("strategy", "first"),
        capital=("capital", "first"),
        wealth=("wealth", "last"),
    ).reset_index()
    t = t[t["first_round"] == 0]
    cap = t["capital"].to_numpy(float)
    wealth = t["wealth"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        roi = np.where(cap > 0, wealth / np.where(cap > 0, cap, 1.0) - 1.0, np.nan)
    return {
        "type": t["type"].astype(str).tolist(),
        "id": t["id"].astype(int).tolist(),
        "strategy": t["strategy"].astype(str).tolist(),
        "wealth": wealth.tolist(),
        "capital": cap.tolist(),
        "roi": roi.tolist(),
        "payoff": (wealth - cap).tolist(),
    }


# ======================================================================================
# Assertions
# ======================================================================================


@dataclass(frozen=True)
class SeedPlan:
    """Seeds of a property: ``min`` first, then ``step`` more while undecided, up to ``max``."""

    min: int
    max: int
    step: int

    @property
    def sizes(self) -> list[int]:
        """Seed counts after each batch (the looks)."""
        out = [self.min]
        while out[-1] < self.max:
            out.append(min(self.max, out[-1] + self.step))
        return out

    @property
    def looks(self) -> int:
        """How many times the verdict may be judged."""
        return len(self.sizes)

    def __str__(self) -> str:
        if self.min == self.max:
            return str(self.min)
        return f"{self.min} to {self.max} by {self.step}"


@dataclass(frozen=True)
class Quick:
    """What ``--quick`` runs: a seed plan and at most ``rounds`` rounds (None: as is)."""

    seeds: SeedPlan
    rounds: int | None


@dataclass(frozen=True)
class Request:
    """What a worker computes from one run for an assertion.

    ``key`` is where the request comes from in the property file (``assert.left``), so a
    metric error names it. ``kind``: ``scalar`` (``expr``), ``agents`` (``expr`` and
    ``expr2`` per agent of ``where``), ``invariants`` (``checks``), ``outcomes``
    (:func:`agent_outcomes`).
    """

    key: str
    kind: str
    expr: Expr | None = None
    expr2: Expr | None = None
    where: tuple[tuple[str, Any], ...] = ()
    checks: tuple[str, ...] = ()


@dataclass
class Outcome:
    """A property's verdict at one look, with its estimate, interval and explanation.

    ``worst`` is the seed index most against the property and the settings (variant
    labels) whose runs show it, for the report's ``mlmarket run`` commands.
    """

    verdict: str
    estimate: float | None = None
    interval: Interval | None = None
    bound: str = ""
    details: list[str] = field(default_factory=list)
    worst: tuple[int, tuple[str, ...]] | None = None
    numbers: list[str] = field(default_factory=list)


Results = Mapping[str, Mapping[int, Mapping[str, Any]]]  # variant -> seed index -> job output


def _values(results: Results, label: str, seeds: Sequence[int], key: str) -> np.ndarray:
    return np.array([results[label][s]["values"][key] for s in seeds], dtype=float)


def _fmt(x: float | None, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if math.isinf(x):
        return "+inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    return f"{x:+.{digits}g}"


def _interval_text(iv: Interval | None) -> str:
    if iv is None:
        return "-"
    return f"[{_fmt(iv.low)}, {_fmt(iv.high)}]"


#: Assertion kinds by name, filled by :func:`assertion` where each kind is defined.
ASSERTIONS: dict[str, type[Assertion]] = {}


def assertion(cls: type[Assertion]) -> type[Assertion]:
    """Register an assertion kind under its ``kind`` (a class decorator)."""
    if cls.kind not in KINDS:  # pragma: no cover - a new kind must be listed in KINDS
        raise ValueError(f"assertion kind {cls.kind!r} is not in KINDS")
    ASSERTIONS[cls.kind] = cls
    return cls


class Assertion:
    """An assertion kind: what to compute in each run and how to judge the seeds.

    Subclasses set ``kind``, parse their keys in ``__init__`` and implement
    :meth:`statement`, :meth:`requests` and :meth:`judge`. ``every_seed`` kinds hold
    only when every seed passes (no interval).
    """

    kind = ""
    every_seed = False
    keys: tuple[str, ...] = ("kind",)
    #: a run stopped by a broken ledger is a violation, not an error
    simulation_failure_violates = False

    def __init__(self, d: Mapping[str, Any], where: str, defaults: Mapping[str, Any]):
        self.where = where
        self.confidence = float(defaults["confidence"])
        self.test = str(defaults["test"])

    def variants(self) -> dict[str, tuple[tuple[str, Any], ...]]:
        """Settings to run, by label, as overrides on top of the property's."""
        return {"base": ()}

    @property
    def tests(self) -> int:
        """Intervals judged at each look (for the Bonferroni level)."""
        return 1

    def statement(self) -> str:
        """The assertion in one line."""
        raise NotImplementedError

    def requests(self, label: str) -> tuple[Request, ...]:
        """What a run of ``label`` must report."""
        raise NotImplementedError

    def judge(self, results: Results, seeds: Sequence[int], level: float, root: int) -> Outcome:
        """The verdict over ``seeds`` at per-look confidence ``level``."""
        raise NotImplementedError

    def check_scenario(self, label: str, scenario) -> None:
        """Validate against the resolved scenario of a variant (raise PropertyError)."""
        for key, expr in self._exprs():
            for path in expr.refs:
                if path.startswith(CONFIG + "."):
                    try:
                        RunView({}, None, None, scenario.to_dict()).value(path)
                    except MetricError as e:
                        raise PropertyError(f"{self.where}.{key}: {e}") from None

    def _exprs(self) -> list[tuple[str, Expr]]:
        return []

    def _keys(self, d: Mapping[str, Any]) -> None:
        _check_keys(d, self.keys, self.where)

    def _common(self, d: Mapping[str, Any], test: bool = True) -> None:
        if "confidence" in d:
            self.confidence = _confidence(d["confidence"], f"{self.where}.confidence")
        if test and "test" in d:
            self.test = _choice(d["test"], TESTS, f"{self.where}.test")


def _scalar_expr(value: Any, where: str) -> Expr:
    e = parse_expression(value, where)
    if e.per_agent:
        raise PropertyError(
            f"{where}: {e.text!r} reads agents.* (one value per agent); only a monotonic "
            "assertion's x and y take per-agent values (here use a summary value or a "
            "model.* aggregate)"
        )
    return e


def _judge_mean(
    x: np.ndarray,
    op: str,
    bound: float,
    level: float,
    test: str,
    rng: np.random.Generator,
    bound_text: str,
) -> Outcome:
    iv = mean_interval(x, level, test, rng)
    verdict = decide(iv, op, bound)
    worst = int(np.argmax(x) if op in ("<", "<=") else np.argmin(x)) if x.size else 0
    out = Outcome(verdict, iv.estimate, iv, bound_text)
    out.details.append(
        f"mean {_fmt(iv.estimate)} over {iv.n} seeds, {100 * level:.4g} % interval "
        f"{_interval_text(iv)} ({iv.method}); needs {bound_text}"
    )
    out.worst = (worst, ())
    return out


@assertion
class Compare(Assertion):
    """``left OP right + margin``: the paired difference of two metrics over seeds."""

    kind = "compare"
    keys = ("kind", "left", "right", "op", "margin", "confidence", "test")

    def __init__(self, d, where, defaults):
        super().__init__(d, where, defaults)
        self._keys(d)
        self._common(d)
        for k in ("left", "op", "right"):
            if k not in d:
                raise PropertyError(f"{where}.{k}: missing (compare needs left, op and right)")
        self.left, self.left_ov = self._side(d["left"], f"{where}.left")
        self.right, self.right_ov = self._side(d["right"], f"{where}.right")
        self.op = _choice(d["op"], OPS, f"{where}.op")
        self.margin = _number(d.get("margin", 0.0), f"{where}.margin")
        self.labels = {"left": self._label("left", self.left_ov)}
        right = self._label("right", self.right_ov)
        self.labels["right"] = self.labels["left"] if self.right_ov == self.left_ov else right

    @staticmethod
    def _label(name: str, ov: tuple) -> str:
        return "base" if not ov else name

    def _side(self, value: Any, where: str) -> tuple[Expr, tuple[tuple[str, Any], ...]]:
        if isinstance(value, Mapping):
            _check_keys(value, ("metric", "overrides"), where)
            if "metric" not in value:
                raise PropertyError(f"{where}.metric: missing (the metric to compare)")
            expr = _scalar_expr(value["metric"], f"{where}.metric")
            return expr, _overrides(value.get("overrides"), f"{where}.overrides")
        return _scalar_expr(value, where), ()

    def _exprs(self):
        return [("left", self.left), ("right", self.right)]

    def variants(self):
        out = {self.labels["left"]: self.left_ov, self.labels["right"]: self.right_ov}
        return out

    def statement(self) -> str:
        def side(e: Expr, ov: tuple) -> str:
            return e.text + (f" [{_ov_text(ov)}]" if ov else "")

        margin = f" + {self.margin:g}" if self.margin else ""
        return (
            f"{side(self.left, self.left_ov)} {self.op} {side(self.right, self.right_ov)}{margin}"
        )

    def requests(self, label):
        out = []
        if self.labels["left"] == label:
            out.append(Request("assert.left", "scalar", self.left))
        if self.labels["right"] == label:
            out.append(Request("assert.right", "scalar", self.right))
        return tuple(out)

    def judge(self, results, seeds, level, root):
        a = _values(results, self.labels["left"], seeds, "assert.left")
        b = _values(results, self.labels["right"], seeds, "assert.right")
        d = a - b
        bound = f"left - right {self.op} {self.margin:g}"
        out = _judge_mean(
            d, self.op, self.margin, level, self.test, bootstrap_rng(root, len(seeds)), bound
        )
        i = out.worst[0]
        out.worst = (i, tuple(dict.fromkeys([self.labels["left"], self.labels["right"]])))
        out.details[0] = "left - right: " + out.details[0]
        out.numbers = [
            f"left {self.left.text} = {a[i]:.6g}",
            f"right {self.right.text} = {b[i]:.6g}",
            f"left - right = {d[i]:+.6g}",
        ]
        return out


@assertion
class Threshold(Assertion):
    """``STAT(metric) OP bound``: the mean (default) or a quantile over seeds."""

    kind = "threshold"
    keys = ("kind", "metric", "op", "bound", "stat", "q", "confidence", "test")

    def __init__(self, d, where, defaults):
        super().__init__(d, where, defaults)
        self._keys(d)
        self._common(d)
        for k in ("metric", "op", "bound"):
            if k not in d:
                raise PropertyError(f"{where}.{k}: missing (threshold needs metric, op and bound)")
        self.metric = _scalar_expr(d["metric"], f"{where}.metric")
        self.op = _choice(d["op"], OPS, f"{where}.op")
        self.bound = _number(d["bound"], f"{where}.bound")
        self.stat = _choice(d.get("stat", "mean"), ("mean", "median", "quantile"), f"{where}.stat")
        if self.stat == "quantile":
            if "q" not in d:
                raise PropertyError(f"{where}.q: missing (stat: quantile needs q in [0, 1])")
            self.q = _number(d["q"], f"{where}.q", 0.0, 1.0)
        elif "q" in d:
            raise PropertyError(f"{where}.q: only with stat: quantile (stat is {self.stat})")
        else:
            self.q = 0.5

    def _exprs(self):
        return [("metric", self.metric)]

    def statement(self) -> str:
        stat = "mean" if self.stat == "mean" else f"quantile {self.q:g}"
        return f"{stat} over seeds of {self.metric.text} {self.op} {self.bound:g}"

    def requests(self, label):
        return (Request("assert.metric", "scalar", self.metric),)

    def judge(self, results, seeds, level, root):
        x = _values(results, "base", seeds, "assert.metric")
        bound = f"{self.op} {self.bound:g}"
        if self.stat == "mean":
            out = _judge_mean(
                x, self.op, self.bound, level, self.test, bootstrap_rng(root, len(seeds)), bound
            )
        else:
            iv = quantile_interval(x, self.q, level)
            out = Outcome(decide(iv, self.op, self.bound), iv.estimate, iv, bound)
            out.details.append(
                f"quantile {self.q:g} {_fmt(iv.estimate)} over {iv.n} seeds, "
                f"{100 * level:.4g} % interval {_interval_text(iv)} ({iv.method}); needs {bound}"
            )
            worst = int(np.argmax(x) if self.op in ("<", "<=") else np.argmin(x))
            out.worst = (worst, ())
        out.worst = (out.worst[0], ("base",))
        out.numbers = [f"{self.metric.text} = {x[out.worst[0]]:.6g}"]
        return out


@assertion
class Monotonic(Assertion):
    """Spearman's rho between two per-agent quantities, per seed, ``rho OP bound``."""

    kind = "monotonic"
    keys = ("kind", "x", "y", "where", "op", "bound", "confidence")

    def __init__(self, d, where, defaults):
        super().__init__(d, where, defaults)
        self._keys(d)
        self._common(d, test=False)
        for k in ("x", "y", "bound"):
            if k not in d:
                raise PropertyError(
                    f"{where}.{k}: missing (monotonic needs x, y and bound, e.g. x: "
                    "last(agents.quality), y: sum(agents.revenue), bound: 0.5)"
                )
        self.x = parse_expression(d["x"], f"{where}.x")
        self.y = parse_expression(d["y"], f"{where}.y")
        for k, e in (("x", self.x), ("y", self.y)):
            if not e.per_agent:
                raise PropertyError(
                    f"{where}.{k}: {e.text!r} is one value per run; a rank correlation needs "
                    "a value per agent, e.g. sum(agents.revenue) or last(agents.quality)"
                )
        self.op = _choice(d.get("op", ">="), OPS, f"{where}.op")
        self.bound = _number(d["bound"], f"{where}.bound", -1.0, 1.0)
        self.select = _where(d.get("where", {}), f"{where}.where")

    def _exprs(self):
        return [("x", self.x), ("y", self.y)]

    def statement(self) -> str:
        sel = ", ".join(f"{k}={v}" for k, v in self.select)
        sel = f"; {sel}" if sel else ""
        return f"spearman({self.x.text}, {self.y.text}{sel}) {self.op} {self.bound:g}"

    def requests(self, label):
        return (Request("assert.x", "agents", self.x, self.y, self.select),)

    def judge(self, results, seeds, level, root):
        rhos, ns = [], []
        for s in seeds:
            v = results["base"][s]["values"]["assert.x"]
            rhos.append(spearman(v["x"], v["y"]))
            ns.append(len(v["x"]))
        rhos_a = np.array(rhos, dtype=float)
        ok = np.isfinite(rhos_a)
        bound = f"{self.op} {self.bound:g}"
        out = Outcome("undecided", bound=bound)
        if not ok.any():
            out.details.append(
                "Spearman's rho is undefined in every seed (fewer than two agents, or a "
                f"constant x or y; agents per seed: {ns})"
            )
            out.worst = (0, ("base",))
            return out
        if ok.sum() == 1:
            s = int(np.flatnonzero(ok)[0])
            v = results["base"][seeds[s]]["values"]["assert.x"]
            iv = spearman_interval(v["x"], v["y"], level)
        else:
            iv = fisher_mean_interval(rhos_a[ok], level)
        out = Outcome(decide(iv, self.op, self.bound), iv.estimate, iv, bound)
        out.details.append(
            f"rho {_fmt(iv.estimate)} over {iv.n} seeds ({min(ns)} to {max(ns)} agents each), "
            f"{100 * level:.4g} % interval {_interval_text(iv)} ({iv.method}); needs {bound}"
        )
        if (~ok).any():
            out.details.append(
                f"rho undefined (constant values) in {int((~ok).sum())} seeds, left out"
            )
        filled = np.where(ok, rhos_a, np.nan)
        worst = int(np.nanargmin(filled) if self.op in (">", ">=") else np.nanargmax(filled))
        out.worst = (worst, ("base",))
        out.numbers = [f"rho = {rhos_a[worst]:+.4f} over {ns[worst]} agents"]
        return out


@assertion
class Invariant(Assertion):
    """Accounting invariants in every round of every seed (see :func:`check_invariants`)."""

    kind = "invariant"
    keys = ("kind", "checks")
    every_seed = True
    simulation_failure_violates = True

    def __init__(self, d, where, defaults):
        super().__init__(d, where, defaults)
        self._keys(d)
        checks = d.get("checks", list(CHECKS))
        if isinstance(checks, str):
            checks = [checks]
        if not isinstance(checks, list) or not checks:
            raise PropertyError(
                f"{where}.checks: expected a list of checks ({', '.join(CHECKS)}); "
                f"got {_show(checks)}"
            )
        self.checks = tuple(
            _choice(c, CHECKS, f"{where}.checks[{i}]") for i, c in enumerate(checks)
        )

    def statement(self) -> str:
        return f"every round of every seed: {', '.join(self.checks)}"

    def requests(self, label):
        return (Request("assert.checks", "invariants", checks=self.checks),)

    def judge(self, results, seeds, level, root):
        bad_rounds, first, lines = 0, None, []
        for i, s in enumerate(seeds):
            r = results["base"][s]
            if r["status"] != "ok":
                bad_rounds += 1
                lines.append(f"seed {s}: the run stopped: {r['error']}")
                first = i if first is None else first
                continue
            for name, c in r["values"]["assert.checks"].items():
                if not c["ok"]:
                    bad_rounds += c["bad_rounds"]
                    lines.append(
                        f"seed {s}: {name}: {c['bad_rounds']} rounds, first: {c['message']}"
                    )
                    first = i if first is None else first
        out = Outcome(
            "violated" if first is not None else "holds", float(bad_rounds), None, "0 rounds"
        )
        out.details.append(
            f"{bad_rounds} failing rounds over {len(seeds)} seeds ({', '.join(self.checks)})"
        )
        out.details += lines[:10]
        out.worst = (first if first is not None else 0, ("base",))
        return out


@assertion
class NoProfitableDeviation(Assertion):
    """No deviation in the list gains its deviators more than ``epsilon`` (paired runs)."""

    kind = "no_profitable_deviation"
    keys = ("kind", "deviations", "metric", "epsilon", "confidence", "test")

    def __init__(self, d, where, defaults):
        super().__init__(d, where, defaults)
        self._keys(d)
        self._common(d)
        devs = d.get("deviations")
        if not isinstance(devs, list) or not devs:
            raise PropertyError(
                f"{where}.deviations: expected a list of deviations, each {{name, overrides}} "
                "(e.g. overrides: {population.developers.lazy_fraction: 0.35}); "
                f"got {_show(devs)}"
            )
        self.metric = _choice(d.get("metric", "roi"), DEVIATION_METRICS, f"{where}.metric")
        self.epsilon = _number(d.get("epsilon", 0.0), f"{where}.epsilon")
        self.deviations: list[tuple[str, tuple, tuple]] = []
        names = set()
        for i, dev in enumerate(devs):
            w = f"{where}.deviations[{i}]"
            if not isinstance(dev, Mapping):
                raise PropertyError(f"{w}: expected a mapping {{name, overrides, deviators}}")
            _check_keys(dev, ("name", "overrides", "deviators"), w)
            name = dev.get("name", f"deviation {i}")
            if not isinstance(name, str) or not name.strip():
                raise PropertyError(f"{w}.name: expected a non-empty text; got {_show(name)}")
            if name in names:
                raise PropertyError(f"{w}.name: {name!r} is used twice")
            names.add(name)
            ov = _overrides(dev.get("overrides"), f"{w}.overrides")
            if not ov:
                raise PropertyError(f"{w}.overrides: missing (what the deviators change)")
            sel = _where(dev.get("deviators", {}), f"{w}.deviators", keys=("type", "strategy"))
            self.deviations.append((name, ov, sel))

    @property
    def tests(self) -> int:
        return len(self.deviations)

    def variants(self):
        out = {"base": ()}
        for name, ov, _ in self.deviations:
            out[f"deviation:{name}"] = ov
        return out

    def statement(self) -> str:
        names = ", ".join(n for n, _, _ in self.deviations)
        return f"gain in {self.metric} of deviators <= {self.epsilon:g} ({names})"

    def requests(self, label):
        return (Request("assert.deviations", "outcomes"),)

    def judge(self, results, seeds, level, root):
        bound = f"<= {self.epsilon:g}"
        per = []
        for t, (name, _, sel) in enumerate(self.deviations):
            gains, counts = [], []
            for s in seeds:
                g, n = deviation_gain(
                    results["base"][s]["values"]["assert.deviations"],
                    results[f"deviation:{name}"][s]["values"]["assert.deviations"],
                    dict(sel),
                    self.metric,
                )
                gains.append(g)
                counts.append(n)
            g = np.array(gains, dtype=float)
            ok = np.isfinite(g)
            iv = mean_interval(g[ok], level, self.test, bootstrap_rng(root, len(seeds), t + 1))
            per.append((name, g, ok, counts, iv, decide(iv, "<=", self.epsilon)))
        verdicts = [p[5] for p in per]
        verdict = (
            "violated"
            if "violated" in verdicts
            else "holds"
            if all(v == "holds" for v in verdicts)
            else "undecided"
        )
        top = max(
            range(len(per)),
            key=lambda i: -math.inf if math.isnan(per[i][4].estimate) else per[i][4].estimate,
        )
        name, g, ok, counts, iv, _ = per[top]
        out = Outcome(verdict, iv.estimate, iv, bound)
        for nm, _, okk, cc, ivv, vv in per:
            out.details.append(
                f"{nm}: gain {_fmt(ivv.estimate)}, {100 * level:.4g} % interval "
                f"{_interval_text(ivv)} ({ivv.method}) over {int(okk.sum())} seeds, "
                f"{min(cc)} to {max(cc)} deviators per seed: {vv}"
            )
            if (~okk).any():
                out.details.append(f"{nm}: no deviator in {int((~okk).sum())} seeds, left out")
        filled = np.where(ok, g, -np.inf)
        worst = int(np.argmax(filled))
        out.worst = (worst, ("base", f"deviation:{name}"))
        out.numbers = [
            f"{name}: deviators' gain in {self.metric} = {g[worst]:+.6g} "
            f"({counts[worst]} deviators)"
        ]
        return out


def deviation_gain(
    base: Mapping[str, list], dev: Mapping[str, list], select: Mapping[str, Any], metric: str
) -> tuple[float, int]:
    """The deviators' mean gain in ``metric`` and how many there are (see the module doc).

    ``base`` and ``dev`` are :func:`agent_outcomes` of the undeviated and the deviated
    run. A deviator is a genesis agent of ``dev`` whose strategy differs from the same
    agent's (type, id) in ``base``, or who is not in ``base``; ``select`` ({type,
    strategy}) narrows them. Its counterfactual is its own value in ``base``, else the
    mean over the honest genesis agents of its type there. ``nan`` with no deviator.
    """
    before = {
        (t, i): (s, v)
        for t, i, s, v in zip(base["type"], base["id"], base["strategy"], base[metric], strict=True)
    }
    honest: dict[str, list[float]] = {}
    for t, s, v in zip(base["type"], base["strategy"], base[metric], strict=True):
        if s == "honest" and math.isfinite(v):
            honest.setdefault(t, []).append(v)
    wanted_types = _as_list(select.get("type"))
    wanted_strats = _as_list(select.get("strategy"))
    now, then = [], []
    for t, i, s, v in zip(dev["type"], dev["id"], dev["strategy"], dev[metric], strict=True):
        old = before.get((t, i))
        if old is not None and old[0] == s:
            continue
        if wanted_types and t not in wanted_types:
            continue
        if wanted_strats and s not in wanted_strats:
            continue
        if not math.isfinite(v):
            continue
        ref = (
            old[1]
            if old is not None
            else (float(np.mean(honest[t])) if honest.get(t) else math.nan)
        )
        if not math.isfinite(ref):
            continue
        now.append(v)
        then.append(ref)
    if not now:
        return math.nan, 0
    return float(np.mean(now) - np.mean(then)), len(now)


def _as_list(v: Any) -> list[str]:
    if v is None:
        return []
    return [v] if isinstance(v, str) else list(v)


@assertion
class SybilProof(Assertion):
    """Splitting into identities does not pay: ``metric <= epsilon`` in the mean over seeds.

    ``against: honest`` (default): the metric is the split groups' standing against
    honest developers in the same run (default ``sybils.roi_vs_honest``).
    ``against: undivided``: a paired comparison of the same owners split and whole;
    each seed also runs with ``population.sybils.identities = 1`` (every owner keeps its
    capital in one identity) and the difference ``metric(split) - metric(undivided)``
    (default metric ``sybils.roi_mean``, the groups' mean return) must be at most
    ``epsilon``: splitting one participant into k identities does not raise its payoff.
    """

    kind = "sybil_proof"
    keys = ("kind", "metric", "epsilon", "against", "confidence", "test")
    UNDIVIDED = (("population.sybils.identities", 1),)

    def __init__(self, d, where, defaults):
        super().__init__(d, where, defaults)
        self._keys(d)
        self._common(d)
        self.against = _choice(
            d.get("against", "honest"), ("honest", "undivided"), f"{where}.against"
        )
        default = "sybils.roi_vs_honest" if self.against == "honest" else "sybils.roi_mean"
        self.metric = _scalar_expr(d.get("metric", default), f"{where}.metric")
        self.epsilon = _number(d.get("epsilon", 0.0), f"{where}.epsilon")

    def _exprs(self):
        return [("metric", self.metric)]

    def variants(self):
        if self.against == "honest":
            return {"base": ()}
        return {"base": (), "undivided": self.UNDIVIDED}

    def check_scenario(self, label, scenario):
        super().check_scenario(label, scenario)
        if label == "base" and scenario.population.sybils.owners <= 0:
            raise PropertyError(
                f"{self.where}: sybil_proof needs sybils in the scenario "
                "(population.sybils.owners > 0, e.g. scenario: sybil_split)"
            )

    def statement(self) -> str:
        if self.against == "undivided":
            return (
                f"mean over seeds of {self.metric.text} split - undivided "
                f"(population.sybils.identities=1) <= {self.epsilon:g}"
            )
        return f"mean over seeds of {self.metric.text} <= {self.epsilon:g}"

    def requests(self, label):
        return (Request("assert.metric", "scalar", self.metric),)

    def judge(self, results, seeds, level, root):
        x = _values(results, "base", seeds, "assert.metric")
        if self.against == "undivided":
            whole = _values(results, "undivided", seeds, "assert.metric")
            d = x - whole
        else:
            d = x
        out = _judge_mean(
            d,
            "<=",
            self.epsilon,
            level,
            self.test,
            bootstrap_rng(root, len(seeds)),
            f"<= {self.epsilon:g}",
        )
        i = out.worst[0]
        if self.against == "undivided":
            out.worst = (i, ("base", "undivided"))
            out.details[0] = "split - undivided: " + out.details[0]
            out.numbers = [
                f"split {self.metric.text} = {x[i]:+.6g}",
                f"undivided {self.metric.text} = {whole[i]:+.6g}",
                f"split - undivided = {d[i]:+.6g}",
            ]
        else:
            out.worst = (i, ("base",))
            out.numbers = [f"{self.metric.text} = {x[i]:+.6g}"]
        return out


@assertion
class BudgetBalance(Assertion):
    """``spend <= budget`` in every seed (both expressions; see the module doc)."""

    kind = "budget_balance"
    keys = ("kind", "spend", "budget")
    every_seed = True
    SPEND = "flows.payouts - flows.slashed"
    BUDGET = "config.market.treasury + config.market.issuance_per_round * rounds"

    def __init__(self, d, where, defaults):
        super().__init__(d, where, defaults)
        self._keys(d)
        self.spend = _scalar_expr(d.get("spend", self.SPEND), f"{where}.spend")
        self.budget = _scalar_expr(d.get("budget", self.BUDGET), f"{where}.budget")

    def _exprs(self):
        return [("spend", self.spend), ("budget", self.budget)]

    def statement(self) -> str:
        return f"{self.spend.text} <= {self.budget.text} in every seed"

    def requests(self, label):
        return (
            Request("assert.spend", "scalar", self.spend),
            Request("assert.budget", "scalar", self.budget),
        )

    def judge(self, results, seeds, level, root):
        spend = _values(results, "base", seeds, "assert.spend")
        budget = _values(results, "base", seeds, "assert.budget")
        tol = TOLERANCE * np.maximum(1.0, np.abs(budget))
        over = spend - budget > tol
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(budget > 0, spend / np.where(budget > 0, budget, 1.0), np.nan)
        worst = int(np.argmax(spend - budget))
        est = float(np.nanmax(share)) if np.isfinite(share).any() else float(np.max(spend - budget))
        out = Outcome("violated" if over.any() else "holds", est, None, "spend / budget <= 1")
        out.details.append(
            f"largest share of the budget spent: {est:.4g} (spend {spend[worst]:.6g}, "
            f"budget {budget[worst]:.6g}); over budget in {int(over.sum())} of {len(seeds)} seeds"
        )
        out.worst = (worst, ("base",))
        out.numbers = [f"spend {spend[worst]:.6g}", f"budget {budget[worst]:.6g}"]
        return out


# ======================================================================================
# Property files
# ======================================================================================

FILE_KEYS = ("properties", "defaults")
DEFAULT_KEYS = ("seeds", "seed", "confidence", "test", "quick")
PROPERTY_KEYS = (
    "name",
    "description",
    "scenario",
    "sweep",
    "point",
    "overrides",
    "seeds",
    "seed",
    "expect",
    "quick",
    "assert",
)
QUICK_KEYS = ("seeds", "rounds")
DEFAULT_PLAN = SeedPlan(4, 16, 4)
DEFAULT_QUICK = Quick(SeedPlan(3, 3, 3), 50)


def _check_keys(d: Mapping[str, Any], allowed: Sequence[str], where: str) -> None:
    for k in d:
        if k not in allowed:
            raise PropertyError(
                f"{where}: unknown key {_show(k)}{_suggest(str(k), allowed, 0.5)} "
                f"(allowed: {', '.join(allowed)})"
            )


def _mapping(value: Any, where: str, what: str = "a mapping") -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PropertyError(f"{where}: expected {what}; got {_show(value)}")
    return value


def _number(value: Any, where: str, lo: float | None = None, hi: float | None = None) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (lo is not None and value < lo) or (hi is not None and value > hi):
        rng = ""
        if lo is not None or hi is not None:
            rng = f" in [{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]"
        raise PropertyError(f"{where}: expected a number{rng}; got {_show(value)}")
    return float(value)


def _int(value: Any, where: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise PropertyError(f"{where}: expected an integer in [{lo}, {hi}]; got {_show(value)}")
    return value


def _choice(value: Any, options: Sequence[str], where: str) -> str:
    if not isinstance(value, str) or value not in options:
        raise PropertyError(
            f"{where}: expected one of {', '.join(repr(o) for o in options)}; got "
            f"{_show(value)}{_suggest(str(value), options, 0.4)}"
        )
    return value


def _confidence(value: Any, where: str) -> float:
    c = _number(value, where)
    if not 0.5 <= c < 1.0:
        raise PropertyError(
            f"{where}: expected a confidence level in [0.5, 1), e.g. 0.95; got {c:g}"
        )
    return c


def _overrides(value: Any, where: str) -> tuple[tuple[str, Any], ...]:
    """``{key.path: value}`` or a list of ``"key.path=value"`` texts, as pairs."""
    if value is None:
        return ()
    pairs: list[tuple[str, Any]] = []
    if isinstance(value, Mapping):
        pairs = list(value.items())
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise PropertyError(f"{where}[{i}]: expected KEY.PATH=VALUE; got {_show(item)}")
            try:
                pairs.append(parse_override(item))
            except ScenarioError as e:
                raise PropertyError(f"{where}[{i}]: {e}") from None
    else:
        raise PropertyError(
            f"{where}: expected a mapping of key paths to values (or a list of KEY=VALUE); "
            f"got {_show(value)}"
        )
    for k, _ in pairs:
        if not isinstance(k, str) or not k or any(not p for p in k.split(".")):
            raise PropertyError(f"{where}: {_show(k)} is not a key path like run.rounds")
        if k == "run.seed":
            raise PropertyError(
                f"{where}.run.seed: seeds come from 'seeds' and the root 'seed' (the same "
                "seeds under every setting a property compares); remove run.seed"
            )
    return tuple(pairs)


def _seed_plan(value: Any, where: str) -> SeedPlan:
    if isinstance(value, int) and not isinstance(value, bool):
        n = _int(value, where, 1, MAX_SEEDS)
        return SeedPlan(n, n, n)
    if isinstance(value, Mapping):
        _check_keys(value, ("min", "max", "step"), where)
        if "min" not in value or "max" not in value:
            raise PropertyError(f"{where}: a sequential plan needs min and max (and step)")
        lo = _int(value["min"], f"{where}.min", 1, MAX_SEEDS)
        hi = _int(value["max"], f"{where}.max", 1, MAX_SEEDS)
        if lo > hi:
            raise PropertyError(f"{where}: min {lo} > max {hi}")
        step = _int(value.get("step", lo), f"{where}.step", 1, MAX_SEEDS)
        return SeedPlan(lo, hi, step)
    raise PropertyError(
        f"{where}: expected a number of seeds or {{min, max, step}}; got {_show(value)}"
    )


def _quick(value: Any, where: str, base: Quick) -> Quick:
    d = _mapping(value, where, "a mapping {seeds, rounds}")
    _check_keys(d, QUICK_KEYS, where)
    seeds = _seed_plan(d["seeds"], f"{where}.seeds") if "seeds" in d else base.seeds
    rounds = base.rounds
    if "rounds" in d:
        rounds = None if d["rounds"] is None else _int(d["rounds"], f"{where}.rounds", 1, 100_000)
    return Quick(seeds, rounds)


def _where(value: Any, where: str, keys: Sequence[str] = WHERE_KEYS) -> tuple[tuple[str, Any], ...]:
    d = _mapping(value, where, "a mapping like {type: provider}")
    _check_keys(d, keys, where)
    out = []
    for k, v in d.items():
        if k == "genesis":
            if not isinstance(v, bool):
                raise PropertyError(f"{where}.genesis: expected true or false; got {_show(v)}")
        elif isinstance(v, list):
            if not v or not all(isinstance(x, str) for x in v):
                raise PropertyError(
                    f"{where}.{k}: expected a name or a list of names; got {_show(v)}"
                )
            v = tuple(v)
        elif not isinstance(v, str):
            raise PropertyError(f"{where}.{k}: expected a name or a list of names; got {_show(v)}")
        out.append((k, v))
    return tuple(out)


def _ov_text(ov: Sequence[tuple[str, Any]]) -> str:
    return ", ".join(f"{k}={_scalar_text(v)}" for k, v in ov)


def _scalar_text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, str):
        return v
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return f"{v:.1f}"
    if isinstance(v, list | tuple | Mapping):
        import json

        return json.dumps(v)
    return str(v)


@dataclass
class Property:
    """One property of a file, validated: its scenario (resolved), seeds and assertion."""

    index: int
    name: str
    where: str
    source: str
    scenario_ref: str | None
    base: dict[str, Any]
    overrides: tuple[tuple[str, Any], ...]
    seeds: SeedPlan
    seed: int
    expect: str
    check: Assertion
    quick: Quick
    description: str = ""
    rounds: int = 0  # the scenario's own run.rounds (after the property's overrides)

    def run_plan(
        self, quick: bool, seeds: int | None
    ) -> tuple[SeedPlan, tuple[tuple[str, Any], ...]]:
        """The seed plan and overrides of a check: ``--quick`` and ``--seeds`` applied."""
        plan = self.quick.seeds if quick else self.seeds
        if seeds is not None:
            plan = SeedPlan(seeds, seeds, seeds)
        ov = tuple((k, v) for k, v in self.overrides if k != "run.rounds")
        rounds = self.rounds
        if quick and self.quick.rounds is not None:
            rounds = min(rounds, self.quick.rounds)
        return plan, merge_overrides(ov, [("run.rounds", rounds)])


def shipped_property_files() -> list[str]:
    """Names of the property files shipped in ``scenarios/properties``."""
    root = resources.files("scenarios.properties")
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))


def _is_name(ref: str) -> bool:
    return not ref.endswith((".yaml", ".yml")) and "/" not in ref and "\\" not in ref


def _read_file(ref: str) -> tuple[bytes, str, Path, str]:
    p = Path(ref)
    if _is_name(ref) and not p.exists():
        res = resources.files("scenarios.properties") / f"{ref}.yaml"
        if res.is_file():
            return res.read_bytes(), f"{ref}.yaml", Path.cwd(), ref
    if p.is_file():
        try:
            return p.read_bytes(), str(p), p.resolve().parent, p.stem
        except OSError as e:
            raise PropertyError(f"{p}: cannot be read ({e.strerror})") from None
    if p.exists():
        raise PropertyError(f"{p}: is not a file")
    names = shipped_property_files()
    msg = f"property file {_show(ref)} not found"
    msg += _suggest(p.stem, names, 0.6).replace("did you mean", "did you mean the shipped file")
    raise PropertyError(msg + f" (shipped: {', '.join(names)})")


def _display_path(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:  # pragma: no cover - another drive on Windows
        return str(path)


def _resolve_scenario(ref: Any, folder: Path, where: str) -> tuple[dict[str, Any], str]:
    if not isinstance(ref, str) or not ref:
        raise PropertyError(f"{where}: expected a scenario name or path; got {_show(ref)}")
    shipped = shipped_scenarios()
    path = (folder / ref).resolve()
    try:
        if _is_name(ref) and (ref in shipped or not path.exists()):
            if ref not in shipped:
                raise PropertyError(
                    f"{where}: unknown scenario {ref!r}{_suggest(ref, shipped, 0.5)} "
                    f"(shipped: {', '.join(shipped)}; or a path to a YAML file)"
                )
            return load_scenario(ref).to_dict(), ref
        if not path.is_file():
            raise PropertyError(f"{where}: no scenario file {_display_path(path)}")
        return load_scenario(str(path)).to_dict(), _display_path(path)
    except PropertyError:
        raise
    except ScenarioError as e:
        raise PropertyError(f"{where}: {e}") from None


def _resolve_sweep_point(d: Mapping[str, Any], folder: Path, where: str):
    from sim.sweep import load_sweep

    ref = d["sweep"]
    if not isinstance(ref, str) or not ref:
        raise PropertyError(f"{where}.sweep: expected a sweep name or path; got {_show(ref)}")
    if "point" not in d:
        raise PropertyError(f"{where}.point: missing (which point of sweep {ref!r}, from 0)")
    local = folder / ref
    try:
        spec = load_sweep(str(local) if local.is_file() else ref)
    except ScenarioError as e:
        raise PropertyError(f"{where}.sweep: {e}") from None
    point = _int(d["point"], f"{where}.point", 0, spec.n_points - 1)
    base_ref: str | None = spec.base_ref
    if base_ref not in shipped_scenarios():
        sweep_dir = local.resolve().parent if local.is_file() else Path.cwd()
        candidate = sweep_dir / str(base_ref)
        base_ref = (
            _display_path(candidate) if base_ref != "inline" and candidate.is_file() else None
        )
    return spec.base, tuple(spec.point_overrides(point)), spec.seed, base_ref


def load_properties(ref: str | Path) -> list[Property]:
    """Read and validate a property file (a path, or a shipped name in ``scenarios/properties``).

    Every scenario, override and expression is checked; anything wrong raises
    :class:`PropertyError` naming the key (``FILE: properties[2].assert.op: ...``).
    """
    text, where, folder, _ = _read_file(str(ref))
    try:
        data = parse_yaml(text, where)
    except ScenarioError as e:
        raise PropertyError(
            str(e).replace(
                "a scenario must be a mapping of sections",
                "a property file must be a mapping with 'properties'",
            )
        ) from None
    _check_keys(data, FILE_KEYS, where)
    defaults: dict[str, Any] = {
        "seeds": DEFAULT_PLAN,
        "seed": 0,
        "confidence": 0.95,
        "test": "bootstrap",
        "quick": DEFAULT_QUICK,
    }
    if "defaults" in data:
        dd = _mapping(data["defaults"], f"{where}: defaults")
        _check_keys(dd, DEFAULT_KEYS, f"{where}: defaults")
        _apply_defaults(defaults, dd, f"{where}: defaults")
    props_raw = data.get("properties")
    if not isinstance(props_raw, list) or not props_raw:
        raise PropertyError(
            f"{where}: properties: expected a list of properties (each with name, scenario "
            f"and assert); got {_show(props_raw)}"
        )
    out: list[Property] = []
    names: dict[str, int] = {}
    for i, raw in enumerate(props_raw):
        p = _parse_property(raw, i, where, folder, defaults)
        if p.name in names:
            raise PropertyError(
                f"{where}: properties[{i}].name: {p.name!r} is also the name of "
                f"properties[{names[p.name]}]; names must differ"
            )
        names[p.name] = i
        out.append(p)
    return out


def _apply_defaults(defaults: dict[str, Any], d: Mapping[str, Any], where: str) -> None:
    if "seeds" in d:
        defaults["seeds"] = _seed_plan(d["seeds"], f"{where}.seeds")
    if "seed" in d:
        defaults["seed"] = _int(d["seed"], f"{where}.seed", 0, 2**63 - 1)
    if "confidence" in d:
        defaults["confidence"] = _confidence(d["confidence"], f"{where}.confidence")
    if "test" in d:
        defaults["test"] = _choice(d["test"], TESTS, f"{where}.test")
    if "quick" in d:
        defaults["quick"] = _quick(d["quick"], f"{where}.quick", defaults["quick"])


def _parse_property(
    raw: Any, i: int, file: str, folder: Path, defaults: Mapping[str, Any]
) -> Property:
    where = f"{file}: properties[{i}]"
    d = _mapping(raw, where, "a mapping with name, scenario and assert")
    _check_keys(d, PROPERTY_KEYS, where)
    name = d.get("name")
    if not isinstance(name, str) or not name.strip():
        raise PropertyError(f"{where}.name: missing or empty (every property needs a name)")
    name = name.strip()
    if "scenario" in d and "sweep" in d:
        raise PropertyError(f"{where}: give scenario or sweep (with point), not both")
    root = defaults["seed"]
    if "sweep" in d:
        base, pre, root, scenario_ref = _resolve_sweep_point(d, folder, where)
    elif "scenario" in d:
        if "point" in d:
            raise PropertyError(f"{where}.point: only with sweep (a point of a sweep)")
        base, scenario_ref = _resolve_scenario(d["scenario"], folder, f"{where}.scenario")
        pre = ()
    else:
        raise PropertyError(
            f"{where}.scenario: missing (a shipped scenario such as baseline, a path, or "
            "sweep: NAME with point: I)"
        )
    overrides = (*pre, *_overrides(d.get("overrides"), f"{where}.overrides"))
    seeds = _seed_plan(d["seeds"], f"{where}.seeds") if "seeds" in d else defaults["seeds"]
    if "seed" in d:
        root = _int(d["seed"], f"{where}.seed", 0, 2**63 - 1)
    expect = _choice(d.get("expect", "holds"), EXPECT, f"{where}.expect")
    quick = (
        _quick(d["quick"], f"{where}.quick", defaults["quick"])
        if "quick" in d
        else defaults["quick"]
    )
    desc = d.get("description", "")
    if not isinstance(desc, str):
        raise PropertyError(f"{where}.description: expected text; got {_show(desc)}")
    a = d.get("assert")
    if a is None:
        raise PropertyError(
            f"{where}.assert: missing (e.g. {{kind: compare, left: ..., op: '<', right: ...}})"
        )
    a = _mapping(a, f"{where}.assert", f"a mapping with kind ({', '.join(KINDS)})")
    kind = _choice(a.get("kind"), KINDS, f"{where}.assert.kind")
    check = ASSERTIONS[kind](a, f"{where}.assert", defaults)
    try:
        scenario = load_scenario(base, list(overrides))
    except ScenarioError as e:
        raise PropertyError(f"{where}.overrides: {e}") from None
    for label, extra in check.variants().items():
        key = f"{where}.assert" + ("" if label == "base" else f" ({label})")
        try:
            sc = load_scenario(base, [*overrides, *extra])
        except ScenarioError as e:
            raise PropertyError(f"{key}.overrides: {e}") from None
        check.check_scenario(label, sc)
    return Property(
        index=i,
        name=name,
        where=where,
        source=file,
        scenario_ref=scenario_ref,
        base=base,
        overrides=tuple(overrides),
        seeds=seeds,
        seed=root,
        expect=expect,
        check=check,
        quick=quick,
        description=desc.strip(),
        rounds=scenario.run.rounds,
    )


# ======================================================================================
# Runs: jobs, the worker function, executors
# ======================================================================================


@dataclass(frozen=True)
class Job:
    """One run of one property's setting at one seed, as plain data for any worker."""

    prop: int
    variant: str
    seed: int
    run_seed: int
    base: dict[str, Any]
    overrides: tuple[tuple[str, Any], ...]
    requests: tuple[Request, ...]


def _forget_models():
    """The sweep's guard against mesa < 3.4 keeping every model alive (mesa issue #3179)."""
    try:
        from sim.sweep import _forget_models as forget
    except ImportError:  # pragma: no cover - the sweep module moved it
        return contextlib.nullcontext()
    return forget()


def _error_text(e: BaseException) -> str:
    import traceback

    text = f"{type(e).__name__}: {e}"
    tb = traceback.extract_tb(e.__traceback__)
    if tb:
        f = tb[-1]
        text += f" (at {Path(f.filename).name}:{f.lineno})"
    return text[:2000]


def answer(request: Request, result, view: RunView) -> Any:
    """One request's value from a finished run (:class:`sim.runner.RunResult`)."""
    if request.kind == "scalar":
        v = request.expr.evaluate(view)
        v = float(v)
        if not math.isfinite(v):
            raise ValueError(f"{request.expr.text} evaluates to {v} (a division by zero?)")
        return v
    if request.kind == "agents":
        import pandas as pd

        where = dict(request.where)
        x = request.expr.evaluate(view, where)
        y = request.expr2.evaluate(view, where)
        if not isinstance(x, pd.Series):
            x = pd.Series(float(x), index=y.index)
        if not isinstance(y, pd.Series):
            y = pd.Series(float(y), index=x.index)
        both = pd.concat({"x": x, "y": y}, axis=1, join="inner")
        both = both[np.isfinite(both["x"]) & np.isfinite(both["y"])]
        return {"x": both["x"].tolist(), "y": both["y"].tolist()}
    if request.kind == "invariants":
        return check_invariants(result, request.checks)
    if request.kind == "outcomes":
        return agent_outcomes(result.agents)
    raise ValueError(f"unknown request kind {request.kind!r}")


def run_job(job: Job) -> dict[str, Any]:
    """Run a job's scenario and answer its requests; failures are returned, not raised.

    ``status``: ``ok``; ``failed`` with ``failure`` ``simulation`` (the run stopped, e.g.
    a broken ledger invariant), ``metric`` (a metric the run does not have: bad input),
    ``value`` (a metric that is not a finite number) or ``error`` (anything else); every
    request is answered that can be, and ``errors`` maps each failing one to ``(failure,
    message)`` (``failure``, ``error`` and ``key`` repeat the first).
    """
    from sim.model import SimulationError

    t0 = time.perf_counter()
    out: dict[str, Any] = {
        "prop": job.prop,
        "variant": job.variant,
        "seed": job.seed,
        "run_seed": job.run_seed,
        "status": "ok",
        "failure": None,
        "error": None,
        "key": None,
        "values": {},
        "errors": {},
        "wall": 0.0,
    }
    result = None
    try:
        from sim.runner import run

        scenario = load_scenario(job.base, [*job.overrides, ("run.seed", job.run_seed)])
        with _forget_models():
            result = run(scenario)
    except SimulationError as e:
        out.update(status="failed", failure="simulation", error=str(e))
    except Exception as e:
        out.update(status="failed", failure="error", error=_error_text(e))
    if result is not None:
        view = RunView(result.summary, result.model, result.agents, result.scenario.to_dict())
        for req in job.requests:
            try:
                out["values"][req.key] = answer(req, result, view)
            except MetricError as e:
                out["errors"][req.key] = ("metric", str(e))
            except ValueError as e:
                out["errors"][req.key] = ("value", str(e))
            except Exception as e:
                out["errors"][req.key] = ("error", _error_text(e))
        if out["errors"]:
            key, (failure, error) = next(iter(out["errors"].items()))
            out.update(status="failed", failure=failure, error=error, key=key)
    result = None
    out["wall"] = time.perf_counter() - t0
    return out


def run_key(job: Job) -> str:
    """Identifies a run: jobs with equal keys simulate exactly the same thing."""
    import json

    overrides = sorted(merge_overrides(job.overrides), key=lambda kv: kv[0])
    return json.dumps([job.base, overrides, job.run_seed], sort_keys=True, default=str)


def merge_jobs(jobs: Sequence[Job]) -> Job:
    """One job answering the requests of several jobs of the same run.

    Each request's key becomes ``PROP|VARIANT|KEY``; :func:`split_output` undoes it.
    """
    import dataclasses

    if len(jobs) == 1:
        return jobs[0]
    reqs = tuple(
        dataclasses.replace(r, key=f"{j.prop}|{j.variant}|{r.key}")
        for j in jobs
        for r in j.requests
    )
    return dataclasses.replace(jobs[0], requests=reqs)


def split_output(out: dict[str, Any], jobs: Sequence[Job]) -> list[dict[str, Any]]:
    """The output of a merged job (:func:`merge_jobs`) as each job's own output."""
    if len(jobs) == 1:
        return [out]
    outs = []
    for j in jobs:
        prefix = f"{j.prop}|{j.variant}|"
        mine = {
            "prop": j.prop,
            "variant": j.variant,
            "seed": j.seed,
            "run_seed": j.run_seed,
            "values": {
                k[len(prefix) :]: v for k, v in out["values"].items() if k.startswith(prefix)
            },
            "errors": {
                k[len(prefix) :]: v
                for k, v in out.get("errors", {}).items()
                if k.startswith(prefix)
            },
            "wall": out["wall"],
            "status": "ok",
            "failure": None,
            "error": None,
            "key": None,
        }
        if out["status"] != "ok" and not out.get("errors"):  # the run itself failed
            mine.update(status="failed", failure=out["failure"], error=out["error"])
        elif mine["errors"]:
            key, (failure, error) = next(iter(mine["errors"].items()))
            mine.update(status="failed", failure=failure, error=error, key=key)
        outs.append(mine)
    return outs


def _take_same_runs(first: Job, queue, alive: Callable[[Job], bool]) -> list[Job]:
    """``first`` and every queued job of the same run (removed from ``queue``)."""
    key = run_key(first)
    same = [first]
    keep = []
    for j in queue:
        if alive(j) and run_key(j) == key:
            same.append(j)
        else:
            keep.append(j)
    if len(same) > 1:
        queue.clear()
        queue.extend(keep)
    return same


class _Executor:
    """:mod:`sim.sweep`'s executors (one process, local processes with the sweep's worker
    set-up, or Dask) running :func:`run_job`; a worker that died or a Dask task that
    failed is that job's failure, recorded, and the check goes on."""

    def __init__(self, workers: int, scheduler: str | None):
        from sim.sweep import SweepError
        from sim.sweep import make_executor as sweep_executor

        try:
            self.inner = sweep_executor(workers, scheduler, fn=run_job)
        except SweepError as e:
            raise PropertyError(str(e)) from None
        self.label = self.inner.label
        self.what = "the Dask task" if scheduler is not None else "the worker process"

    def capacity(self) -> int:
        return self.inner.capacity()

    def submit(self, job: Job):
        return self.inner.submit(job)

    def wait(self, handles: list, timeout: float) -> list:
        return self.inner.wait(handles, timeout)

    def result(self, handle, job: Job) -> dict[str, Any]:
        from concurrent.futures.process import BrokenProcessPool

        try:
            return handle.result()
        except Exception as e:
            if isinstance(e, BrokenProcessPool):
                self.inner.broken = True  # the local pool starts afresh at the next submit
            return _lost(job, f"{self.what} failed: {type(e).__name__}: {e}")

    def close(self, abort: bool = False) -> None:
        self.inner.close(abort)


def _lost(job: Job, error: str) -> dict[str, Any]:
    return {
        "prop": job.prop,
        "variant": job.variant,
        "seed": job.seed,
        "run_seed": job.run_seed,
        "status": "failed",
        "failure": "error",
        "error": error,
        "key": None,
        "values": {},
        "errors": {},
        "wall": 0.0,
    }


def make_executor(workers: int, scheduler: str | None) -> _Executor:
    """Serial (one worker), local processes, or Dask (``scheduler``): one interface."""
    return _Executor(workers, scheduler)


# ======================================================================================
# Checking: scheduling seeds, verdicts, the report
# ======================================================================================


@dataclass
class PropertyResult:
    """A checked property: its last outcome, the seeds and time it took, and how it ended.

    ``final`` is ``holds``, ``violated`` (an undecided property counts as violated) or
    ``error`` (a run or a metric failed); ``as_expected`` compares it with ``expect``.
    """

    prop: Property
    outcome: Outcome
    plan: SeedPlan
    overrides: tuple[tuple[str, Any], ...]
    seeds_used: int
    run_seconds: float
    level: float
    final: str
    as_expected: bool
    commands: list[str] = field(default_factory=list)

    @property
    def rounds(self) -> int:
        """Rounds each run simulated."""
        return int(dict(self.overrides).get("run.rounds", self.prop.rounds))


@dataclass
class CheckReport:
    """Every property's result and how the check ran."""

    results: list[PropertyResult]
    files: list[str]
    quick: bool
    seeds: int | None
    executor: str
    wall: float

    @property
    def ok(self) -> bool:
        """Whether every property came out as expected."""
        return all(r.as_expected for r in self.results)


def merge_overrides(*groups: Sequence[tuple[str, Any]]) -> tuple[tuple[str, Any], ...]:
    """Overrides of several layers as one list: a key set twice keeps its last value."""
    out: dict[str, Any] = {}
    for group in groups:
        for k, v in group:
            out[k] = v
    return tuple(out.items())


def reproduce_command(
    scenario_ref: str | None, overrides: Sequence[tuple[str, Any]], seed: int
) -> str:
    """The ``mlmarket run`` command line of one run of a property."""
    if scenario_ref is None:
        return "(the sweep's base scenario is inline: run it with the sweep's base written out)"
    parts = ["mlmarket", "run", scenario_ref, "--seed", str(seed)]
    rest = []
    for k, v in overrides:
        if k == "run.rounds":
            parts += ["--rounds", str(v)]
        else:
            rest += ["--set", f"{k}={_scalar_text(v)}"]
    return shlex.join(parts + rest)


class _State:
    """One property during a check: its seeds so far, pending runs and verdict."""

    def __init__(self, idx: int, prop: Property, quick: bool, seeds: int | None):
        from sim.sweep import run_seed

        self.idx, self.prop = idx, prop
        self.plan, self.overrides = prop.run_plan(quick, seeds)
        self.variants = prop.check.variants()
        self.sizes = self.plan.sizes
        self.look = 0
        self.results: dict[str, dict[int, dict[str, Any]]] = {v: {} for v in self.variants}
        self.pending: set[tuple[str, int]] = set()
        self.run_seconds = 0.0
        self.run_seeds = [run_seed(prop.seed, s) for s in range(self.plan.max)]
        self.level = look_confidence(prop.check.confidence, self.plan.looks, prop.check.tests)
        self.result: PropertyResult | None = None

    def jobs(self, lo: int, hi: int, rounds: int | None = None) -> list[Job]:
        out = []
        for s in range(lo, hi):
            for label, extra in self.variants.items():
                reqs = self.prop.check.requests(label)
                ov = merge_overrides(self.overrides, extra)
                if rounds is not None:
                    ov = merge_overrides(ov, [("run.rounds", rounds)])
                else:
                    self.pending.add((label, s))
                out.append(Job(self.idx, label, s, self.run_seeds[s], self.prop.base, ov, reqs))
        return out

    def add(self, out: dict[str, Any]) -> bool:
        """Record a finished run; True when the current batch is complete (or failed)."""
        self.pending.discard((out["variant"], out["seed"]))
        self.results[out["variant"]][out["seed"]] = out
        self.run_seconds += float(out.get("wall") or 0.0)
        if out["status"] != "ok":
            violates = (
                out["failure"] == "simulation" and self.prop.check.simulation_failure_violates
            )
            if not violates:
                self._finish(self._error_outcome(out))
                return False
        return not self.pending

    def _error_outcome(self, out: dict[str, Any]) -> Outcome:
        what = f" computing {out['key']}" if out.get("key") else ""
        o = Outcome("error")
        o.details.append(
            f"seed {out['seed']} ({out['variant']}): the run failed{what}: {out['error']}"
        )
        o.worst = (out["seed"], (out["variant"],))
        return o

    def evaluate(self) -> list[Job]:
        """Judge the seeds so far; the next batch's jobs, or none when the verdict is final."""
        n = self.sizes[self.look]
        check = self.prop.check
        outcome = check.judge(self.results, list(range(n)), self.level, self.prop.seed)
        more = self.look + 1 < len(self.sizes)
        go_on = outcome.verdict == ("holds" if check.every_seed else "undecided")
        if go_on and more:
            self.look += 1
            return self.jobs(n, self.sizes[self.look])
        self._finish(outcome)
        return []

    def _finish(self, outcome: Outcome) -> None:
        p = self.prop
        final = outcome.verdict
        if final == "undecided":
            final = "violated"
            outcome.details.append(
                f"undecided after {self.sizes[self.look]} seeds (the most this check allows): "
                "counts as violated"
            )
        commands = []
        if outcome.worst is not None:
            s, labels = outcome.worst
            for label in labels:
                ov = merge_overrides(self.overrides, self.variants.get(label, ()))
                cmd = reproduce_command(p.scenario_ref, ov, self.run_seeds[s])
                commands.append(cmd if len(labels) == 1 else f"{cmd}   # {label}")
        self.result = PropertyResult(
            prop=p,
            outcome=outcome,
            plan=self.plan,
            overrides=self.overrides,
            seeds_used=self.sizes[self.look],
            run_seconds=self.run_seconds,
            level=self.level,
            final=final,
            as_expected=final == p.expect,
            commands=commands,
        )


def _probe(states: Sequence[_State], executor) -> None:
    """Run every setting for one round to find metrics the runs do not have (bad input)."""
    from collections import deque

    jobs = []
    for st in states:
        for j in st.jobs(0, 1, rounds=1):
            if any(r.kind in ("scalar", "agents") for r in j.requests):
                jobs.append(j)
    handles: dict[Any, list[Job]] = {}
    queue = deque(jobs)
    while queue or handles:
        while queue and len(handles) < executor.capacity():
            same = _take_same_runs(queue.popleft(), queue, lambda j: True)
            handles[executor.submit(merge_jobs(same))] = same
        for h in executor.wait(list(handles), 1.0):
            same = handles.pop(h)
            for j, out in zip(same, split_output(executor.result(h, same[0]), same), strict=True):
                for key, (failure, error) in out.get("errors", {}).items():
                    if failure == "metric":
                        p = states[j.prop].prop
                        label = "" if j.variant == "base" else f" ({j.variant})"
                        raise PropertyError(f"{p.where}.{key}{label}: {error}")


def execute(
    props: Sequence[Property],
    *,
    quick: bool = False,
    seeds: int | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Callable[[PropertyResult, int, int], None] | None = None,
    files: Sequence[str] = (),
) -> CheckReport:
    """Check ``props``: probe their metrics, then run seeds batch by batch until decided.

    Seed ``s`` of a property runs with the same ``run.seed`` whatever the number of
    workers, and the batches are fixed by its plan, so the verdicts do not depend on
    how the runs were spread. ``progress(result, done, total)`` is called as each
    property finishes.
    """
    from collections import deque

    from sim.sweep import default_workers

    workers = workers or default_workers()
    states = [_State(i, p, quick, seeds) for i, p in enumerate(props)]
    t0 = time.perf_counter()
    executor = make_executor(workers, scheduler)
    abort = True
    try:
        _probe(states, executor)
        queue: deque[Job] = deque()
        batches = [st.jobs(0, st.sizes[0]) for st in states]
        # interleave: seed 0 of every property first, so every property starts early
        for s in range(max(st.sizes[0] for st in states)):
            for jobs in batches:
                queue.extend(j for j in jobs if j.seed == s)
        in_flight: dict[Any, list[Job]] = {}
        finished = 0

        def alive(j: Job) -> bool:
            return states[j.prop].result is None

        while queue or in_flight:
            while queue and len(in_flight) < executor.capacity():
                job = queue.popleft()
                if alive(job):  # identical runs of several properties run once
                    same = _take_same_runs(job, queue, alive)
                    in_flight[executor.submit(merge_jobs(same))] = same
            if not in_flight:
                break
            for handle in executor.wait(list(in_flight), 1.0):
                same = in_flight.pop(handle)
                outs = split_output(executor.result(handle, same[0]), same)
                for job, out in zip(same, outs, strict=True):
                    st = states[job.prop]
                    if st.result is not None:
                        continue
                    if st.add(out):
                        queue.extend(st.evaluate())
                    if st.result is not None:
                        finished += 1
                        if progress is not None:
                            progress(st.result, finished, len(states))
        abort = False
    finally:
        executor.close(abort=abort)
    return CheckReport(
        results=[st.result for st in states if st.result is not None],
        files=list(files),
        quick=quick,
        seeds=seeds,
        executor=executor.label,
        wall=time.perf_counter() - t0,
    )


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def result_line(r: PropertyResult) -> str:
    """``name: verdict (as expected / NOT as expected)`` for progress and summaries."""
    tag = "as expected" if r.as_expected else "NOT as expected"
    if r.final == "error":
        tag = "ERROR"
    return (
        f"{r.prop.name}: {r.outcome.verdict} ({tag}), {r.seeds_used} seeds x {r.rounds} "
        f"rounds, {r.run_seconds:.1f} s"
    )


def format_report(rep: CheckReport) -> str:
    """The table of verdicts and, for every property not holding, how to reproduce it."""
    n = len(rep.results)
    files = ", ".join(rep.files)
    lines = [f"mlmarket check {files}: {n} properties on {rep.executor}"]
    if rep.quick:
        lines.append(
            "  --quick: each property ran at its quick size (fewer seeds and rounds than "
            "the full suite): a fast smoke test, not the full check"
        )
    if rep.seeds is not None:
        lines.append(f"  --seeds {rep.seeds}: every property ran with exactly {rep.seeds} seeds")
    rows = [
        (
            "property",
            "expect",
            "verdict",
            "estimate",
            "confidence interval",
            "seeds",
            "time",
            "result",
        )
    ]
    for r in rep.results:
        o = r.outcome
        ci = "-"
        if o.interval is not None:
            ci = f"{_interval_text(o.interval)} at {100 * r.prop.check.confidence:.3g} %"
        result = "ok" if r.as_expected else ("ERROR" if r.final == "error" else "FAIL")
        rows.append(
            (
                _cut(r.prop.name, 48),
                r.prop.expect,
                o.verdict,
                _fmt(o.estimate),
                ci,
                str(r.seeds_used),
                f"{r.run_seconds:.1f} s",
                result,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    right = {3, 5, 6}
    lines.append("")
    for row in rows:
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  " + "  ".join(cells).rstrip())
    for r in rep.results:
        if r.final == "holds" and r.as_expected:
            continue
        lines += ["", *detail_lines(r)]
    bad = sum(not r.as_expected for r in rep.results)
    errors = sum(r.final == "error" for r in rep.results)
    expected_v = sum(r.as_expected and r.final == "violated" for r in rep.results)
    lines.append("")
    summary = f"{n} properties: {n - bad} as expected"
    if expected_v:
        summary += f" ({expected_v} known violations)"
    if bad:
        summary += f", {bad} not" + (f" ({errors} errors)" if errors else "")
    lines.append(
        summary
        + f"; {rep.wall:.1f} s (time: seconds of simulation per property, summed over its runs)"
    )
    return "\n".join(lines)


def detail_lines(r: PropertyResult) -> list[str]:
    """What a property asserted, what was measured, and the runs that show it."""
    p, o = r.prop, r.outcome
    if r.final == "error":
        state = "ERROR"
    elif r.as_expected:
        state = f"{o.verdict}, as expected (expect: {p.expect})"
    else:
        state = f"{o.verdict}, NOT as expected (expect: {p.expect})"
    lines = [f"{p.name}: {state}"]
    if p.description:
        lines.append(f"  why: {p.description}")
    lines.append(f"  asserts: {p.check.statement()}  [{p.check.kind}]")
    scen = p.scenario_ref or "(inline sweep base)"
    lines.append(
        f"  runs: {scen}, {r.seeds_used} seeds x {r.rounds} rounds (plan {r.plan}; "
        f"per-look confidence {100 * r.level:.4g} %)"
    )
    lines += [f"  {d}" for d in o.details]
    if o.worst is not None and r.commands:
        s = o.worst[0]
        lines.append(
            f"  seed {s} is the most against it: " + "; ".join(o.numbers)
            if o.numbers
            else f"  seed {s}:"
        )
        lines.append("  reproduce:")
        lines += [f"    {c}" for c in r.commands]
    return lines


def junit_cases(rep: CheckReport):
    """The report as JUnit test cases, one per property (see :mod:`analysis.junit`)."""
    from analysis.junit import JUnitCase

    cases = []
    for r in rep.results:
        text = "\n".join(detail_lines(r))
        if r.as_expected:
            status, message = "passed", ""
        elif r.final == "error":
            status, message = "error", result_line(r)
        else:
            status, message = "failure", result_line(r)
        suite = Path(r.prop.source).stem
        cases.append(
            JUnitCase(
                name=r.prop.name,
                classname=f"mlmarket.check.{suite}",
                time=r.run_seconds,
                status=status,
                message=message,
                kind=r.outcome.verdict,
                text=text,
                suite=r.prop.source,
            )
        )
    return cases


def _check_output(path: str) -> Path:
    out = Path(path)
    if out.is_dir():
        raise PropertyError(f"--junit {out} is a folder; give a file name such as results.xml")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PropertyError(f"--junit {out}: cannot create its folder ({e.strerror})") from None
    if not os.access(out.parent, os.W_OK):
        raise PropertyError(f"--junit {out}: its folder is not writable")
    return out


def run_check(
    files: Sequence[str],
    *,
    junit: str | None = None,
    seeds: int | None = None,
    quick: bool = False,
    workers: int | None = None,
    scheduler: str | None = None,
    only: Sequence[str] = (),
    progress: bool = True,
    stdout=None,
) -> int:
    """``mlmarket check``: validate everything, run, print the report, write JUnit.

    Returns the exit code: 0 when every property came out as expected, 1 otherwise.
    Bad input raises :class:`PropertyError` before anything runs (the command line
    turns it into one message and exit code 2).
    """
    stdout = stdout or sys.stdout
    if scheduler is not None:
        if scheduler != "local" and "://" not in scheduler:
            raise PropertyError(
                f"--scheduler {scheduler!r}: expected tcp://HOST:PORT (a Dask scheduler) or 'local'"
            )
        if scheduler != "local" and workers is not None:
            raise PropertyError(
                "--workers sets the processes on this machine or of --scheduler local; "
                "a cluster at an address has its own workers"
            )
    out = _check_output(junit) if junit else None
    props: list[Property] = []
    for f in files:
        props += load_properties(f)
    if only:
        chosen = [p for p in props if any(t in p.name for t in only)]
        if not chosen:
            names = "; ".join(p.name for p in props)
            raise PropertyError(
                f"--only {', '.join(only)}: no property name contains it (names: {names})"
            )
        props = chosen

    def show(r: PropertyResult, done: int, total: int) -> None:
        print(f"mlmarket check: [{done}/{total}] {result_line(r)}", file=sys.stderr, flush=True)

    rep = execute(
        props,
        quick=quick,
        seeds=seeds,
        workers=workers,
        scheduler=scheduler,
        progress=show if progress else None,
        files=list(files),
    )
    print(format_report(rep), file=stdout)
    if out is not None:
        from analysis.junit import write_junit

        try:
            write_junit(out, junit_cases(rep), name="mlmarket check", time=rep.wall)
        except OSError as e:
            print(f"mlmarket: error: cannot write --junit {out}: {e.strerror}", file=sys.stderr)
            return 2
        print(f"JUnit XML in {out}", file=stdout)
    return 0 if rep.ok else 1

"""Figures of a run and of a sweep, drawn from the saved tables alone.

Every figure function takes tables as a run folder holds them (``model.parquet``,
``agents.parquet``, ``ledger.parquet`` read into DataFrames, ``summary.json`` as a dict),
the per-agent table :func:`outcomes` derives from ``agents.parquet``, or a sweep's runs
(:func:`analysis.sweep.load_runs`), and returns a :class:`matplotlib.figure.Figure`.
Figures are built without ``pyplot``: no global registry of open figures, no GUI
backend; they render with Agg (``fig.savefig(...)``) and are freed when dropped. A
function raises :class:`NoData` when the tables hold nothing it could show (no data
purchases, no provider quality column, ...), with a message saying what is missing.

>>> import pandas as pd
>>> from analysis import plots
>>> model = pd.read_parquet("runs/demo/model.parquet")
>>> plots.price_supply(model).savefig("price.png")
>>> per_agent = plots.outcomes(pd.read_parquet("runs/demo/agents.parquet"))
>>> plots.roi_distribution(per_agent).savefig("roi.png")

Colors are the same in every figure: one per agent type (:data:`TYPE_COLORS`) and one
per adversarial strategy (:data:`STRATEGY_COLORS`). A group of agents (type and
strategy, as ``summary.json``'s ``by_strategy`` names it, e.g. ``provider/noise``) is
drawn in its strategy's color when the strategy is adversarial and in its type's color
when it is ``honest`` (:func:`group_color`).

Large populations are aggregated, never drawn agent by agent when that stops being
readable or fast: sums by round and type, box plots over quantiles with at most
:data:`STRIP_MAX` sampled points per group, Lorenz curves at most 1,000 points long,
the flow network restricted to the top providers and models and the largest of every
group (the rest of each group merged into one node). Everything is vectorised over
rows; nothing loops over agents in Python, so a market of ten thousand agents draws in
about the time of a small one.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Sequence
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib import colors as mcolors
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator, NullFormatter, PercentFormatter, StrMethodFormatter

#: One color per agent type, in every figure.
TYPE_COLORS: dict[str, str] = {
    "provider": "#1b9e77",
    "developer": "#386cb0",
    "free_rider": "#e6ab02",
    "investor": "#7570b3",
}
#: One color per strategy; honest groups take their type's color (:func:`group_color`).
STRATEGY_COLORS: dict[str, str] = {
    "honest": "#8c8c8c",
    "noise": "#e31a1c",
    "flipped": "#ff7f00",
    "stale": "#8c510a",
    "resold": "#f781bf",
    "sybil": "#66a61e",
    "colluder": "#c51b7d",
    "lazy": "#17becf",
    "whale": "#252525",
}
NEUTRAL = "#404040"
MINT_COLOR = "#2b8cbe"
BURN_COLOR = "#de2d26"
#: Width (points) of the widest edge of the flow network.
EDGE_WIDTH = 4.0
#: Most sampled agents drawn as points over one box of a box plot.
STRIP_MAX = 300
#: Widest figure (inches); with :data:`DPI` the PNGs are at most 900 pixels wide.
WIDTH = 9.0
DPI = 100
STYLE = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "figure.titlesize": 11,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
}
_TYPE_ORDER = tuple(TYPE_COLORS)
_OUTSIDE = {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0), "borderaxespad": 0.0}
_THOUSANDS = StrMethodFormatter("{x:,.0f}")
# box plots lying down: ``orientation`` since matplotlib 3.10 (``vert`` is deprecated)
_HORIZONTAL = (
    {"orientation": "horizontal"} if matplotlib.__version_info__ >= (3, 10) else {"vert": False}
)


class NoData(Exception):
    """The tables hold nothing this figure could show; the message says what is missing."""


# --------------------------------------------------------------------------------------
# Colors and small helpers
# --------------------------------------------------------------------------------------


def _fallback_color(name: str) -> str:
    """A stable color for a name no palette lists (the same in every run and process)."""
    cmap = matplotlib.colormaps["tab20"]
    return mcolors.to_hex(cmap(zlib.crc32(name.encode()) % 20))


def type_color(kind: str) -> str:
    """The color of agent type ``kind`` (:data:`TYPE_COLORS`, else a stable fallback)."""
    return TYPE_COLORS.get(kind) or _fallback_color(kind)


def strategy_color(strategy: str) -> str:
    """The color of ``strategy`` (:data:`STRATEGY_COLORS`, else a stable fallback)."""
    return STRATEGY_COLORS.get(strategy) or _fallback_color(strategy)


def group_color(kind: str, strategy: str) -> str:
    """Color of the group ``kind/strategy``: its type's when honest, else its strategy's."""
    return type_color(kind) if strategy == "honest" else strategy_color(strategy)


def group_label(kind: str, strategy: str) -> str:
    """How figures name the group ``kind/strategy``.

    ``type/strategy`` as ``summary.json``'s ``by_strategy`` names it, except for free
    riders with no other strategy: they are adversaries by their type, and calling
    them ``free_rider/honest`` next to "honest agents" would read as a contradiction.
    """
    if kind == "free_rider" and strategy == "honest":
        return "free_rider"
    return f"{kind}/{strategy}"


def _plural(kind: str, strategy: str = "honest") -> str:
    """``developers``, ``free riders``, ``providers (noise)``: a group as a noun."""
    noun = kind.replace("_", " ") + "s"
    return noun if strategy == "honest" else f"{noun} ({strategy})"


def _pretty(name: str) -> str:
    """A ledger reason or account as a label (``data_purchase`` -> ``data purchase``)."""
    return str(name).replace("_", " ")


#: Hatches of agent types, to tell apart bars of groups that share a strategy's color.
TYPE_HATCHES: dict[str, str | None] = {
    "provider": None,
    "developer": "////",
    "free_rider": "....",
    "investor": "xxxx",
}
#: Line styles of agent types, to tell apart groups that share a strategy's color.
TYPE_DASHES: dict[str, Any] = {
    "provider": "-",
    "developer": "--",
    "free_rider": ":",
    "investor": "-.",
}


def _lighter(color, amount: float = 0.55) -> tuple[float, float, float]:
    """``color`` mixed with white (``amount`` of white)."""
    r, g, b = mcolors.to_rgb(color)
    return (r + (1 - r) * amount, g + (1 - g) * amount, b + (1 - b) * amount)


def _type_rank(kind: str) -> int:
    return _TYPE_ORDER.index(kind) if kind in _TYPE_ORDER else len(_TYPE_ORDER)


def _styled():
    """A context in which figures are made and drawn with the report's :data:`STYLE`."""
    return matplotlib.rc_context(STYLE)


def _figure(
    height: float,
    width: float = WIDTH,
    *,
    left: float = 0.95,
    right: float = 2.2,
    top: float = 0.75,
    bottom: float = 0.55,
    hspace: float = 0.5,
    wspace: float = 0.3,
) -> Figure:
    """An empty figure drawn by Agg, with margins in inches.

    The margins are set by hand (``right`` leaves room for a legend outside the axes)
    rather than by a layout engine: constrained layout measures every label in an extra
    pass and makes a report about 40 % slower. ``hspace`` and ``wspace`` are fractions of
    the mean axes height and width, as in :meth:`~matplotlib.figure.Figure.subplots_adjust`.
    """
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    fig.subplots_adjust(
        left=left / width,
        right=1.0 - right / width,
        top=1.0 - top / height,
        bottom=bottom / height,
        hspace=hspace,
        wspace=wspace,
    )
    return fig


def _text_width(labels, size: float = 9.0) -> float:
    """A generous estimate of the width (inches) of the longest of ``labels`` at ``size`` pt."""
    n = max((len(str(s)) for s in labels), default=0)
    return n * size * 0.6 / 72.0


def _need(df: pd.DataFrame, columns: Sequence[str], table: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise NoData(f"{table} has no column {', '.join(repr(c) for c in missing)}")
    if df.empty:
        raise NoData(f"{table} is empty")


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation (average ranks for ties); NaN below 3 points."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        return float("nan")
    rx = pd.Series(x[ok]).rank().to_numpy()
    ry = pd.Series(y[ok]).rank().to_numpy()
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def _rho(r: float) -> str:
    return "n/a" if not math.isfinite(r) else f"{r:+.2f}"


def _legend_outside(ax, handles=None, title: str | None = None, **kwargs) -> None:
    if handles is None:
        handles, _ = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles=handles, title=title, **{**_OUTSIDE, **kwargs})


def _rolling(values: pd.Series, n: int) -> pd.Series:
    window = max(3, n // 20)
    return values.rolling(window, min_periods=1, center=True).mean()


# --------------------------------------------------------------------------------------
# Derived tables
# --------------------------------------------------------------------------------------


def outcomes(agents: pd.DataFrame) -> pd.DataFrame:
    """One row per agent that ever took part, from ``agents.parquet`` (one row per round).

    Columns: type, id, strategy, account, quality (providers, when recorded), capital,
    wealth (usd, its last row: the end of the run or the round it left), roi =
    wealth / capital - 1 (capital: the ``capital`` column, else the agent's first
    recorded wealth; NaN when not positive), the sums over rounds of revenue, payout,
    burned and spent (tokens), score (mean of the recorded scores; contribution too when
    the table records it), rounds (rows where
    it was active), first_round, last_round, active (at its last row) and adversary (a
    free rider, or any strategy but ``honest``, as the engine counts them).
    """
    _need(agents, ["round", "id", "type", "wealth"], "agents.parquet")
    a = agents
    if not a["round"].is_monotonic_increasing:
        a = a.sort_values("round", kind="stable")
    keys = ["type", "id"]
    g = a.groupby(keys, observed=True, sort=False)
    flows = [c for c in ("revenue", "payout", "burned", "spent") if c in a.columns]
    out = a.drop_duplicates(keys, keep="last").set_index(keys)
    first = a.drop_duplicates(keys, keep="first").set_index(keys)
    res = pd.DataFrame(index=out.index)
    res["strategy"] = (
        out["strategy"].astype(str) if "strategy" in out.columns else pd.Series("honest", out.index)
    )
    res["account"] = (
        out["account"].astype(str)
        if "account" in out.columns
        else [f"{k}:{i}" for k, i in out.index.to_list()]
    )
    res["quality"] = out["quality"] if "quality" in out.columns else np.nan
    capital = out["capital"] if "capital" in out.columns else first["wealth"].reindex(out.index)
    res["capital"] = capital.astype(float)
    res["wealth"] = out["wealth"].astype(float)
    cap = res["capital"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        res["roi"] = np.where(cap > 0, res["wealth"].to_numpy(float) / cap - 1.0, np.nan)
    sums = g[flows].sum() if flows else pd.DataFrame(index=out.index)
    for c in ("revenue", "payout", "burned", "spent"):
        res[c] = sums[c].reindex(out.index).astype(float) if c in sums else 0.0
    res["score"] = g["score"].mean().reindex(out.index) if "score" in a.columns else np.nan
    if "contribution" in a.columns:  # a model's MMC (contribution to the metamodel), per round
        res["contribution"] = g["contribution"].mean().reindex(out.index)
    if "active" in a.columns:
        res["rounds"] = g["active"].sum().reindex(out.index).astype(int)
    else:
        res["rounds"] = g.size().reindex(out.index).astype(int)
    res["first_round"] = first["round"].reindex(out.index).astype(int)
    res["last_round"] = out["round"].astype(int)
    res["active"] = out["active"].astype(bool) if "active" in out.columns else True
    res = res.reset_index()
    res["type"] = res["type"].astype(str)
    res["adversary"] = (res["strategy"] != "honest") | (res["type"] == "free_rider")
    res["group"] = res["type"] + "/" + res["strategy"]
    return res


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative ``values``.

    G = sum_i (2 i - n - 1) x_(i) / (n sum_i x_(i)), with x_(1) <= ... <= x_(n) and i
    from 1 (the mean absolute difference over twice the mean; Gini 1912, in the form
    of e.g. Damgaard & Weiner 2000, "Describing inequality in plant size or fecundity",
    Ecology 81). 0 when everyone holds the same, (n - 1) / n when one holds everything.
    Negative values are clipped to 0; NaN when nothing is held.
    """
    x = np.sort(np.clip(np.asarray(values, float), 0.0, None))
    x = x[np.isfinite(x)]
    n, total = x.size, x.sum()
    if n == 0 or total <= 0:
        return float("nan")
    i = np.arange(1, n + 1)
    return float(np.sum((2 * i - n - 1) * x) / (n * total))


def lorenz_curve(values: np.ndarray, points: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """The Lorenz curve of ``values``: (share of holders, poorest first; share held).

    Starts at (0, 0), ends at (1, 1); at most ``points + 1`` points (a subsample of the
    exact curve's vertices, so a large population draws as fast as a small one).
    """
    x = np.sort(np.clip(np.asarray(values, float), 0.0, None))
    x = x[np.isfinite(x)]
    if x.size == 0 or x.sum() <= 0:
        return np.array([0.0, 1.0]), np.array([0.0, 1.0])
    cum = np.concatenate([[0.0], np.cumsum(x)])
    cum /= cum[-1]
    share = np.arange(x.size + 1) / x.size
    if x.size > points:
        idx = np.unique(np.linspace(0, x.size, points + 1).round().astype(int))
        share, cum = share[idx], cum[idx]
    return share, cum


def _account_sides(names: pd.Index, per_agent: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Side (0 neither, 1 honest or shared, 2 adversary) and group label of account names."""
    shared = {"treasury", "escrow", "jackpot", "curation", "verifiers"}
    side: dict[str, int] = {n: 1 for n in shared}
    label: dict[str, str] = {n: n for n in shared}
    acct = per_agent["account"].to_numpy(str)
    bad = per_agent["adversary"].to_numpy(bool)
    kinds = per_agent["type"].to_numpy(str)
    strategies = per_agent["strategy"].to_numpy(str)
    groups = [group_label(k, st) for k, st in zip(kinds, strategies, strict=True)]
    for suffix in ("", ":stake", ":bond"):
        for a, b, k, grp in zip(acct, bad, kinds, groups, strict=True):
            side[a + suffix] = 2 if b else 1
            label[a + suffix] = grp if b else f"honest {k.replace('_', ' ')}s"
    names = [str(n) for n in names]
    # one more entry for the code -1 (a missing value)
    return (
        np.array([*(side.get(n, 0) for n in names), 0], np.int8),
        np.array([*(label.get(n, "") for n in names), ""], dtype=object),
    )


def _codes(col: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Integer codes and categories of a ledger column (categorical or not)."""
    cat = col if isinstance(col.dtype, pd.CategoricalDtype) else col.astype("category")
    return cat.cat.codes.to_numpy(), cat.cat.categories


def _token_rows(ledger: pd.DataFrame, reasons: Sequence[str] | None = None) -> np.ndarray:
    """Mask of the ledger's token entries (with one of ``reasons``, when given)."""
    ac, an = _codes(ledger["asset"])
    m = np.append(np.asarray(an, dtype=object) == "token", False)[ac]
    if reasons is not None:
        rc, rn = _codes(ledger["reason"])
        m &= np.append(np.isin(np.asarray(rn, dtype=object), list(reasons)), False)[rc]
    return m


def adversary_sources(ledger: pd.DataFrame, per_agent: pd.DataFrame) -> pd.DataFrame:
    """Net tokens that moved from honest participants and shared accounts to adversaries.

    The ledger's token entries are classified as the engine's
    ``transfer_to_adversaries`` does: accounts of adversaries (wallets, stakes, bonds)
    on one side; honest agents' accounts and the shared ones (treasury, escrow, jackpot,
    curation, verifiers) on the other; exchange pools, the metamodel, arbitrageurs,
    minting, burning and fees on neither (trades are exchanges, not transfers). One row
    per (source, reason, recipient group): ``tokens`` = in - out, where ``source`` is the
    honest or shared side's group ("honest developers", "treasury", ...). The column
    sums to ``summary["adversaries"]["transfer_tokens"]``.
    """
    _need(ledger, ["src", "dst", "asset", "amount", "reason"], "ledger.parquet")
    tok = _token_rows(ledger)
    sc, s_names = _codes(ledger["src"])
    dc, d_names = _codes(ledger["dst"])
    s_side, s_label = _account_sides(s_names, per_agent)
    d_side, d_label = _account_sides(d_names, per_agent)
    ss, ds = s_side[sc], d_side[dc]
    into = tok & (ss == 1) & (ds == 2)
    back = tok & (ss == 2) & (ds == 1)
    amount = ledger["amount"].to_numpy(float)
    rc, rn = _codes(ledger["reason"])
    reason = np.append(np.asarray(rn, dtype=object), "?")[rc]
    frames = []
    if into.any():
        frames.append(
            pd.DataFrame(
                {
                    "source": s_label[sc[into]],
                    "reason": reason[into],
                    "recipient": d_label[dc[into]],
                    "tokens": amount[into],
                }
            )
        )
    if back.any():
        frames.append(
            pd.DataFrame(
                {
                    "source": d_label[dc[back]],
                    "reason": reason[back],
                    "recipient": s_label[sc[back]],
                    "tokens": -amount[back],
                }
            )
        )
    if not frames:
        return pd.DataFrame(columns=["source", "reason", "recipient", "tokens"])
    df = pd.concat(frames, ignore_index=True)
    return df.groupby(["source", "reason", "recipient"], as_index=False)["tokens"].sum()


# --------------------------------------------------------------------------------------
# A run over time
# --------------------------------------------------------------------------------------


def price_supply(model: pd.DataFrame) -> Figure:
    """Token price (usd), supply (tokens), and the tokens minted and burned each round."""
    _need(model, ["round", "token_price", "token_supply", "minted", "burned"], "model.parquet")
    with _styled():
        fig = _figure(6.5)
        ax1, ax2, ax3 = fig.subplots(3, 1, sharex=True, height_ratios=[2.0, 1.4, 1.4])
        r = model["round"].to_numpy()
        edges = np.append(r - 0.5, r[-1] + 0.5)

        ax1.plot(r, model["token_price"], color=NEUTRAL, lw=1.5, label="price")
        ax1.set_ylabel("price (usd per token)")
        ax1.set_title("Token price on the exchange")
        ax2.plot(r, model["token_supply"], color=NEUTRAL, lw=1.5)
        ax2.set_ylabel("supply (tokens)")
        ax2.yaxis.set_major_formatter(_THOUSANDS)
        ax2.set_title("Token supply")
        _in_and_out(ax3, edges, model["minted"], "minted", model["burned"], "burned")
        ax3.set_ylabel("tokens per round")
        ax3.set_xlabel("round")
        ax3.set_title("Minted and burned each round")
        _legend_outside(ax3)
        fig.suptitle("Token price and supply")
        return fig


def _in_and_out(ax, edges, up, up_label: str, down, down_label: str) -> None:
    """What came in each round above 0 and what went out below it, as filled stairs."""
    ax.stairs(np.asarray(up, float), edges, fill=True, color=MINT_COLOR, label=up_label)
    ax.stairs(
        -np.asarray(down, float),
        edges,
        fill=True,
        color=BURN_COLOR,
        label=f"{down_label} (shown below 0)",
    )
    ax.axhline(0, color=NEUTRAL, lw=0.6)


def active_agents(model: pd.DataFrame) -> Figure:
    """Active agents of each type per round, and the entries and exits of each round."""
    cols = [c for c in model.columns if c.startswith("active_")]
    _need(model, ["round"], "model.parquet")
    kinds = sorted((c[len("active_") :] for c in cols), key=_type_rank)
    kinds = [k for k in kinds if model[f"active_{k}"].max() > 0]
    if not kinds:
        raise NoData("model.parquet has no active_<type> column with agents")
    with _styled():
        fig = _figure(5.5)
        ax1, ax2 = fig.subplots(2, 1, sharex=True, height_ratios=[2.2, 1.2])
        r = model["round"].to_numpy()
        edges = np.append(r - 0.5, r[-1] + 0.5)

        for k in kinds:
            ax1.plot(
                r, model[f"active_{k}"], color=type_color(k), lw=1.6, label=k.replace("_", " ")
            )
        ax1.set_ylabel("active agents")
        ax1.set_ylim(bottom=0)
        ax1.set_title("Active agents by type")
        _legend_outside(ax1, title="agent type")
        if "entries" in model.columns and "exits" in model.columns:
            _in_and_out(ax2, edges, model["entries"], "entries", model["exits"], "exits")
            _legend_outside(ax2)
        ax2.set_ylabel("agents per round")
        ax2.set_xlabel("round")
        ax2.set_title("Entries and exits (all types)")
        fig.suptitle("Who takes part")
        return fig


def metamodel(model: pd.DataFrame) -> Figure:
    """The metamodel's score per round (with a rolling mean), its profit or loss each
    round and cumulated (usd).

    The round's P&L and the cumulative P&L have panels of their own: on one axis the
    cumulative sum flattens the rounds' bars to a line at 0.
    """
    _need(model, ["round", "metamodel_corr", "metamodel_pnl"], "model.parquet")
    with _styled():
        fig = _figure(7.0, hspace=0.55)
        ax1, ax2, ax3 = fig.subplots(3, 1, sharex=True, height_ratios=[1.6, 1.0, 1.2])
        r = model["round"].to_numpy()
        n = len(model)

        corr = model["metamodel_corr"].astype(float)
        ax1.plot(r, corr, ".", ms=3, color="#9ecae1", label="metamodel, each round")
        ax1.plot(r, _rolling(corr, n), color="#08519c", lw=1.8, label="metamodel, rolling mean")
        if "mean_corr" in model.columns:
            ax1.plot(
                r,
                _rolling(model["mean_corr"].astype(float), n),
                color=type_color("developer"),
                lw=1.2,
                ls="--",
                label="models' mean, rolling",
            )
        ax1.axhline(0, color=NEUTRAL, lw=0.6)
        ax1.set_ylabel("correlation with\nrealized returns")
        ax1.set_title("Score of each resolved round")
        _legend_outside(ax1)
        pnl = model["metamodel_pnl"].to_numpy(float)
        edges = np.append(r - 0.5, r[-1] + 0.5)
        ok = np.nan_to_num(pnl)
        ax2.stairs(np.where(ok > 0, ok, 0.0), edges, fill=True, color="#41ab5d", label="profit")
        ax2.stairs(np.where(ok < 0, ok, 0.0), edges, fill=True, color=BURN_COLOR, label="loss")
        ax2.axhline(0, color=NEUTRAL, lw=0.6)
        ax2.set_ylabel("usd per round")
        ax2.yaxis.set_major_formatter(_THOUSANDS)
        ax2.set_title("Trading profit or loss of each round")
        _legend_outside(ax2)
        cum = (
            model["metamodel_cum_pnl"]
            if "metamodel_cum_pnl" in model.columns
            else model["metamodel_pnl"].cumsum()
        )
        ax3.plot(r, cum, color="#08519c", lw=1.8)
        ax3.axhline(0, color=NEUTRAL, lw=0.6)
        ax3.set_ylabel("usd")
        ax3.yaxis.set_major_formatter(_THOUSANDS)
        ax3.set_xlabel("round")
        ax3.set_title("Cumulative trading profit and loss")
        fig.suptitle("The metamodel: how good, and what trading on it earns")
        return fig


def stakes_payouts(agents: pd.DataFrame) -> Figure:
    """Tokens staked (or bonded), paid out and burned per round, by agent type."""
    _need(agents, ["round", "type"], "agents.parquet")
    cols = [c for c in ("stake", "payout", "burned") if c in agents.columns]
    if not cols:
        raise NoData("agents.parquet has no stake, payout or burned column")
    by = agents.groupby(["round", "type"], observed=True)[cols].sum().unstack("type")
    by = by.fillna(0.0)
    titles = {
        "stake": ("Tokens at stake (developers' stakes, providers' bonds)", "tokens"),
        "payout": ("Rewards paid each round", "tokens per round"),
        "burned": ("Slashed or forfeited each round", "tokens per round"),
    }
    with _styled():
        fig = _figure(2.3 * len(cols) + 0.6)
        axes = np.atleast_1d(fig.subplots(len(cols), 1, sharex=True))
        r = by.index.to_numpy()

        shown: dict[str, Line2D] = {}
        for ax, c in zip(axes, cols, strict=True):
            kinds = sorted(by[c].columns.astype(str), key=_type_rank)
            for k in kinds:
                v = by[c][k].to_numpy(float)
                if not np.any(v):
                    continue
                (line,) = ax.plot(r, v, color=type_color(k), lw=1.4, label=k.replace("_", " "))
                shown.setdefault(k, line)
            title, unit = titles[c]
            ax.set_title(title)
            ax.set_ylabel(unit)
            ax.set_ylim(bottom=0)
            ax.yaxis.set_major_formatter(
                _THOUSANDS if by[c].to_numpy().max() > 1e3 else StrMethodFormatter("{x:,.4g}")
            )
            if not ax.lines:
                ax.text(
                    0.5,
                    0.5,
                    "none in this run",
                    transform=ax.transAxes,
                    ha="center",
                    va="center",
                    color=NEUTRAL,
                )
        axes[-1].set_xlabel("round")
        handles = [shown[k] for k in sorted(shown, key=_type_rank)]
        _legend_outside(axes[0], handles=handles, title="agent type")
        fig.suptitle("Stakes, payouts and slashes by agent type")
        return fig


# --------------------------------------------------------------------------------------
# Who wins
# --------------------------------------------------------------------------------------


def _boxes(ax, groups: list[tuple[str, np.ndarray, str]], rng: np.random.Generator) -> None:
    """Horizontal box plots (whiskers at the 5th and 95th percentiles, mean as a diamond)
    with at most :data:`STRIP_MAX` sampled values per group as points."""
    data = [v for _, v, _ in groups]
    pos = np.arange(len(groups))[::-1]
    bp = ax.boxplot(
        data,
        positions=pos,
        **_HORIZONTAL,
        whis=(5, 95),
        showfliers=False,
        showmeans=True,
        widths=0.6,
        patch_artist=True,
        meanprops={
            "marker": "D",
            "markerfacecolor": "white",
            "markeredgecolor": NEUTRAL,
            "markersize": 5,
        },
        medianprops={"color": NEUTRAL, "lw": 1.5},
    )
    lo, hi = np.inf, -np.inf
    for box, (_, v, color), y in zip(bp["boxes"], groups, pos, strict=True):
        box.set_facecolor(mcolors.to_rgba(color, 0.35))
        box.set_edgecolor(color)
        q = np.nanpercentile(v, [1, 99])
        lo, hi = min(lo, q[0]), max(hi, q[1])
        sample = v if v.size <= STRIP_MAX else rng.choice(v, STRIP_MAX, replace=False)
        sample = sample[(sample >= q[0]) & (sample <= q[1])]
        jitter = rng.uniform(-0.22, 0.22, sample.size)
        ax.plot(sample, y + jitter, ".", ms=3, color=color, alpha=0.6, zorder=3)
    ax.set_yticks(pos, [f"{label}  (n={v.size:,})" for label, v, _ in groups])
    if np.isfinite(lo) and np.isfinite(hi):
        pad = 0.05 * (hi - lo) if hi > lo else 0.01
        lo = min(lo, *(w.get_xdata().min() for w in bp["whiskers"]))
        hi = max(hi, *(w.get_xdata().max() for w in bp["whiskers"]))
        ax.set_xlim(min(lo - pad, -pad), max(hi + pad, pad))
    ax.axvline(0, color=NEUTRAL, lw=0.8)
    ax.xaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=None))
    ax.grid(axis="y", visible=False)


def roi_distribution(per_agent: pd.DataFrame, seed: int = 0) -> Figure:
    """Return on capital of every agent: by type, and by type and strategy.

    ROI = final wealth / capital - 1 (:func:`outcomes`). Boxes span the quartiles,
    whiskers the 5th to 95th percentiles, the line is the median and the diamond the
    mean; points are the agents (a sample of :data:`STRIP_MAX` per group in a large
    population, drawn with ``seed``), those beyond the 1st and 99th percentiles left out.
    """
    _need(per_agent, ["type", "strategy", "roi"], "the per-agent table")
    ok = per_agent[np.isfinite(per_agent["roi"].to_numpy(float))]
    if ok.empty:
        raise NoData("no agent has a positive capital, so no return on capital")
    rng = np.random.default_rng(seed)
    kinds = sorted(ok["type"].unique(), key=_type_rank)
    by_type = [
        (k.replace("_", " "), ok.loc[ok["type"] == k, "roi"].to_numpy(float), type_color(k))
        for k in kinds
    ]
    grouped = ok.groupby(["type", "strategy"], sort=False)
    keys = sorted(grouped.groups, key=lambda t: (_type_rank(t[0]), t[1] != "honest", t[1]))
    by_group = [
        (group_label(k, s), grouped.get_group((k, s))["roi"].to_numpy(float), group_color(k, s))
        for k, s in keys
    ]
    two = len(by_group) > len(by_type)
    rows = len(by_type) + (len(by_group) if two else 0)
    with _styled():
        labels = [f"{label}  (n={v.size:,})" for label, v, _ in by_type + by_group]
        fig = _figure(
            1.5 + 0.38 * rows + (0.9 if two else 0),
            left=0.35 + _text_width(labels),
            right=1.9,
            hspace=0.55,
        )

        if two:
            ax1, ax2 = fig.subplots(2, 1, height_ratios=[len(by_type) + 1, len(by_group) + 1])
        else:
            ax1, ax2 = fig.subplots(1, 1), None
        _boxes(ax1, by_type, rng)
        ax1.set_title("By agent type")
        ax1.set_xlabel("return on capital (final wealth / capital - 1)")
        if ax2 is not None:
            _boxes(ax2, by_group, rng)
            ax2.set_title("By type and strategy (adversarial strategies in their own colors)")
            ax2.set_xlabel("return on capital (final wealth / capital - 1)")
        handles = [
            Line2D([], [], color=NEUTRAL, lw=1.5, label="median"),
            Line2D(
                [],
                [],
                marker="D",
                ls="",
                markerfacecolor="white",
                markeredgecolor=NEUTRAL,
                label="mean",
            ),
            Patch(facecolor="#cccccc", edgecolor=NEUTRAL, label="quartiles (box)"),
            Line2D([], [], color="black", lw=1, label="5th-95th percentile"),
        ]
        _legend_outside(ax1, handles=handles)
        fig.suptitle("Who wins: return on capital per agent")
        return fig


def lorenz(per_agent: pd.DataFrame) -> Figure:
    """Lorenz curves and Gini coefficients of final wealth (usd) and of tokens earned.

    Left: final wealth of every agent that took part, all together and by type. Right:
    tokens earned over the run (payouts and data revenue), among the agents of the types
    that earned any.
    """
    _need(per_agent, ["type", "wealth"], "the per-agent table")
    kinds = sorted(per_agent["type"].unique(), key=_type_rank)
    types = per_agent["type"].to_numpy(str)
    earned = per_agent["payout"].to_numpy(float) + per_agent["revenue"].to_numpy(float)
    earned = np.where(np.isfinite(earned), earned, 0.0)
    earning_types = [k for k in kinds if earned[types == k].sum() > 0]
    earners = np.isin(types, earning_types)
    with _styled():
        fig = _figure(5.2, left=0.9, right=0.4, bottom=1.9, top=0.6, wspace=0.35)
        ax1, ax2 = fig.subplots(1, 2, sharey=True)

        def panel(ax, values: np.ndarray, of: np.ndarray, title: str, what: str):
            handles = ax.plot([0, 1], [0, 1], color="#bbbbbb", lw=1, ls=":", label="equality")
            x, y = lorenz_curve(values)
            label = f"all: Gini {gini(values):.2f} (n={values.size:,})"
            handles += ax.plot(x, y, color="black", lw=2.0, label=label)
            for k in kinds:
                v = values[of == k]
                if v.size < 2 or not np.clip(v, 0, None).sum() > 0:
                    continue
                x, y = lorenz_curve(v)
                label = f"{k.replace('_', ' ')}: Gini {gini(v):.2f} (n={v.size:,})"
                handles += ax.plot(x, y, color=type_color(k), lw=1.4, label=label)
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            ax.set_aspect("equal")
            ax.xaxis.set_major_formatter(PercentFormatter(xmax=1.0))
            ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
            ax.set_xlabel("share of agents (poorest first)")
            ax.set_ylabel(f"share of {what}")
            ax.set_title(title)
            ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.0, -0.16))

        panel(ax1, per_agent["wealth"].to_numpy(float), types, "Final wealth (usd)", "wealth")
        if earners.any():
            panel(
                ax2,
                earned[earners],
                types[earners],
                "Tokens earned (payouts + data revenue)",
                "tokens earned",
            )
        else:
            ax2.text(
                0.5, 0.5, "nobody earned tokens", ha="center", va="center", transform=ax2.transAxes
            )
        fig.suptitle("How unequal: Lorenz curves (further below the diagonal = more unequal)")
        return fig


# --------------------------------------------------------------------------------------
# Does payout follow value
# --------------------------------------------------------------------------------------


def _scatter_groups(ax, df: pd.DataFrame, x: str, y: str) -> list:
    handles = []
    order = sorted(
        df.groupby(["type", "strategy"], sort=False).groups,
        key=lambda t: (_type_rank(t[0]), t[1] != "honest", t[1]),
    )
    for k, s in order:
        part = df[(df["type"] == k) & (df["strategy"] == s)]
        color = group_color(k, s)
        handles.append(
            ax.scatter(
                part[x],
                part[y],
                s=18 if len(df) < 2000 else 6,
                color=color,
                alpha=0.75,
                edgecolors="none",
                label=f"{group_label(k, s)} ({len(part):,})",
            )
        )
    return handles


def provider_payout_quality(per_agent: pd.DataFrame) -> Figure:
    """Each provider's revenue per active round (tokens) against its true data quality.

    Quality is the feed's true usefulness recorded by the engine (``quality``:
    1 / (1 + noise^2), 0 for noise and stale feeds). Revenue is data sales plus the
    attribution of models' gains, divided by the rounds the provider was active, so
    entrants compare with founders. Spearman's rank correlation in the title.
    """
    _need(per_agent, ["type"], "the per-agent table")
    prov = per_agent[per_agent["type"] == "provider"]
    if prov.empty:
        raise NoData("no data providers in this run")
    if "quality" not in prov.columns or prov["quality"].isna().all():
        raise NoData(
            "agents.parquet has no `quality` column for providers (their true data quality): "
            "rerun with a version of mlmarket that records it"
        )
    prov = prov.assign(per_round=prov["revenue"] / prov["rounds"].clip(lower=1))
    rho = _spearman(prov["quality"].to_numpy(), prov["per_round"].to_numpy())
    with _styled():
        fig = _figure(4.6, right=2.4)
        ax = fig.subplots(1, 1)

        handles = _scatter_groups(ax, prov, "quality", "per_round")
        ax.set_xlabel("true data quality (share of the feed's variance a model can use)")
        ax.set_ylabel("revenue (tokens per active round)")
        ax.set_title(f"Spearman rank correlation {_rho(rho)} over {len(prov):,} providers")
        _legend_outside(ax, handles=handles, title="provider strategy")
        fig.suptitle("Does a provider's payout follow its data's quality?")
        return fig


def model_payout_contribution(per_agent: pd.DataFrame) -> Figure:
    """Each model's net payout per active round (tokens) against its contribution.

    The contribution is the mean of the agent table's ``contribution`` column: the MMC
    (Numerai's meta model contribution) of each of the model's submissions when it
    resolved; tables written before that column existed fall back on the model's
    ``score``, its own trailing correlation with realized returns averaged over the
    rounds it was recorded. Net payout is rewards minus slashes. Spearman's rank
    correlation in the title.
    """
    _need(per_agent, ["type"], "the per-agent table")
    x = (
        "contribution"
        if "contribution" in per_agent.columns and per_agent["contribution"].notna().any()
        else "score"
    )
    if x not in per_agent.columns:
        raise NoData("agents.parquet has neither a contribution nor a score column")
    models = per_agent[per_agent["type"].isin(["developer", "free_rider"])]
    models = models[np.isfinite(models[x].to_numpy(float))]
    if models.empty:
        raise NoData("no model was scored (no resolved round)")
    models = models.assign(
        net=(models["payout"] - models["burned"]) / models["rounds"].clip(lower=1)
    )
    rho = _spearman(models[x].to_numpy(), models["net"].to_numpy())
    with _styled():
        fig = _figure(4.6, right=2.4)
        ax = fig.subplots(1, 1)
        handles = _scatter_groups(ax, models, x, "net")
        ax.axhline(0, color=NEUTRAL, lw=0.6)
        ax.axvline(0, color=NEUTRAL, lw=0.6)
        ax.set_xlabel(
            "mean contribution to the metamodel (MMC per resolved round)"
            if x == "contribution"
            else "mean score (trailing correlation with realized returns)"
        )
        ax.set_ylabel("net payout (tokens per active round)")
        ax.set_title(f"Spearman rank correlation {_rho(rho)} over {len(models):,} models")
        _legend_outside(ax, handles=handles, title="model's owner")
        fig.suptitle("Does a model's payout follow its contribution?")
        return fig


# --------------------------------------------------------------------------------------
# Flows
# --------------------------------------------------------------------------------------


def _wallet_owner(names: pd.Index) -> np.ndarray:
    """The wallet account behind each account name (``developer:3:stake`` -> ``developer:3``)."""
    return np.array([re.sub(r":(stake|bond)$", "", str(n)) for n in names], dtype=object)


def _edge_sums(ledger: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    """Token amounts of the rows ``mask`` summed by (src wallet, dst wallet)."""
    sc, sn = _codes(ledger["src"])
    dc, dn = _codes(ledger["dst"])
    src = np.append(_wallet_owner(sn), "?")[sc[mask]]
    dst = np.append(_wallet_owner(dn), "?")[dc[mask]]
    df = pd.DataFrame({"src": src, "dst": dst, "tokens": ledger["amount"].to_numpy(float)[mask]})
    return df.groupby(["src", "dst"], as_index=False, sort=False)["tokens"].sum()


def _account_groups(accounts: pd.Index, per_agent: pd.DataFrame) -> pd.DataFrame:
    """Type and strategy of wallet accounts (from the per-agent table, else the name)."""
    info = per_agent.drop_duplicates("account").set_index("account")[["type", "strategy"]]
    out = info.reindex(accounts)
    guess = pd.Series(accounts, index=accounts).str.extract(r"^([a-z_]+):", expand=False)
    out["type"] = out["type"].fillna(guess).fillna("other").astype(str)
    out["strategy"] = out["strategy"].fillna("honest").astype(str)
    return out


def _keep_top(flow: pd.Series, groups: pd.DataFrame, top: int, reserve: int) -> pd.Index:
    """The ``top`` accounts by ``flow``, the ``reserve`` largest of every group, and the
    last of a group when it alone would be left (a merged node of one says nothing)."""
    g = (groups.loc[flow.index, "type"] + "/" + groups.loc[flow.index, "strategy"]).to_numpy()
    rank = flow.groupby(g).rank(ascending=False, method="first")
    keep = flow.index[:top].union(flow.index[(rank <= reserve).to_numpy()])
    rest = pd.Series(~flow.index.isin(keep), index=flow.index)
    alone = rest.groupby(g).transform("sum").to_numpy() == 1
    return keep.union(flow.index[rest.to_numpy() & alone])


def flows_network(
    ledger: pd.DataFrame,
    per_agent: pd.DataFrame,
    top_providers: int = 12,
    top_models: int = 25,
    reserve: int = 2,
) -> Figure:
    """Who bought data from whom, and which models fed the metamodel (networkx).

    A layered graph: data providers on the left, models (developers and free riders)
    in the middle, the metamodel on the right, placed by layer as
    ``networkx.multipartite_layout`` does. A provider-model edge is the tokens the
    model's owner paid that provider for data (ledger reason ``data_purchase``), in the
    seller's color; a model-metamodel edge is the tokens staked on the model's
    predictions (``stake`` minus ``unstake``), the weight it brings to the metamodel.
    Widths (and opacity) are proportional to tokens within each kind of edge.

    The ``top_providers`` providers by sales and the ``top_models`` models by tokens paid
    and staked are drawn, with the ``reserve`` largest of every group (type and
    strategy) so that a small adversarial group is never hidden among the others; the
    rest of each group is merged into one lighter node ("40 other developers"). Nodes
    are grouped by type and strategy, largest first within a group.
    """
    import networkx as nx

    _need(ledger, ["src", "dst", "asset", "amount", "reason"], "ledger.parquet")
    buys = _edge_sums(ledger, _token_rows(ledger, ("data_purchase",)))
    stakes = _edge_sums(ledger, _token_rows(ledger, ("stake",)))
    unstakes = _edge_sums(ledger, _token_rows(ledger, ("unstake",)))
    staked = stakes.groupby("src")["tokens"].sum()
    staked = staked.sub(unstakes.groupby("dst")["tokens"].sum(), fill_value=0.0)
    staked = staked[staked > 0]
    if buys.empty and staked.empty:
        raise NoData("no data purchases and no stakes in the ledger")
    sales = buys.groupby("dst")["tokens"].sum().sort_values(ascending=False)
    bought = buys.groupby("src")["tokens"].sum()
    model_flow = bought.add(staked, fill_value=0.0).sort_values(ascending=False)
    groups = _account_groups(sales.index.union(model_flow.index), per_agent)

    def layer_of(flow: pd.Series, top: int) -> tuple[list[str], dict[str, str], dict[str, int]]:
        """Nodes of a layer in drawing order, the node of every account, and the merged
        nodes with the number of accounts in each."""
        keep = _keep_top(flow, groups, top, reserve)
        g = groups.loc[flow.index]
        kept = flow.index.isin(keep)
        node = pd.Series(flow.index, index=flow.index, dtype=object)
        counts = (~pd.Series(kept, index=flow.index)).groupby([g["type"], g["strategy"]]).sum()
        merged_name = {
            (k, st): f"{c:,} other {_plural(k, st)}" for (k, st), c in counts.items() if c > 0
        }
        for (k, st), name in merged_name.items():
            node[(~kept) & (g["type"] == k).to_numpy() & (g["strategy"] == st).to_numpy()] = name
        order = pd.DataFrame(
            {
                "node": node.to_numpy(),
                "t": [_type_rank(k) for k in g["type"]],
                "adv": (g["strategy"] != "honest").to_numpy(),
                "s": g["strategy"].to_numpy(),
                "merged": ~kept,
                "flow": -flow.to_numpy(),
            }
        )
        order = order.sort_values(["t", "adv", "s", "merged", "flow"], kind="stable")
        nodes = list(dict.fromkeys(order["node"]))
        return nodes, node.to_dict(), {merged_name[key]: int(counts[key]) for key in merged_name}

    p_nodes, pmap, p_merged = layer_of(sales, top_providers)
    m_nodes, mmap, m_merged = layer_of(model_flow, top_models)
    members = {**p_merged, **m_merged}
    merged = set(members)
    data = pd.DataFrame(
        {"u": buys["dst"].map(pmap), "v": buys["src"].map(mmap), "tokens": buys["tokens"]}
    )
    data = data.groupby(["u", "v"], as_index=False, sort=False)["tokens"].sum()
    meta = pd.DataFrame({"u": staked.index.map(mmap), "tokens": staked.to_numpy()})
    meta = meta.groupby("u", as_index=False, sort=False)["tokens"].sum()

    layers = [p_nodes, m_nodes, ["metamodel"]]
    g = nx.DiGraph()
    pos = {}
    for layer, nodes in enumerate(layers):
        g.add_nodes_from(nodes, layer=layer)
        ys = np.linspace(1.0, 0.0, len(nodes)) if len(nodes) > 1 else [0.5]
        pos.update({n: (float(layer), float(y)) for n, y in zip(nodes, ys, strict=True)})
    for u, v, w in data.itertuples(index=False):
        g.add_edge(u, v, tokens=float(w), kind="data")
    for u, w in meta.itertuples(index=False):
        g.add_edge(u, "metamodel", tokens=float(w), kind="stake")

    color, label, group_of = {}, {}, {}
    node_group = {}
    for account, node in {**pmap, **mmap}.items():
        node_group.setdefault(node, (groups.at[account, "type"], groups.at[account, "strategy"]))
    for node in g.nodes:
        if node == "metamodel":
            color[node], label[node] = "#08519c", "metamodel"
            continue
        k, st = node_group[node]
        group_of[node] = (k, st)
        base = group_color(k, st)
        if node in merged:
            color[node], label[node] = mcolors.to_hex(_lighter(base)), node
        else:
            short = "P" if k == "provider" else "M"
            label[node] = f"{short}{str(node).rsplit(':', 1)[-1]}"
            color[node] = base
    through = (
        pd.concat(
            [
                data.groupby("u")["tokens"].sum(),
                data.groupby("v")["tokens"].sum(),
                meta.groupby("u")["tokens"].sum(),
            ]
        )
        .groupby(level=0)
        .sum()
    )
    # widths relative to the widest edge between drawn nodes (merged nodes' edges capped)
    top = {}
    for kind, f in (("data", data), ("stake", meta)):
        own = f[~f["u"].isin(merged) & ~f.get("v", pd.Series("", f.index)).isin(merged)]
        top[kind] = max(float((own if len(own) else f)["tokens"].max()) if len(f) else 0.0, 1e-12)
    height = max(4.8, 0.19 * max(len(x) for x in layers) + 1.8)
    with _styled():
        fig = _figure(height, left=1.9, right=2.9, top=1.0, bottom=0.2)
        ax = fig.subplots(1, 1)
        for kind in ("data", "stake"):
            edges = [e for e in g.edges if g.edges[e]["kind"] == kind]
            if not edges:
                continue
            # an edge of a merged node: tokens per member, as if it were one of them
            per = [members.get(e[0], 1) * members.get(e[1], 1) for e in edges]
            rel = np.array(
                [
                    min(g.edges[e]["tokens"] / n / top[kind], 1.0)
                    for e, n in zip(edges, per, strict=True)
                ]
            )
            order = np.argsort(rel, kind="stable")  # the widest drawn last, on top
            edges = [edges[i] for i in order]
            rel = rel[order]
            rgba = [
                mcolors.to_rgba(
                    "#08519c" if kind == "stake" else group_color(*group_of[e[0]]),
                    0.12 + 0.5 * w,
                )
                for e, w in zip(edges, rel, strict=True)
            ]
            nx.draw_networkx_edges(
                g,
                pos,
                edgelist=edges,
                width=list(0.2 + EDGE_WIDTH * rel),
                edge_color=rgba,
                arrows=False,
                ax=ax,
            )
        nodes = list(g.nodes)
        fmax = max(float(through.drop([*merged, "metamodel"], errors="ignore").max()), 1e-12)
        size = {
            n: 20 + 140 * math.sqrt(min(max(through.get(n, 0.0), 0.0) / fmax, 1.0)) for n in nodes
        }
        size["metamodel"] = 200
        size.update({n: 160 for n in merged if n in size})
        nx.draw_networkx_nodes(
            g,
            pos,
            nodelist=nodes,
            node_size=[size[n] for n in nodes],
            node_color=[color[n] for n in nodes],
            edgecolors=NEUTRAL,
            linewidths=0.5,
            ax=ax,
        )
        for n in nodes:
            gap = math.sqrt(size[n]) / 2 + 3  # points: the node's radius and a little
            offset, ha, va = {
                0: ((-gap, 0), "right", "center"),
                1: ((gap, 0), "left", "center"),
                2: ((0, -gap), "center", "top"),
            }[g.nodes[n]["layer"]]
            ax.annotate(
                label[n],
                pos[n],
                xytext=offset,
                textcoords="offset points",
                ha=ha,
                va=va,
                fontsize=7,
                color=NEUTRAL,
                style="italic" if n in merged else "normal",
            )
        for x, head in enumerate(("data providers", "models", "metamodel")):
            ax.annotate(
                head,
                (x, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(0, 6),
                textcoords="offset points",
                ha="center",
                va="bottom",
                weight="bold",
            )
        ax.set_axis_off()
        ax.margins(x=0.12, y=0.04)
        shown = sorted(
            set(group_of.values()), key=lambda t: (_type_rank(t[0]), t[1] != "honest", t[1])
        )
        handles = [
            Line2D([], [], marker="o", ls="", color=group_color(k, st), label=group_label(k, st))
            for k, st in shown
        ]
        if merged:
            handles.append(
                Line2D(
                    [],
                    [],
                    marker="o",
                    ls="",
                    color="#dddddd",
                    markeredgecolor=NEUTRAL,
                    label="the rest of a group (lighter)",
                )
            )
        if len(data):
            handles.append(
                Line2D(
                    [],
                    [],
                    color=mcolors.to_rgba(type_color("provider"), 0.6),
                    lw=0.2 + EDGE_WIDTH,
                    label=f"data bought: {top['data']:,.1f} tokens\n(widest; seller's color)",
                )
            )
        if len(meta):
            handles.append(
                Line2D(
                    [],
                    [],
                    color=mcolors.to_rgba("#08519c", 0.6),
                    lw=0.2 + EDGE_WIDTH,
                    label=f"staked: {top['stake']:,.1f} tokens (widest)",
                )
            )
        ax.legend(handles=handles, title="nodes and edges", **_OUTSIDE)
        drawn = (
            "\nthe largest of each group drawn, the rest merged (lighter; edges: per member)"
            if merged
            else ""
        )
        fig.suptitle(
            f"Token flows: {len(sales):,} providers sold data to {len(bought):,} models; "
            f"{len(staked):,} models staked on the metamodel{drawn}"
        )
        return fig


# --------------------------------------------------------------------------------------
# Secure computation
# --------------------------------------------------------------------------------------

#: Ledger reasons of the tokens developers pay out as costs (what ``spent`` counts).
COST_REASONS = (
    "data_purchase",
    "attribution",
    "fees",
    "hosting",
    "compute",
    "tax",
    "dispute_fee",
    "curation_buy",
    "holder_payout",
)


def developer_costs(ledger: pd.DataFrame) -> pd.Series:
    """Tokens developers and free riders paid from their wallets, by ledger reason."""
    _need(ledger, ["src", "asset", "amount", "reason"], "ledger.parquet")
    sc, names = _codes(ledger["src"])
    is_model = [bool(re.fullmatch(r"(developer|free_rider):\d+", str(n))) for n in names]
    m = np.append(is_model, False)[sc] & _token_rows(ledger, COST_REASONS)
    rc, rn = _codes(ledger["reason"])
    reason = np.append(np.asarray(rn, dtype=object), "?")[rc[m]]
    s = pd.Series(ledger["amount"].to_numpy(float)[m]).groupby(reason).sum()
    return s.sort_values(ascending=False)


def _share(x: float) -> str:
    return f"{x:.2%}" if abs(x) < 0.01 else f"{x:.1%}"


def secure_compute(model: pd.DataFrame, ledger: pd.DataFrame, summary: dict[str, Any]) -> Figure:
    """Secure training's share of developers' costs, and its latency against the deadline.

    Left: developers' costs by ledger reason (tokens, log scale), compute highlighted,
    each with its amount and share; the share in the title is the summary's
    ``secure_compute.share_of_developer_costs``. Right: mean and slowest training
    latency per round (seconds, log scale) against the round deadline, and below it the
    models that missed the deadline each round (only when some did).
    """
    _need(model, ["round", "latency_mean", "latency_max"], "model.parquet")
    sec = summary.get("secure_compute", {})
    costs = developer_costs(ledger)
    deadline = float(sec.get("deadline", np.nan))
    missed = (
        np.nan_to_num(model["missed_deadline"].to_numpy(float))
        if "missed_deadline" in model.columns
        else np.zeros(len(model))
    )
    with _styled():
        total = float(costs.sum()) if len(costs) else 0.0
        names = [
            f"{_pretty(n)}\n{_compact(v)} tokens, {_share(v / total)}"
            for n, v in costs.items()
            if total > 0
        ]
        left = 0.3 + _text_width(names, 8.0)
        fig = _figure(5.0, left=left, right=1.9, top=0.95)
        rows = 2 if missed.any() else 1
        gs = fig.add_gridspec(
            rows, 2, width_ratios=[1.0, 1.4], height_ratios=[2, 1][:rows], wspace=0.55
        )
        ax1 = fig.add_subplot(gs[:, 0])
        ax2 = fig.add_subplot(gs[0, 1])
        if len(costs) and total > 0:
            vals = costs.to_numpy(float)[::-1]
            colors = ["#d62728" if n == "compute" else "#9e9e9e" for n in costs.index[::-1]]
            y = np.arange(len(vals))
            ax1.barh(y, np.maximum(vals, 1e-9), color=colors, height=0.7)
            ax1.set_yticks(y, names[::-1], fontsize=8)
            ax1.set_xscale("log")
            ax1.set_xlabel("tokens over the run (log scale)")
            ax1.grid(axis="y", visible=False)
            lo = max(vals[vals > 0].min() if (vals > 0).any() else 1e-3, 1e-9)
            ax1.set_xlim(lo / 3, vals.max() * 3)
            _bar_slots(ax1, len(vals))
        else:
            ax1.set_axis_off()
            ax1.text(0.5, 0.5, "developers paid nothing", ha="center", transform=ax1.transAxes)
        share = sec.get("share_of_developer_costs")
        head = f"\n(compute {_share(share)})" if share is not None else ""
        ax1.set_title(f"Developers' costs{head}")
        r = model["round"].to_numpy()
        ax2.plot(r, model["latency_mean"], color="#3182bd", lw=1.8, label="mean latency")
        ax2.plot(r, model["latency_max"], color="#d62728", lw=1.0, ls="--", label="slowest model")
        if math.isfinite(deadline):
            ax2.axhline(deadline, color="black", lw=1.2, label=f"deadline ({deadline:,.4g} s)")
        ax2.set_yscale("log")
        ax2.yaxis.set_major_formatter(StrMethodFormatter("{x:,.4g}"))
        ax2.yaxis.set_minor_formatter(NullFormatter())
        ax2.set_ylabel("seconds (log scale)")
        ax2.set_title("Training latency\nagainst the round deadline")
        low = np.nanmin(model["latency_mean"].to_numpy(float), initial=np.inf)
        if math.isfinite(low) and low > 0:
            ax2.set_ylim(bottom=low / 2)
        if rows == 1:
            ax2.plot([], [], ls="", label="no model missed it")
        _legend_outside(ax2)
        if rows == 2:
            ax3 = fig.add_subplot(gs[1, 1], sharex=ax2)
            ax2.tick_params(labelbottom=False)
            edges = np.append(r - 0.5, r[-1] + 0.5)
            ax3.stairs(missed, edges, fill=True, color="#d62728")
            ax3.set_ylabel("models")
            ax3.set_ylim(0, max(1.0, float(missed.max()) * 1.1))
            ax3.yaxis.set_major_locator(MaxNLocator(integer=True))
            ax3.set_xlabel("round")
            ax3.set_title(f"Models that missed the deadline ({int(missed.sum()):,} in all)")
        else:
            ax2.set_xlabel("round")
        privacy = summary.get("mechanisms", {}).get("privacy", "")
        fig.suptitle(f"Secure computation ({privacy})" if privacy else "Secure computation")
        return fig


# --------------------------------------------------------------------------------------
# Adversaries
# --------------------------------------------------------------------------------------


def _label_color(label: str) -> str:
    """The color of a group named by :func:`group_label`."""
    if "/" in label:
        kind, strategy = label.split("/", 1)
        return group_color(kind, strategy)
    return type_color(label)


def _bar_slots(ax, rows: int, least: int = 4) -> None:
    """Keep bars of a horizontal bar chart with few rows as thin as with ``least`` rows."""
    pad = max(least - rows, 0) / 2
    ax.set_ylim(-0.5 - pad, rows - 0.5 + pad)


def _stacked_hbars(ax, table: pd.DataFrame, unit: str, pretty: bool = True) -> list:
    """Horizontal bars, one per row of ``table`` (first row on top), stacked by column.

    Columns are groups named by :func:`group_label`, in their colors; positive parts
    stack to the right of 0 and negative ones to the left; the net of each row is
    written at the end of its bar. Returns legend handles of the columns.
    """
    rows = list(table.index)[::-1]
    vals = table.to_numpy(float)[::-1]
    y = np.arange(len(rows))
    pos_left = np.zeros(len(rows))
    neg_left = np.zeros(len(rows))
    handles = []
    colors = [_label_color(str(c)) for c in table.columns]
    shared = {c for c in colors if colors.count(c) > 1}
    for j, col in enumerate(table.columns):
        v = vals[:, j]
        color = colors[j]
        # groups of one strategy share its color: their types are told apart by hatching
        kind = str(col).split("/", 1)[0]
        hatch = TYPE_HATCHES.get(kind) if color in shared else None
        style = {"facecolor": color, "edgecolor": "white" if hatch else color, "hatch": hatch}
        plus, minus = np.where(v > 0, v, 0.0), np.where(v < 0, v, 0.0)
        ax.barh(y, plus, left=pos_left, height=0.7, lw=0, **style)
        ax.barh(y, minus, left=neg_left, height=0.7, lw=0, **style)
        pos_left += plus
        neg_left += minus
        handles.append(Patch(label=str(col), **style))
    net = vals.sum(axis=1)
    for i, v in enumerate(net):
        right = pos_left[i] if v >= 0 else neg_left[i]
        ax.text(
            right,
            i,
            f" {v:+,.0f} ",
            va="center",
            fontsize=7,
            ha="left" if v >= 0 else "right",
        )
    ax.set_yticks(y, [_pretty(r) for r in rows] if pretty else rows)
    ax.axvline(0, color=NEUTRAL, lw=0.8)
    ax.set_xlabel(unit)
    ax.grid(axis="y", visible=False)
    ax.xaxis.set_major_formatter(_THOUSANDS)
    lo, hi = float(neg_left.min(initial=0.0)), float(pos_left.max(initial=0.0))
    pad = 0.35 * (hi - lo) if hi > lo else 1.0
    ax.set_xlim(lo - (pad if lo < 0 else 0), hi + pad)
    _bar_slots(ax, len(rows))
    return handles


def adversaries(
    per_agent: pd.DataFrame, ledger: pd.DataFrame, agents: pd.DataFrame | None = None
) -> Figure:
    """What adversaries took and from whom.

    Top left: payoff (final wealth - capital, usd) of each group of agents. Top right:
    net tokens into adversaries by source (:func:`adversary_sources`), each bar split
    by the adversarial group that received them. Bottom left: the same by ledger
    reason. Bottom right (with ``agents``): mean return on capital per round, honest
    agents against each adversarial group (a strategy's color, a type's line style).
    """
    _need(per_agent, ["type", "strategy", "adversary"], "the per-agent table")
    if not per_agent["adversary"].any():
        raise NoData("no adversaries in this run")
    src = adversary_sources(ledger, per_agent)
    with _styled():
        names = [
            *(
                group_label(k, st)
                for k, st in per_agent[["type", "strategy"]]
                .drop_duplicates()
                .itertuples(index=False)
            ),
            *(_pretty(n) for n in src.get("source", [])),
            *(_pretty(n) for n in src.get("reason", [])),
        ]
        label_w = 0.25 + _text_width(names)
        fig = _figure(7.6, left=label_w, right=2.2, hspace=0.5)
        axes = fig.subplots(2, 2)
        axes_w = (WIDTH - label_w - 2.2 - label_w) / 2  # the right column needs labels too
        fig.subplots_adjust(wspace=(label_w + 0.2) / max(axes_w, 0.5))
        (ax1, ax2), (ax3, ax4) = axes

        pay = per_agent.assign(payoff=per_agent["wealth"] - per_agent["capital"])
        g = pay.groupby(["type", "strategy"], sort=False)["payoff"].sum()
        order = sorted(g.index, key=lambda t: (_type_rank(t[0]), t[1] != "honest", t[1]))
        payoff = pd.DataFrame(
            np.diag(g.reindex(order).to_numpy(float)),
            index=[group_label(k, s) for k, s in order],
            columns=[group_label(k, s) for k, s in order],
        )
        _stacked_hbars(ax1, payoff, "payoff (usd)", pretty=False)
        ax1.set_title("Payoff by group (final wealth - capital)")
        if len(src):
            by_src = src.pivot_table(
                index="source", columns="recipient", values="tokens", aggfunc="sum", fill_value=0
            )
            by_src = by_src.loc[by_src.sum(axis=1).sort_values(ascending=False).index]
            handles = _stacked_hbars(ax2, by_src, "tokens (net, into adversaries)")
            ax2.legend(handles=handles, title="taken by", **_OUTSIDE)
            by_reason = src.pivot_table(
                index="reason", columns="recipient", values="tokens", aggfunc="sum", fill_value=0
            )
            by_reason = by_reason.loc[
                by_reason.sum(axis=1).abs().sort_values(ascending=False).index
            ]
            _stacked_hbars(ax3, by_reason.iloc[:10], "tokens (net, into adversaries)")
            total = float(src["tokens"].sum())
            ax2.set_title(f"From whom: {total:+,.0f} tokens in all")
            more = " (largest 10)" if len(by_reason) > 10 else ""
            ax3.set_title(f"Through which ledger entries{more}")
        else:
            for ax in (ax2, ax3):
                ax.set_axis_off()
                ax.text(
                    0.5,
                    0.5,
                    "no tokens moved to adversaries",
                    ha="center",
                    va="center",
                    transform=ax.transAxes,
                )
            ax2.set_title("From whom")
            ax3.set_title("Through which ledger entries")
        if agents is not None and {"round", "wealth"}.issubset(agents.columns):
            a = agents[["round", "type", "id", "wealth"]].copy()
            key = per_agent.set_index(["type", "id"])
            a["type"] = a["type"].astype(str)
            idx = pd.MultiIndex.from_arrays([a["type"], a["id"]])
            cap = key["capital"].reindex(idx).to_numpy(float)
            bad = key["adversary"].reindex(idx).fillna(False).to_numpy(bool)
            grp = key["group"].reindex(idx).to_numpy(object)
            with np.errstate(divide="ignore", invalid="ignore"):
                a["roi"] = np.where(cap > 0, a["wealth"].to_numpy(float) / cap - 1.0, np.nan)
            honest = "honest agents (all types)"
            a["g"] = np.where(bad, grp, honest)
            # an agent that left keeps the return it left with: averaging only those still
            # present would show the survivors, not the group
            a["key"] = pd.factorize(idx)[0]
            wide = a.pivot_table(index="round", columns="key", values="roi", aggfunc="last")
            wide = wide.ffill()
            of = a.drop_duplicates("key").set_index("key")["g"].reindex(wide.columns)
            m = wide.T.groupby(of.to_numpy()).mean().T
            for name in [honest, *sorted(c for c in m.columns if c != honest)]:
                if name not in m.columns:
                    continue
                if name == honest:
                    style = {"color": STRATEGY_COLORS["honest"], "lw": 2.6, "ls": "-"}
                    label = name
                else:
                    k, s = str(name).split("/", 1)
                    style = {"color": group_color(k, s), "lw": 1.5, "ls": TYPE_DASHES.get(k, "-")}
                    label = group_label(k, s)
                ax4.plot(m.index, m[name], label=label, **style)
            ax4.axhline(0, color=NEUTRAL, lw=0.6)
            ax4.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
            ax4.set_xlabel("round")
            ax4.set_ylabel("mean return on capital")
            ax4.set_title("Mean return over time (leavers at their exit value)")
            _legend_outside(ax4)
        else:
            ax4.set_axis_off()
        fig.suptitle("Adversaries: what they took, and from whom")
        return fig


# --------------------------------------------------------------------------------------
# Sweeps
# --------------------------------------------------------------------------------------

#: A numeric parameter with more distinct values than this is binned (quantiles).
DISCRETE_MAX = 12


#: Designs whose numeric parameters are drawn from ranges (each point its own value).
SPACE_FILLING = ("random", "latin_hypercube", "sobol", "saltelli")


def _is_discrete(s: pd.Series, design: str | None = None) -> bool:
    """Whether parameter values ``s`` are levels (categorical, or few numeric values).

    Numeric values from a space-filling ``design`` are levels only when there are at
    most 6 of them (an integer range such as 0..5); in a grid, up to :data:`DISCRETE_MAX`.
    """
    numeric = pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
    limit = 6 if design in SPACE_FILLING else DISCRETE_MAX
    return not numeric or s.nunique(dropna=True) <= limit


def _short(key: str) -> str:
    """The last two parts of a key path (``a.free_riders.count`` -> ``free_riders.count``)."""
    return ".".join(key.split(".")[-2:])


#: Units of summary values, by a pattern of their key: (unit, shown as a percentage).
_METRIC_UNITS: tuple[tuple[str, str, bool], ...] = (
    (r"roi|return", "return on capital", True),
    (r"share", "share", True),
    (r"gini", "Gini coefficient", False),
    (r"corr", "correlation", False),
    (r"pnl|usd|payoff", "usd", False),
    (r"price", "usd per token", False),
    (r"missed|agents|identities|owners|submissions", "count", False),
    (r"latency|seconds|deadline", "seconds", False),
    (r"leaks", "leaks", False),
    (r"tokens|supply|minted|burned|flows\.|fees|slashed|payout|sales|stake", "tokens", False),
)


def metric_unit(metric: str) -> tuple[str, bool]:
    """The unit of a summary value (``""`` when unknown), and whether it is a fraction
    best shown as a percentage (returns on capital, shares)."""
    for pattern, unit, pct in _METRIC_UNITS:
        if re.search(pattern, metric.rsplit(".", 1)[-1]) or re.search(pattern, metric):
            return unit, pct
    return "", False


def _metric_axis_label(metric: str) -> str:
    unit, pct = metric_unit(metric)
    return f"{metric}\n({unit}{', %' if pct else ''})" if unit else metric


def _metric_formatter(metric: str, values) -> Any:
    """A tick formatter for ``metric``: percent, thousands separators, or plain."""
    _, pct = metric_unit(metric)
    if pct:
        return PercentFormatter(xmax=1.0, decimals=None)
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if v.size and np.abs(v).max() >= 1000:
        return _THOUSANDS
    return None


def metric_value(metric: str, v: float) -> str:
    """A cell value of ``metric``: a percentage for fractions, else :func:`_compact`."""
    _, pct = metric_unit(metric)
    if pct:
        return f"{v:.1%}" if abs(v) >= 0.1 else f"{v:.2%}"
    return _compact(v)


def _text_color(rgba) -> str:
    """Black or white, whichever reads better on ``rgba`` (relative luminance, sRGB)."""
    r, g, b = rgba[:3]
    return "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.5 else "white"


def _t_interval(values: pd.core.groupby.SeriesGroupBy, confidence: float = 0.95) -> pd.DataFrame:
    """Mean and Student-t interval of each group (NaN interval below two values)."""
    from scipy import stats

    out = values.agg(["mean", "std", "count"])
    n = out["count"].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(n > 1, stats.t.ppf((1 + confidence) / 2, np.maximum(n - 1, 1)), np.nan)
        half = t * out["std"].to_numpy(float) / np.sqrt(n)
    out["low"] = out["mean"] - half
    out["high"] = out["mean"] + half
    return out


def _bins(s: pd.Series, n: int = 6) -> pd.Series:
    """Quantile bins of a continuous parameter, labelled by their mean value."""
    b = pd.qcut(s.rank(method="first"), q=min(n, s.nunique()), labels=False)
    centers = s.groupby(b).transform("mean")
    return centers


def _fmt_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def _rotated_room(ok: pd.DataFrame, params: Sequence[str]) -> float:
    """Inches below the axes that tick labels rotated by 30 degrees need (5+ categories)."""
    labels = [
        _fmt_value(v)
        for p in params
        if not pd.api.types.is_numeric_dtype(ok[p]) and ok[p].nunique() > 4
        for v in ok[p].unique()
    ]
    return 0.5 * _text_width(labels) if labels else 0.0


def sweep_metric(
    runs: pd.DataFrame,
    metric: str,
    params: Sequence[str],
    design: str | None = None,
    confidence: float = 0.95,
) -> Figure:
    """``metric`` against each varied parameter: mean and confidence band over seeds.

    For a parameter with levels (categorical, or at most :data:`DISCRETE_MAX` numeric
    values; at most 6 when the ``design`` is space-filling):
    at each value, the metric is averaged over the other parameters within each seed
    (the seeds are common random numbers), and the band is the Student-t interval of
    those seed means. A continuous parameter (a random, Latin hypercube or Sobol'
    design) is cut into quantile bins and the band is the interval over the runs in
    each bin. Grey points are single runs; failed runs are left out.
    """
    ok = runs[(runs["status"] == "ok") & runs[metric].notna()] if "status" in runs else runs
    if ok.empty:
        raise NoData(f"no finished run has a value of {metric!r}")
    params = list(params)
    if not params:
        raise NoData("the sweep varies no parameter")
    ncols = min(3, len(params))
    nrows = math.ceil(len(params) / ncols)
    with _styled():
        extra = _rotated_room(ok, params)
        fig = _figure(
            3.0 * nrows + 0.5 + extra * nrows,
            width=WIDTH if ncols > 1 else 6.5,
            left=1.15,
            right=2.3,
            top=0.45,
            bottom=0.55 + extra,
            hspace=(0.75 + extra) / 2.5,
            wspace=0.15,
        )
        axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False, sharey=True)).ravel()
        rng = np.random.default_rng(0)
        drew_bars = drew_band = False
        reach = [np.inf, -np.inf]  # the lowest and highest interval ends drawn

        for ax, p in zip(axes, params, strict=False):
            x = ok[p]
            y = ok[metric].astype(float)
            if _is_discrete(x, design):
                categorical = not (
                    pd.api.types.is_numeric_dtype(x) and not pd.api.types.is_bool_dtype(x)
                )
                if "seed" in ok.columns and ok["seed"].nunique() > 1:
                    per_seed = y.groupby([x, ok["seed"]]).mean()
                    stats_ = _t_interval(per_seed.groupby(level=0))
                else:
                    stats_ = _t_interval(y.groupby(x))
                values = list(stats_.index)
                xs = np.arange(len(values)) if categorical else np.asarray(values, float)
                lookup = dict(zip(values, xs, strict=True))
                px = np.array([lookup[v] for v in x], float)
                if categorical:
                    px = px + rng.uniform(-0.12, 0.12, px.size)
                ax.plot(px, y, ".", ms=3, color="#bdbdbd", zorder=1)
                if categorical:
                    ax.errorbar(
                        xs,
                        stats_["mean"],
                        yerr=[stats_["mean"] - stats_["low"], stats_["high"] - stats_["mean"]],
                        fmt="o",
                        color="#08519c",
                        capsize=4,
                        lw=1.5,
                        zorder=3,
                    )
                    ax.set_xticks(
                        xs,
                        [_fmt_value(v) for v in values],
                        rotation=30 if len(values) > 4 else 0,
                        ha="right" if len(values) > 4 else "center",
                    )
                    ax.set_xlim(-0.6, len(values) - 0.4)
                    drew_bars = True
                else:
                    drew_band = True
                    ax.fill_between(
                        xs,
                        stats_["low"],
                        stats_["high"],
                        color="#6baed6",
                        alpha=0.3,
                        lw=0,
                        zorder=2,
                    )
                    ax.plot(xs, stats_["mean"], "o-", color="#08519c", lw=1.6, ms=4, zorder=3)
            else:
                centers = _bins(x.astype(float))
                stats_ = _t_interval(y.groupby(centers))
                ax.plot(x, y, ".", ms=3, color="#bdbdbd", zorder=1)
                xs = stats_.index.to_numpy(float)
                ax.fill_between(
                    xs, stats_["low"], stats_["high"], color="#6baed6", alpha=0.3, lw=0, zorder=2
                )
                ax.plot(xs, stats_["mean"], "o-", color="#08519c", lw=1.6, ms=4, zorder=3)
                drew_band = True
                p = f"{p} (binned)"
            ax.set_xlabel(p)
            reach[0] = min(reach[0], float(np.nanmin(stats_["low"], initial=np.inf)))
            reach[1] = max(reach[1], float(np.nanmax(stats_["high"], initial=-np.inf)))
        # the view follows the runs: a wide interval (few seeds) runs off the edge
        values = ok[metric].astype(float)
        lo, hi = float(values.min()), float(values.max())
        pad = 0.3 * (hi - lo) if hi > lo else max(abs(hi) * 0.1, 1e-9)
        axes[0].set_ylim(lo - pad, hi + pad)
        fmt = _metric_formatter(metric, values)
        if fmt is not None:
            axes[0].yaxis.set_major_formatter(fmt)
        for ax in axes[len(params) :]:
            ax.set_axis_off()
        for ax in axes[::ncols]:
            ax.set_ylabel(_metric_axis_label(metric))
        interval = f"{confidence:.0%} interval\nover seeds"
        handles = []
        if drew_bars:
            handles.append(
                Line2D([], [], color="#08519c", marker="o", ls="", label=f"mean (bars: {interval})")
            )
        if drew_band:
            handles += [
                Line2D([], [], color="#08519c", marker="o", lw=1.6, label="mean"),
                Patch(color="#6baed6", alpha=0.3, label=f"band: {interval}"),
            ]
        handles.append(Line2D([], [], color="#bdbdbd", marker=".", ls="", label="one run"))
        if reach[0] < lo - pad or reach[1] > hi + pad:
            handles.append(
                Line2D([], [], ls="", label="(intervals beyond the\nruns' range are cut)")
            )
        _legend_outside(axes[ncols - 1] if len(params) >= ncols else axes[0], handles=handles)
        fig.suptitle(f"{metric} against each parameter")
        return fig


def _compact(v: float) -> str:
    """A short label for a cell value: thousands separators for large ones, else 3 digits."""
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"


def _levels(s: pd.Series) -> tuple[np.ndarray, list[Any]]:
    """Positions 0..k-1 of the values of ``s`` (sorted), and the sorted values."""
    values = sorted(s.dropna().unique(), key=lambda v: (str(type(v)), v))
    lookup = {v: i for i, v in enumerate(values)}
    return np.array([lookup.get(v, np.nan) for v in s], float), values


def _positions(s: pd.Series, set_ticks) -> np.ndarray:
    """Numeric values as they are; others at positions 0..k-1, labelled by ``set_ticks``."""
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        return s.to_numpy(float)
    pos, names = _levels(s)
    set_ticks(range(len(names)), [_fmt_value(v) for v in names])
    return pos


def sweep_heatmap(
    runs: pd.DataFrame,
    metrics: Sequence[str],
    x: str,
    y: str,
    design: str | None = None,
    annotate_max: int = 48,
) -> Figure:
    """Mean of each of ``metrics`` over the pair of parameters ``x`` and ``y``.

    When both parameters have levels (a grid), a heatmap of the mean over the other
    parameters and the seeds, with the values in the cells when there are at most
    ``annotate_max``. When one is continuous (a space-filling design), each point of the
    design is a dot at its two values, colored by its mean over seeds. A metric with
    values of both signs gets a diverging color map centred on 0.
    """
    ok = runs[runs["status"] == "ok"] if "status" in runs else runs
    metrics = [m for m in metrics if m in ok.columns and ok[m].notna().any()]
    if ok.empty or not metrics:
        raise NoData("no finished run to draw")
    if ok[x].nunique() > ok[y].nunique():  # the parameter with more values across
        x, y = y, x
    grid = _is_discrete(ok[x], design) and _is_discrete(ok[y], design)
    ncols = min(2, len(metrics))
    nrows = math.ceil(len(metrics) / ncols)
    with _styled():
        extra = _rotated_room(ok, [x])
        label_w = 0.5 + _text_width([_fmt_value(v) for v in ok[y].unique()] if grid else ["0.000"])
        slot_w = (WIDTH - label_w - 0.6 - label_w) / ncols
        fig = _figure(
            3.0 * nrows + 0.6 + extra * nrows,
            left=label_w,
            right=0.6,
            top=0.95,
            bottom=0.55 + extra,
            hspace=(0.9 + extra) / 2.4,
            wspace=(label_w + 0.5) / max(slot_w, 0.5),
        )
        axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
        for ax, m in zip(axes, metrics, strict=False):
            if grid:
                table = ok.groupby([y, x])[m].mean().unstack(x)
                vals = table.to_numpy(float)
                xt, yt = list(table.columns), list(table.index)
            else:
                key = "point_id" if "point_id" in ok.columns else [x, y]
                pts = ok.groupby(key).agg(px=(x, "first"), py=(y, "first"), v=(m, "mean"))
                vals = pts["v"].to_numpy(float)
            lo, hi = np.nanmin(vals), np.nanmax(vals)
            scale = (
                {"cmap": "RdBu", "vmin": -max(-lo, hi), "vmax": max(-lo, hi)}
                if lo < 0 < hi
                else {"cmap": "viridis"}
            )
            if grid:
                im = ax.imshow(vals, origin="lower", aspect="auto", **scale)
                many = len(xt) > 4
                ax.set_xticks(
                    range(len(xt)),
                    [_fmt_value(v) for v in xt],
                    rotation=30 if many else 0,
                    ha="right" if many else "center",
                )
                ax.set_yticks(range(len(yt)), [_fmt_value(v) for v in yt])
                ax.grid(False)
                if vals.size <= annotate_max:
                    for (i, j), v in np.ndenumerate(vals):
                        if np.isfinite(v):
                            ax.text(
                                j,
                                i,
                                metric_value(m, v),
                                ha="center",
                                va="center",
                                fontsize=7,
                                color=_text_color(im.cmap(im.norm(v))),
                            )
            else:
                xs = _positions(pts["px"], ax.set_xticks)
                ys = _positions(pts["py"], ax.set_yticks)
                im = ax.scatter(xs, ys, c=vals, s=40, edgecolors=NEUTRAL, linewidths=0.4, **scale)
            ax.set_xlabel(_short(x))
            ax.set_ylabel(_short(y))
            ax.set_title(m)
            unit, pct = metric_unit(m)
            cbar = fig.colorbar(
                im,
                ax=ax,
                shrink=0.9,
                label=f"mean over seeds ({unit})" if unit else "mean over seeds",
            )
            fmt = _metric_formatter(m, vals)
            if fmt is not None:
                cbar.ax.yaxis.set_major_formatter(fmt)
        for ax in axes[len(metrics) :]:
            ax.set_axis_off()
        how = "other parameters and seeds averaged" if grid else "each dot a point of the design"
        fig.suptitle(f"Means over {x} and {y}\n({how})")
        return fig


def sweep_sensitivity(runs: pd.DataFrame, metrics: Sequence[str], params: Sequence[str]) -> Figure:
    """Rank-based importance of each parameter (and of the seed) for each metric.

    The share of a metric's rank variance explained by the parameter alone
    (:func:`analysis.sweep.sensitivity`: Spearman's rho squared for numeric parameters,
    eta squared of an ANOVA on ranks for categorical ones); the seed row measures the
    noise between runs.
    """
    from analysis.sweep import sensitivity

    metrics = [m for m in metrics if m in runs.columns]
    if not metrics:
        raise NoData("no metric to rank parameters by")
    table = {}
    for m in metrics:
        s = sensitivity(runs, m, params)
        table[m] = s.set_index("parameter")["importance"]
    df = pd.DataFrame(table).T
    cols = [*params, *(["seed"] if "seed" in df.columns else [])]
    df = df.reindex(columns=cols)
    vals = df.to_numpy(float)
    with _styled():
        left = 0.3 + _text_width(metrics)
        bottom = 0.35 + 0.45 * _text_width([_short(c) for c in cols])
        fig = _figure(
            0.45 + bottom + 0.34 * len(metrics),
            width=left + 0.95 * len(cols) + 1.4,
            left=left,
            right=1.4,
            top=0.45,
            bottom=bottom,
        )
        ax = fig.subplots(1, 1)

        im = ax.imshow(vals, aspect="auto", cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(len(cols)), [_short(c) for c in cols], rotation=25, ha="right")
        ax.set_yticks(range(len(metrics)), metrics)
        ax.grid(False)
        for (i, j), v in np.ndenumerate(vals):
            ax.text(
                j,
                i,
                "-" if not np.isfinite(v) else f"{v:.2f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if np.isfinite(v) and v > 0.6 else "black",
            )
        fig.colorbar(im, ax=ax, label="share of rank variance explained")
        ax.set_title("Sensitivity: which parameter moves which metric")
        return fig


def sweep_sobol(runs: pd.DataFrame, metrics: Sequence[str], params: Sequence[str]) -> Figure:
    """First-order and total Sobol' indices with bootstrap intervals (saltelli designs)."""
    from analysis.sweep import sobol_indices

    metrics = [m for m in metrics if m in runs.columns]
    if not metrics:
        raise NoData("no metric for Sobol' indices")
    ncols = min(2, len(metrics))
    nrows = math.ceil(len(metrics) / ncols)
    with _styled():
        extra = 0.45 * _text_width(params)
        fig = _figure(
            2.6 * nrows + 0.5 + extra * nrows,
            right=2.0,
            top=0.45,
            bottom=0.4 + extra,
            hspace=(0.7 + extra) / 2.2,
            wspace=0.35,
        )
        axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()

        for ax, m in zip(axes, metrics, strict=False):
            s = sobol_indices(runs, m, params)
            xs = np.arange(len(s))
            for off, col, color in ((-0.18, "S1", "#6baed6"), (0.18, "ST", "#08519c")):
                err = np.vstack([s[col] - s[f"{col}_low"], s[f"{col}_high"] - s[col]])
                ax.bar(
                    xs + off,
                    s[col],
                    width=0.36,
                    color=color,
                    label=col,
                    yerr=np.nan_to_num(np.abs(err)),
                    capsize=3,
                )
            ax.set_xticks(xs, s["parameter"], rotation=25, ha="right")
            ax.set_ylabel("Sobol' index")
            ax.set_title(m)
            ax.axhline(0, color=NEUTRAL, lw=0.6)
        for ax in axes[len(metrics) :]:
            ax.set_axis_off()
        _legend_outside(
            axes[0],
            handles=[
                Patch(color="#6baed6", label="first order (S1)"),
                Patch(color="#08519c", label="total (ST)"),
            ],
        )
        fig.suptitle("Sobol' indices (bootstrap 95% intervals)")
        return fig

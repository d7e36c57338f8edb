"""The report of a run or a sweep: one self-contained HTML file that opens offline.

>>> from analysis.report import build_run_report, build_sweep_report, build_report
>>> build_run_report("runs/demo")          # runs/demo/report.html, runs/demo/figures/*.png
>>> build_sweep_report("runs/my-sweep")    # the same for a sweep folder
>>> build_report("runs/demo").figures      # either kind, detected from the folder

A report is built from the saved files alone (``summary.json``, ``scenario.yaml``,
``provenance.json`` and the Parquet tables of a run; ``sweep.yaml``,
``points.parquet`` and ``runs.parquet`` of a sweep), so ``mlmarket report DIR``
rebuilds it without running anything. Every figure (:mod:`analysis.plots`) is embedded
as a PNG ``data:`` URI and also written to ``DIR/figures/NAME.png``; the page loads no
script, style sheet, font or image from anywhere else. A figure that has nothing to
show (no adversaries, no provider quality column, ...) is replaced by a sentence saying
why; a figure that fails is reported in its place (and in :attr:`Report.failed`)
while the others are still drawn, unless ``strict``.

A run's sections: headline numbers and the scenario; over time (price and supply,
active agents, the metamodel, stakes, payouts and slashes); who wins (return on capital
by type and strategy, Lorenz curves and Gini); does payout follow value (providers'
revenue against true data quality, models' payout against their score); the flows
network; secure computation (when privacy is ``mpc`` or ``he``); adversaries (when
there are any). A sweep's: the design and its runs, each metric against each
parameter with confidence bands over seeds, heatmaps over pairs of parameters,
sensitivity (and Sobol' indices for a ``saltelli`` design), failed runs.
"""

from __future__ import annotations

import base64
import html
import io
import itertools
import json
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPORT = "report.html"
FIGURES = "figures"
#: Privacy rules whose secure computation gets a section.
SECURE = ("mpc", "he")
#: At most this many metrics are drawn against the parameters of a sweep.
MAX_METRICS = 10
#: At most this many pairs of parameters get heatmaps; each of at most this many metrics.
MAX_PAIRS = 6
MAX_HEATMAP_METRICS = 4
#: Rows of the per-point and failed-run tables of a sweep report.
MAX_TABLE_ROWS = 60
#: Summary values a sweep report draws first, when the sweep kept them and they vary.
HEADLINE_METRICS = (
    "metamodel.mean_corr",
    "metamodel.total_pnl",
    "tokens.price_end",
    "honest.roi_mean",
    "adversaries.roi_mean",
    "adversaries.transfer_tokens",
    "roi_by_type.developer",
    "roi_by_type.provider",
    "roi_by_type.free_rider",
    "roi_by_type.investor",
    "counterfactual.damage.metamodel_mean_corr",
    "counterfactual.damage.honest_payoff_usd",
    "sybils.roi_vs_honest",
    "secure_compute.share_of_developer_costs",
    "secure_compute.missed_deadline",
    "flows.data_sales",
    "flows.payouts",
    "flows.slashed",
    "flows.leaks",
)
#: Summary values that echo the configuration rather than measure the run.
_ECHO = re.compile(
    r"^(scenario\.|summary\.seed$|rounds$|tokens\.(supply_start|price_start)$|"
    r"secure_compute\.deadline$|sybils\.(owners|identities|split)$)"
)


class ReportError(Exception):
    """The folder holds no run or sweep to report on; the message says what is missing."""


@dataclass
class Report:
    """What :func:`build_report` wrote."""

    path: Path
    kind: str
    figures: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------


def folder_kind(folder: str | Path) -> str:
    """``"run"`` or ``"sweep"``: what ``folder`` holds, or :class:`ReportError`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ReportError(f"{folder} is not a folder")
    if (folder / "summary.json").is_file() or (folder / "model.parquet").is_file():
        return "run"
    if (folder / "sweep.yaml").is_file() or (folder / "runs.parquet").exists():
        return "sweep"
    raise ReportError(
        f"{folder} holds neither a run (summary.json, model.parquet, ...) nor a sweep "
        "(sweep.yaml, runs.parquet)"
    )


def build_report(folder: str | Path, strict: bool = False) -> Report:
    """Build the report of a run or a sweep folder (detected by :func:`folder_kind`)."""
    if folder_kind(folder) == "run":
        return _run_report(Path(folder), strict)
    return _sweep_report(Path(folder), strict)


def build_run_report(run_dir: str | Path, strict: bool = False) -> Path:
    """Write ``run_dir/report.html`` (and ``run_dir/figures/*.png``); return its path."""
    if folder_kind(run_dir) != "run":
        raise ReportError(f"{run_dir} is a sweep folder; use build_sweep_report")
    return _run_report(Path(run_dir), strict).path


def build_sweep_report(sweep_dir: str | Path, strict: bool = False) -> Path:
    """Write ``sweep_dir/report.html`` (and ``sweep_dir/figures/*.png``); return its path."""
    if folder_kind(sweep_dir) != "sweep":
        raise ReportError(f"{sweep_dir} is a run folder; use build_run_report")
    return _sweep_report(Path(sweep_dir), strict).path


# --------------------------------------------------------------------------------------
# Building blocks: figures, tables, the page
# --------------------------------------------------------------------------------------


class _Page:
    """An HTML page under construction, and the figures it embeds."""

    def __init__(self, folder: Path, kind: str, strict: bool):
        self.folder = folder
        self.figdir = folder / FIGURES
        self.report = Report(folder / REPORT, kind)
        self.strict = strict
        self.parts: list[str] = []
        self.toc: list[tuple[str, str]] = []
        self.timings = self.report.timings

    def section(self, anchor: str, title: str, intro: str = "") -> None:
        self.toc.append((anchor, title))
        self.parts.append(f'<section id="{anchor}"><h2>{_e(title)}</h2>')
        if intro:
            self.parts.append(f"<p>{intro}</p>")

    def end(self) -> None:
        self.parts.append("</section>")

    def add(self, html_text: str) -> None:
        self.parts.append(html_text)

    def note(self, text: str) -> None:
        self.parts.append(f'<p class="note">{_e(text)}</p>')

    def figure(self, name: str, caption: str, build: Callable[[], Any]) -> None:
        """Draw ``build()``, embed it and save ``figures/NAME.png``; or say why not."""
        from analysis.plots import DPI, NoData

        t0 = time.perf_counter()
        try:
            fig = build()
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=DPI)
            data = buf.getvalue()
        except NoData as e:
            self.report.skipped[name] = str(e)
            self.note(f"Not drawn: {e}.")
            return
        except Exception as e:
            if self.strict:
                raise
            msg = f"{type(e).__name__}: {e}"
            self.report.failed[name] = msg
            self.parts.append(
                f'<p class="failed">The figure {_e(name)} could not be drawn ({_e(msg)}).</p>'
            )
            return
        finally:
            self.timings[name] = time.perf_counter() - t0
        self.figdir.mkdir(parents=True, exist_ok=True)
        (self.figdir / f"{name}.png").write_bytes(data)
        self.report.figures.append(name)
        uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
        self.parts.append(
            f'<figure id="fig-{name}"><img src="{uri}" alt="{_e(_plain(caption))}">'
            f"<figcaption>{caption} <span class=file>figures/{_e(name)}.png</span>"
            "</figcaption></figure>"
        )

    def write(self, title: str, subtitle: str) -> Report:
        """Write ``report.html`` (and drop figures a previous build wrote but this one did not)."""
        if self.figdir.is_dir():
            keep = {f"{n}.png" for n in self.report.figures}
            for p in self.figdir.glob("*.png"):
                if p.name not in keep and p.name.startswith(_OWN_PREFIXES):
                    p.unlink()
        nav = " · ".join(f'<a href="#{a}">{_e(t)}</a>' for a, t in self.toc)
        page = _TEMPLATE.format(
            title=_e(title),
            subtitle=subtitle,
            nav=nav,
            body="\n".join(self.parts),
            style=_STYLE,
        )
        tmp = self.report.path.with_name(f".{REPORT}.tmp")
        tmp.write_text(page, encoding="utf-8")
        tmp.replace(self.report.path)
        return self.report


#: Figure names this module writes (others in figures/ are left alone on a rebuild).
_OWN_PREFIXES = (
    "price_supply",
    "active_agents",
    "metamodel",
    "stakes_payouts",
    "roi_distribution",
    "lorenz",
    "provider_payout_quality",
    "model_payout_contribution",
    "flows_network",
    "secure_compute",
    "adversaries",
    "sweep_",
)

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
margin:0 auto;max-width:980px;padding:0 16px 48px;color:#222;line-height:1.45}
header{border-bottom:2px solid #08519c;margin-bottom:8px}
h1{font-size:1.5em;margin:18px 0 2px}h2{font-size:1.2em;margin-top:34px;
border-bottom:1px solid #ddd;padding-bottom:3px}h3{font-size:1em;margin:18px 0 6px}
nav{font-size:.9em;margin:8px 0 4px}nav a{color:#08519c;text-decoration:none}
.sub{color:#555;font-size:.92em;margin:2px 0 10px}
table{border-collapse:collapse;font-size:.86em;margin:6px 0 12px}
th,td{padding:3px 9px;border-bottom:1px solid #e5e5e5;text-align:right;vertical-align:top}
th:first-child,td:first-child{text-align:left}th{background:#f3f6fa}
td.l,th.l{text-align:left}
figure{margin:14px 0 26px}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.86em;color:#444;margin-top:4px}
.file{color:#888;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em}
pre{background:#f7f7f7;padding:8px 10px;overflow-x:auto;font-size:.8em}
.note{color:#555;font-style:italic}.failed{color:#b00020}
.neg{color:#b00020}.pos{color:#1a7f37}details{margin:6px 0 12px}
summary{cursor:pointer;color:#08519c}
"""

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
<header><h1>{title}</h1><p class="sub">{subtitle}</p><nav>{nav}</nav></header>
{body}
</body>
</html>
"""


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _plain(html_text: str) -> str:
    """``html_text`` without its tags (for an ``alt`` attribute)."""
    return re.sub(r"<[^>]+>", "", html_text)


def _num(x: Any, fmt: str = "{:,.4g}") -> str:
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int | float):
        if isinstance(x, float) and not math.isfinite(x):
            return "-"
        return fmt.format(x)
    return _e(x)


def _pct(x: Any, signed: bool = True) -> str:
    if not isinstance(x, int | float) or not math.isfinite(x):
        return "-"
    s = f"{100 * x:+.2f} %" if signed else f"{100 * x:.2f} %"
    cls = "neg" if x < 0 else "pos" if x > 0 and signed else ""
    return f'<span class="{cls}">{s}</span>' if cls else s


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> str:
    """An HTML table; cells are already HTML (escape text with :func:`_e`)."""
    head = "".join(
        f"<th{' class=l' if i < left else ''}>{_e(h)}</th>" for i, h in enumerate(header)
    )
    thead = f"<thead><tr>{head}</tr></thead>" if any(header) else ""
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=l' if i < left else ''}>{c}</td>" for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f"<table>{thead}<tbody>{body}</tbody></table>"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


# --------------------------------------------------------------------------------------
# A run
# --------------------------------------------------------------------------------------


def _load_table(folder: Path, name: str):
    import pandas as pd

    path = folder / name
    if not path.is_file():
        raise ReportError(f"{folder} has no {name}; is it a complete run folder?")
    return pd.read_parquet(path)


def _headline(s: dict[str, Any]) -> str:
    """The summary's headline numbers as HTML tables."""
    out = []
    by_type = s.get("agents_by_type", {})
    if by_type:
        rows = []
        for kind, n in by_type.items():
            if not n:  # a type the scenario does not have
                continue
            at_end = s.get("active_at_end", {}).get(kind, "-")
            roi = s.get("roi_by_type", {}).get(kind)
            rows.append([_e(kind), _num(n, "{:,}"), _num(at_end, "{:,}"), _pct(roi)])
        out.append(_table(["agent type", "ever", "at end", "mean return on capital"], rows))
    kv: list[list[str]] = []
    m = s.get("metamodel", {})
    if m:
        kv.append(
            [
                "metamodel",
                f"mean score {_num(m.get('mean_corr'), '{:+.4f}')} over "
                f"{_num(m.get('resolved_rounds'), '{:,}')} resolved rounds; "
                f"P&amp;L {_num(m.get('total_pnl'), '{:+,.0f}')} usd",
            ]
        )
    t = s.get("tokens", {})
    if t:
        kv.append(
            [
                "tokens",
                f"supply {_num(t.get('supply_start'), '{:,.0f}')} → "
                f"{_num(t.get('supply_end'), '{:,.0f}')} "
                f"(minted {_num(t.get('minted'), '{:,.0f}')}, "
                f"burned {_num(t.get('burned'), '{:,.0f}')}); price "
                f"{_num(t.get('price_start'), '{:.3f}')} → "
                f"{_num(t.get('price_end'), '{:.3f}')} usd",
            ]
        )
    f = s.get("flows", {})
    if f:
        kv.append(
            [
                "flows",
                f"data sales {_num(f.get('data_sales'), '{:,.0f}')}, payouts "
                f"{_num(f.get('payouts'), '{:,.0f}')}, slashed {_num(f.get('slashed'), '{:,.0f}')}"
                f" tokens; {_num(f.get('leaks'), '{:,}')} leaks",
            ]
        )
    adv, honest = s.get("adversaries", {}), s.get("honest", {})
    if adv.get("agents"):
        kv.append(
            [
                "adversaries",
                f"{_num(adv['agents'], '{:,}')} agents, mean return {_pct(adv.get('roi_mean'))} "
                f"(honest {_pct(honest.get('roi_mean'))}); net "
                f"{_num(adv.get('transfer_tokens'), '{:+,.0f}')} tokens from honest "
                "participants and shared accounts",
            ]
        )
    cf = s.get("counterfactual")
    if cf and "damage" in cf:
        d = cf["damage"]
        kv.append(
            [
                "counterfactual",
                "without the adversaries (same seed) the metamodel scores "
                f"{_num(d.get('metamodel_mean_corr'), '{:+.4f}')} more and honest payoff is "
                f"{_num(d.get('honest_payoff_usd'), '{:+,.0f}')} usd higher",
            ]
        )
    c = s.get("secure_compute", {})
    if c.get("core_seconds", 0) > 0:
        kv.append(
            [
                "secure compute",
                f"{_e(s.get('mechanisms', {}).get('privacy', ''))}: "
                f"{_num(c.get('fees'))} tokens of compute "
                f"({_pct(c.get('share_of_developer_costs'), signed=False)} of developers' costs); "
                f"latency mean {_num(c.get('latency_mean'), '{:,.3g}')} s, max "
                f"{_num(c.get('latency_max'), '{:,.3g}')} s vs deadline "
                f"{_num(c.get('deadline'), '{:,.4g}')} s; {_num(c.get('missed_deadline'), '{:,}')}"
                " missed",
            ]
        )
    if "invariants_ok" in s:
        kv.append(["invariants", "ok" if s["invariants_ok"] else "<b class=neg>BROKEN</b>"])
    if kv:
        out.append(_table(["", ""], kv))
    return "\n".join(out)


def _scenario_html(s: dict[str, Any], scenario_text: str) -> str:
    mech = s.get("mechanisms", {})
    out = []
    if mech:
        out.append(_table(["mechanism family", "rule"], [[_e(k), _e(v)] for k, v in mech.items()]))
    if scenario_text:
        out.append(
            "<details><summary>the resolved scenario (scenario.yaml; "
            "<code>mlmarket run scenario.yaml</code> reruns it)</summary>"
            f"<pre>{_e(scenario_text)}</pre></details>"
        )
    return "\n".join(out)


def _by_strategy_table(s: dict[str, Any], per_agent=None) -> str:
    """The summary's groups; with the per-agent table, their data revenue too (providers
    earn from sales and attribution, not from payouts)."""
    groups = s.get("by_strategy", {})
    if not groups:
        return ""
    revenue = {}
    if per_agent is not None and "revenue" in per_agent.columns:
        revenue = per_agent.groupby("group")["revenue"].sum().to_dict()
    rows = [
        [
            _e(k),
            _num(g.get("agents"), "{:,}"),
            _pct(g.get("roi_mean")),
            _pct(g.get("roi_median")),
            *([_num(revenue.get(k), "{:,.1f}")] if revenue else []),
            _num(g.get("payout"), "{:,.1f}"),
            _num(g.get("burned"), "{:,.1f}"),
            _num(g.get("payoff_usd"), "{:+,.0f}"),
        ]
        for k, g in groups.items()
    ]
    return _table(
        [
            "type/strategy",
            "agents",
            "mean return",
            "median return",
            *(["data revenue (tokens)"] if revenue else []),
            "payout (tokens)",
            "burned (tokens)",
            "payoff (usd)",
        ],
        rows,
    )


def _adversary_tables(s: dict[str, Any], sources) -> str:
    out = []
    honest, adv = s.get("honest", {}), s.get("adversaries", {})
    if adv:
        rows = [
            [
                name,
                _num(b.get("agents"), "{:,}"),
                _pct(b.get("roi_mean")),
                _num(b.get("payout"), "{:,.1f}"),
                _num(b.get("burned"), "{:,.1f}"),
                _num(b.get("payoff_usd"), "{:+,.0f}"),
            ]
            for name, b in (("honest", honest), ("adversaries", adv))
            if b
        ]
        out.append(
            _table(
                ["", "agents", "mean return", "payout (tokens)", "burned (tokens)", "payoff (usd)"],
                rows,
            )
        )
    cf = s.get("counterfactual")
    if cf and "damage" in cf:
        d = cf["damage"]
        out.append("<h3>Counterfactual: the same market without its adversaries</h3>")
        out.append(
            _table(
                ["", "with adversaries", "without", "damage"],
                [
                    [
                        "metamodel mean score",
                        _num(s.get("metamodel", {}).get("mean_corr"), "{:+.4f}"),
                        _num(cf.get("metamodel_mean_corr"), "{:+.4f}"),
                        _num(d.get("metamodel_mean_corr"), "{:+.4f}"),
                    ],
                    [
                        "honest payoff (usd)",
                        _num(honest.get("payoff_usd"), "{:+,.0f}"),
                        _num(cf.get("honest", {}).get("payoff_usd"), "{:+,.0f}"),
                        _num(d.get("honest_payoff_usd"), "{:+,.0f}"),
                    ],
                ],
            )
        )
    syb = s.get("sybils")
    if syb:
        out.append("<h3>Sybil groups</h3>")
        out.append(
            _table(
                ["", "value"],
                [
                    ["owners × identities", f"{syb.get('owners')} × {syb.get('identities')}"],
                    ["groups' mean return", _pct(syb.get("roi_mean"))],
                    ["honest developers from genesis", _pct(syb.get("honest_genesis_roi_mean"))],
                    ["difference", _pct(syb.get("roi_vs_honest"))],
                ],
            )
        )
    if sources is not None and len(sources):
        top = (
            sources.groupby(["source", "recipient"], as_index=False)["tokens"]
            .sum()
            .sort_values("tokens", key=abs, ascending=False)
            .head(15)
        )
        out.append("<h3>Largest net transfers into adversaries</h3>")
        out.append(
            _table(
                ["from", "to", "tokens (net)"],
                [[_e(a), _e(b), _num(v, "{:+,.1f}")] for a, b, v in top.itertuples(index=False)],
                left=2,
            )
        )
    return "\n".join(out)


def _run_report(folder: Path, strict: bool) -> Report:
    t0 = time.perf_counter()  # the build time shown includes the plotting imports
    import numpy as np

    from analysis import plots

    summary = _read_json(folder / "summary.json")
    if not summary:
        raise ReportError(f"{folder} has no readable summary.json; is it a complete run folder?")
    model = _load_table(folder, "model.parquet")
    agents = _load_table(folder, "agents.parquet")
    ledger = _load_table(folder, "ledger.parquet")
    prov = _read_json(folder / "provenance.json")
    scenario = folder / "scenario.yaml"
    scenario_text = scenario.read_text(encoding="utf-8") if scenario.is_file() else ""
    load_s = time.perf_counter() - t0

    page = _Page(folder, "run", strict)
    per_agent = None
    try:
        per_agent = plots.outcomes(agents)
    except plots.NoData:
        pass
    except Exception:
        if strict:
            raise

    def with_agents(fn):
        def build():
            if per_agent is None:
                raise plots.NoData("agents.parquet holds no agent")
            return fn(per_agent)

        return build

    page.section("headline", "Headline")
    page.add(_headline(summary))
    page.end()
    page.section("scenario", "Scenario")
    page.add(_scenario_html(summary, scenario_text))
    page.end()

    page.section(
        "time",
        "Over time",
        "The market round by round: the token, who takes part, how good the metamodel is "
        "and what it earns, and the tokens staked, paid and slashed.",
    )
    page.figure(
        "price_supply",
        "Token price (usd per token) on the exchange, the token supply, and the tokens minted "
        "(issuance) and burned (slashes, fees) each round.",
        lambda: plots.price_supply(model),
    )
    page.figure(
        "active_agents",
        "Active agents of each type, and the agents that entered (expected return above "
        "their outside option) or left (sustained losses) each round.",
        lambda: plots.active_agents(model),
    )
    page.figure(
        "metamodel",
        "The metamodel's score (correlation of its predictions with realized returns, "
        "available once a round resolves) and the profit or loss of trading on it (usd).",
        lambda: plots.metamodel(model),
    )
    page.figure(
        "stakes_payouts",
        "Tokens at stake (developers' stakes, providers' bonds), rewards paid and tokens "
        "slashed or forfeited each round, summed by agent type.",
        lambda: plots.stakes_payouts(agents),
    )
    page.end()

    page.section(
        "wins",
        "Who wins",
        "Return on capital = final wealth (tokens at the final price, stake and usd) / "
        "capital brought in - 1, for every agent that took part, including those that left.",
    )
    page.figure(
        "roi_distribution",
        "Distribution of return on capital by agent type and by type and strategy: "
        "boxes are quartiles, whiskers the 5th-95th percentiles, diamonds the means, dots "
        "agents (sampled in large populations).",
        with_agents(plots.roi_distribution),
    )
    page.figure(
        "lorenz",
        "Lorenz curves of final wealth and of tokens earned, with Gini coefficients "
        "(0: equal; 1: one agent holds everything).",
        with_agents(plots.lorenz),
    )
    page.add(_by_strategy_table(summary, per_agent))
    page.end()

    page.section(
        "value",
        "Does payout follow value",
        "A market rewards well when what a participant earns follows what it contributes.",
    )
    page.figure(
        "provider_payout_quality",
        "Each provider's revenue (data sales and attribution of models' gains, tokens per "
        "active round) against its true data quality (the engine's <code>quality</code>: the "
        "share of the feed's variance a model can use; 0 for noise and stale feeds).",
        with_agents(plots.provider_payout_quality),
    )
    page.figure(
        "model_payout_contribution",
        "Each model's net payout (rewards minus slashes, tokens per active round) against "
        "its contribution: the <code>contribution</code> column of agents.parquet when the "
        "engine records it, else the model's mean score (its own trailing correlation with "
        "realized returns), which stands in for its contribution to the metamodel.",
        with_agents(plots.model_payout_contribution),
    )
    page.end()

    page.section("flows", "Flows")
    page.figure(
        "flows_network",
        "Who bought data from whom (edges provider–model: tokens paid, ledger "
        "<code>data_purchase</code>) and which models fed the metamodel (edges model–"
        "metamodel: tokens staked on their predictions). Node size follows the tokens through "
        "the node; colors are the owners' type (honest) or strategy (adversarial). Only "
        "the largest providers and models are drawn; the rest are merged.",
        with_agents(lambda pa: plots.flows_network(ledger, pa)),
    )
    page.end()

    privacy = str(summary.get("mechanisms", {}).get("privacy", ""))
    if privacy in SECURE:
        page.section(
            "secure",
            "Secure computation",
            f"Models are trained under <code>{_e(privacy)}</code>: the data is never seen, "
            "at the price of compute fees and latency.",
        )
        page.figure(
            "secure_compute",
            "Left: the tokens developers paid, by kind (log scale), compute in red. Right: "
            "training latency per round (mean and slowest model, seconds, log scale) "
            "against the round deadline, and the models that missed it.",
            lambda: plots.secure_compute(model, ledger, summary),
        )
        page.end()

    sources = None
    has_adv = summary.get("adversaries", {}).get("agents", 0) > 0 or (
        per_agent is not None and bool(np.any(per_agent["adversary"]))
    )
    if has_adv:
        page.section(
            "adversaries",
            "Adversaries",
            "Free riders and every agent whose strategy is not honest. Transfers count "
            "tokens that moved, net, from honest participants and shared accounts "
            "(treasury, escrow, jackpot, curation, verifiers) into adversaries' accounts; "
            "exchange trades, minting, burning and fees are neither.",
        )
        page.figure(
            "adversaries",
            "Payoff of each group (usd), the net tokens adversaries took by source and by "
            "ledger entry, and mean return on capital over time, honest against each "
            "adversarial group.",
            with_agents(lambda pa: plots.adversaries(pa, ledger, agents)),
        )
        if per_agent is not None:
            try:
                sources = plots.adversary_sources(ledger, per_agent)
            except plots.NoData:
                sources = None
        page.add(_adversary_tables(summary, sources))
        page.end()

    build_s = time.perf_counter() - t0
    page.report.seconds = build_s
    page.section("provenance", "Provenance")
    page.add(_provenance_html(prov, folder, load_s, page.timings, build_s))
    page.add(
        "<details><summary>summary.json</summary>"
        f"<pre>{_e(json.dumps(summary, indent=2))}</pre></details>"
    )
    page.end()

    sc = summary.get("scenario", {})
    title = f"mlmarket run {_run_name(prov, folder)}"
    subtitle = (
        f"seed {_e(summary.get('seed', sc.get('seed', '-')))}, "
        f"{_e(summary.get('rounds', sc.get('rounds', '-')))} rounds · folder "
        f"<code>{_e(folder)}</code>"
    )
    return page.write(title, subtitle)


def _run_name(prov: dict[str, Any], folder: Path) -> str:
    """The scenario named on the command line that made the run, else the folder's name."""
    cmd = prov.get("command")
    if isinstance(cmd, list) and "run" in cmd:
        i = cmd.index("run") + 1
        options_with_value = {"--seed", "--rounds", "--set", "--out"}
        while i < len(cmd):
            arg = str(cmd[i])
            if arg in options_with_value:
                i += 2
            elif arg.startswith("-"):
                i += 1
            else:
                return Path(arg).stem
        return "baseline"
    return folder.name


def _provenance_html(
    prov: dict[str, Any], folder: Path, load_s: float, timings: dict[str, float], build_s: float
) -> str:
    rows = []
    for key in ("mlmarket", "git_revision", "python", "platform", "seed"):
        if key in prov:
            rows.append([_e(key), f"<code>{_e(prov[key])}</code>"])
    if "command" in prov:
        cmd = prov["command"]
        rows.append(
            [
                "command",
                f"<code>{_e(' '.join(map(str, cmd)) if isinstance(cmd, list) else cmd)}</code>",
            ]
        )
    wall = prov.get("timing", {}).get("wall_seconds")
    if wall is not None:
        rows.append(["simulation", f"{wall:,.2f} s"])
    slow = ", ".join(
        f"{k} {v:.2f} s" for k, v in sorted(timings.items(), key=lambda kv: -kv[1])[:4]
    )
    rows.append(
        [
            "this report",
            f"built in {build_s:.2f} s (tables read in {load_s:.2f} s; slowest figures: "
            f"{_e(slow) or '-'})",
        ]
    )
    deps = prov.get("dependencies", {})
    if deps:
        rows.append(["dependencies", _e(", ".join(f"{k} {v}" for k, v in deps.items()))])
    return _table(["", ""], rows)


# --------------------------------------------------------------------------------------
# A sweep
# --------------------------------------------------------------------------------------


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")[:80]


def _varies(col) -> bool:
    v = col.dropna()
    return len(v) > 1 and v.nunique() > 1


def choose_metrics(
    runs, params: Sequence[str], kept: Sequence[str] | None = None, limit: int | None = MAX_METRICS
) -> list[str]:
    """The metrics a sweep report draws, at most ``limit`` (:data:`MAX_METRICS`).

    The headline values (:data:`HEADLINE_METRICS`) first, then the other numeric
    summary values the sweep kept (its ``metrics``, or every one), leaving out
    configuration echoes, booleans and values that never vary among finished runs.
    """
    import pandas as pd

    from analysis.sweep import metric_columns

    ok = runs[runs["status"] == "ok"] if "status" in runs.columns else runs
    numeric = [
        c
        for c in metric_columns(runs, params)
        if not pd.api.types.is_bool_dtype(runs[c]) and not _ECHO.search(c) and c != "seed"
    ]
    varying = [c for c in numeric if _varies(ok[c])]
    first = [m for m in HEADLINE_METRICS if m in varying]
    rest = [c for c in varying if c not in first]
    if kept:
        # the sweep named what it keeps: those come first, in its order
        named = [c for c in varying if any(c == k or c.startswith(f"{k}.") for k in kept)]
        first = [*named, *[m for m in first if m not in named]]
        rest = [c for c in rest if c not in first]
    return [*first, *rest][:limit]


def _numeric_metrics(runs):
    """Summary columns holding numbers and gaps (None) become floats, so they count as metrics."""
    import pandas as pd

    fixed = {*runs.attrs.get("parameters", []), "point_id", "seed", "run_seed", "status"}
    attrs = dict(runs.attrs)
    for c in runs.columns:
        if c in fixed or c in ("error", "wall_s") or runs[c].dtype != object:
            continue
        values = pd.to_numeric(runs[c], errors="coerce")
        if values.notna().any() and values.notna().sum() == runs[c].notna().sum():
            runs[c] = values.astype(float)
    runs.attrs.update(attrs)
    return runs


def _sweep_report(folder: Path, strict: bool) -> Report:
    t0 = time.perf_counter()  # the build time shown includes the plotting imports
    import yaml

    from analysis import plots

    try:
        from analysis.sweep import load_runs, summarize_points
    except ImportError as e:  # pragma: no cover - the sweep reader ships with mlmarket
        raise ReportError(f"cannot read sweeps: {e}") from None

    spec_path = folder / "sweep.yaml"
    spec_text = spec_path.read_text(encoding="utf-8") if spec_path.is_file() else ""
    spec = (yaml.safe_load(spec_text) or {}) if spec_text else {}
    named = re.search(r"The resolved sweep '([^']+)'", spec_text)
    name = named.group(1) if named else folder.name
    try:
        runs = load_runs(folder)
    except FileNotFoundError:
        runs = None
    load_s = time.perf_counter() - t0
    if runs is not None:
        runs = _numeric_metrics(runs)
    prov = _read_json(folder / "provenance.json")
    params = (
        list(runs.attrs.get("parameters", [])) if runs is not None else list(spec.get("vary", {}))
    )
    page = _Page(folder, "sweep", strict)

    n = 0 if runs is None else len(runs)
    failed = runs[runs["status"] == "failed"] if n else None
    n_failed = 0 if failed is None else len(failed)
    kept = spec.get("metrics")
    design = spec.get("design") or (runs.attrs.get("design") if runs is not None else None)
    metrics = choose_metrics(runs, params, kept) if n else []

    page.section("design", "The sweep")
    vary = spec.get("vary", {})
    rows = [
        [_e(k), _e(", ".join(map(str, v)) if isinstance(v, list) else json.dumps(v))]
        for k, v in vary.items()
    ]
    if rows:
        page.add(_table(["parameter", "values or range"], rows))
    facts = [
        ["design", _e(spec.get("design", runs.attrs.get("design", "-") if n else "-"))],
        ["points", _num(int(runs["point_id"].nunique()) if n else 0, "{:,}")],
        ["seeds per point", _e(spec.get("seeds", "-"))],
        ["runs recorded", f"{n:,} ({n - n_failed:,} ok, {n_failed:,} failed)"],
    ]
    if spec.get("overrides"):
        facts.append(["overrides", _e(", ".join(f"{k}={v}" for k, v in spec["overrides"].items()))])
    page.add(_table(["", ""], facts))
    if spec_text:
        page.add(
            "<details><summary>the resolved sweep (sweep.yaml)</summary>"
            f"<pre>{_e(spec_text)}</pre></details>"
        )
    if not n:
        page.note("No run is recorded yet: nothing to draw.")
    page.end()

    if n and n - n_failed:
        page.section(
            "metrics",
            "Metrics against parameters",
            "Each metric (a value of the runs' summaries) against each varied parameter. "
            "At each value the metric is averaged over the other parameters within each seed "
            "(common random numbers), and the band is the 95 % Student-t interval over seeds; "
            "grey dots are single runs. Continuous parameters are binned by quantiles.",
        )
        if not metrics:
            page.note("No metric varies among the finished runs.")
        for m in metrics:
            page.figure(
                f"sweep_metric_{_slug(m)}",
                f"<code>{_e(m)}</code> against each parameter.",
                lambda m=m: plots.sweep_metric(runs, m, params, design),
            )
        all_metrics = choose_metrics(runs, params, kept, limit=None)
        extra = [c for c in all_metrics if c not in metrics]
        if extra:
            shown = ", ".join(extra[:12]) + (", ..." if len(extra) > 12 else "")
            page.note(f"{len(extra)} more metrics that vary are in runs.parquet: {shown}.")
        page.end()

        if len(params) >= 2 and metrics:
            page.section(
                "heatmaps",
                "Pairs of parameters",
                "The mean of each metric over two parameters at a time, the others and the "
                "seeds averaged over.",
            )
            for x, y in list(itertools.combinations(params, 2))[:MAX_PAIRS]:
                page.figure(
                    f"sweep_heatmap_{_slug(x)}__{_slug(y)}",
                    f"Means over <code>{_e(x)}</code> and <code>{_e(y)}</code>.",
                    lambda x=x, y=y: plots.sweep_heatmap(
                        runs, metrics[:MAX_HEATMAP_METRICS], x, y, design
                    ),
                )
            page.end()

        if params and metrics:
            page.section(
                "sensitivity",
                "Sensitivity",
                "How much of each metric's variation (its ranks) each parameter explains on "
                "its own; the seed row is the noise between runs.",
            )
            page.figure(
                "sweep_sensitivity",
                "Spearman's rho squared (numeric parameters) or eta squared of an ANOVA on "
                "ranks (categorical ones, and the seed).",
                lambda: plots.sweep_sensitivity(runs, metrics, params),
            )
            if design == "saltelli":
                page.figure(
                    "sweep_sobol",
                    "First-order (S1) and total (ST) Sobol' indices (Saltelli et al. 2010; "
                    "Jansen 1999) with bootstrap 95 % intervals.",
                    lambda: plots.sweep_sobol(runs, metrics[:4], params),
                )
            page.end()

        if metrics:
            page.section("points", "Per point")
            page.add(_points_table(summarize_points(runs, metrics[:4]), params, metrics[:4]))
            page.end()

    page.section("failed", f"Failed runs ({n_failed:,})")
    if n_failed:
        rows = [
            [
                _num(int(r["point_id"]), "{}"),
                _num(int(r["seed"]), "{}"),
                *[_e(r[p]) for p in params],
                f"<code>{_e(str(r.get('error', ''))[:400])}</code>",
            ]
            for _, r in failed.head(MAX_TABLE_ROWS).iterrows()
        ]
        page.add(_table(["point", "seed", *params, "error"], rows, left=2 + len(params) + 1))
        if n_failed > MAX_TABLE_ROWS:
            page.note(f"... and {n_failed - MAX_TABLE_ROWS:,} more (runs.parquet, status failed).")
    else:
        page.note("No run failed.")
    page.end()

    build_s = time.perf_counter() - t0
    page.report.seconds = build_s
    page.section("provenance", "Provenance")
    page.add(_provenance_html(prov, folder, load_s, page.timings, build_s))
    page.end()
    subtitle = (
        f"{_num(n, '{:,}')} runs over {len(params)} parameters · folder <code>{_e(folder)}</code>"
    )
    return page.write(f"mlmarket sweep {name}", subtitle)


def _points_table(table, params: Sequence[str], metrics: Sequence[str]) -> str:
    """Mean and 95 % interval of the first metrics at each point (at most MAX_TABLE_ROWS)."""
    from analysis.plots import metric_value

    wide = {}
    for m in metrics:
        part = table[table["metric"] == m].set_index("point_id")
        wide[m] = part
    first = wide[metrics[0]]
    rows = []
    for pid in list(first.index)[:MAX_TABLE_ROWS]:
        cells = [_num(int(pid), "{}"), *[_e(first.at[pid, p]) for p in params]]
        for m in metrics:
            r = wide[m].loc[pid]
            ci = (
                f" [{metric_value(m, r['ci_low'])}, {metric_value(m, r['ci_high'])}]"
                if math.isfinite(r["ci_low"]) and math.isfinite(r["ci_high"])
                else ""
            )
            mean = metric_value(m, r["mean"]) if math.isfinite(r["mean"]) else "-"
            cells.append(f"{mean}{ci}")
        cells.append(_num(int(first.at[pid, "failed"]), "{}"))
        rows.append(cells)
    out = _table(["point", *params, *metrics, "failed"], rows, left=1 + len(params))
    if len(first) > MAX_TABLE_ROWS:
        out += f'<p class="note">First {MAX_TABLE_ROWS} of {len(first):,} points.</p>'
    return (
        "<p>Mean and 95 % interval over seeds of the first metrics at each point "
        "(<code>analysis.sweep.summarize_points</code>).</p>" + out
    )

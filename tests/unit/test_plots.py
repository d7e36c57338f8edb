"""analysis.plots on hand-made tables: Gini and Lorenz oracles, the per-agent table, the
transfer to adversaries, colors, and every figure drawing to a valid PNG."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from analysis import plots

PNG = b"\x89PNG\r\n\x1a\n"


def png(fig: Figure) -> bytes:
    assert isinstance(fig, Figure)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=40)
    data = buf.getvalue()
    assert data[:8] == PNG and len(data) > 1000
    return data


# --------------------------------------------------------------------------- oracles


def test_gini_textbook_values():
    # equal shares: 0; one holder of n: (n - 1) / n; [1, 2, 3, 4]: mean absolute
    # difference 20 / 16 over twice the mean 2.5 = 0.25
    assert plots.gini(np.full(7, 3.0)) == pytest.approx(0.0)
    assert plots.gini([0, 0, 0, 5.0]) == pytest.approx(0.75)
    assert plots.gini([4.0, 1.0, 3.0, 2.0]) == pytest.approx(0.25)
    rng = np.random.default_rng(1)
    x = rng.lognormal(size=200)
    mad = np.abs(x[:, None] - x[None, :]).mean()
    assert plots.gini(x) == pytest.approx(mad / (2 * x.mean()))
    assert np.isnan(plots.gini([0.0, 0.0]))


def test_lorenz_curve_ends_and_is_convex_and_bounded():
    x = np.random.default_rng(2).pareto(2.0, 5000)
    share, held = plots.lorenz_curve(x, points=200)
    assert (share[0], held[0], share[-1], held[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert len(share) <= 201
    assert np.all(np.diff(share) > 0) and np.all(np.diff(held) >= 0)
    assert np.all(held <= share + 1e-12)  # below the diagonal
    # the area between the diagonal and the curve is half the Gini coefficient
    area = np.trapezoid(share - held, share)
    assert 2 * area == pytest.approx(plots.gini(x), abs=0.01)


# --------------------------------------------------------------------------- tables


def agents_table() -> pd.DataFrame:
    """Two rounds of a provider (noise), an honest developer, a free rider; id 3 leaves."""
    rows = []
    for r in (0, 1, 2):
        rows += [
            # type, id, strategy, quality, capital, wealth, revenue, payout, burned, score
            ("provider", 1, "noise", 0.0, 100.0, 100 + 10 * r, 2.0 * r, 0.0, 0.0, np.nan),
            ("developer", 2, "honest", np.nan, 200.0, 200 - 20 * r, 0.0, 1.0, 0.5, 0.1 * r),
        ]
        if r < 2:
            rows.append(("free_rider", 3, "honest", np.nan, 0.0, 50.0, 0.0, 0.0, 0.0, np.nan))
    df = pd.DataFrame(
        rows,
        columns=[
            "type",
            "id",
            "strategy",
            "quality",
            "capital",
            "wealth",
            "revenue",
            "payout",
            "burned",
            "score",
        ],
    )
    df.insert(0, "round", np.repeat([0, 1, 2], [3, 3, 2]))
    df["account"] = df["type"] + ":" + df["id"].astype(str)
    df["active"] = True
    df["spent"] = 0.0
    df["stake"] = 1.0
    return df


def test_outcomes_one_row_per_agent_with_roi_sums_and_flags():
    out = plots.outcomes(agents_table()).set_index("id")
    assert len(out) == 3
    assert out.loc[1, "roi"] == pytest.approx(0.2)  # 120 / 100 - 1
    assert out.loc[2, "roi"] == pytest.approx(-0.2)  # 160 / 200 - 1
    assert np.isnan(out.loc[3, "roi"])  # capital 0: no return on capital
    assert out.loc[1, "revenue"] == pytest.approx(6.0)
    assert out.loc[2, "payout"] == pytest.approx(3.0) and out.loc[2, "burned"] == 1.5
    assert out.loc[2, "score"] == pytest.approx(0.1)
    assert out.loc[3, "last_round"] == 1 and out.loc[3, "rounds"] == 2
    assert out["adversary"].to_dict() == {1: True, 2: False, 3: True}
    assert out.loc[1, "group"] == "provider/noise"


def test_outcomes_without_capital_uses_the_first_wealth():
    out = plots.outcomes(agents_table().drop(columns="capital")).set_index("id")
    assert out.loc[2, "roi"] == pytest.approx(160 / 200 - 1)


def ledger(rows) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["src", "dst", "asset", "amount", "reason"])
    for c in ("src", "dst", "asset", "reason"):
        df[c] = df[c].astype("category")
    df.insert(0, "round", 1)
    df.insert(1, "phase", "resolve")
    return df


def test_adversary_sources_nets_honest_and_shared_flows_only():
    per_agent = plots.outcomes(agents_table())
    led = ledger(
        [
            ("developer:2", "provider:1", "token", 5.0, "data_purchase"),  # honest -> adversary
            ("treasury", "free_rider:3", "token", 2.0, "reward"),  # shared -> adversary
            ("free_rider:3:stake", "escrow", "token", 0.5, "slash"),  # adversary -> shared
            ("pool:token/usd", "provider:1", "token", 9.0, "exit_sell"),  # a trade: neither
            ("developer:2", "provider:1", "usd", 7.0, "data_purchase"),  # not tokens
            ("mint", "free_rider:3", "token", 3.0, "issuance"),  # minting: neither
        ]
    )
    src = plots.adversary_sources(led, per_agent)
    assert src["tokens"].sum() == pytest.approx(5.0 + 2.0 - 0.5)
    by = src.groupby("source")["tokens"].sum()
    assert by["honest developers"] == pytest.approx(5.0)
    assert by["escrow"] == pytest.approx(-0.5) and by["treasury"] == pytest.approx(2.0)


def test_developer_costs_by_reason_from_wallets_only():
    led = ledger(
        [
            ("developer:2", "provider:1", "token", 5.0, "data_purchase"),
            ("developer:2", "fees", "token", 0.25, "compute"),
            ("developer:2", "developer:2:stake", "token", 9.0, "stake"),  # not a cost
            ("provider:1", "fees", "token", 1.0, "hosting"),  # not a developer
        ]
    )
    costs = plots.developer_costs(led)
    assert costs.to_dict() == {"data_purchase": 5.0, "compute": 0.25}


def test_colors_are_fixed_per_type_and_strategy():
    assert plots.group_color("developer", "honest") == plots.TYPE_COLORS["developer"]
    assert plots.group_color("developer", "sybil") == plots.STRATEGY_COLORS["sybil"]
    every = [*plots.TYPE_COLORS.values(), *list(plots.STRATEGY_COLORS.values())[1:]]
    assert len(set(every)) == len(every)  # no two types or strategies share a color
    assert plots.type_color("oracle") == plots.type_color("oracle")  # a stable fallback


# --------------------------------------------------------------------------- figures


def model_table(n: int = 12) -> pd.DataFrame:
    r = np.arange(1, n + 1)
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "round": r,
            "token_price": 1 + 0.01 * r,
            "token_supply": 1000 + 10.0 * r,
            "minted": np.full(n, 20.0),
            "burned": np.full(n, 10.0),
            "metamodel_corr": np.where(r > 2, rng.normal(0.1, 0.1, n), np.nan),
            "mean_corr": rng.normal(0.05, 0.1, n),
            "metamodel_pnl": rng.normal(0, 100, n),
            "entries": rng.integers(0, 3, n),
            "exits": rng.integers(0, 2, n),
            "active_provider": np.full(n, 5),
            "active_developer": np.full(n, 20),
            "active_free_rider": np.zeros(n, int),
            "latency_mean": np.full(n, 12.0),
            "latency_max": np.full(n, 20.0),
            "missed_deadline": np.zeros(n, int),
        }
    )


def test_run_figures_draw_from_hand_made_tables():
    model, agents = model_table(), agents_table()
    per_agent = plots.outcomes(agents)
    led = ledger(
        [
            ("developer:2", "provider:1", "token", 5.0, "data_purchase"),
            ("developer:2", "developer:2:stake", "token", 4.0, "stake"),
            ("developer:2", "fees", "token", 0.25, "compute"),
        ]
    )
    summary = {"secure_compute": {"deadline": 60.0, "share_of_developer_costs": 0.05}}
    for fig in (
        plots.price_supply(model),
        plots.active_agents(model),
        plots.metamodel(model),
        plots.stakes_payouts(agents),
        plots.roi_distribution(per_agent),
        plots.lorenz(per_agent),
        plots.provider_payout_quality(per_agent),
        plots.model_payout_contribution(per_agent),
        plots.flows_network(led, per_agent),
        plots.secure_compute(model, led, summary),
        plots.adversaries(per_agent, led, agents),
    ):
        png(fig)


def test_figures_say_what_is_missing():
    per_agent = plots.outcomes(agents_table().drop(columns="quality"))
    with pytest.raises(plots.NoData, match="quality"):
        plots.provider_payout_quality(per_agent)
    honest = plots.outcomes(agents_table().query("id == 2"))
    with pytest.raises(plots.NoData, match="no adversaries"):
        plots.adversaries(honest, ledger([]))
    with pytest.raises(plots.NoData, match="no data purchases"):
        plots.flows_network(ledger([("treasury", "developer:2", "token", 1.0, "reward")]), honest)


def test_large_populations_are_aggregated():
    # 20,000 agents: the box plot draws at most STRIP_MAX points per group, the Lorenz
    # curve at most 1,001 points, and the flow network at most top_models model nodes
    n = 20_000
    rng = np.random.default_rng(3)
    per_agent = pd.DataFrame(
        {
            "type": "developer",
            "id": np.arange(n),
            "strategy": "honest",
            "account": [f"developer:{i}" for i in range(n)],
            "capital": 100.0,
            "wealth": rng.lognormal(4.6, 0.3, n),
            "payout": rng.exponential(1.0, n),
            "revenue": 0.0,
        }
    )
    per_agent["roi"] = per_agent["wealth"] / 100 - 1
    fig = plots.roi_distribution(per_agent)
    points = [ln for ax in fig.axes for ln in ax.lines if ln.get_marker() == "."]
    assert points and all(len(ln.get_xdata()) <= plots.STRIP_MAX for ln in points)
    fig = plots.lorenz(per_agent)
    assert max(len(ln.get_xdata()) for ax in fig.axes for ln in ax.lines) <= 1001
    buys = ledger(
        [
            (f"developer:{i}", f"provider:{n + i % 30}", "token", 1.0, "data_purchase")
            for i in range(n)
        ]
    )
    fig = plots.flows_network(buys, per_agent, top_providers=5, top_models=10)
    labels = {t.get_text() for t in fig.axes[0].texts}
    assert f"{n - 10:,} other developers" in labels and "25 other providers" in labels


def test_flow_network_keeps_every_group_in_sight():
    # 40 honest developers buy much more than 3 colluders: the colluders are drawn
    # anyway (the largest `reserve` of every group), and the last of a group is never
    # merged alone into a node of one
    n = 40
    per_agent = pd.DataFrame(
        {
            "type": ["developer"] * (n + 3) + ["provider"] * 3,
            "id": [*range(n + 3), 100, 101, 102],
            "strategy": ["honest"] * n + ["colluder"] * 3 + ["honest", "honest", "colluder"],
        }
    )
    per_agent["account"] = per_agent["type"] + ":" + per_agent["id"].astype(str)
    rows = [
        (f"developer:{i}", "provider:100", "token", 10.0 + i, "data_purchase") for i in range(n)
    ]
    rows += [
        (f"developer:{n + j}", "provider:102", "token", 1.0, "data_purchase") for j in range(3)
    ]
    rows += [("developer:0", "provider:101", "token", 5.0, "data_purchase")]
    fig = plots.flows_network(ledger(rows), per_agent, top_providers=1, top_models=5, reserve=2)
    labels = {t.get_text() for t in fig.axes[0].texts}
    assert {"M40", "M41", "M42", "P102", "P101"} <= labels  # 3 colluders: 2 + the last
    assert f"{n - 5:,} other developers" in labels
    assert not any(label.startswith("1 other") for label in labels)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "developer/colluder" in legend and "provider/colluder" in legend


def test_groups_sharing_a_color_are_told_apart():
    assert plots.group_label("free_rider", "honest") == "free_rider"
    assert plots.group_label("developer", "sybil") == "developer/sybil"
    assert plots.group_color("developer", "colluder") == plots.group_color("provider", "colluder")
    assert len(set(plots.TYPE_DASHES.values())) == len(plots.TYPE_DASHES)
    assert len(set(plots.TYPE_HATCHES.values())) == len(plots.TYPE_HATCHES)


def test_units_of_sweep_metrics():
    assert plots.metric_unit("roi_by_type.free_rider") == ("return on capital", True)
    assert plots.metric_unit("metamodel.total_pnl") == ("usd", False)
    assert plots.metric_unit("adversaries.transfer_tokens") == ("tokens", False)
    assert plots.metric_unit("tokens.price_end") == ("usd per token", False)
    assert plots.metric_unit("metamodel.mean_corr") == ("correlation", False)
    assert plots.metric_unit("something.else") == ("", False)
    assert plots.metric_value("honest.roi_mean", 0.0473) == "4.73%"
    assert plots.metric_value("metamodel.total_pnl", 46703.2) == "46,703"


def test_secure_compute_drops_an_empty_deadline_panel():
    model = model_table()
    led = ledger([("developer:2", "fees", "token", 0.25, "compute")])
    summary = {"secure_compute": {"deadline": 60.0}}
    assert len(plots.secure_compute(model, led, summary).axes) == 2
    model.loc[3, "missed_deadline"] = 2
    assert len(plots.secure_compute(model, led, summary).axes) == 3


def sweep_runs(design: str = "grid") -> pd.DataFrame:
    rng = np.random.default_rng(4)
    rows = []
    for pid, (a, b) in enumerate([(a, b) for a in (0, 5, 10) for b in ("x", "y")]):
        for s in range(3):
            rows.append(
                {
                    "point_id": pid,
                    "seed": s,
                    "run_seed": 100 + s,
                    "alpha": a if design == "grid" else a + rng.random(),
                    "rule": b,
                    "status": "ok",
                    "error": None,
                    "wall_s": 1.0,
                    "metric.one": a * 0.1 + (b == "y") + rng.normal(0, 0.1),
                    "metric.two": -a + rng.normal(0, 1.0),
                }
            )
    df = pd.DataFrame(rows)
    df.attrs["parameters"] = ["alpha", "rule"]
    return df


@pytest.mark.parametrize("design", ["grid", "latin_hypercube"])
def test_sweep_figures_draw(design):
    runs = sweep_runs(design)
    params = ["alpha", "rule"]
    png(plots.sweep_metric(runs, "metric.one", params, design))
    png(plots.sweep_heatmap(runs, ["metric.one", "metric.two"], "alpha", "rule", design))
    png(plots.sweep_sensitivity(runs, ["metric.one", "metric.two"], params))


def test_sweep_metric_band_is_the_t_interval_over_seed_means():
    runs = sweep_runs()
    fig = plots.sweep_metric(runs, "metric.one", ["alpha"])
    mean_line = [ln for ln in fig.axes[0].lines if ln.get_marker() == "o"][0]
    seed_means = runs.groupby(["alpha", "seed"])["metric.one"].mean()
    np.testing.assert_allclose(mean_line.get_ydata(), seed_means.groupby(level=0).mean())


def test_model_payout_uses_a_recorded_contribution_over_the_score():
    agents = agents_table()
    fig = plots.model_payout_contribution(plots.outcomes(agents))
    assert "score" in fig.axes[0].get_xlabel()
    agents["contribution"] = np.where(agents["type"] == "developer", 0.3, np.nan)
    per_agent = plots.outcomes(agents)
    assert per_agent.set_index("id").loc[2, "contribution"] == pytest.approx(0.3)
    fig = plots.model_payout_contribution(per_agent)
    assert "contribution" in fig.axes[0].get_xlabel()

"""Incentive properties (analysis/properties.py): statistics, the metric grammar, the
accounting checks, property files and verdicts, without simulating (runs are faked).

Statistical oracles: Student's t quantiles (hand-computed interval), the noncentral t
distribution for the power of the paired t interval (e.g. Casella & Berger 2002, 8.3),
nominal coverage for intervals over many synthetic samples.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

import analysis.properties as P
from analysis.junit import JUnitCase, junit_tree, write_junit
from analysis.properties import (
    Interval,
    MetricError,
    PropertyError,
    RunView,
    SeedPlan,
    bootstrap_interval,
    decide,
    deviation_gain,
    fisher_mean_interval,
    load_properties,
    look_confidence,
    mean_interval,
    parse_expression,
    quantile_interval,
    spearman,
    spearman_interval,
    t_interval,
)
from sim.cli import main

# --- statistics -----------------------------------------------------------------------


def test_t_interval_by_hand():
    iv = t_interval([1, 2, 3, 4, 5], 0.95)
    # s = sqrt(2.5), t_{0.975, 4} = 2.776445
    h = 2.7764451 * math.sqrt(2.5) / math.sqrt(5)
    assert iv.estimate == 3.0
    assert iv.low == pytest.approx(3 - h, rel=1e-6)
    assert iv.high == pytest.approx(3 + h, rel=1e-6)


def test_degenerate_samples():
    one = t_interval([2.0])
    assert one.low == -math.inf and one.high == math.inf
    same = bootstrap_interval([0.5, 0.5, 0.5], rng=np.random.default_rng(1))
    assert same.low == same.high == 0.5
    assert t_interval([0.0, 0.0, 0.0]).high == 0.0


def test_bootstrap_is_reproducible_and_wider_than_the_plain_percentile_interval():
    x = np.random.default_rng(3).normal(size=8)
    a = bootstrap_interval(x, 0.95, np.random.default_rng(7))
    b = bootstrap_interval(x, 0.95, np.random.default_rng(7))
    assert (a.low, a.high) == (b.low, b.high)
    means = x[np.random.default_rng(7).integers(0, 8, (4000, 8))].mean(axis=1)
    plain = np.quantile(means, [0.025, 0.975])
    assert a.low < plain[0] and a.high > plain[1]


def test_bootstrap_falls_back_to_t_for_few_seeds():
    iv = mean_interval([0.1, 0.2, 0.4], 0.95, "bootstrap", np.random.default_rng(0))
    assert iv.method.startswith("t (n <")
    assert (iv.low, iv.high) == pytest.approx(
        (t_interval([0.1, 0.2, 0.4]).low, t_interval([0.1, 0.2, 0.4]).high)
    )


@pytest.mark.parametrize("test", ["t", "bootstrap"])
def test_mean_interval_coverage_is_nominal(test):
    """95 % intervals of the mean of 10 normal draws cover the true mean ~95 % of the time."""
    rng = np.random.default_rng(11)
    reps = 600
    hit = 0
    for i in range(reps):
        x = rng.normal(1.0, 2.0, 10)
        iv = mean_interval(x, 0.95, test, np.random.default_rng(i))
        hit += iv.low <= 1.0 <= iv.high
    cover = hit / reps
    se = math.sqrt(0.95 * 0.05 / reps)
    assert 0.95 - 4 * se - 0.02 < cover < 0.95 + 4 * se


def test_a_true_difference_is_detected_at_the_stated_power():
    """Paired differences ~ N(0.6, 1), n = 16: the interval clears 0 as often as the
    noncentral t distribution says (power of the paired t test at the same level)."""
    n, delta, reps = 16, 0.6, 800
    crit = stats.t.ppf(0.975, n - 1)
    power = stats.nct.sf(crit, n - 1, delta * math.sqrt(n))  # about 0.64
    rng = np.random.default_rng(5)
    held = sum(
        decide(t_interval(rng.normal(delta, 1.0, n)), ">", 0.0) == "holds" for _ in range(reps)
    )
    se = math.sqrt(power * (1 - power) / reps)
    assert abs(held / reps - power) < 4 * se


@pytest.mark.parametrize("test", ["t", "bootstrap"])
def test_no_difference_is_flagged_at_most_at_the_stated_rate(test):
    """Under the null (mean 0) a one-sided claim holds at most 2.5 % of the time."""
    rng = np.random.default_rng(9)
    reps = 800
    wrong = 0
    for i in range(reps):
        iv = mean_interval(rng.normal(0.0, 1.0, 12), 0.95, test, np.random.default_rng(i))
        wrong += decide(iv, ">", 0.0) == "holds"
    assert wrong / reps < 0.025 + 4 * math.sqrt(0.025 * 0.975 / reps)


def test_sequential_looks_keep_the_error_rate_with_bonferroni():
    """Four looks at 4, 8, 12, 16 null draws: a claim that holds at any look is rare."""
    plan = SeedPlan(4, 16, 4)
    level = look_confidence(0.95, plan.looks)
    assert level == pytest.approx(1 - 0.05 / 4)
    rng = np.random.default_rng(21)
    reps, wrong = 600, 0
    for _ in range(reps):
        x = rng.normal(0.0, 1.0, plan.max)
        wrong += any(decide(t_interval(x[:n], level), ">", 0.0) == "holds" for n in plan.sizes)
    assert wrong / reps < 0.025 + 4 * math.sqrt(0.025 * 0.975 / reps)


def test_seed_plan_sizes():
    assert SeedPlan(4, 16, 4).sizes == [4, 8, 12, 16]
    assert SeedPlan(3, 10, 4).sizes == [3, 7, 10]
    assert SeedPlan(5, 5, 5).sizes == [5] and str(SeedPlan(5, 5, 5)) == "5"


def test_quantile_interval_order_statistics():
    x = np.arange(1.0, 21.0)  # 20 sorted values
    iv = quantile_interval(x, 0.5, 0.95)
    # Binomial(20, 0.5): P(B <= 5) = 0.0207 <= 0.025 < P(B <= 6); P(B <= 14) >= 0.975
    assert (iv.low, iv.high) == (6.0, 15.0)
    assert iv.estimate == 10.5
    small = quantile_interval([1.0, 2.0, 3.0], 0.5, 0.95)
    assert small.low == -math.inf and small.high == math.inf
    rng = np.random.default_rng(2)
    cover = np.mean(
        [
            (lambda v: v.low <= 0.0 <= v.high)(quantile_interval(rng.normal(size=25), 0.5))
            for _ in range(400)
        ]
    )
    assert cover >= 0.93


def test_spearman_matches_scipy_with_ties():
    x = [1, 2, 2, 3, 5, 4, 7]
    y = [2, 1, 4, 4, 6, 9, 8]
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))


def test_spearman_intervals():
    rng = np.random.default_rng(4)
    x = rng.normal(size=60)
    y = x + rng.normal(size=60)
    iv = spearman_interval(x, y, 0.95)
    assert iv.low < iv.estimate < iv.high
    z = math.atanh(iv.estimate)
    h = stats.norm.ppf(0.975) * math.sqrt(1.06 / 57)
    assert iv.high == pytest.approx(math.tanh(z + h))
    comb = fisher_mean_interval([0.5, 0.6, 0.55, 0.45], 0.95)
    assert comb.low < 0.525 < comb.high
    assert comb.estimate == pytest.approx(math.tanh(np.mean(np.arctanh([0.5, 0.6, 0.55, 0.45]))))


@pytest.mark.parametrize(
    ("op", "low", "high", "verdict"),
    [
        ("<", -2, -1, "holds"),
        ("<", 0, 1, "violated"),
        ("<", -1, 1, "undecided"),
        ("<=", -1, 0, "holds"),
        (">", 0.5, 2, "holds"),
        (">", -1, 0, "violated"),
        (">=", 0, 1, "holds"),
        (">=", -2, -0.1, "violated"),
    ],
)
def test_decide(op, low, high, verdict):
    assert decide(Interval(0.0, low, high, 5, 0.95, "t"), op, 0.0) == verdict


# --- the metric grammar ------------------------------------------------------------


SUMMARY = {
    "roi_by_type": {"developer": 0.1, "free_rider": 0.3},
    "by_strategy": {"developer/honest": {"roi_mean": 0.2, "agents": 4}},
    "flows": {"payouts": 120.0, "slashed": 20.0},
    "rounds": 4,
    "invariants_ok": True,
    "mechanisms": {"reward": "numerai"},
}


def view():
    model = pd.DataFrame({"round": [1, 2, 3, 4], "check_rate": [0.4, 0.3, np.nan, 0.1]})
    types = pd.Categorical(
        ["provider"] * 6 + ["developer"] * 3, categories=["provider", "developer"]
    )
    agents = pd.DataFrame(
        {
            "round": [0, 1, 2, 0, 1, 2, 0, 1, 2],
            "id": [1, 1, 1, 2, 2, 2, 3, 3, 3],
            "type": types,
            "strategy": pd.Categorical(["honest"] * 9, categories=["honest", "lazy"]),
            "quality": [0.9, 0.9, 0.9, 0.2, 0.2, 0.2, np.nan, np.nan, np.nan],
            "revenue": [0.0, 3.0, 4.0, 0.0, 1.0, 0.5, 0.0, 0.0, 0.0],
        }
    )
    return RunView(SUMMARY, model, agents, {"market": {"treasury": 500.0}})


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("roi_by_type.free_rider - roi_by_type.developer", 0.2),
        ("flows.payouts - flows.slashed * 2", 80.0),
        ("(flows.payouts - flows.slashed) / rounds", 25.0),
        ("-roi_by_type.developer + 1e-1", 0.0),
        ("by_strategy.developer/honest.roi_mean / by_strategy.developer/honest.agents", 0.05),
        ("mean(model.check_rate)", (0.4 + 0.3 + 0.1) / 3),
        ("mean(model.check_rate, tail=2)", 0.1),
        ("first(model.check_rate, from=2)", 0.3),
        ("sum(model.check_rate, head=2, to=1)", 0.4),
        ("count(model.check_rate)", 3.0),
        ("config.market.treasury / 2", 250.0),
        ("invariants_ok", 1.0),
    ],
)
def test_expressions(text, value):
    assert parse_expression(text, "x").evaluate(view()) == pytest.approx(value)


def test_per_agent_aggregates_and_where():
    v = view()
    rev = parse_expression("sum(agents.revenue)", "y").evaluate(v, {"type": "provider"})
    assert rev.to_dict() == {("provider", 1): 7.0, ("provider", 2): 1.5}
    q = parse_expression("last(agents.quality)", "x").evaluate(v, {"genesis": True})
    assert len(q) == 2  # the developer has no quality
    with pytest.raises(MetricError, match="did you mean 'provider'"):
        v.select_agents({"type": "providr"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("roi_by_type.free_rider -", "unexpected end"),
        ("roi_by_type.free_rider < 1", "the comparison goes in the assertion's op"),
        ("maen(model.check_rate)", "did you mean 'mean'"),
        ("model.check_rate", "mean\\(model.check_rate\\)"),
        ("mean(roi_by_type.developer)", "model.COLUMN or agents.COLUMN"),
        ("mean(model.check_rate, last=3)", "unknown window"),
        ("mean(model.check_rate, tail=0)", "at least 1"),
        ("mean(model.check_rate, from=5, to=2)", "after"),
        ("flows.payouts $ 2", "unexpected character '\\$' at column 15"),
        ("", "empty expression"),
    ],
)
def test_grammar_errors_name_the_key_and_column(text, message):
    with pytest.raises(PropertyError, match=message) as e:
        parse_expression(text, "f.yaml: properties[0].assert.left")
    assert str(e.value).startswith("f.yaml: properties[0].assert.left: ")


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (
            "roi_by_type.free_ridr",
            "unknown metric 'roi_by_type.free_ridr'.*did you mean 'roi_by_type.free_rider'",
        ),
        ("flow.payouts", "did you mean 'flows.payouts'"),
        ("roi_by_type", "is a section of the run summary"),
        ("mechanisms.reward", "not a number"),
        ("config.market.treasry", "did you mean 'config.market.treasury'"),
    ],
)
def test_unknown_metrics_name_the_key_and_suggest(path, message):
    with pytest.raises(MetricError, match=message):
        view().value(path)


def test_unknown_model_column_suggests():
    with pytest.raises(MetricError, match="did you mean 'check_rate'"):
        parse_expression("mean(model.chek_rate)", "x").evaluate(view())


def test_an_empty_window_is_a_value_error_not_bad_input():
    with pytest.raises(ValueError, match="no rounds") as e:
        parse_expression("mean(model.check_rate, from=3, to=3)", "x").evaluate(view())
    assert not isinstance(e.value, MetricError)


# --- accounting checks on synthetic ledgers ------------------------------------------


def ledger(rows):
    names = ["mint", "burn", "a", "b", "pool:token/usd"]
    assets = ["token", "usd"]
    df = pd.DataFrame(rows, columns=["round", "src", "dst", "asset", "amount"])
    return pd.DataFrame(
        {
            "round": df["round"].astype(np.int32),
            "src": pd.Categorical(df["src"], categories=names),
            "dst": pd.Categorical(df["dst"], categories=names),
            "asset": pd.Categorical(df["asset"], categories=assets),
            "amount": df["amount"].astype(float),
        }
    )


GOOD = [
    (0, "mint", "a", "token", 100.0),
    (0, "mint", "pool:token/usd", "token", 1000.0),
    (0, "mint", "pool:token/usd", "usd", 1000.0),
    (1, "a", "pool:token/usd", "token", 10.0),  # a swap: 10 tokens in, 9 usd out
    (1, "pool:token/usd", "a", "usd", 9.0),
    (2, "a", "burn", "token", 5.0),
]


class FakeResult:
    def __init__(self, rows, supply=None):
        self.ledger = ledger(rows)
        self.summary = {"tokens": {"supply_start": 1100.0}, "invariants_ok": True}
        sup = [1100.0, 1095.0] if supply is None else supply
        self.model = pd.DataFrame(
            {"round": [1, 2], "token_supply": sup, "minted": [0.0, 0.0], "burned": [0.0, 5.0]}
        )


def test_round_end_balances():
    k, r, b, names, assets = P.round_end_balances(ledger(GOOD))
    a_token = names.index("a") * 2 + assets.index("token")
    got = dict(zip(r[k == a_token], b[k == a_token], strict=True))
    assert got == {0: 100.0, 1: 90.0, 2: 85.0}


def test_invariants_hold_on_a_good_ledger():
    out = P.check_invariants(FakeResult(GOOD), P.CHECKS)
    assert all(c["ok"] for c in out.values()), out


def test_invariants_catch_a_negative_balance_a_falling_k_and_lost_tokens():
    bad = [*GOOD, (2, "b", "a", "usd", 3.0), (2, "pool:token/usd", "a", "token", 50.0)]
    out = P.check_invariants(FakeResult(bad, supply=[1100.0, 1096.0]), P.CHECKS)
    assert not out["no_negative_balances"]["ok"]
    assert "'b'" in out["no_negative_balances"]["message"]
    assert not out["amm_k"]["ok"] and out["amm_k"]["first_round"] == 2
    assert not out["token_conservation"]["ok"]
    assert "round 2" in out["token_conservation"]["message"]


def test_deviation_gain_pairs_the_same_agents():
    base = {
        "type": ["developer"] * 3,
        "id": [1, 2, 3],
        "strategy": ["honest", "honest", "lazy"],
        "roi": [0.1, 0.2, 0.0],
    }
    dev = {
        "type": ["developer"] * 4,
        "id": [1, 2, 3, 9],
        "strategy": ["lazy", "honest", "lazy", "sybil"],
        "roi": [0.05, 0.2, 0.0, 0.4],
    }
    # agent 1 turned lazy: 0.05 vs its own 0.1; agent 9 is new: 0.4 vs honest mean 0.15
    g, n = deviation_gain(base, dev, {}, "roi")
    assert n == 2 and g == pytest.approx((0.05 + 0.4) / 2 - (0.1 + 0.15) / 2)
    g, n = deviation_gain(base, dev, {"strategy": "lazy"}, "roi")
    assert n == 1 and g == pytest.approx(-0.05)
    assert math.isnan(deviation_gain(base, base, {}, "roi")[0])


# --- property files ------------------------------------------------------------------


def write(tmp_path: Path, props, **top) -> Path:
    path = tmp_path / "props.yaml"
    path.write_text(yaml.safe_dump({**top, "properties": props}, sort_keys=False))
    return path


def prop(**kw):
    return {
        "name": "p",
        "scenario": "small",
        "assert": {
            "kind": "compare",
            "left": "roi_by_type.free_rider",
            "op": "<",
            "right": "roi_by_type.developer",
        },
        **kw,
    }


def test_a_good_file_loads(tmp_path):
    (p,) = load_properties(write(tmp_path, [prop(seeds={"min": 2, "max": 6, "step": 2})]))
    assert p.seeds.sizes == [2, 4, 6]
    assert p.check.statement() == "roi_by_type.free_rider < roi_by_type.developer"
    plan, ov = p.run_plan(quick=True, seeds=None)
    assert plan.sizes == [3] and dict(ov)["run.rounds"] == 30  # small has 30 rounds < 50
    plan, _ = p.run_plan(quick=False, seeds=7)
    assert plan.sizes == [7]


BAD_FILES = [
    ([prop(scenrio="small")], "properties[0]: unknown key 'scenrio'; did you mean 'scenario'"),
    (
        [prop(scenario="smal")],
        "properties[0].scenario: unknown scenario 'smal'; did you mean 'small'",
    ),
    ([prop(expect="fails")], "properties[0].expect: expected one of 'holds', 'violated'"),
    ([prop(seeds={"min": 5, "max": 2})], "properties[0].seeds: min 5 > max 2"),
    ([prop(overrides={"run.seed": 3})], "properties[0].overrides.run.seed"),
    (
        [prop(overrides={"population.developers.cont": 3})],
        "properties[0].overrides: population.developers.cont: unknown key 'cont'; "
        "did you mean 'count'",
    ),
    (
        [prop(**{"assert": {"kind": "comparison"}})],
        "assert.kind: expected one of .*did you mean 'compare'",
    ),
    ([prop(**{"assert": {"kind": "compare", "left": "a", "op": "=<", "right": "b"}})], "assert.op"),
    ([prop(**{"assert": {"kind": "compare", "left": "a", "op": "<"}})], "assert.right: missing"),
    (
        [
            prop(
                **{
                    "assert": {
                        "kind": "threshold",
                        "metric": "sum(agents.revenue)",
                        "op": "<",
                        "bound": 1,
                    }
                }
            )
        ],
        "assert.metric: .* reads agents",
    ),
    (
        [
            prop(
                **{
                    "assert": {
                        "kind": "monotonic",
                        "x": "rounds",
                        "y": "sum(agents.revenue)",
                        "bound": 0.5,
                    }
                }
            )
        ],
        "assert.x: 'rounds' is one value per run",
    ),
    ([prop(**{"assert": {"kind": "sybil_proof"}})], "sybil_proof needs sybils"),
    (
        [prop(**{"assert": {"kind": "invariant", "checks": ["amm"]}})],
        "assert.checks\\[0\\]: .*'amm_k'",
    ),
    (
        [prop(**{"assert": {"kind": "budget_balance", "budget": "config.market.tresury"}})],
        "assert.budget: unknown metric .*did you mean 'config.market.treasury'",
    ),
    ([prop(), prop()], "properties\\[1\\].name: 'p' is also the name of properties\\[0\\]"),
    ([prop(confidence=0.95)], "unknown key 'confidence'"),
    (
        [
            prop(
                **{
                    "assert": {
                        "kind": "compare",
                        "left": "a",
                        "op": "<",
                        "right": "b",
                        "confidence": 1.5,
                    }
                }
            )
        ],
        "confidence level",
    ),
    ([prop(quick={"rounds": 0})], "quick.rounds: expected an integer"),
    ([prop(**{"assert": None})], "assert: missing"),
    ([], "properties: expected a list"),
]


@pytest.mark.parametrize(("props", "message"), BAD_FILES)
def test_bad_property_files_name_the_key(tmp_path, props, message):
    message = re.sub(r"(?<!\\)\[(\d)\]", r"\\[\1\\]", message)  # properties[0] literally
    with pytest.raises(PropertyError, match=message):
        load_properties(write(tmp_path, props))


@pytest.mark.parametrize(("props", "message"), BAD_FILES[:4])
def test_bad_property_files_exit_2_with_one_line(tmp_path, capsys, props, message):
    assert main(["check", str(write(tmp_path, props)), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mlmarket: error: ") and err.count("\n") == 1
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["check", "nowhere.yaml"], "property file 'nowhere.yaml' not found"),
        (["check", "esay"], "did you mean the shipped file 'essay'"),
        (["check", "essay", "--scheduler", "nowhere"], "--scheduler 'nowhere'"),
        (["check", "essay", "--only", "no such property"], "--only no such property"),
    ],
)
def test_bad_command_lines_exit_2(capsys, argv, message):
    assert main([*argv, "--quiet"]) == 2
    assert message in capsys.readouterr().err


def test_argparse_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["check", "essay", "--seeds", "0"])
    assert e.value.code == 2
    assert "positive integer" in capsys.readouterr().err


def test_malformed_yaml_and_a_non_mapping(tmp_path, capsys):
    f = tmp_path / "bad.yaml"
    f.write_text("properties: [\n")
    assert main(["check", str(f)]) == 2
    f.write_text("- 1\n- 2\n")
    assert main(["check", str(f)]) == 2
    assert "a property file must be a mapping" in capsys.readouterr().err


def test_the_shipped_suite_loads():
    props = load_properties("essay")
    assert len(props) >= 8
    kinds = {p.check.kind for p in props}
    assert {"compare", "monotonic", "invariant", "sybil_proof", "budget_balance"} <= kinds
    assert any(p.expect == "violated" for p in props)


# --- verdicts over faked runs --------------------------------------------------------


@pytest.fixture
def fake_runs(monkeypatch):
    """Replace the simulation: each request's value is ``VALUES[key](seed, variant)``."""
    values = {}
    calls = []
    values["calls"] = calls

    def run_job(job):
        out = {
            "prop": job.prop,
            "variant": job.variant,
            "seed": job.seed,
            "run_seed": job.run_seed,
            "status": "ok",
            "failure": None,
            "error": None,
            "key": None,
            "values": {},
            "wall": 0.0,
        }
        for r in job.requests:
            prop, variant, key = job.prop, job.variant, r.key
            if "|" in r.key:  # a run shared by several properties (merge_jobs)
                prop, variant, key = r.key.split("|", 2)
            out["values"][r.key] = values[(int(prop), key)](job.seed, variant)
        calls.append(job)
        return out

    monkeypatch.setattr(P, "run_job", run_job)
    return values


def check(tmp_path, props, values, **kw):
    loaded = load_properties(write(tmp_path, props))
    return P.execute(loaded, workers=1, **kw)


NOISE = np.random.default_rng(0).normal(size=100)


def test_verdicts_expectations_and_sequential_seeds(tmp_path, fake_runs):
    props = [
        prop(name="clear win", seeds=4),
        prop(name="clear loss", seeds=4),
        prop(name="a known failure", seeds=4, expect="violated"),
        prop(name="noise", seeds={"min": 3, "max": 9, "step": 3}),
        prop(
            name="noise, expected to fail", seeds={"min": 3, "max": 9, "step": 3}, expect="violated"
        ),
        prop(name="grows clear", seeds={"min": 3, "max": 30, "step": 3}),
    ]
    for i, shift in enumerate([-1.0, 1.0, 1.0, 0.0, 0.0, -0.3]):
        fake_runs[(i, "assert.left")] = lambda s, v, shift=shift: shift + 0.1 * NOISE[s]
        fake_runs[(i, "assert.right")] = lambda s, v: 0.0
    rep = check(tmp_path, props, fake_runs)
    got = {r.prop.name: r for r in rep.results}
    assert got["clear win"].outcome.verdict == "holds" and got["clear win"].as_expected
    assert got["clear loss"].outcome.verdict == "violated" and not got["clear loss"].as_expected
    assert got["a known failure"].as_expected  # expect: violated inverts
    noise = got["noise"]
    assert noise.outcome.verdict == "undecided" and noise.final == "violated"
    assert noise.seeds_used == 9 and not noise.as_expected  # undecided counts as violated
    assert any("counts as violated" in d for d in noise.outcome.details)
    assert got["noise, expected to fail"].as_expected
    grows = got["grows clear"]
    assert grows.outcome.verdict == "holds" and 3 < grows.seeds_used < 30
    assert not rep.ok
    text = P.format_report(rep)
    assert "undecided" in text and "reproduce:" in text and "mlmarket run small --seed" in text


def seeds_of(result):
    return result.seeds_used


@pytest.mark.parametrize(
    ("assertion", "values", "verdict"),
    [
        (
            {"kind": "threshold", "metric": "rounds", "op": ">", "bound": 1},
            {"assert.metric": lambda s, v: 2 + 0.1 * NOISE[s]},
            "holds",
        ),
        (
            {
                "kind": "threshold",
                "metric": "rounds",
                "op": ">",
                "bound": 1,
                "stat": "quantile",
                "q": 0.5,
            },
            {"assert.metric": lambda s, v: 0.5 + 0.1 * NOISE[s]},
            "violated",
        ),
        (
            {
                "kind": "monotonic",
                "x": "last(agents.quality)",
                "y": "sum(agents.revenue)",
                "bound": 0.5,
            },
            {
                "assert.x": lambda s, v: {
                    "x": list(range(20)),
                    "y": list(np.arange(20) + NOISE[:20]),
                }
            },
            "holds",
        ),
        (
            {
                "kind": "monotonic",
                "x": "last(agents.quality)",
                "y": "sum(agents.revenue)",
                "bound": 0.5,
            },
            {"assert.x": lambda s, v: {"x": list(range(20)), "y": list(NOISE[s : s + 20])}},
            "violated",
        ),
        (
            {"kind": "budget_balance"},
            {"assert.spend": lambda s, v: 10.0, "assert.budget": lambda s, v: 100.0},
            "holds",
        ),
        (
            {"kind": "budget_balance"},
            {
                "assert.spend": lambda s, v: 10.0 + 100 * (s == 2),
                "assert.budget": lambda s, v: 100.0,
            },
            "violated",
        ),
    ],
)
def test_every_kind_passes_and_fails(tmp_path, fake_runs, assertion, values, verdict):
    for key, f in values.items():
        fake_runs[(0, key)] = f
    rep = check(tmp_path, [prop(seeds=8, **{"assert": assertion})], fake_runs)
    assert rep.results[0].outcome.verdict == verdict


def invariants(ok_seed):
    def f(s, v):
        return {
            "amm_k": {"ok": ok_seed(s), "bad_rounds": 0 if ok_seed(s) else 2, "message": "x*y fell"}
        }

    return f


@pytest.mark.parametrize(
    ("ok", "verdict", "seeds"), [(lambda s: True, "holds", 6), (lambda s: s != 1, "violated", 3)]
)
def test_invariants_need_every_seed(tmp_path, fake_runs, ok, verdict, seeds):
    fake_runs[(0, "assert.checks")] = invariants(ok)
    a = {"kind": "invariant", "checks": ["amm_k"]}
    rep = check(tmp_path, [prop(seeds={"min": 3, "max": 6, "step": 3}, **{"assert": a})], fake_runs)
    r = rep.results[0]
    assert r.outcome.verdict == verdict and r.seeds_used == seeds  # a violation stops early


def outcomes(gain):
    def f(s, v):
        lazy = v != "base"
        return {
            "type": ["developer"] * 3,
            "id": [1, 2, 3],
            "strategy": ["lazy" if lazy else "honest", "honest", "honest"],
            "roi": [0.1 + (gain + 0.01 * NOISE[s]) * lazy, 0.1, 0.1],
            "payoff": [0.0, 0.0, 0.0],
        }

    return f


@pytest.mark.parametrize(("gain", "verdict"), [(-0.05, "holds"), (0.05, "violated")])
def test_no_profitable_deviation(tmp_path, fake_runs, gain, verdict):
    fake_runs[(0, "assert.deviations")] = outcomes(gain)
    a = {
        "kind": "no_profitable_deviation",
        "deviations": [{"name": "lazy", "overrides": {"population.developers.lazy_fraction": 0.5}}],
    }
    rep = check(tmp_path, [prop(seeds=6, **{"assert": a})], fake_runs)
    r = rep.results[0]
    assert r.outcome.verdict == verdict
    assert len(r.commands) == 2 and "lazy_fraction=0.5" in r.commands[1]


@pytest.mark.parametrize(("shift", "verdict"), [(-0.1, "holds"), (0.1, "violated")])
def test_sybil_proof(tmp_path, fake_runs, shift, verdict):
    fake_runs[(0, "assert.metric")] = lambda s, v: shift + 0.01 * NOISE[s]
    a = {"kind": "sybil_proof", "epsilon": 0.0}
    p = prop(seeds=6, overrides={"population.sybils.owners": 2}, **{"assert": a})
    assert check(tmp_path, [p], fake_runs).results[0].outcome.verdict == verdict


@pytest.mark.parametrize(("gain", "verdict"), [(-0.1, "holds"), (0.1, "violated")])
def test_sybil_proof_against_the_same_owners_undivided(tmp_path, fake_runs, gain, verdict):
    # the groups' return is noisy across seeds, but the same in both runs but for the gain
    fake_runs[(0, "assert.metric")] = lambda s, v: NOISE[s] + (gain if v == "base" else 0.0)
    a = {"kind": "sybil_proof", "against": "undivided", "epsilon": 0.0}
    p = prop(seeds=6, overrides={"population.sybils.owners": 2}, **{"assert": a})
    r = check(tmp_path, [p], fake_runs).results[0]
    assert r.outcome.verdict == verdict
    assert any("population.sybils.identities=1" in c for c in r.commands)
    assert "split - undivided" in r.prop.check.statement()


def test_a_failing_run_is_an_error_not_a_verdict(tmp_path, fake_runs):
    def boom(s, v):
        raise RuntimeError("x")

    fake_runs[(0, "assert.left")] = lambda s, v: 0.0
    fake_runs[(0, "assert.right")] = lambda s, v: 0.0
    real = P.run_job

    def failing(job):
        out = real(job)
        if job.seed == 1:
            out.update(status="failed", failure="error", error="RuntimeError: boom")
        return out

    P.run_job = failing
    try:
        rep = check(tmp_path, [prop(seeds=4)], fake_runs)
    finally:
        P.run_job = real
    r = rep.results[0]
    assert r.final == "error" and not r.as_expected
    assert "RuntimeError: boom" in "\n".join(r.outcome.details)


MISSING = "unknown metric 'roi_by_type.free_ridr'; did you mean 'roi_by_type.free_rider'?"


def test_a_metric_missing_at_the_probe_is_bad_input(tmp_path, fake_runs, monkeypatch):
    def run_job(job):
        return {
            "prop": job.prop,
            "variant": job.variant,
            "seed": job.seed,
            "run_seed": job.run_seed,
            "status": "failed",
            "failure": "metric",
            "error": MISSING,
            "key": "assert.left",
            "values": {},
            "errors": {"assert.left": ("metric", MISSING)},
            "wall": 0.0,
        }

    monkeypatch.setattr(P, "run_job", run_job)
    with pytest.raises(PropertyError, match=r"properties\[0\].assert.left: unknown metric"):
        check(tmp_path, [prop(seeds=2)], fake_runs)


def test_paired_variants_share_seeds(tmp_path, fake_runs):
    seen = []

    def left(s, v):
        seen.append((s, v))
        return 1.0

    fake_runs[(0, "assert.left")] = left
    fake_runs[(0, "assert.right")] = lambda s, v: 0.0
    a = {
        "kind": "compare",
        "left": {"metric": "rounds", "overrides": {"task.signal": 2.0}},
        "op": ">",
        "right": "rounds",
    }
    rep = check(tmp_path, [prop(seeds=3, **{"assert": a})], fake_runs)
    r = rep.results[0]
    assert r.outcome.verdict == "holds"
    cmds = r.commands
    assert (
        len(cmds) == 2
        and cmds[0].split("--seed ")[1].split()[0] == cmds[1].split("--seed ")[1].split()[0]
    )
    assert "task.signal=2.0" in cmds[0] and "# left" in cmds[0]


# --- JUnit ---------------------------------------------------------------------------


def test_junit_xml_parses_and_counts(tmp_path):
    cases = [
        JUnitCase("a", "mlmarket.check.x", 1.5, "passed", text="fine", suite="x.yaml"),
        JUnitCase(
            "b <&>",
            "mlmarket.check.x",
            2.0,
            "failure",
            "b: violated\nsecond line",
            "violated",
            "why\x00\x07",
            "x.yaml",
        ),
        JUnitCase(
            "c", "mlmarket.check.y", 0.5, "error", "c: run failed", "error", "boom", "y.yaml"
        ),
    ]
    out = write_junit(tmp_path / "r.xml", cases, name="mlmarket check", time=4.0)
    root = ET.parse(out).getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "1", "1")
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["x.yaml", "y.yaml"]
    assert suites[0].get("failures") == "1" and suites[1].get("errors") == "1"
    fail = suites[0].find("testcase[@name='b <&>']/failure")
    assert fail.get("type") == "violated" and "\n" not in fail.get("message")
    assert fail.text == "why"  # control characters removed
    assert suites[0].find("testcase[@name='a']/failure") is None
    assert out.read_bytes().startswith(b"<?xml version='1.0' encoding='utf-8'?>")


def test_junit_rejects_an_unknown_status():
    with pytest.raises(ValueError, match="status"):
        junit_tree([JUnitCase("a", "b", status="flaky")])


def test_junit_of_a_report(tmp_path, fake_runs):
    fake_runs[(0, "assert.left")] = lambda s, v: -1.0 + 0.1 * NOISE[s]
    fake_runs[(0, "assert.right")] = lambda s, v: 0.0
    fake_runs[(1, "assert.left")] = lambda s, v: 1.0 + 0.1 * NOISE[s]
    fake_runs[(1, "assert.right")] = lambda s, v: 0.0
    rep = check(tmp_path, [prop(name="ok", seeds=3), prop(name="bad", seeds=3)], fake_runs)
    path = write_junit(tmp_path / "j.xml", P.junit_cases(rep), "mlmarket check")
    root = ET.parse(path).getroot()
    assert root.get("tests") == "2" and root.get("failures") == "1"
    (f,) = root.iter("failure")
    assert "reproduce:" in f.text and "mlmarket run small" in f.text


def test_identical_runs_of_several_properties_run_once(tmp_path, fake_runs):
    for i in range(3):
        fake_runs[(i, "assert.left")] = lambda s, v: -1.0 + 0.1 * NOISE[s]
        fake_runs[(i, "assert.right")] = lambda s, v: 0.0
    props = [prop(name=f"p{i}", seeds=3) for i in range(2)]
    props.append(prop(name="other settings", seeds=3, overrides={"task.signal": 1.0}))
    rep = check(tmp_path, props, fake_runs)
    assert all(r.outcome.verdict == "holds" for r in rep.results)
    runs = [j for j in fake_runs["calls"] if dict(j.overrides)["run.rounds"] != 1]
    assert len(runs) == 6  # 3 seeds shared by p0 and p1, 3 seeds of the other settings
    assert sorted(len(j.requests) for j in runs) == [2, 2, 2, 4, 4, 4]


def test_a_sweep_point_as_the_scenario(tmp_path):
    p = {k: v for k, v in prop().items() if k != "scenario"}
    (loaded,) = load_properties(write(tmp_path, [{**p, "sweep": "verifiers_dilemma", "point": 2}]))
    ov = dict(loaded.overrides)
    assert ov["mechanisms.verification.forced_error_rate"] == 0.1 and ov["run.rounds"] == 150
    assert loaded.scenario_ref == "verifiers_dilemma" and loaded.seed == 0
    with pytest.raises(
        PropertyError, match=r"properties\[0\].point: expected an integer in \[0, 2\]"
    ):
        load_properties(write(tmp_path, [{**p, "sweep": "verifiers_dilemma", "point": 3}]))
    with pytest.raises(PropertyError, match="give scenario or sweep"):
        load_properties(write(tmp_path, [{**prop(), "sweep": "verifiers_dilemma", "point": 0}]))

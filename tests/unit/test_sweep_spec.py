"""Sweep files: parsing, designs, common random numbers, and bad files (sim/sweep.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis.sweep import eta_squared_ranks, sensitivity, sobol_indices, summarize_points
from sim.cli import main
from sim.config import ScenarioError, load_scenario, parse_yaml
from sim.sweep import (
    PartWriter,
    Range,
    SweepError,
    flatten,
    keep_metric,
    load_sweep,
    run_seed,
    scan_parts,
    unit_sample,
)

BASE = {"base": "small", "overrides": {"run.rounds": 3}}


def spec(**kw):
    return load_sweep({**BASE, **kw})


# --- designs ------------------------------------------------------------------------------


def test_grid_is_the_cartesian_product_first_key_slowest():
    s = spec(
        vary={
            "population.free_riders.count": [0, 1, 2],
            "mechanisms.slashing.name": ["none", "burn_negative"],
        }
    )
    assert s.n_points == 6 and s.n_runs == 6
    assert s.design_points[:3] == [(0, "none"), (0, "burn_negative"), (1, "none")]
    assert s.point_params(5) == {
        "population.free_riders.count": 2,
        "mechanisms.slashing.name": "burn_negative",
    }


def test_zip_pairs_the_lists_only_when_asked():
    vary = {"population.free_riders.count": [0, 1, 2], "task.signal": [0.1, 0.2, 0.3]}
    assert spec(vary=vary).n_points == 9  # the default is the grid
    z = spec(vary=vary, design="zip")
    assert z.design_points == [(0, 0.1), (1, 0.2), (2, 0.3)]


@pytest.mark.parametrize("design", ["random", "latin_hypercube", "sobol"])
def test_space_filling_designs_stay_in_bounds_and_keep_ints(design):
    s = spec(
        vary={
            "task.signal": {"low": 0.2, "high": 0.9},
            "population.free_riders.count": {"low": 0, "high": 4},
            "mechanisms.slashing.name": ["none", "burn_negative", "proportional"],
        },
        design=design,
        points=32,
    )
    pts = s.design_points
    assert len(pts) == 32
    sig = np.array([p[0] for p in pts])
    assert ((sig >= 0.2) & (sig <= 0.9)).all() and len(set(sig)) == 32
    counts = [p[1] for p in pts]
    assert all(type(c) is int for c in counts) and set(counts) == {0, 1, 2, 3, 4}
    assert {p[2] for p in pts} == {"none", "burn_negative", "proportional"}
    assert s.column_kinds == {
        "task.signal": "float",
        "population.free_riders.count": "int",
        "mechanisms.slashing.name": "str",
    }


def test_integer_bounds_of_a_float_parameter_give_the_interval():
    s = spec(vary={"market.leak_probability": {"low": 0, "high": 1}}, design="random", points=8)
    vals = [p[0] for p in s.design_points]
    assert all(type(v) is float for v in vals) and len(set(vals)) == 8
    assert s.column_kinds == {"market.leak_probability": "float"}


def test_latin_hypercube_puts_one_point_in_each_stratum():
    u = unit_sample("latin_hypercube", 3, 20, seed=5)
    for j in range(3):
        assert sorted(np.floor(u[:, j] * 20).astype(int)) == list(range(20))


def test_designs_depend_on_the_root_seed_only():
    a, b = unit_sample("sobol", 2, 8, seed=1), unit_sample("sobol", 2, 8, seed=1)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, unit_sample("sobol", 2, 8, seed=2))


def test_integer_ranges_give_each_integer_the_same_width():
    r = Range(0, 3, integer=True)
    u = (np.arange(4000) + 0.5) / 4000
    counts = np.bincount(r.scale(u))
    assert list(counts) == [1000, 1000, 1000, 1000]
    assert Range(2.0, 4.0).scale(np.array([0.0, 0.5])) == [2.0, 3.0]
    assert Range(1.0, 100.0, log=True).scale(np.array([0.5]))[0] == pytest.approx(10.0)


def test_saltelli_blocks_swap_one_column():
    n, d = 8, 3
    u = unit_sample("saltelli", d, n, seed=0)
    assert u.shape == (n * (d + 2), d)
    a, b = u[:n], u[n : 2 * n]
    for i in range(d):
        abi = u[(2 + i) * n : (3 + i) * n]
        expect = a.copy()
        expect[:, i] = b[:, i]
        assert np.array_equal(abi, expect)


# --- common random numbers ------------------------------------------------------------------


def test_seed_index_means_the_same_run_seed_at_every_point():
    s = spec(vary={"population.free_riders.count": [0, 1, 2]}, seeds=3, seed=11)
    seeds = {}
    for t in s.tasks():
        seeds.setdefault(t.seed, set()).add(t.run_seed)
        assert ("run.seed", t.run_seed) in t.overrides
    assert all(len(v) == 1 for v in seeds.values())  # the same at every point
    assert len({next(iter(v)) for v in seeds.values()}) == 3  # different across seeds
    assert s.run_seeds == [run_seed(11, i) for i in range(3)]
    assert run_seed(11, 0) != run_seed(12, 0)
    assert all(0 <= x < 2**63 for x in s.run_seeds)
    # seed by seed: a partial sweep covers every point first
    assert [(t.point_id, t.seed) for t in s.tasks()][:4] == [(0, 0), (1, 0), (2, 0), (0, 1)]


def test_scenario_of_a_point_has_its_values_and_seed():
    s = spec(vary={"mechanisms.slashing.name": ["none", "proportional"]}, seeds=2)
    sc = s.scenario(1, seed=1)
    assert sc.mechanism("slashing").name == "proportional"
    assert sc.run.seed == s.run_seeds[1] and sc.run.rounds == 3
    done = np.zeros((2, 2), bool)
    done[1, 0] = True
    assert [(t.point_id, t.seed) for t in s.tasks(done)] == [(0, 0), (0, 1), (1, 1)]


def test_a_row_reruns_with_mlmarket_run_options():
    s = spec(vary={"mechanisms.slashing.name": ["none", "proportional"]}, seeds=2)
    params = [f"{k}={v}" for k, v in s.point_params(1).items()]
    by_hand = load_scenario("small", ["run.rounds=3", *params, f"run.seed={s.run_seeds[1]}"])
    assert by_hand.to_dict() == s.scenario(1, seed=1).to_dict()


def test_resolved_sweep_reads_back_the_same(tmp_path):
    s = spec(
        vary={"task.signal": {"low": 0.1, "high": 0.5, "log": True}},
        design="sobol",
        points=4,
        seeds=2,
        seed=3,
        metrics=["metamodel"],
    )
    back = parse_yaml(s.to_yaml(), "sweep.yaml")
    assert back == s.to_dict()
    assert back["base"]["population"]["developers"]["count"] == 20  # the base in full
    path = tmp_path / "sweep.yaml"
    path.write_text(s.to_yaml())
    again = load_sweep(path)
    assert again.to_dict() == s.to_dict() and again.design_points == s.design_points


def test_base_path_is_relative_to_the_sweep_file(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "mine.yaml").write_text("extends: small\ntask: {assets: 7}\n")
    (tmp_path / "sub" / "sw.yaml").write_text("base: mine.yaml\nvary: {run.rounds: [2, 3]}\n")
    s = load_sweep(tmp_path / "sub" / "sw.yaml")
    assert s.base["task"]["assets"] == 7 and s.n_points == 2 and s.base_ref == "mine.yaml"


def test_shipped_sweep_by_name():
    s = load_sweep("compare_slashing")
    assert s.n_points == 10 and s.seeds == 5 and s.name == "compare_slashing"


# --- rows ------------------------------------------------------------------------------------


def test_flatten_keeps_scalars_under_dotted_paths():
    flat = flatten(
        {"a": {"b": 1, "c": {"d": "x"}}, "l": [1, 2], "n": None, "f": np.float64(2.5), "t": True}
    )
    assert flat == {"a.b": 1, "a.c.d": "x", "f": 2.5, "t": True}
    assert type(flat["f"]) is float
    assert keep_metric("roi_by_type.developer", ["roi_by_type"])
    assert keep_metric("metamodel.mean_corr", ["metamodel.mean_corr"])
    assert not keep_metric("roi_by_type_x", ["roi_by_type"])
    assert keep_metric("anything", None)


def test_part_writer_streams_parts_and_scan_reads_them_back(tmp_path):
    folder = tmp_path / "runs.parquet"
    w = PartWriter(folder, {"p.x": "int"}, rows=2, seconds=1e9)
    rows = [
        {
            "point_id": i,
            "seed": 0,
            "run_seed": 9,
            "p.x": i,
            "status": "ok",
            "error": None,
            "wall_s": 0.1,
            "m": 1.5,
        }
        for i in range(3)
    ]
    rows.append(
        {
            "point_id": 3,
            "seed": 0,
            "run_seed": 9,
            "p.x": 3,
            "status": "failed",
            "error": "boom",
            "wall_s": 0.1,
        }
    )
    for r in rows:
        w.add(r)
    assert sorted(p.name for p in folder.iterdir()) == ["part-00000.parquet", "part-00001.parquet"]
    assert len(w.buffer) == 0
    (folder / ".part-00002.parquet.tmp").write_bytes(b"half")
    (folder / "part-00002.parquet").write_bytes(b"PAR1 not really")
    scan = scan_parts(folder, n_points=5, seeds=1)
    assert scan.done[:, 0].tolist() == [True, True, True, True, False]
    assert scan.failed == 1 and scan.broken == ["part-00002.parquet"] and scan.next_index == 3
    scan = scan_parts(folder, n_points=5, seeds=1, repair=True)
    assert scan.next_index == 2 and scan.removed == [".part-00002.parquet.tmp"]
    names = sorted(p.name for p in folder.iterdir())
    assert names == [".part-00002.parquet.broken", "part-00000.parquet", "part-00001.parquet"]
    df = pd.read_parquet(folder)
    assert df["m"].isna().tolist() == [False, False, False, True]
    assert df["p.x"].dtype == np.int64 and df.loc[3, "error"] == "boom"


# --- analysis oracles ---------------------------------------------------------------------


def test_summarize_points_t_interval_by_hand():
    df = pd.DataFrame(
        {
            "point_id": [0, 0, 0, 1, 1],
            "seed": [0, 1, 2, 0, 1],
            "run_seed": 0,
            "x": [1, 1, 1, 2, 2],
            "status": ["ok", "ok", "ok", "ok", "failed"],
            "error": None,
            "wall_s": 0.1,
            "m": [1.0, 2.0, 3.0, 5.0, np.nan],
        }
    )
    out = summarize_points(df, ["m"], params=["x"])
    p0, p1 = out.iloc[0], out.iloc[1]
    # mean 2, std 1, t_{0.975, 2} = 4.302653 (any t table): 2 -/+ 4.302653 / sqrt(3)
    assert p0["mean"] == 2.0 and p0["std"] == 1.0 and p0["n"] == 3 and p0["x"] == 1
    assert p0["ci_high"] == pytest.approx(2 + 4.302653 / np.sqrt(3), rel=1e-6)
    assert p1["n"] == 1 and p1["failed"] == 1 and np.isnan(p1["ci_low"])


def test_eta_squared_on_ranks_equals_kruskal_h_over_n_minus_1():
    from scipy import stats

    rng = np.random.default_rng(0)
    y = np.concatenate([rng.normal(0, 1, 20), rng.normal(1, 1, 20), rng.normal(0.5, 1, 20)])
    g = np.repeat(["a", "b", "c"], 20)
    h = stats.kruskal(y[g == "a"], y[g == "b"], y[g == "c"]).statistic
    assert eta_squared_ranks(stats.rankdata(y), g) == pytest.approx(h / (len(y) - 1))


def test_sensitivity_ranks_the_parameter_that_matters():
    rng = np.random.default_rng(1)
    n = 200
    df = pd.DataFrame(
        {
            "point_id": np.arange(n),
            "seed": np.arange(n) % 2,
            "big": rng.uniform(0, 1, n),
            "none": rng.uniform(0, 1, n),
            "rule": rng.choice(["a", "b"], n),
            "status": "ok",
        }
    )
    df["m"] = 5 * df["big"] + (df["rule"] == "b") * 1.0 + rng.normal(0, 0.1, n)
    out = sensitivity(df, "m", params=["big", "none", "rule"]).set_index("parameter")
    assert out.index[0] == "big" and out.loc["big", "statistic"] > 0.8
    assert out.loc["rule", "kind"] == "categorical" and out.loc["rule", "importance"] > 0.02
    assert out.loc["none", "importance"] < 0.05 and out.loc["seed", "kind"] == "seed"


def test_sobol_indices_of_the_ishigami_function():
    # Ishigami & Homma (1990) with a = 7, b = 0.1; analytic indices from Saltelli et al.
    # (2008), Global Sensitivity Analysis: The Primer, section 4.6.
    n, d = 4096, 3
    x = -np.pi + 2 * np.pi * unit_sample("saltelli", d, n, seed=0)
    y = np.sin(x[:, 0]) + 7 * np.sin(x[:, 1]) ** 2 + 0.1 * x[:, 2] ** 4 * np.sin(x[:, 0])
    df = pd.DataFrame({"point_id": np.arange(len(y)), "seed": 0, "status": "ok", "m": y})
    out = sobol_indices(df, "m", params=["x1", "x2", "x3"], points=n, bootstrap=50)
    assert out["S1"].to_numpy() == pytest.approx([0.3139, 0.4424, 0.0], abs=0.03)
    assert out["ST"].to_numpy() == pytest.approx([0.5576, 0.4424, 0.2437], abs=0.03)
    assert (out["S1_low"] <= out["S1"]).all() and (out["ST"] <= out["ST_high"]).all()


# --- bad sweep files ----------------------------------------------------------------------

BAD = [
    (
        "empty_list",
        {"vary": {"population.free_riders.count": []}},
        ["vary.population.free_riders.count", "empty"],
    ),
    (
        "unknown_key_path",
        {"vary": {"population.free_rider.count": [1, 2]}},
        [
            "vary.population.free_rider.count",
            "unknown key 'free_rider'",
            "did you mean 'free_riders'",
        ],
    ),
    (
        "low_above_high",
        {"vary": {"task.signal": {"low": 2, "high": 1}}, "design": "random", "points": 4},
        ["vary.task.signal", "low 2 > high 1"],
    ),
    (
        "unknown_design",
        {"vary": {"task.signal": [1]}, "design": "lhs"},
        ["design", "'lhs'", "latin_hypercube"],
    ),
    (
        "range_in_grid",
        {"vary": {"task.signal": {"low": 0, "high": 1}}},
        ["vary.task.signal", "space-filling"],
    ),
    (
        "zip_lengths",
        {"vary": {"task.signal": [1, 2], "task.noise": [1]}, "design": "zip"},
        ["design zip", "task.signal: 2", "task.noise: 1"],
    ),
    (
        "unknown_top_key",
        {"vary": {"task.signal": [1]}, "sedes": 3},
        ["'sedes'", "did you mean 'seeds'"],
    ),
    (
        "value_out_of_range",
        {"vary": {"task.signal": {"low": 0, "high": 1000}}, "design": "sobol", "points": 8},
        ["vary.task.signal", "allowed: a number in [0, 100]"],
    ),
    (
        "bad_rule",
        {"vary": {"mechanisms.slashing.name": ["none", "burnt"]}},
        ["vary.mechanisms.slashing.name", "'burnt'", "burn_negative"],
    ),
    (
        "points_missing",
        {"vary": {"task.signal": {"low": 0, "high": 1}}, "design": "sobol"},
        ["points", "sobol"],
    ),
    ("points_in_grid", {"vary": {"task.signal": [1]}, "points": 3}, ["points", "grid"]),
    ("seeds_zero", {"vary": {"task.signal": [1]}, "seeds": 0}, ["seeds", "got 0"]),
    ("run_seed_varied", {"vary": {"run.seed": [1, 2]}}, ["vary.run.seed", "seeds"]),
    (
        "in_both",
        {"vary": {"task.signal": [1]}, "overrides": {"task.signal": 2}},
        ["task.signal", "both"],
    ),
    (
        "bad_override",
        {"vary": {"task.signal": [1]}, "overrides": {"task.sigal": 2}},
        ["overrides.task.sigal", "did you mean 'signal'"],
    ),
    ("vary_not_mapping", {"vary": [1, 2]}, ["vary", "mapping"]),
    ("metrics_not_list", {"vary": {"task.signal": [1]}, "metrics": "roi"}, ["metrics", "list"]),
    (
        "log_nonpositive",
        {
            "vary": {"task.signal": {"low": 0, "high": 1, "log": True}},
            "design": "random",
            "points": 2,
        },
        ["vary.task.signal", "low > 0"],
    ),
    (
        "cross_key",
        {"vary": {"population.collusion.providers": [1, 10]}},
        ["vary.population.collusion.providers", "population.providers.count"],
    ),
]


@pytest.mark.parametrize(("case", "extra", "expect"), BAD, ids=[b[0] for b in BAD])
def test_bad_sweep_is_refused_naming_the_key(case, extra, expect):
    data = {"base": "small", **extra}
    with pytest.raises(SweepError) as err:
        load_sweep(data)
    for piece in expect:
        assert piece in str(err.value)
    assert isinstance(err.value, ScenarioError)


def test_missing_base_and_unknown_base():
    with pytest.raises(SweepError, match="base: missing"):
        load_sweep({"vary": {"task.signal": [1]}})
    with pytest.raises(SweepError, match="did you mean the shipped scenario 'small'"):
        load_sweep({"base": "smal", "vary": {"task.signal": [1]}})


def test_cli_bad_sweep_file_is_one_line_and_exit_2(tmp_path, capfd):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"base": "small", "vary": {"population.free_rider.count": [1]}}))
    assert main(["sweep", str(bad), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "vary.population.free_rider.count" in err
    assert "Traceback" not in err and not (tmp_path / "out").exists()
    (tmp_path / "bad2.yaml").write_text("base: small\nvary: {task.signal: [1]\n")
    assert main(["sweep", str(tmp_path / "bad2.yaml"), "--quiet"]) == 2
    assert "malformed YAML" in capfd.readouterr().err
    assert main(["sweep", "nothere.yaml"]) == 2
    assert "not found" in capfd.readouterr().err


def test_cli_option_errors_exit_2(tmp_path, capfd):
    good = tmp_path / "good.yaml"
    good.write_text("base: small\nvary: {run.rounds: [2]}\n")
    assert main(["sweep", str(good), "--scheduler", "nonsense"]) == 2
    assert "tcp://HOST:PORT" in capfd.readouterr().err
    assert main(["sweep", str(good), "--scheduler", "tcp://127.0.0.1:1", "--workers", "2"]) == 2
    assert "--workers" in capfd.readouterr().err
    assert main(["sweep", str(good), "--resume"]) == 2
    assert "give --out" in capfd.readouterr().err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    assert main(["sweep", str(good), "--out", str(tmp_path / "full")]) == 2
    assert "not empty" in capfd.readouterr().err
    assert main(["sweep", str(good), "--out", str(tmp_path / "full"), "--resume"]) == 2
    assert "holds no sweep" in capfd.readouterr().err

"""Scenario loading: defaults, ``extends``, ``--set`` parsing and merging, round trips."""

from __future__ import annotations

import pytest
import yaml

from mechanisms.registry import load_all
from sim.config import (
    Dist,
    Scenario,
    ScenarioError,
    apply_overrides,
    describe_schema,
    load_scenario,
    merge,
    parse_override,
    parse_yaml,
    shipped_scenarios,
)


def write(path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def reward(sc: Scenario) -> dict:
    return sc.to_dict()["mechanisms"]["reward"]


# --------------------------------------------------------------------------------------
# Defaults
# --------------------------------------------------------------------------------------


def test_defaults_fill_every_key():
    empty = load_scenario({})
    assert (
        empty.to_dict() == Scenario().model_copy(update={"mechanisms": empty.mechanisms}).to_dict()
    )
    for path, default, _ in describe_schema():
        assert empty.get(path) == default, path
    assert set(empty.mechanisms) == set(load_all())
    assert reward(empty) == {
        "name": "numerai",
        "w_corr": 0.5,
        "w_mmc": 2.0,
        "clip": 0.05,
        "payout_target": None,
    }


def test_baseline_file_states_the_defaults():
    """baseline.yaml says every key in it is the built-in default."""
    assert load_scenario("baseline").to_dict() == load_scenario({}).to_dict()


def test_a_partial_file_gets_defaults_for_everything_else(tmp_path):
    p = write(tmp_path / "s.yaml", "run: {rounds: 7}\npopulation:\n  developers: {count: 3}\n")
    sc = load_scenario(p)
    want = load_scenario({}).to_dict()
    want["run"]["rounds"] = 7
    want["population"]["developers"]["count"] = 3
    assert sc.to_dict() == want


@pytest.mark.parametrize("text", ["---\n", "", "# only a comment\n", "{}\n"])
def test_an_empty_document_means_all_defaults(tmp_path, text):
    assert load_scenario(write(tmp_path / "s.yaml", text)).to_dict() == load_scenario({}).to_dict()


# --------------------------------------------------------------------------------------
# extends
# --------------------------------------------------------------------------------------


def test_extends_a_shipped_scenario(tmp_path):
    p = write(
        tmp_path / "child.yaml",
        "extends: baseline\nrun: {rounds: 5}\npopulation:\n  providers: {count: 2}\n",
    )
    sc = load_scenario(p)
    base = load_scenario("baseline")
    assert sc.run.rounds == 5 and sc.run.seed == base.run.seed
    assert sc.population.providers.count == 2
    # deep merge: the providers' other keys come from the parent
    assert sc.population.providers.noise == base.population.providers.noise
    assert sc.population.developers == base.population.developers


def test_extends_a_relative_path_from_the_extending_files_folder(tmp_path, monkeypatch):
    write(tmp_path / "base" / "parent.yaml", "extends: small\nrun: {rounds: 9, seed: 4}\n")
    p = write(tmp_path / "kids" / "child.yaml", "extends: ../base/parent.yaml\nrun: {seed: 5}\n")
    monkeypatch.chdir(tmp_path / "base")  # not where the child is: paths are file-relative
    sc = load_scenario(p)
    small = load_scenario("small")
    assert (sc.run.rounds, sc.run.seed) == (9, 5)
    assert sc.task.assets == small.task.assets  # from small, two layers up
    assert sc.population.developers.count == small.population.developers.count


def test_extends_in_a_mapping_and_overrides_come_last(tmp_path):
    sc = load_scenario({"extends": "small", "run": {"rounds": 4}}, ["run.rounds=6"])
    assert sc.run.rounds == 6
    assert sc.population.developers.count == load_scenario("small").population.developers.count


def test_extends_errors_name_the_chain(tmp_path):
    write(tmp_path / "a.yaml", "extends: b.yaml\n")
    write(tmp_path / "b.yaml", "extends: a.yaml\n")
    with pytest.raises(
        ScenarioError, match=r"'extends' loops: .*a\.yaml -> .*b\.yaml -> .*a\.yaml"
    ):
        load_scenario(tmp_path / "a.yaml")
    write(tmp_path / "c.yaml", "extends: gone.yaml\n")
    with pytest.raises(ScenarioError, match=r"'gone\.yaml' not found.*extended by .*c\.yaml"):
        load_scenario(tmp_path / "c.yaml")


# --------------------------------------------------------------------------------------
# Mechanism names: switching rules drops the old rule's parameters
# --------------------------------------------------------------------------------------


def test_set_rule_name_starts_from_the_new_rules_defaults(tmp_path):
    p = write(tmp_path / "s.yaml", "mechanisms:\n  reward: {name: numerai, w_mmc: 1.0}\n")
    assert reward(load_scenario(p))["w_mmc"] == 1.0
    sc = load_scenario(p, ["mechanisms.reward.name=stake_proportional"])
    assert reward(sc) == {"name": "stake_proportional", "penalty": 1.0, "clip": 0.25}


@pytest.mark.parametrize("order", [1, -1])
def test_set_rule_name_keeps_params_given_with_it(order):
    sets = ["mechanisms.reward.name=stake_proportional", "mechanisms.reward.penalty=2"][::order]
    sc = load_scenario("baseline", sets)
    assert reward(sc) == {"name": "stake_proportional", "penalty": 2.0, "clip": 0.25}


def test_set_the_same_rule_name_keeps_its_params(tmp_path):
    p = write(tmp_path / "s.yaml", "mechanisms:\n  reward: {name: numerai, w_mmc: 1.0}\n")
    sc = load_scenario(p, ["mechanisms.reward.name=numerai"])
    assert reward(sc)["w_mmc"] == 1.0


def test_old_rule_params_are_rejected_after_a_switch():
    with pytest.raises(ScenarioError, match=r"mechanisms\.reward\.w_mmc: unknown key"):
        load_scenario(
            "baseline", ["mechanisms.reward.name=stake_proportional", "mechanisms.reward.w_mmc=1"]
        )


def test_extending_file_switching_rule_drops_parent_params(tmp_path):
    write(tmp_path / "parent.yaml", "mechanisms:\n  reward: {name: numerai, w_mmc: 1.0}\n")
    p = write(
        tmp_path / "child.yaml",
        "extends: parent.yaml\nmechanisms:\n  reward: {name: stake_proportional, clip: 0.5}\n",
    )
    assert reward(load_scenario(p)) == {"name": "stake_proportional", "penalty": 1.0, "clip": 0.5}
    q = write(tmp_path / "same.yaml", "extends: parent.yaml\nmechanisms:\n  reward: {clip: 0.1}\n")
    assert reward(load_scenario(q))["w_mmc"] == 1.0 and reward(load_scenario(q))["clip"] == 0.1


def test_merge_semantics():
    base = {"run": {"rounds": 3, "seed": 1}, "mechanisms": {"reward": {"name": "a", "x": 1}}}
    assert merge(base, {"run": {"seed": 2}})["run"] == {"rounds": 3, "seed": 2}
    assert merge(base, {"mechanisms": {"reward": {"x": 5}}})["mechanisms"]["reward"] == {
        "name": "a",
        "x": 5,
    }
    assert merge(base, {"mechanisms": {"reward": {"name": "b", "y": 2}}})["mechanisms"][
        "reward"
    ] == {"name": "b", "y": 2}
    # the shorthand `family: rule` is the same as {name: rule}
    short = {"mechanisms": {"reward": "a"}}
    assert merge(short, {"mechanisms": {"reward": {"x": 5}}})["mechanisms"]["reward"] == {
        "name": "a",
        "x": 5,
    }
    assert merge(base, {"mechanisms": {"reward": "a"}})["mechanisms"]["reward"] == {
        "name": "a",
        "x": 1,
    }
    assert base["run"] == {"rounds": 3, "seed": 1}  # inputs are not modified


def test_shorthand_rule_names_take_set_params(tmp_path):
    p = write(tmp_path / "s.yaml", "mechanisms:\n  reward: stake_proportional\n")
    sc = load_scenario(p, ["mechanisms.reward.penalty=3"])
    assert reward(sc) == {"name": "stake_proportional", "penalty": 3.0, "clip": 0.25}
    c = write(tmp_path / "c.yaml", "extends: s.yaml\nmechanisms:\n  reward: {clip: 0.5}\n")
    assert reward(load_scenario(c)) == {"name": "stake_proportional", "penalty": 1.0, "clip": 0.5}


def test_apply_overrides():
    data = {"run": {"rounds": 3}}
    out = apply_overrides(data, [("run.seed", 4), ("task.assets", 9)])
    assert out == {"run": {"rounds": 3, "seed": 4}, "task": {"assets": 9}}
    assert data == {"run": {"rounds": 3}}
    with pytest.raises(ScenarioError, match=r"run\.rounds is a value \(3\), not a section"):
        apply_overrides(data, [("run.rounds.x", 1)])


# --------------------------------------------------------------------------------------
# --set values
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("run.rounds=12", 12),
        ("run.seed=-3", -3),
        ("market.fee=0.003", 0.003),
        ("market.x=1e7", 1e7),
        ("market.x=1E7", 1e7),
        ("market.x=2.5e-3", 2.5e-3),
        ("market.x=-1.5e+2", -150.0),
        ("market.x=.5", 0.5),
        ("a.b=true", True),
        ("a.b=false", False),
        ("a.b=[1, 2.5, 3]", [1, 2.5, 3]),
        ("a.b=[]", []),
        ("a.b={dist: uniform, low: 1, high: 2}", {"dist": "uniform", "low": 1, "high": 2}),
        ("a.b=numerai", "numerai"),
        ("a.b='12'", "12"),
        ("a.b=null", None),
        ("a.b=", ""),
        ("a.b=x=y", "x=y"),
        (" a.b = 7 ", 7),
    ],
)
def test_parse_override_values(text, value):
    path, got = parse_override(text)
    assert path == text.partition("=")[0].strip()
    assert got == value and type(got) is type(value)


def test_float_values_reach_float_keys():
    sc = load_scenario("baseline", ["market.metamodel.capital=1e7", "market.treasury=2.5e4"])
    assert sc.market.metamodel.capital == 1e7 and sc.market.treasury == 25_000.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("run.rounds", "expected KEY.PATH=VALUE"),
        ("=3", "empty"),
        ("run..rounds=3", "empty part"),
        ("run.rounds=[1", "malformed YAML"),
        ("run.rounds=!!python/name:os.system", "not allowed"),
        ("run.rounds=&a [*a]", "nested deeper"),
    ],
)
def test_parse_override_errors(text, message):
    with pytest.raises(ScenarioError, match="--set") as e:
        parse_override(text)
    assert message in str(e.value)


# --------------------------------------------------------------------------------------
# Messages for bad values
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sets", "parts"),
    [
        (["run.roundz=3"], ["run.roundz", "did you mean 'rounds'"]),
        (["run.rounds=0"], ["run.rounds", "got 0", "an integer in [1, 100000]"]),
        (["run.rounds=true"], ["run.rounds", "got True", "an integer in [1, 100000]"]),
        (["task.signal=[1]"], ["task.signal", "got [1]", "a number in [0, 100]"]),
        (["mechanisms.reward.clip=2"], ["mechanisms.reward.clip", "got 2", "(0, 1]"]),
        (["mechanisms.reward.name=numeria"], ["did you mean 'numerai'"]),
        (["population.providers.noise={dist: normal, mean: 1}"], ["needs mean, std"]),
        (["task.kind=" + "x" * 5000], ["task.kind", "(5002 characters)"]),
    ],
)
def test_bad_values_name_path_value_and_allowed(sets, parts):
    with pytest.raises(ScenarioError) as e:
        load_scenario("small", sets)
    for part in parts:
        assert part in str(e.value)
    assert len(str(e.value)) < 500


def _numeric_keys() -> list[tuple[str, bool]]:
    rows = []
    for path, default, _ in describe_schema():
        if isinstance(default, bool):
            continue
        if isinstance(default, int | float | dict):  # a dict is a distribution
            rows.append((path, isinstance(default, int) and not isinstance(default, bool)))
    return rows


@pytest.mark.parametrize(("path", "is_int"), _numeric_keys(), ids=[p for p, _ in _numeric_keys()])
def test_every_number_has_a_lower_and_an_upper_bound(path, is_int):
    big = 10**30 if is_int else 1e300
    for value in (big, -big):
        with pytest.raises(ScenarioError, match=path.replace(".", r"\.")):
            load_scenario({}, [(path, value)])


def test_every_rule_parameter_has_a_lower_and_an_upper_bound():
    for fam, reg in load_all().items():
        for info in reg:
            for param, default in info.defaults().items():
                if isinstance(default, bool):
                    continue
                for value in (1e300, -1e300):
                    sets = [
                        (f"mechanisms.{fam}.name", info.name),
                        (f"mechanisms.{fam}.{param}", value),
                    ]
                    with pytest.raises(ScenarioError, match=f"mechanisms.{fam}.{param}"):
                        load_scenario({}, sets)


def test_parse_yaml_refuses_what_is_not_a_plain_mapping():
    for text, message in [
        ("- 1\n", "not list"),
        ("x: !!python/object/apply:os.system [echo]\n", "not allowed"),
        ("a: 1\na: 2\n", "appears twice"),
        (b"a: \xff\n", "not UTF-8"),
        ("a: 1\n---\nb: 2\n", "found 2"),
        ("a: " + "[" * 40 + "]" * 40, "nested deeper"),
        ("x" * (2 << 20), "1 MiB"),
    ]:
        with pytest.raises(ScenarioError, match="where") as e:
            parse_yaml(text, "where")
        assert message in str(e.value)
    # merge keys are fine and are not duplicates
    assert parse_yaml("a: &a {x: 1, y: 2}\nb:\n  <<: *a\n  x: 3\n", "w")["b"] == {"x": 3, "y": 2}


# --------------------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------------------

ROUND_TRIP_SETS = [
    "run.seed=9223372036854775807",
    "population.providers.noise={dist: normal, mean: 1.5, std: 0.25}",
    "population.providers.price={dist: choice, values: [0.1, 0.2, 0.7]}",
    "population.providers.tokens={dist: lognormal, median: 150, sigma: 0.3}",
    "population.developers.usd=123.5",
    "population.developers.stake_fraction={dist: uniform, low: 0.1, high: 0.9}",
    "population.free_riders.tokens={dist: constant, value: 7}",
    "market.metamodel.capital=1e7",
    "market.exchange.token_price=1e-6",
    "mechanisms.reward.payout_target=72000",
    "mechanisms.slashing.name=none",
]


@pytest.mark.parametrize("sets", [[], ROUND_TRIP_SETS], ids=["baseline", "every_dist_kind"])
def test_resolved_yaml_round_trips(tmp_path, sets):
    sc = load_scenario("baseline", sets)
    text = sc.to_yaml()
    plain = yaml.safe_load(text)  # plain YAML: no tags, readable by any safe loader
    assert plain == sc.to_dict()
    assert "!!" not in text and "extends" not in plain
    again = load_scenario(write(tmp_path / "scenario.yaml", text))
    assert again.to_dict() == sc.to_dict()
    assert again == sc


def test_distribution_values_round_trip(tmp_path):
    sc = load_scenario("baseline", ROUND_TRIP_SETS)
    again = load_scenario(write(tmp_path / "scenario.yaml", sc.to_yaml()))
    p, q = sc.population, again.population
    for a, b in [
        (p.providers.noise, q.providers.noise),
        (p.providers.price, q.providers.price),
        (p.providers.tokens, q.providers.tokens),
        (p.developers.usd, q.developers.usd),
        (p.developers.stake_fraction, q.developers.stake_fraction),
        (p.free_riders.tokens, q.free_riders.tokens),
    ]:
        assert isinstance(b, Dist) and a == b
    assert p.providers.noise.kind == "normal" and (p.providers.noise.a, p.providers.noise.b) == (
        1.5,
        0.25,
    )
    assert p.providers.price.values == (0.1, 0.2, 0.7)
    assert p.free_riders.tokens.kind == "constant" and p.free_riders.tokens.a == 7.0


@pytest.mark.parametrize("name", list(shipped_scenarios()))
def test_shipped_scenarios_load_and_round_trip(name, tmp_path):
    assert shipped_scenarios()[name], "every shipped scenario starts with a comment line"
    sc = load_scenario(name)
    again = load_scenario(write(tmp_path / "scenario.yaml", sc.to_yaml()))
    assert again.to_dict() == sc.to_dict()


def test_resolved_yaml_reruns_to_identical_results(tmp_path):
    from sim.runner import run

    sc = load_scenario("small", ["run.rounds=3", "population.providers.noise=0.5"])
    again = load_scenario(write(tmp_path / "scenario.yaml", sc.to_yaml()))
    a, b = run(sc), run(again)
    assert a.summary == b.summary
    assert a.model.equals(b.model) and a.agents.equals(b.agents) and a.ledger.equals(b.ledger)

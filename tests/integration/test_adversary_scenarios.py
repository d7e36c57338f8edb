"""The verifier's dilemma and network-effect scenarios run and report their numbers."""

from __future__ import annotations

from sim import load_scenario, run


def test_verifiers_dilemma_runs_and_lazy_solvers_bet_on_the_checking_rate():
    res = run(load_scenario("verifiers_dilemma", ["run.rounds=25"]))
    m = res.model
    assert res.summary["invariants_ok"]
    assert m["check_rate"].between(0, 1).all()
    assert m["lazy_claims"].sum() > 0  # checking starts at 0.5 and decays: skipping pays
    assert "developer/lazy" in res.summary["by_strategy"]


def test_forced_errors_keep_verifiers_checking_and_deter_lazy_solvers():
    args = ["run.rounds=40"]
    without = run(load_scenario("verifiers_dilemma", args)).model
    forced = run(
        load_scenario("verifiers_dilemma", [*args, "mechanisms.verification.forced_error_rate=0.1"])
    ).model
    assert forced["forced_errors"].sum() > 0 and without["forced_errors"].sum() == 0
    late = slice(20, None)
    assert forced["check_rate"].iloc[late].mean() > without["check_rate"].iloc[late].mean()
    assert forced["lazy_claims"].sum() < without["lazy_claims"].sum()


def test_network_effect_starts_small_and_records_entries():
    res = run(load_scenario("network_effect", ["run.rounds=40"]))
    m = res.model
    assert m["active_provider"].iloc[0] == 3 and m["active_developer"].iloc[0] == 10
    assert {"entries", "exits"} <= set(m.columns)
    assert res.summary["invariants_ok"]

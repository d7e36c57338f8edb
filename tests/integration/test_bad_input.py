"""Bad input to ``mlmarket run``: one clear message, exit code 2, no traceback, nothing run.

One case of every kind of bad input runs the real command line in a subprocess
(``python -m sim.cli``); those start together in a thread pool (each spends most of its
~0.7 s importing) and each parametrized test checks one result. The finer variants call
the same entry point, :func:`sim.cli.main`, in-process (capturing file descriptors, so
output of anything wrongly executed is seen too).
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

RESULT_FILES = (
    "scenario.yaml",
    "provenance.json",
    "summary.json",
    "model.parquet",
    "agents.parquet",
    "ledger.parquet",
)


def _alias_bomb() -> str:
    """The billion-laughs document: 9 ** 10 strings once every alias is expanded."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        refs = ", ".join([f"*l{i - 1}"] * 9)
        lines.append(f"l{i}: &l{i} [{refs}]")
    return "run:\n  rounds: 2\nmarket:\n  " + "\n  ".join(lines) + "\n"


@dataclass
class Case:
    id: str
    args: list[str]
    expect: list[str]  # substrings stderr must contain (the key path, value, allowed, file)
    files: dict[str, str | bytes] = field(default_factory=dict)
    argparse: bool = False  # rejected by argparse (the message points to --help)

    @property
    def subprocess(self) -> bool:
        return self.id in SUBPROCESS


def S(path_value: str) -> list[str]:  # noqa: N802 - short for the table below
    return ["small", "--set", path_value]


CASES = [
    # --- files -------------------------------------------------------------------------
    Case("missing_file", ["nothere.yaml"], ["'nothere.yaml' not found", "nothere.yaml"]),
    Case("misspelt_shipped_name", ["basline"], ["'basline' not found", "did you mean", "baseline"]),
    Case("directory", ["adir"], ["adir", "is not a file"], {"adir/x.yaml": "run: {}\n"}),
    Case(
        "non_utf8",
        ["bad.yaml"],
        ["bad.yaml", "not UTF-8"],
        {"bad.yaml": b"run:\n  rounds: 2\n# caf\xe9 \xff\xfe\n"},
    ),
    Case(
        "malformed_yaml",
        ["bad.yaml"],
        ["bad.yaml", "malformed YAML", "line 2"],
        {"bad.yaml": "run: {rounds: [1\n"},
    ),
    Case("list_document", ["bad.yaml"], ["bad.yaml", "mapping", "not list"], {"bad.yaml": "- 1\n"}),
    Case("scalar_document", ["bad.yaml"], ["bad.yaml", "mapping", "not int"], {"bad.yaml": "42\n"}),
    Case(
        "two_documents",
        ["bad.yaml"],
        ["bad.yaml", "one YAML document, found 2"],
        {"bad.yaml": "run: {rounds: 2}\n---\nrun: {seed: 1}\n"},
    ),
    Case(
        "duplicate_key",
        ["bad.yaml"],
        ["bad.yaml", "'run' appears twice", "lines 1 and 3"],
        {"bad.yaml": "run: {rounds: 2}\ntask: {assets: 3}\nrun: {seed: 1}\n"},
    ),
    Case(
        "huge_document",
        ["bad.yaml"],
        ["bad.yaml", "larger than the 1 MiB allowed"],
        {"bad.yaml": "run: {rounds: 2}\n" + "# padding\n" * 210_000},
    ),
    Case(
        "deep_mapping",
        ["bad.yaml"],
        ["bad.yaml", "nested deeper than 16 levels"],
        {"bad.yaml": "run: " + "{a: " * 100 + "1" + "}" * 100 + "\n"},
    ),
    Case(
        "deep_list",
        ["bad.yaml"],
        ["bad.yaml", "nested deeper than 16 levels"],
        {"bad.yaml": "task: {assets: " + "[" * 100 + "]" * 100 + "}\n"},
    ),
    Case(
        "alias_bomb",
        ["bad.yaml"],
        ["bad.yaml", "more than 20000 values"],
        {"bad.yaml": _alias_bomb()},
    ),
    Case(
        "python_tag_in_file",
        ["bad.yaml"],
        ["bad.yaml", "python/object/apply:os.system", "not allowed", "line 2"],
        {"bad.yaml": 'run:\n  rounds: !!python/object/apply:os.system ["echo hi"]\n'},
    ),
    Case(
        "python_tag_in_set",
        S('run.rounds=!!python/object/apply:os.system ["echo hi"]'),
        ["--set", "python/object/apply:os.system", "not allowed"],
    ),
    Case("local_tag", ["bad.yaml"], ["bad.yaml", "'!thing'"], {"bad.yaml": "run: !thing {}\n"}),
    # --- extends -----------------------------------------------------------------------
    Case(
        "extends_missing",
        ["child.yaml"],
        ["'nothere.yaml' not found", "extended by", "child.yaml"],
        {"child.yaml": "extends: nothere.yaml\n"},
    ),
    Case(
        "extends_misspelt_shipped",
        ["child.yaml"],
        ["'basline' not found", "did you mean", "'baseline'", "child.yaml"],
        {"child.yaml": "extends: basline\n"},
    ),
    Case(
        "extends_loop",
        ["a.yaml"],
        ["'extends' loops", "a.yaml -> ", "b.yaml -> ", "a.yaml"],
        {"a.yaml": "extends: b.yaml\n", "b.yaml": "extends: a.yaml\n"},
    ),
    Case(
        "extends_itself",
        ["a.yaml"],
        ["'extends' loops", "a.yaml -> "],
        {"a.yaml": "extends: ./a.yaml\nrun: {rounds: 2}\n"},
    ),
    Case(
        "extends_not_a_name",
        ["a.yaml"],
        ["a.yaml", "'extends' must be a scenario name or path", "got 5"],
        {"a.yaml": "extends: 5\n"},
    ),
    Case(
        "extends_bad_parent",
        ["child.yaml"],
        ["parent.yaml", "malformed YAML", "extended by", "child.yaml"],
        {"child.yaml": "extends: parent.yaml\n", "parent.yaml": "run: [\n"},
    ),
    # --- unknown keys and mechanisms ---------------------------------------------------
    Case("unknown_top_key", S("runn.rounds=3"), ["runn", "unknown key", "did you mean 'run'"]),
    Case(
        "unknown_nested_key",
        S("population.developers.cuont=5"),
        ["population.developers.cuont", "did you mean 'count'"],
    ),
    Case(
        "unknown_key_in_file",
        ["bad.yaml"],
        ["market.exchange.fees", "did you mean 'fee'"],
        {"bad.yaml": "extends: small\nmarket:\n  exchange: {fees: 0.01}\n"},
    ),
    Case(
        "unknown_mechanism",
        S("mechanisms.reward.name=numeria"),
        ["mechanisms.reward.name", "'numeria'", "did you mean 'numerai'", "stake_proportional"],
    ),
    Case(
        "unknown_family",
        S("mechanisms.rewards.name=numerai"),
        ["mechanisms.rewards", "did you mean 'reward'"],
    ),
    Case(
        "unknown_mechanism_param",
        S("mechanisms.reward.w_mcc=1"),
        ["mechanisms.reward.w_mcc", "did you mean 'w_mmc'", "payout_target"],
    ),
    Case(
        "old_rule_param_after_switch",
        [*S("mechanisms.reward.name=stake_proportional"), "--set", "mechanisms.reward.w_mmc=1"],
        ["mechanisms.reward.w_mmc", "unknown key", "penalty, clip"],
    ),
    # --- wrong types ---------------------------------------------------------------------
    Case(
        "string_for_int",
        S("population.developers.count=many"),
        ["population.developers.count", "'many'", "an integer in [0, 100000]"],
    ),
    Case("bool_for_int", S("run.rounds=true"), ["run.rounds", "True", "an integer in [1, 100000]"]),
    Case("float_for_int", S("task.assets=2.5"), ["task.assets", "2.5", "an integer in [2, 5000]"]),
    Case(
        "list_for_float",
        S("market.treasury=[1, 2]"),
        ["market.treasury", "[1, 2]", "a number in [0, 1e+12]"],
    ),
    Case(
        "string_for_bool",
        S("population.dynamics.enabled=maybe"),
        ["population.dynamics.enabled", "'maybe'", "true or false"],
    ),
    Case(
        "string_for_mechanism_param",
        S("mechanisms.reward.w_corr=high"),
        ["mechanisms.reward.w_corr", "'high'", "a number in [0, 10]"],
    ),
    Case(
        "mapping_for_section_value",
        S("run={rounds: 2, seed: {a: 1}}"),
        ["run.seed", "{'a': 1}", "an integer in [0, 9223372036854775807]"],
    ),
    Case("scalar_for_section", S("market=5"), ["market", "got 5", "a mapping with keys treasury"]),
    Case(
        "list_for_rule_name",
        S("mechanisms.reward.name=[numerai]"),
        ["mechanisms.reward.name", "['numerai']", "numerai, prediction_market"],
    ),
    # --- out of range ------------------------------------------------------------------
    Case(
        "count_negative",
        S("population.developers.count=-1"),
        ["population.developers.count", "got -1", "an integer in [0, 100000]"],
    ),
    Case(
        "count_too_large",
        S(f"population.developers.count={10**9}"),
        ["population.developers.count", "got 1000000000", "an integer in [0, 100000]"],
    ),
    Case("assets_too_few", S("task.assets=1"), ["task.assets", "got 1", "an integer in [2, 5000]"]),
    Case("rounds_zero", S("run.rounds=0"), ["run.rounds", "got 0", "an integer in [1, 100000]"]),
    Case(
        "rounds_too_many",
        S("run.rounds=100001"),
        ["run.rounds", "got 100001", "an integer in [1, 100000]"],
    ),
    Case(
        "rounds_too_many_in_file",
        ["bad.yaml"],
        ["run.rounds", "got 10000000", "an integer in [1, 100000]"],
        {"bad.yaml": "run:\n  rounds: 1e7\n"},
    ),
    Case(
        "fee_too_high",
        S("market.exchange.fee=0.5"),
        ["market.exchange.fee", "got 0.5", "a number in [0, 0.1]"],
    ),
    Case("nan", S("market.leak_probability=.nan"), ["market.leak_probability", "nan", "[0, 1]"]),
    Case(
        "mechanism_param_out_of_range",
        S("mechanisms.reward.clip=0"),
        ["mechanisms.reward.clip", "got 0", "a number in (0, 1]"],
    ),
    Case(
        "too_many_agents_in_total",
        [*S("population.developers.count=100000"), "--set", "population.free_riders.count=1"],
        ["developers.count + population.free_riders.count is 100001", "at most 100000"],
    ),
    Case(
        "distribution_low_above_high",
        S("population.providers.noise={dist: uniform, low: 2, high: 1}"),
        ["population.providers.noise", "low <= high", "'low': 2, 'high': 1"],
    ),
    Case(
        "distribution_unknown_kind",
        S("population.providers.noise={dist: poisson, lam: 1}"),
        ["population.providers.noise", "'poisson'", "uniform, normal, lognormal"],
    ),
    Case(
        "distribution_too_many_values",
        S("population.providers.price={dist: choice, values: [" + ", ".join(["1"] * 1001) + "]}"),
        ["population.providers.price", "1..1000 numbers", "characters)"],
    ),
    Case(
        "distribution_out_of_range",
        S("population.developers.stake_fraction=2"),
        ["population.developers.stake_fraction", "got 2", "a number in [0, 1]"],
    ),
    Case(
        "huge_integer",
        S("run.seed=" + "9" * 5000),
        ["--set", "unreadable value", "5000 digits"],
    ),
    Case(
        "long_string_value",
        S("task.kind=" + "k" * 100_000),
        ["task.kind", "(100002 characters)", "one of 'cross_section'"],
    ),
    # --- --set syntax --------------------------------------------------------------------
    Case("set_without_equals", S("run.rounds"), ["--set 'run.rounds'", "KEY.PATH=VALUE"]),
    Case(
        "set_into_a_value",
        S("run.rounds.x=1"),
        ["run.rounds.x", "run.rounds is a value (30)", "set run.rounds=VALUE"],
    ),
    Case("set_empty_key_part", S("run..rounds=1"), ["'run..rounds'", "empty part"]),
    Case("set_malformed_value", S("run.rounds=[1"), ["--set 'run.rounds=[1'", "malformed YAML"]),
    # --- output folder and options -------------------------------------------------------
    Case(
        "out_under_a_file",
        ["small", "--out", "afile/sub"],
        ["output folder", "afile/sub", "not writable"],
        {"afile": "not a folder\n"},
    ),
    Case(
        "out_is_a_file",
        ["small", "--out", "afile"],
        ["output folder", "afile", "not writable"],
        {"afile": "not a folder\n"},
    ),
    Case("rounds_option_zero", ["small", "--rounds", "0"], ["--rounds", "'0'"], argparse=True),
    Case("rounds_option_text", ["small", "--rounds", "ten"], ["--rounds", "'ten'"], argparse=True),
    Case("seed_option_negative", ["small", "--seed", "-1"], ["--seed", "'-1'"], argparse=True),
    Case(
        "seed_option_too_large",
        ["small", "--seed", str(2**64)],
        ["run.seed", str(2**64), "an integer in [0, 9223372036854775807]"],
    ),
    Case("unknown_option", ["small", "--sett", "run.rounds=2"], ["--sett"], argparse=True),
]


#: The kinds of bad input the requirement lists, run as real subprocesses.
SUBPROCESS = {
    "missing_file",
    "non_utf8",
    "malformed_yaml",
    "list_document",
    "scalar_document",
    "huge_document",
    "deep_mapping",
    "alias_bomb",
    "python_tag_in_file",
    "extends_missing",
    "extends_loop",
    "unknown_top_key",
    "unknown_nested_key",
    "unknown_mechanism",
    "unknown_mechanism_param",
    "string_for_int",
    "bool_for_int",
    "list_for_float",
    "count_negative",
    "count_too_large",
    "assets_too_few",
    "rounds_zero",
    "distribution_low_above_high",
    "set_without_equals",
    "set_into_a_value",
    "out_under_a_file",
    "rounds_option_zero",
    "seed_option_negative",
}


def _args(case: Case, where: Path) -> list[str]:
    """``run ...`` with a quick run (2 rounds, unless the case is about rounds) into out/."""
    args = list(case.args)
    about_rounds = any("rounds" in a for a in args) or any(
        "rounds" in str(c) for c in case.files.values()
    )
    if not about_rounds:
        args += ["--rounds", "2"]
    if "--out" not in args:
        args += ["--out", str(where / "out")]
    return ["run", *args, "--quiet"]


def _write_files(case: Case, where: Path) -> None:
    where.mkdir(parents=True)
    for name, content in case.files.items():
        p = where / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content, encoding="utf-8")


def _check_refused(case: Case, where: Path, code: object, out: str, err: str) -> None:
    assert code == 2, f"exit {code}\nstdout: {out}\nstderr: {err}"
    assert "Traceback" not in err
    # one message: a single line
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("mlmarket: error: "), err
    if case.argparse:
        assert "--help" in err
    assert len(err) < 1000, "a bad value must not flood the message"
    for text in case.expect:
        assert text in err, f"{text!r} missing from: {err}"
    # nothing executed: no output at all, no results anywhere (not even the out folder)
    assert out == ""
    assert not (where / "out").exists()
    assert not [p for name in RESULT_FILES for p in where.rglob(name)]


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    return subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, timeout=120, env=env, check=False
    )


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, tuple[Path, subprocess.CompletedProcess[str]]]:
    """Every subprocess case (and a good run, as a control), run at once."""
    root = tmp_path_factory.mktemp("bad_input")
    jobs: dict[str, tuple[Path, list[str]]] = {}
    for case in [*[c for c in CASES if c.subprocess], Case("control_good_run", ["small"], [])]:
        where = root / case.id
        _write_files(case, where)
        jobs[case.id] = (where, [sys.executable, "-m", "sim.cli", *_args(case, where)])
    with ThreadPoolExecutor(max_workers=2 * (os.cpu_count() or 2)) as pool:
        futures = {k: pool.submit(_run, cmd, where) for k, (where, cmd) in jobs.items()}
        return {k: (jobs[k][0], f.result()) for k, f in futures.items()}


def test_case_table_is_consistent():
    ids = [c.id for c in CASES]
    assert len(set(ids)) == len(ids)
    assert SUBPROCESS <= set(ids)


def test_a_good_run_writes_results(results):
    """The control: the same harness on good input exits 0 and writes every result file."""
    where, proc = results["control_good_run"]
    assert proc.returncode == 0, proc.stderr
    assert all((where / "out" / name).is_file() for name in RESULT_FILES)


SUB_CASES = [c for c in CASES if c.subprocess]
IN_PROCESS_CASES = [c for c in CASES if not c.subprocess]


@pytest.mark.parametrize("case", SUB_CASES, ids=[c.id for c in SUB_CASES])
def test_bad_input_is_refused_by_the_command(case: Case, results):
    where, proc = results[case.id]
    _check_refused(case, where, proc.returncode, proc.stdout, proc.stderr)


@pytest.mark.parametrize("case", IN_PROCESS_CASES, ids=[c.id for c in IN_PROCESS_CASES])
def test_bad_input_is_refused_by_main(case: Case, tmp_path, monkeypatch, capfd):
    from sim.cli import main

    where = tmp_path / case.id
    _write_files(case, where)
    monkeypatch.chdir(where)
    try:
        code = main(_args(case, where))  # an escaping exception fails the test
    except SystemExit as e:  # argparse
        code = e.code
    out, err = capfd.readouterr()
    _check_refused(case, where, code, out, err)

"""``mlmarket calibrate`` and :mod:`mechanisms.privacy.calibrate`: the profile schema the
cost model reads, the command line's refusals, the shipped default profile, and the fit.

One real ``--quick`` calibration runs once for the module (a few seconds); the other
command-line tests stub the timing out. No test asserts a time: only that the numbers
are there, positive, and consistent with the fit the profile states.
"""

from __future__ import annotations

import contextlib
import fnmatch
import importlib.resources
import io
import math
import tomllib
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import yaml

from mechanisms.privacy import calibrate as cal
from mechanisms.privacy.mpc import Costs
from sim.cli import main

ROOT = Path(__file__).resolve().parents[2]
MACHINE_KEYS = {"platform", "processor", "python", "numpy", "gmpy2", "cores"}
MPC_KEYS = ("seconds_per_op", "seconds_per_dealer_byte", "seconds_per_round")
GRID_KEYS = {"rows", "features", "epochs", "seconds", "fitted"}
HE_OPS = ("obfuscator", "encrypt", "decrypt", "addition", "exponent_bit", "inversion")


def _positive_float(v) -> bool:
    return isinstance(v, float) and math.isfinite(v) and v > 0


def check_schema(p: dict) -> None:
    """Every key of the profile schema, with positive floats where times are."""
    assert list(p) == ["version", "created", "machine", "mpc", "he"]
    assert p["version"] == 1
    assert datetime.fromisoformat(p["created"]).utcoffset() == timedelta(0)
    assert set(p["machine"]) == MACHINE_KEYS
    assert isinstance(p["machine"]["cores"], int) and p["machine"]["cores"] >= 1
    assert p["machine"]["gmpy2"] is None or isinstance(p["machine"]["gmpy2"], str)
    mpc = p["mpc"]
    assert set(mpc) == {*MPC_KEYS, "max_relative_error", "grid"}
    for key in (*MPC_KEYS, "max_relative_error"):
        assert _positive_float(mpc[key]), (key, mpc[key])
    assert len(mpc["grid"]) >= 3
    for point in mpc["grid"]:
        assert set(point) == GRID_KEYS
        assert all(
            isinstance(point[k], int) and point[k] > 0 for k in ("rows", "features", "epochs")
        )
        assert _positive_float(point["seconds"]) and _positive_float(point["fitted"])
    he = p["he"]
    assert set(he) == {"backend", "keys"} and he["backend"] in ("gmpy2", "python")
    assert set(he["keys"]) == {1024, 2048, 3072}
    for bits, ops in he["keys"].items():
        assert tuple(ops) == HE_OPS, bits
        assert all(_positive_float(t) for t in ops.values()), (bits, ops)


def check_fit(p: dict) -> None:
    """The stated coefficients reproduce every grid point's ``fitted`` (up to the 4
    significant digits written) and the measured time within ``max_relative_error``."""
    mpc = p["mpc"]
    a, b, c = (mpc[k] for k in MPC_KEYS)
    worst = 0.0
    for point in mpc["grid"]:
        costs = cal.ridge_costs(point["rows"], point["features"], point["epochs"])
        model = a * costs.local_ops + b * costs.dealer_bytes + c * costs.rounds
        assert model == pytest.approx(point["fitted"], rel=1e-3)
        err = abs(point["fitted"] - point["seconds"]) / point["seconds"]
        assert err <= mpc["max_relative_error"], point
        worst = max(worst, err)
    # the stated error is the grid's worst, rounded up to 4 significant digits
    assert mpc["max_relative_error"] == pytest.approx(worst, rel=1e-3)


@pytest.fixture(scope="module")
def quick_profile(tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("calibrate") / "nested" / "profile.yaml"  # folder made
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        rc = main(["calibrate", "--quick", "--quiet", "--out", str(out)])
    assert rc == 0
    return out, printed.getvalue()


# ------------------------------------------------------------------ command line


def test_cli_writes_a_profile_with_the_whole_schema(quick_profile):
    path, printed = quick_profile
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# ") and "mlmarket calibrate --out" in text.splitlines()[1]
    profile = yaml.safe_load(text)
    check_schema(profile)
    assert len(profile["mpc"]["grid"]) == len(cal.QUICK.grid)
    assert f"profile in {path}" in printed
    assert "max relative error" in printed and "2048-bit" in printed


def test_quick_profile_fit_reproduces_its_grid(quick_profile):
    check_fit(yaml.safe_load(quick_profile[0].read_text(encoding="utf-8")))


def test_refuses_to_overwrite_without_force(tmp_path, capsys, monkeypatch):
    out = tmp_path / "profile.yaml"
    out.write_text("mine\n", encoding="utf-8")
    monkeypatch.setattr(cal, "calibrate", _must_not_run)
    assert main(["calibrate", "--quick", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "exists" in err and "--force" in err and str(out) in err
    assert out.read_text(encoding="utf-8") == "mine\n"


def test_refuses_a_folder_as_output(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cal, "calibrate", _must_not_run)
    assert main(["calibrate", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "folder" in err


def test_force_overwrites(tmp_path, capsys, monkeypatch, quick_profile):
    canned = yaml.safe_load(quick_profile[0].read_text(encoding="utf-8"))
    monkeypatch.setattr(cal, "calibrate", lambda *, quick, progress: canned)
    out = tmp_path / "profile.yaml"
    out.write_text("old\n", encoding="utf-8")
    assert main(["calibrate", "--force", "--quiet", "--out", str(out)]) == 0
    assert yaml.safe_load(out.read_text(encoding="utf-8")) == canned
    assert f"profile in {out}" in capsys.readouterr().out


def _must_not_run(**_):
    raise AssertionError("calibrate ran although the command line was refused")


# ------------------------------------------------------------------ shipped profile


def test_default_profile_is_package_data_with_the_schema():
    resource = importlib.resources.files("mechanisms.privacy") / "profiles" / "default.yaml"
    assert resource.is_file()
    assert Path(str(resource)).resolve() == cal.DEFAULT_PROFILE.resolve()
    text = resource.read_text(encoding="utf-8")
    assert "`mlmarket calibrate --out mechanisms/privacy/profiles/default.yaml`" in text
    assert not any(p in text for p in ("/work/", "/tmp/", "/home/", "/Users/", "C:\\"))
    profile = yaml.safe_load(text)
    check_schema(profile)
    assert len(profile["mpc"]["grid"]) == len(cal.FULL.grid)
    # a wheel ships it too: the package-data pattern covers the file
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = data["tool"]["setuptools"]["package-data"]["mechanisms.privacy"]
    assert any(fnmatch.fnmatch("profiles/default.yaml", pat) for pat in patterns)


def test_default_profile_fit_reproduces_its_grid():
    check_fit(yaml.safe_load(cal.DEFAULT_PROFILE.read_text(encoding="utf-8")))


# ------------------------------------------------------------------ fits


def test_fit_mpc_recovers_exact_coefficients():
    # seconds = 2e-9 ops + 3e-9 dealer bytes + 1e-4 rounds, exactly
    costs = [
        Costs(local_ops=1_000_000, dealer_bytes=10_000, rounds=10),
        Costs(local_ops=50_000, dealer_bytes=400_000, rounds=3),
        Costs(local_ops=8_000_000, dealer_bytes=90_000, rounds=100),
        Costs(local_ops=200_000, dealer_bytes=20_000, rounds=50),
    ]
    seconds = [2e-9 * c.local_ops + 3e-9 * c.dealer_bytes + 1e-4 * c.rounds for c in costs]
    assert cal.fit_mpc(costs, seconds) == pytest.approx([2e-9, 3e-9, 1e-4], rel=1e-9)


def test_fit_mpc_keeps_coefficients_non_negative():
    # seconds = 2 ops - 0.5 dealer bytes + 1 round fits exactly, with b < 0; NNLS sets b = 0
    sizes = [(1, 4, 1), (3, 1, 1), (2, 2, 2), (5, 3, 1), (4, 5, 3)]
    costs = [Costs(local_ops=n, dealer_bytes=d, rounds=r) for n, d, r in sizes]
    seconds = [2 * n - 0.5 * d + r for n, d, r in sizes]
    exact = np.linalg.lstsq(np.array(sizes, float), np.array(seconds), rcond=None)[0]
    assert exact == pytest.approx([2.0, -0.5, 1.0])
    a, b, c = cal.fit_mpc(costs, seconds)
    assert b == 0.0 and a > 0.0 and c >= 0.0


def test_fit_through_origin_is_the_least_squares_slope():
    assert cal.fit_through_origin([1, 2], [2, 4]) == pytest.approx(2.0)
    # sum x y / sum x^2 = (16 + 96) / (256 + 1024)
    assert cal.fit_through_origin([16, 32], [1, 3]) == pytest.approx(112 / 1280)


def test_plan_rejects_a_grid_too_small_for_three_coefficients():
    with pytest.raises(ValueError, match="at least 3 grid points"):
        cal.Plan(rows=(100,), features=(4,), epochs=(5, 10), seconds=0.1, passes=1)

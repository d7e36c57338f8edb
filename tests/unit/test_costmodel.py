"""The cost model (counts -> seconds, bytes, fees), the shape formulas, dp and secure GD."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.forecaster import fit_ridge, fit_ridge_gd
from mechanisms.base import TrainingJob
from mechanisms.privacy import mpc
from mechanisms.privacy.costmodel import (
    NETWORKS,
    CostModel,
    Network,
    Prices,
    Profile,
    ProfileError,
    load_profile,
)
from mechanisms.registry import PRIVACY

PROFILE = {
    "version": 1,
    "mpc": {"seconds_per_op": 1e-9, "seconds_per_dealer_byte": 2e-9, "seconds_per_round": 1e-4},
    "he": {
        "backend": "python",
        "keys": {
            1024: dict.fromkeys(
                ("obfuscator", "encrypt", "decrypt", "addition", "exponent_bit", "inversion"),
                1e-4,
            ),
            2048: dict.fromkeys(
                ("obfuscator", "encrypt", "decrypt", "addition", "exponent_bit", "inversion"),
                4e-4,
            ),
        },
    },
}


def test_mpc_cost_by_hand():
    """latency = compute + rounds RTT + online bytes / bandwidth; fee from core-s and GB."""
    model = CostModel(
        Profile.from_dict(PROFILE), Network(bandwidth=1e6, rtt=0.05), Prices(2.0, 10.0)
    )
    c = mpc.Costs(
        local_ops=10**9, bytes_per_party=10**6, dealer_bytes=10**6, rounds=10, input_bytes=10**6
    )
    out = model.mpc(c)
    compute = 1e-9 * 1e9 + 2e-9 * 1e6 + 1e-4 * 10  # 1.003 s
    assert out.compute_seconds == pytest.approx(compute)
    assert out.seconds == pytest.approx(compute + 10 * 0.05 + 2e6 / 1e6)
    assert out.bytes_sent == pytest.approx(2e6 + 1e6 + 1e6)
    assert out.fee == pytest.approx(compute * 2.0 + 4e6 / 1e9 * 10.0)


def test_he_timings_interpolate_log_log():
    prof = Profile.from_dict(PROFILE)
    # 1024 -> 1e-4, 2048 -> 4e-4: slope 2 in log-log, so 1448 bits (~sqrt 2 * 1024) -> 2e-4
    t = prof.he_seconds(int(round(1024 * 2**0.5)))
    assert t["encrypt"] == pytest.approx(2e-4, rel=1e-3)
    assert prof.he_seconds(4096)["decrypt"] == pytest.approx(16e-4)  # extrapolated


def test_network_presets_are_securemls():
    assert NETWORKS["lan"] == Network(bandwidth=1e9, rtt=0.17e-3)
    assert NETWORKS["wan"] == Network(bandwidth=9e6, rtt=72e-3)


def test_bad_profiles_are_named(tmp_path):
    with pytest.raises(ProfileError, match="not found"):
        load_profile(str(tmp_path / "missing.yaml"))
    bad = tmp_path / "bad.yaml"
    broken = {**PROFILE, "mpc": {**PROFILE["mpc"], "seconds_per_op": -1}}
    bad.write_text(yaml.safe_dump(broken))
    with pytest.raises(ProfileError, match="mpc.seconds_per_op"):
        load_profile(str(bad))


def test_default_profile_loads():
    prof = load_profile("default")
    assert prof.mpc["seconds_per_op"] > 0 and 2048 in prof.he_keys


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 60),
    dims=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    epochs=st.integers(0, 3),
    lr=st.sampled_from([0.05, 0.1, 1.0]),
    lam=st.sampled_from([0.0, 0.01, 1.0]),
    logistic=st.booleans(),
)
def test_training_counts_from_shapes_equal_measured(n, dims, epochs, lr, lam, logistic):
    """The modeled counts are exactly what the kernels count (tolerance: none)."""
    rng = np.random.default_rng(n)
    blocks = [rng.uniform(-1, 1, (n, d)) for d in dims]
    y = rng.uniform(0, 1, n) if logistic else rng.standard_normal(n)
    train = mpc.secure_logistic if logistic else mpc.secure_ridge
    _, measured = train(blocks, y, lam, rng, epochs=epochs, lr=lr)
    modeled = mpc.training_costs(n, sum(dims), epochs=epochs, lr=lr, lam=lam, logistic=logistic)
    assert modeled == measured


@settings(max_examples=20, deadline=None)
@given(m=st.integers(1, 40), dims=st.lists(st.integers(1, 5), min_size=1, max_size=3))
def test_inference_counts_equal_measured(m, dims):
    rng = np.random.default_rng(m)
    blocks = [rng.standard_normal((m, d)) for d in dims]
    w = rng.standard_normal(sum(dims))
    pred, measured = mpc.secure_predict(blocks, w, rng)
    assert measured == mpc.inference_costs(m, sum(dims))
    np.testing.assert_allclose(pred, np.hstack(blocks) @ w, atol=sum(dims) * 2.0**-12)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    epochs=st.integers(1, 60),
    lr=st.sampled_from([0.01, 0.1, 0.3]),
    lam=st.sampled_from([0.0, 0.1]),
)
def test_batched_gd_equals_the_iteration(seed, epochs, lr, lam):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((80, 6))
    y = X @ rng.standard_normal(6) + rng.standard_normal(80)
    cols = np.array([[0, 1, 2, -1], [3, 4, 5, 1], [-1, -1, -1, -1]])
    w = fit_ridge_gd(X.T @ X, X.T @ y, cols, lam, 80, epochs, lr)
    for i, c in enumerate(cols):
        v = c[c >= 0]
        expect = mpc.ridge_gd(X[:, v], y, lam, epochs=epochs, lr=lr) if v.size else []
        np.testing.assert_allclose(w[i][c >= 0], expect, atol=1e-10)
        assert (w[i][c < 0] == 0).all()


def test_batched_gd_converges_to_closed_form():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((300, 5))
    y = X @ rng.standard_normal(5)
    cols = np.array([[0, 1, 2, 3, 4]])
    gd = fit_ridge_gd(X.T @ X, X.T @ y, cols, 0.05, 300, 4000, 0.2)
    np.testing.assert_allclose(gd, fit_ridge(X.T @ X, X.T @ y, cols, 0.05, 300), atol=1e-8)


def _rule(name, **params):
    info = PRIVACY.get(name)
    return info.cls(info.params_type(**params))


def test_dp_is_the_laplace_mechanism():
    rule = _rule("dp", epsilon=0.5, clip=2.0)
    assert rule.scale == pytest.approx(8.0)  # b = 2 clip / epsilon
    x = np.zeros((4, 500, 5))
    x[0] = 10.0  # clipped to 2 before the noise
    out = rule.perturb(x, np.random.default_rng(0))
    noise = out[1:].ravel()
    assert np.mean(np.abs(noise)) == pytest.approx(8.0, rel=0.05)  # E|Laplace(b)| = b
    assert np.mean(out[0]) == pytest.approx(2.0, abs=0.5)
    assert rule.leaks is True and rule.secure is False


def test_mpc_rule_cost_is_its_counts_priced():
    rule = _rule("mpc", network="lan", epochs=10, lr=0.1)
    job = TrainingJob(rows=200, feeds=np.array([0, 2, 3, 2]), feed_dim=4, assets=50, ridge=0.1)
    cost = rule.training_cost(job)
    train = mpc.training_costs(200, 8, epochs=10, lr=0.1, lam=0.1)
    expect = rule.model.mpc(train + mpc.inference_costs(50, 8))
    assert cost.fee[1] == cost.fee[3] == pytest.approx(expect.fee)
    assert cost.seconds[1] == pytest.approx(expect.seconds)
    assert cost.seconds[0] == 0 and cost.seconds[2] > cost.seconds[1]
    assert rule.leaks is False and rule.secure is True


def test_custom_network_overrides_the_preset():
    slow = _rule("mpc", network="lan", bandwidth=1.0, rtt=500.0)  # 1 MB/s, 0.5 s
    assert slow.network == Network(bandwidth=1e6, rtt=0.5)
    fast = _rule("mpc", network="lan")
    job = TrainingJob(rows=100, feeds=np.array([2]), feed_dim=4, assets=20, ridge=0.1)
    assert slow.training_cost(job).seconds[0] > fast.training_cost(job).seconds[0] + 100


def test_wan_is_slower_than_lan_by_the_round_trips():
    lan, wan = _rule("mpc", network="lan", epochs=50), _rule("mpc", network="wan", epochs=50)
    job = TrainingJob(rows=500, feeds=np.array([3]), feed_dim=4, assets=50, ridge=0.1)
    rounds = (
        mpc.training_costs(500, 12, epochs=50, lr=0.1, lam=0.1) + mpc.inference_costs(50, 12)
    ).rounds
    gap = wan.training_cost(job).seconds[0] - lan.training_cost(job).seconds[0]
    assert gap >= rounds * (72e-3 - 0.17e-3)

"""Unit tests of sim.ledger: hand-computed balances, supply accounting, errors, frames."""

from __future__ import annotations

import functools
import operator

import numpy as np
import pandas as pd
import pytest

from sim.ledger import (
    TOLERANCE,
    InsufficientBalance,
    InvariantViolation,
    Ledger,
    LedgerError,
)


@pytest.fixture
def L() -> Ledger:
    led = Ledger(["token", "usd", "asset_0"])
    led.open_accounts(["alice", "bob", "carol"])
    return led


def ids(L: Ledger, *names: str) -> list[int]:
    return [L.account_id(n) for n in names]


# ---------------------------------------------------------------- accounts, assets


def test_mint_and_burn_are_accounts_0_and_1(L):
    assert (L.MINT, L.BURN) == (0, 1)
    assert L.account_name(0) == "mint" and L.account_name(1) == "burn"
    assert L.account_id("alice") == 2
    assert L.n_accounts == 5


def test_open_accounts_returns_consecutive_int64_ids(L):
    got = L.open_accounts(["d", "e", "f"])
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, [5, 6, 7])
    assert L.account_name(7) == "f"


def test_duplicate_account_names_are_refused(L):
    with pytest.raises(LedgerError, match="'alice' already exists"):
        L.open_account("alice")
    with pytest.raises(LedgerError, match="'x' already exists"):
        L.open_accounts(["x", "x"])
    assert L.n_accounts == 5  # nothing was opened by the refused calls


def test_balances_survive_geometric_growth():
    led = Ledger(["token"])
    a = led.open_account("a")
    led.transfer(led.MINT, a, "token", 7.0, phase="genesis", reason="genesis")
    led.open_accounts([f"x{i}" for i in range(1000)])
    assert led.balance("a", "token") == 7.0
    assert led.n_accounts == 1003


def test_asset_ids_are_positions_and_unknown_names_suggest_the_nearest(L):
    assert L.asset_names == ["token", "usd", "asset_0"]
    assert L.asset_id("asset_0") == 2
    with pytest.raises(LedgerError, match="did you mean 'token'"):
        L.asset_id("tokens")
    with pytest.raises(LedgerError, match="did you mean 'alice'"):
        L.account_id("alicia")


# ---------------------------------------------------------------- balances


def test_hand_computed_balances(L):
    a, b, c = ids(L, "alice", "bob", "carol")
    L.transfer(L.MINT, a, "token", 100.0, phase="genesis", reason="genesis")
    L.transfer(a, b, "token", 30.0, phase="buy", reason="data")
    L.transfer(b, c, "token", 12.5, phase="buy", reason="data")
    L.transfer(a, [b, c], "token", [5.0, 2.5], phase="resolve", reason="reward")
    # alice 100 - 30 - 5 - 2.5 ; bob 30 - 12.5 + 5 ; carol 12.5 + 2.5
    assert L.balance("alice", "token") == 62.5
    assert L.balance(b, "token") == 22.5
    assert L.balance(c, "token") == 15.0
    np.testing.assert_array_equal(L.balances(np.array([a, b, c]), "token"), [62.5, 22.5, 15.0])
    assert L.balance(L.MINT, "token") == -100.0
    assert L.balance(a, "usd") == 0.0
    assert len(L) == 5


def test_scalar_src_broadcasts_over_destinations_and_asset_arrays(L):
    a, b, c = ids(L, "alice", "bob", "carol")
    L.transfer(L.MINT, np.array([a, b, c]), "usd", 10.0, phase="genesis", reason="genesis")
    L.transfer(L.MINT, a, np.array([0, 2]), np.array([1.0, 3.0]), phase="genesis", reason="genesis")
    np.testing.assert_array_equal(L.balances(np.array([a, b, c]), "usd"), [10.0] * 3)
    assert L.balance(a, "token") == 1.0
    assert L.balance(a, 2) == 3.0
    assert L.supply("usd") == 30.0


def test_zero_amounts_are_skipped(L):
    a, b = ids(L, "alice", "bob")
    L.transfer(L.MINT, [a, b], "token", [0.0, 4.0], phase="genesis", reason="genesis")
    L.transfer(a, b, "token", 0.0, phase="p", reason="nothing")
    assert len(L) == 1
    assert L.balance(b, "token") == 4.0


@pytest.mark.parametrize("amount", [-1.0, np.nan, np.inf])
def test_negative_or_non_finite_amounts_raise(L, amount):
    a = L.account_id("alice")
    with pytest.raises(LedgerError, match="negative or not finite"):
        L.transfer(L.MINT, a, "token", amount, phase="genesis", reason="genesis")
    assert len(L) == 0


def test_self_transfer_and_wrong_directions_raise(L):
    a, b = ids(L, "alice", "bob")
    L.transfer(L.MINT, a, "token", 5.0, phase="genesis", reason="genesis")
    with pytest.raises(LedgerError, match="to itself"):
        L.transfer(a, a, "token", 1.0, phase="p", reason="r")
    with pytest.raises(LedgerError, match="'burn' only receives"):
        L.transfer(L.BURN, b, "token", 1.0, phase="p", reason="r")
    with pytest.raises(LedgerError, match="'mint' only sends"):
        L.transfer(a, L.MINT, "token", 1.0, phase="p", reason="r")
    with pytest.raises(LedgerError, match="out of range"):
        L.transfer(a, 99, "token", 1.0, phase="p", reason="r")
    with pytest.raises(LedgerError, match="do not broadcast"):
        L.transfer(a, [b, 3], "token", [1.0, 1.0, 1.0], phase="p", reason="r")
    assert L.balance(a, "token") == 5.0 and len(L) == 1


# ---------------------------------------------------------------- overdrafts


def test_insufficient_balance_names_account_asset_amounts_round_and_phase(L):
    a, b = ids(L, "alice", "bob")
    L.begin_round(3)
    L.transfer(L.MINT, a, "usd", 10.0, phase="genesis", reason="genesis")
    with pytest.raises(InsufficientBalance) as err:
        L.transfer(a, b, "usd", 12.0, phase="buy", reason="data")
    msg = str(err.value)
    for part in ("'alice'", "usd", "10.0", "12.0", "round 3", "'buy'"):
        assert part in msg
    e = err.value
    assert (e.account, e.asset, e.balance, e.amount) == ("alice", "usd", 10.0, 12.0)
    assert L.balance(a, "usd") == 10.0 and L.balance(b, "usd") == 0.0


def test_batch_overspend_from_one_src_is_detected_on_the_total(L):
    a, b, c = ids(L, "alice", "bob", "carol")
    L.transfer(L.MINT, a, "token", 10.0, phase="genesis", reason="genesis")
    n_before = len(L)
    # each entry alone is affordable; together they are 12 > 10
    with pytest.raises(InsufficientBalance, match="in 3 entries"):
        L.transfer(a, [b, c, b], "token", [4.0, 4.0, 4.0], phase="buy", reason="data")
    # the batch is atomic: nothing moved, nothing recorded
    assert L.balance(a, "token") == 10.0
    assert L.balance(b, "token") == 0.0 and L.balance(c, "token") == 0.0
    assert len(L) == n_before
    L.check_invariants(full=True)


def test_inflows_in_the_same_batch_do_not_fund_outflows(L):
    a, b, c = ids(L, "alice", "bob", "carol")
    L.transfer(L.MINT, a, "token", 5.0, phase="genesis", reason="genesis")
    with pytest.raises(InsufficientBalance, match="'bob'"):
        L.transfer([a, b], [b, c], "token", [5.0, 5.0], phase="p", reason="r")


def test_overdraft_in_one_asset_is_not_masked_by_another(L):
    a, b = ids(L, "alice", "bob")
    L.transfer(L.MINT, a, np.array([0, 1]), np.array([5.0, 5.0]), phase="g", reason="g")
    with pytest.raises(InsufficientBalance, match="usd"):
        L.transfer(a, b, np.array([0, 1, 1]), np.array([5.0, 3.0, 3.0]), phase="p", reason="r")


def test_mint_may_go_negative_without_limit(L):
    a = L.account_id("alice")
    L.transfer(L.MINT, a, "token", 1e12, phase="genesis", reason="genesis")
    assert L.balance(L.MINT, "token") == -1e12


def test_dust_within_tolerance_is_trimmed_to_exactly_the_balance(L):
    a, b = ids(L, "alice", "bob")
    L.transfer(L.MINT, a, "token", 0.3, phase="g", reason="g")
    excess = 0.5 * TOLERANCE  # within 1e-9 * max(1, 0.3)
    L.transfer(a, b, "token", 0.3 + excess, phase="p", reason="sell_all")
    assert L.balance(a, "token") == 0.0
    assert L.balance(b, "token") == 0.3
    assert L.to_frame()["amount"].iloc[-1] == 0.3  # the recorded amount is the trimmed one
    L.check_invariants(full=True)


def test_dust_tolerance_scales_with_large_balances(L):
    a, b, c = ids(L, "alice", "bob", "carol")
    L.transfer(L.MINT, a, "token", 1e6, phase="g", reason="g")
    # 5e-4 over a balance of 1e6 is within 1e-9 * 1e6 = 1e-3; two entries are scaled
    L.transfer(a, [b, c], "token", [5e5, 5e5 + 5e-4], phase="p", reason="r")
    assert L.balance(a, "token") == 0.0
    assert L.balance(b, "token") + L.balance(c, "token") == pytest.approx(1e6, rel=1e-15)
    L.check_invariants(full=True)


def test_excess_beyond_tolerance_raises(L):
    a, b = ids(L, "alice", "bob")
    L.transfer(L.MINT, a, "token", 1e6, phase="g", reason="g")
    with pytest.raises(InsufficientBalance):
        L.transfer(a, b, "token", 1e6 + 2e-3, phase="p", reason="r")  # 2e-3 > 1e-3
    # below a balance of 1 the tolerance is absolute 1e-9
    L.transfer(L.MINT, b, "usd", 1e-3, phase="g", reason="g")
    with pytest.raises(InsufficientBalance):
        L.transfer(b, a, "usd", 1e-3 + 2e-9, phase="p", reason="r")
    L.transfer(b, a, "usd", 1e-3 + 0.5e-9, phase="p", reason="r")
    assert L.balance(b, "usd") == 0.0 and L.balance(a, "usd") == 1e-3


def test_dust_from_an_empty_account_records_nothing(L):
    a, b = ids(L, "alice", "bob")
    n = len(L)
    L.transfer(a, b, "token", 1e-10, phase="p", reason="r")
    assert len(L) == n and L.balance(b, "token") == 0.0


# ---------------------------------------------------------------- supply accounting


def test_mint_burn_supply_accounting_by_round(L):
    a, b = ids(L, "alice", "bob")
    L.begin_round(0)
    L.transfer(L.MINT, [a, b], "token", [60.0, 40.0], phase="genesis", reason="genesis")
    L.begin_round(1)
    L.transfer(L.MINT, a, "token", 5.0, phase="resolve", reason="issuance")
    L.transfer(b, L.BURN, "token", 15.0, phase="resolve", reason="slash")
    L.begin_round(2)
    L.transfer(a, L.BURN, "token", 1.0, phase="resolve", reason="slash")
    assert L.round == 2
    assert L.minted("token") == 105.0
    assert L.burned("token") == 16.0
    assert L.supply("token") == 89.0
    assert L.balance(L.BURN, "token") == 16.0
    assert L.minted("token", slice(1, 3)) == 5.0
    assert L.burned("token", slice(0, 2)) == 15.0
    assert L.round_flows(0, "token") == (100.0, 0.0)
    assert L.round_flows(1, "token") == (5.0, 15.0)
    assert L.round_flows(2, "token") == (0.0, 1.0)
    assert L.round_flows(7, "token") == (0.0, 0.0)
    assert L.minted("usd") == 0.0
    L.check_invariants(full=True)


def test_rounds_never_go_back(L):
    L.begin_round(4)
    with pytest.raises(LedgerError, match="already at round 4"):
        L.begin_round(3)


def test_entries_are_stamped_with_the_current_round(L):
    a = L.account_id("alice")
    L.begin_round(7)
    L.transfer(L.MINT, a, "token", 1.0, phase="genesis", reason="genesis")
    assert L.to_frame()["round"].tolist() == [7]


# ---------------------------------------------------------------- invariants


def test_check_invariants_detects_a_tampered_balance(L):
    a = L.account_id("alice")
    L.transfer(L.MINT, a, "token", 10.0, phase="g", reason="g")
    L.check_invariants(full=True)
    L._bal[a, 0] += 1.0  # simulate a bug that bypasses the ledger
    with pytest.raises(InvariantViolation, match="supply of token"):
        L.check_invariants()


def test_check_invariants_full_detects_running_balances_that_drift_from_entries(L):
    a, b = ids(L, "alice", "bob")
    L.transfer(L.MINT, a, "token", 10.0, phase="g", reason="g")
    L._bal[a, 0] -= 2.0  # a bug that conserves supply but breaks the entries
    L._bal[b, 0] += 2.0
    L.check_invariants()  # cheap checks cannot see it
    with pytest.raises(InvariantViolation, match="'alice'.*entries give 10.0"):
        L.check_invariants(full=True)


def test_check_invariants_detects_a_negative_balance(L):
    a, b = ids(L, "alice", "bob")
    L._bal[a, 1] = -5.0
    L._bal[b, 1] = 5.0
    with pytest.raises(InvariantViolation, match="'alice' has a negative balance"):
        L.check_invariants()


# ---------------------------------------------------------------- frames


def test_to_frame_columns_and_dtypes(L):
    a, b = ids(L, "alice", "bob")
    L.begin_round(2)
    L.transfer(L.MINT, a, "token", 3.0, phase="genesis", reason="genesis")
    L.transfer(a, b, "token", 1.0, phase="buy", reason="data")
    df = L.to_frame()
    assert list(df.columns) == ["round", "phase", "src", "dst", "asset", "amount", "reason"]
    assert df["round"].dtype == np.int32
    assert df["amount"].dtype == np.float64
    for col in ("phase", "src", "dst", "asset", "reason"):
        assert isinstance(df[col].dtype, pd.CategoricalDtype), col
    assert df["src"].tolist() == ["mint", "alice"]
    assert df["dst"].tolist() == ["alice", "bob"]
    assert df["asset"].tolist() == ["token", "token"]
    assert df["phase"].tolist() == ["genesis", "buy"]
    assert df["reason"].tolist() == ["genesis", "data"]
    assert df["amount"].tolist() == [3.0, 1.0]


def test_empty_ledger_frame():
    df = Ledger(["token"]).to_frame()
    assert len(df) == 0
    assert list(df.columns) == ["round", "phase", "src", "dst", "asset", "amount", "reason"]


def test_to_frame_reconciles_with_balances_across_small_and_large_batches():
    rng = np.random.default_rng(7)
    led = Ledger(["token", "usd"])
    acc = led.open_accounts([f"a{i}" for i in range(50)])
    led.transfer(led.MINT, acc, "token", 1000.0, phase="genesis", reason="genesis")
    for t in range(1, 6):
        led.begin_round(t)
        n = 5000 if t % 2 else 7  # large batches become chunks, small ones are staged
        src = rng.choice(acc, n)
        dst = rng.choice(acc, n)
        dst = np.where(dst == src, led.BURN, dst)
        led.transfer(src, dst, "token", rng.uniform(0, 0.1, n), phase="trade", reason="r")
        led.transfer(led.MINT, rng.choice(acc, 3), "usd", 1.0, phase="resolve", reason="issuance")
    df = led.to_frame()
    assert len(df) == len(led)
    for asset in ("token", "usd"):
        d = df[df["asset"] == asset]
        inflow = d.groupby("dst", observed=False)["amount"].sum()
        outflow = d.groupby("src", observed=False)["amount"].sum()
        net = inflow.sub(outflow, fill_value=0.0)
        for i in range(led.n_accounts):
            name = led.account_name(i)
            assert net.get(name, 0.0) == pytest.approx(led.balance(i, asset), abs=1e-9)
    led.check_invariants(full=True)


def test_columns_are_raw_ids_and_codes(L):
    a, b = ids(L, "alice", "bob")
    L.transfer(L.MINT, a, "usd", 2.0, phase="genesis", reason="genesis")
    L.transfer(a, b, "usd", 1.0, phase="buy", reason="data")
    c = L.columns()
    np.testing.assert_array_equal(c["src"], [0, a])
    np.testing.assert_array_equal(c["asset"], [1, 1])
    assert [L.phase_names[p] for p in c["phase"]] == ["genesis", "buy"]
    assert [L.reason_names[r] for r in c["reason"]] == ["genesis", "data"]


def test_a_bad_phase_or_reason_is_refused_before_anything_moves(L):
    a = L.account_id("alice")
    with pytest.raises(LedgerError, match="phase must be a non-empty string"):
        L.transfer(L.MINT, a, "token", 1.0, phase="", reason="genesis")
    with pytest.raises(LedgerError, match="reason must be a non-empty string"):
        L.transfer(L.MINT, a, "token", 1.0, phase="genesis", reason=None)
    assert L.balance(a, "token") == 0.0 and len(L) == 0
    L.check_invariants(full=True)


# ---------------------------------------------------------------- the plain path


def test_the_batches_a_simulation_makes_take_the_plain_path():
    led = Ledger(["token", "usd"])
    acc = led.open_accounts([f"a{i}" for i in range(30)])
    plain = led._transfer_plain
    assert plain(led.MINT, acc, 0, np.full(30, 100.0), 0, 0)  # genesis: scalar mint src
    assert plain(acc[:10], acc[10:20], 0, np.full(10, 1.0), 0, 0)  # arrays of ids
    assert plain(acc[:10], int(acc[20]), 0, np.full(10, 1.0), 0, 0)  # fees: scalar dst
    assert plain(acc[20], acc[:5], 0, np.array([1.0, 0.0, 2.0, 0.0, 1.0]), 0, 0)  # zeros
    assert plain(acc[:2], acc[2:4], np.array([0, 1]), np.array([1.0, 0.0]), 0, 0)  # asset ids
    assert plain(int(acc[0]), led.BURN, 0, 1.0, 0, 0)  # scalars; burn
    assert plain(acc[0], acc[1], 0, np.empty(0), 0, 0)  # nothing to move
    # what the plain path leaves to the general one, untouched
    assert not plain(acc[:2], acc[:2], 0, np.ones(2), 0, 0)  # to itself
    assert not plain(np.array([acc[0], led.MINT]), acc[1], 0, np.ones(2), 0, 0)  # mint in array
    assert not plain(acc[0], acc[1], 0, 1e9, 0, 0)  # overdraft
    assert not plain(acc[:2], acc[2:4], "token", [1.0, 1.0], 0, 0)  # a list
    assert not plain(acc[:2], acc[2:4], "tokn", np.ones(2), 0, 0)  # unknown asset
    assert led.balance(acc[0], "token") == 100.0 - 1.0 - 1.0 - 1.0  # the ones that moved


def test_long_sums_into_and_out_of_one_account_match_the_general_path_bit_for_bit():
    """Entries out of one (src, asset) are applied by ``np.subtract.reduce``, which must
    subtract them one by one in entry order, as ``np.subtract.at`` does (and entries into
    one (dst, asset) likewise): on amounts this spread out a pairwise sum differs."""
    rng = np.random.default_rng(3)
    n = 5000
    x = rng.uniform(0.0, 1.0, n) * 10.0 ** rng.integers(-12, 3, n)
    sequential = functools.reduce(operator.add, x.tolist(), 0.0)
    assert np.add.reduce(x) != sequential  # the order of the sum shows
    a0, a1, many = 2, 3, np.arange(4, 4 + n)
    legs = [
        (Ledger.MINT, many),  # mint -> many: the minted total
        (a0, a1),  # one account to another, n entries
        (many, a1),  # many -> one
        (np.full(n, a1), a0),  # one (repeated in an array) -> one
        (a1, Ledger.BURN),  # one -> burn: the burned total
    ]
    plain, general = Ledger(["token"]), Ledger(["token"])
    for L, move in ((plain, plain.transfer), (general, general._transfer_general)):
        L.open_accounts([f"a{i}" for i in range(n + 2)])
        move(L.MINT, np.arange(2, 4 + n), "token", 1e6, phase="genesis", reason="genesis")
        for src, dst in legs:
            move(src, dst, "token", x, phase="p", reason="r")
    assert plain.burned("token") == sequential
    assert plain._bal.tobytes() == general._bal.tobytes()
    assert plain._flows.tobytes() == general._flows.tobytes()
    for k, col in general.columns().items():
        assert plain.columns()[k].dtype == col.dtype
        np.testing.assert_array_equal(plain.columns()[k], col)

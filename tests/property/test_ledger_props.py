"""Property tests of sim.ledger: conservation under random transfers, mints and burns."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.ledger import InsufficientBalance, Ledger, LedgerError

ASSETS = ["token", "usd", "asset_0"]
N_USERS = 4  # accounts 2..5; 0 is mint, 1 is burn

amounts = st.floats(min_value=0.0, max_value=1e6, allow_nan=False, allow_infinity=False)
user = st.integers(min_value=2, max_value=N_USERS + 1)
asset = st.integers(min_value=0, max_value=len(ASSETS) - 1)

# one operation: (kind, src, dst, asset, amounts of a batch of 1-4 entries)
op = st.tuples(
    st.sampled_from(["mint", "transfer", "burn", "batch"]),
    user,
    user,
    asset,
    st.lists(amounts, min_size=1, max_size=4),
    st.booleans(),  # new round?
)


def recompute(L: Ledger) -> np.ndarray:
    """Balances recomputed from the frame: inflows - outflows per account and asset."""
    df = L.to_frame()
    out = np.zeros((L.n_accounts, len(ASSETS)))
    if len(df):
        src = df["src"].cat.codes.to_numpy()
        dst = df["dst"].cat.codes.to_numpy()
        a = df["asset"].cat.codes.to_numpy()
        np.add.at(out, (dst, a), df["amount"].to_numpy())
        np.subtract.at(out, (src, a), df["amount"].to_numpy())
    return out


@settings(max_examples=200, deadline=None)
@given(st.lists(op, max_size=40))
def test_random_transfers_conserve_supply_and_match_the_entries(ops):
    L = Ledger(ASSETS)
    users = L.open_accounts([f"u{i}" for i in range(N_USERS)])
    assert users.tolist() == list(range(2, N_USERS + 2))
    t = 0
    expected_minted = np.zeros(len(ASSETS))
    expected_burned = np.zeros(len(ASSETS))
    for kind, s, d, a, xs, new_round in ops:
        if new_round:
            t += 1
            L.begin_round(t)
        x = xs[0]
        before = L.balances(np.arange(L.n_accounts), a).copy()
        try:
            if kind == "mint":
                L.transfer(L.MINT, s, a, x, phase="p", reason="mint")
                expected_minted[a] += x
            elif kind == "burn":
                # a fraction of what s holds (sometimes more, which must fail)
                L.transfer(s, L.BURN, a, x, phase="p", reason="burn")
                expected_burned[a] += min(x, before[s])  # dust may trim to the balance
            elif kind == "transfer":
                if s == d:
                    continue
                L.transfer(s, d, a, x, phase="p", reason="move")
            else:  # one src, several destinations in one batch: checked on the total
                dsts = [u for u in range(2, N_USERS + 2) if u != s][: len(xs)]
                L.transfer(s, dsts, a, xs[: len(dsts)], phase="p", reason="batch")
        except InsufficientBalance:
            total = x if kind != "batch" else sum(xs[: N_USERS - 1])
            assert total > before[s]  # refused only when really short
            np.testing.assert_array_equal(L.balances(np.arange(L.n_accounts), a), before)
            continue
        after = L.balances(np.arange(L.n_accounts), a)
        assert (after[2:] >= 0).all()
    L.check_invariants(full=True)
    for j in range(len(ASSETS)):
        minted, burned = L.minted(j), L.burned(j)
        assert np.isclose(minted, expected_minted[j], rtol=1e-12, atol=0)
        assert np.isclose(burned, expected_burned[j], rtol=1e-9, atol=1e-9)
        assert np.isclose(L.supply(j), minted - burned, rtol=1e-9, atol=1e-9)
        per_round = sum(L.round_flows(r, j)[0] for r in range(t + 1))
        assert np.isclose(per_round, minted, rtol=1e-12, atol=0)
    rec = recompute(L)
    bal = np.stack([L.balances(np.arange(L.n_accounts), j) for j in range(len(ASSETS))], 1)
    np.testing.assert_allclose(rec, bal, rtol=1e-9, atol=1e-6)
    assert isinstance(L.to_frame()["src"].dtype, pd.CategoricalDtype)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.floats(min_value=0.0, max_value=100.0), min_size=1, max_size=30),
    st.integers(min_value=0, max_value=2**32 - 1),
)
def test_vectorized_batch_equals_the_same_transfers_one_by_one(xs, seed):
    rng = np.random.default_rng(seed)
    n = len(xs)
    src = rng.integers(2, 7, n)
    dst = (src - 2 + rng.integers(1, 5, n)) % 5 + 2  # never equal to src
    a = rng.integers(0, 3, n)
    x = np.asarray(xs)
    batch, single = Ledger(ASSETS), Ledger(ASSETS)
    for L in (batch, single):
        L.open_accounts([f"u{i}" for i in range(5)])
        L.transfer(L.MINT, np.arange(2, 7), 0, 1e4, phase="g", reason="g")
        L.transfer(L.MINT, np.arange(2, 7), 1, 1e4, phase="g", reason="g")
        L.transfer(L.MINT, np.arange(2, 7), 2, 1e4, phase="g", reason="g")
    batch.transfer(src, dst, a, x, phase="p", reason="r")
    for i in range(n):
        single.transfer(int(src[i]), int(dst[i]), int(a[i]), float(x[i]), phase="p", reason="r")
    for j in range(3):
        np.testing.assert_allclose(
            batch.balances(np.arange(7), j), single.balances(np.arange(7), j), rtol=1e-12
        )
    assert len(batch) == len(single)
    batch.check_invariants(full=True)


def _snapshot(L: Ledger) -> tuple[bytes, bytes, dict[str, tuple[str, bytes]], int]:
    cols = {k: (v.dtype.str, v.tobytes()) for k, v in L.columns().items()}
    return L._bal[: L.n_accounts].tobytes(), L._flows.tobytes(), cols, len(L)


def _random_batch(rng: np.random.Generator, n_acc: int, big: bool) -> tuple:
    """A batch of the shapes a simulation passes, now and then with an error or dust."""
    n = int(rng.integers(2048, 2600)) if big else int(rng.choice([1, 2, 3, 8, 20, 200]))
    users = np.arange(2, n_acc)

    def accounts(special: int) -> object:
        kind = rng.integers(0, 6)
        if kind == 0:
            return int(rng.choice(users)) if rng.random() < 0.8 else special
        if kind == 1:
            return np.int64(rng.choice(users))
        if kind == 2:
            return rng.choice(users, min(n, users.size), replace=False)
        if kind == 3 and rng.random() < 0.2:  # mint or burn inside an array
            ids = rng.choice(users, n)
            ids[rng.integers(0, n)] = rng.integers(0, 2)
            return ids
        return rng.choice(users, n)  # repeated ids

    src, dst = accounts(Ledger.MINT), accounts(Ledger.BURN)
    size = max(np.size(src), np.size(dst))
    asset = rng.integers(0, len(ASSETS), size) if rng.random() < 0.2 else int(rng.integers(0, 3))
    if rng.random() < 0.1 and size == 1:
        amount: object = float(rng.uniform(0, 50.0))
    else:
        amount = rng.uniform(0, 50.0, size) * 10.0 ** rng.integers(-9, 3, size)
        amount[rng.random(size) < 0.1] = 0.0
        if rng.random() < 0.03:
            amount[rng.integers(0, size)] = rng.choice([-1.0, np.nan, np.inf])
    return src, dst, asset, amount


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_the_plain_path_gives_the_general_paths_floats_entries_and_errors(seed):
    """:meth:`Ledger._transfer_plain` takes most batches; it must be invisible: same
    balances, flows and entries bit for bit as :meth:`Ledger._transfer_general`, which
    also raises for both (repeated accounts exercise the order of the float sums)."""
    rng = np.random.default_rng(seed)
    n_acc = int(rng.integers(4, 60))
    plain, general = Ledger(ASSETS), Ledger(ASSETS)
    for L in (plain, general):
        L.open_accounts([f"u{i}" for i in range(n_acc - 2)])
    for step in range(int(rng.integers(1, 40))):
        if rng.random() < 0.05:
            for L in (plain, general):
                L.begin_round(L.round + 1)
        batch = _random_batch(rng, n_acc, big=rng.random() < 0.05)
        if step == 0 or rng.random() < 0.15:  # funds, most of them
            batch = (Ledger.MINT, np.arange(2, n_acc), batch[2], rng.uniform(0, 100.0, n_acc - 2))
            if type(batch[2]) is not int:
                batch = batch[:2] + (int(rng.integers(0, 3)),) + batch[3:]
        src, dst, asset, amount = batch
        if rng.random() < 0.1 and type(src) is int and src > 1 and type(asset) is int:
            have = plain.balance(src, asset)  # drain it, give or take float dust
            w = rng.random(np.size(dst))
            amount = have * w / w.sum() * (1.0 + rng.choice([0.0, 1e-12, -1e-12, 1e-6]))
            if np.ndim(dst) == 0:
                amount = float(amount[0])
        outcomes = []
        for move in (plain.transfer, general._transfer_general):
            try:
                move(src, dst, asset, amount, phase="p", reason="r")
                outcomes.append(None)
            except LedgerError as e:
                outcomes.append((type(e), str(e)))
        assert outcomes[0] == outcomes[1]
        assert _snapshot(plain) == _snapshot(general)

"""The ledger: the single source of truth for every balance in a run.

Every movement of value is one entry ``(round, phase, src, dst, asset, amount, reason)``
with ``amount > 0`` moving from ``src`` to ``dst``. Minting is a transfer *from* the
account ``mint`` (id 0), burning one *to* the account ``burn`` (id 1); the genesis
allocation is round 0. Nothing else changes a balance: there is no method that sets one.

Accounting identities (checked by :meth:`Ledger.check_invariants`)::

    balance(mint, a) = -minted(a)          (mint is the only account that may go negative)
    balance(burn, a) = burned(a)           (burn only receives)
    supply(a)        = minted(a) - burned(a)
    balance(i, a)    = sum(inflows of i in a) - sum(outflows of i in a)   (from the entries)

Layout (sized for ~20,000 accounts, ~100,000 transfers per round, 500 rounds):

* balances: one 2-D float64 array ``(accounts x assets)`` that grows geometrically as
  accounts open;
* entries: columnar numpy chunks (round int32, phase int16, src int32, dst int32,
  asset int16, amount float64, reason int16); phases and reasons are interned to small
  ints. Small batches are copied into a staging buffer, large ones are kept as their own
  chunk; chunks are concatenated lazily when the entries are read. No Python object is
  created per entry;
* minted / burned per round and asset: running counters, so :meth:`Ledger.round_flows`
  is O(1).

A batch is atomic: every check (amounts, accounts, balances) happens before any balance
changes, so a batch that raises leaves the ledger as it was.

**Overdraft rule and its float tolerance.** Outflows are checked per ``(src, asset)``
on the *total* the batch moves out of it, against the balance before the batch (inflows
in the same batch do not fund outflows). If that total exceeds the balance by more than
``TOLERANCE * max(1, balance)`` (``TOLERANCE = 1e-9``) the batch raises
:class:`InsufficientBalance`. If it exceeds it by no more than that, the excess is
floating-point dust (e.g. "sell everything I was paid" computed along another path):
the amounts are reduced to exactly the balance (a single entry moves exactly the
balance; several entries are scaled by ``balance / total``), the account ends at exactly
zero, and the recorded amounts are the reduced ones. ``mint`` is never checked.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

#: Relative tolerance of the overdraft rule and of the supply identity.
TOLERANCE = 1e-9

#: A non-mint balance below ``-NEGATIVE_TOLERANCE * max(1, minted(asset))`` is a violation.
NEGATIVE_TOLERANCE = 1e-12

_MAX_CODE = np.iinfo(np.int16).max


class LedgerError(Exception):
    """A transfer or query the ledger refuses; the message names what and where."""


class InsufficientBalance(LedgerError):
    """A batch moves more out of an account than it holds (beyond the float tolerance).

    Attributes ``account`` (name), ``asset`` (name), ``balance`` (before the batch) and
    ``amount`` (the batch's total outflow from that account in that asset).
    """

    def __init__(self, message: str, *, account: str, asset: str, balance: float, amount: float):
        super().__init__(message)
        self.account = account
        self.asset = asset
        self.balance = balance
        self.amount = amount


class InvariantViolation(LedgerError):
    """An accounting identity of the ledger does not hold."""


class _Interner:
    """Small-int codes for a growing set of strings (phases, reasons)."""

    def __init__(self, what: str):
        self.what = what
        self.names: list[str] = []
        self.codes: dict[str, int] = {}

    def code(self, name: str) -> int:
        c = self.codes.get(name)
        if c is None:
            if not isinstance(name, str) or not name:
                raise LedgerError(f"{self.what} must be a non-empty string, got {name!r}")
            if len(self.names) > _MAX_CODE:
                raise LedgerError(f"more than {_MAX_CODE + 1} distinct {self.what}s")
            c = self.codes[name] = len(self.names)
            self.names.append(name)
        return c


_FIELDS = (
    ("round", np.int32),
    ("phase", np.int16),
    ("src", np.int32),
    ("dst", np.int32),
    ("asset", np.int16),
    ("amount", np.float64),
    ("reason", np.int16),
)


class _EntryStore:
    """Columnar, append-only entries: chunks of arrays plus a staging buffer.

    A large batch is kept as its own chunk, with its round, phase, reason (and asset,
    when the batch has one) stored once as scalars; small batches are copied into a
    staging buffer of full columns. :meth:`columns` expands and concatenates lazily and
    keeps the result as the single chunk.
    """

    STAGE = 16_384  # capacity of the staging buffer for small batches
    DIRECT = 2_048  # batches at least this long become their own chunk

    def __init__(self) -> None:
        self._chunks: list[tuple[Any, ...]] = []
        self._stage = tuple(np.empty(self.STAGE, dt) for _, dt in _FIELDS)
        self._k = 0
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def append(
        self,
        rnd: int,
        phase: int,
        src: np.ndarray,
        dst: np.ndarray,
        asset: int | np.ndarray,
        amount: np.ndarray,
        reason: int,
    ) -> None:
        n = amount.shape[0]
        if n >= self.DIRECT:
            self._flush()
            self._chunks.append(
                (
                    rnd,
                    phase,
                    src.astype(np.int32),
                    dst.astype(np.int32),
                    asset if isinstance(asset, int) else asset.astype(np.int16),
                    np.array(amount, dtype=np.float64, copy=True),
                    reason,
                )
            )
        else:
            if self._k + n > self.STAGE:
                self._flush()
            k, st = self._k, self._stage
            st[0][k : k + n] = rnd
            st[1][k : k + n] = phase
            st[2][k : k + n] = src
            st[3][k : k + n] = dst
            st[4][k : k + n] = asset
            st[5][k : k + n] = amount
            st[6][k : k + n] = reason
            self._k += n
        self._n += n

    def _flush(self) -> None:
        if self._k:
            self._chunks.append(tuple(a[: self._k].copy() for a in self._stage))
            self._k = 0

    def columns(self) -> dict[str, np.ndarray]:
        self._flush()
        if len(self._chunks) != 1 or any(np.ndim(c) == 0 for c in self._chunks[0]):
            cols = []
            for j, (_, dt) in enumerate(_FIELDS):
                parts = []
                for chunk in self._chunks:
                    v, n = chunk[j], chunk[5].shape[0]
                    parts.append(np.full(n, v, dt) if np.ndim(v) == 0 else v)
                cols.append(np.concatenate(parts) if parts else np.empty(0, dt))
            self._chunks = [tuple(cols)]
        return {name: col for (name, _), col in zip(_FIELDS, self._chunks[0], strict=True)}


class Ledger:
    """Accounts, assets and every transfer between them (see the module docstring).

    >>> L = Ledger(["token", "usd"])
    >>> alice = L.open_account("alice")
    >>> L.transfer(L.MINT, alice, "token", 10.0, phase="genesis", reason="genesis")
    >>> L.balance("alice", "token"), L.supply("token"), L.minted("token")
    (10.0, 10.0, 10.0)
    """

    MINT: int = 0
    BURN: int = 1

    def __init__(self, assets: Sequence[str]):
        names = list(assets)
        if not names:
            raise LedgerError("a ledger needs at least one asset")
        for a in names:
            if not isinstance(a, str) or not a:
                raise LedgerError(f"asset names must be non-empty strings, got {a!r}")
        if len(set(names)) != len(names):
            dup = sorted({a for a in names if names.count(a) > 1})
            raise LedgerError(f"duplicate asset names: {dup}")
        if len(names) > _MAX_CODE + 1:
            raise LedgerError(f"at most {_MAX_CODE + 1} assets, got {len(names)}")
        self._assets = names
        self._asset_ids = {a: i for i, a in enumerate(names)}
        self._A = len(names)
        self._names: list[str] = []
        self._ids: dict[str, int] = {}
        self._n = 0
        self._cap = 64
        self._bal = np.zeros((self._cap, self._A))
        self._round = 0
        self._rounds_seen = 1
        self._flows = np.zeros((2, 64, self._A))  # [minted, burned] x round x asset
        self._phases = _Interner("phase")
        self._reasons = _Interner("reason")
        self._entries = _EntryStore()
        self.open_accounts(["mint", "burn"])

    # ------------------------------------------------------------------ assets

    @property
    def asset_names(self) -> list[str]:
        """Asset names in id order."""
        return list(self._assets)

    def asset_id(self, name: str) -> int:
        """Id (position) of the asset called ``name``."""
        i = self._asset_ids.get(name)
        if i is None:
            raise LedgerError(f"unknown asset {name!r}{_nearest(name, self._assets)}")
        return i

    def _asset(self, asset: Any) -> int | np.ndarray:
        """An asset name, id or array of ids -> validated id(s)."""
        if isinstance(asset, str):
            return self.asset_id(asset)
        a = np.asarray(asset)
        if a.dtype.kind not in "iu":
            raise LedgerError(f"asset must be a name, an int id or an int array, got {asset!r}")
        if a.size and (a.min() < 0 or a.max() >= self._A):
            bad = a[(a < 0) | (a >= self._A)].ravel()[0]
            raise LedgerError(f"asset id {int(bad)} out of range 0..{self._A - 1}")
        return int(a) if a.ndim == 0 else a.astype(np.int64, copy=False)

    def _asset_name(self, a: Any) -> str:
        return self._assets[int(a)]

    # ---------------------------------------------------------------- accounts

    @property
    def n_accounts(self) -> int:
        """Number of accounts opened (``mint`` and ``burn`` included)."""
        return self._n

    def open_account(self, name: str) -> int:
        """Open an account with a unique ``name``; return its id."""
        return int(self.open_accounts([name])[0])

    def open_accounts(self, names: Sequence[str]) -> np.ndarray:
        """Open one account per name (names unique, new); return their int64 ids."""
        names = list(names)
        seen: set[str] = set()
        for nm in names:
            if not isinstance(nm, str) or not nm:
                raise LedgerError(f"account names must be non-empty strings, got {nm!r}")
            if nm in self._ids or nm in seen:
                raise LedgerError(f"account {nm!r} already exists")
            seen.add(nm)
        start, need = self._n, self._n + len(names)
        if need > np.iinfo(np.int32).max:
            raise LedgerError("too many accounts")
        if need > self._cap:
            cap = max(need, 2 * self._cap)
            grown = np.zeros((cap, self._A))
            grown[: self._n] = self._bal[: self._n]
            self._bal = grown
            self._cap = cap
        for i, nm in enumerate(names, start):
            self._ids[nm] = i
        self._names.extend(names)
        self._n = need
        return np.arange(start, need, dtype=np.int64)

    def account_id(self, name: str) -> int:
        """Id of the account called ``name``."""
        i = self._ids.get(name)
        if i is None:
            raise LedgerError(f"unknown account {name!r}{_nearest(name, self._names)}")
        return i

    def account_name(self, i: int) -> str:
        """Name of account ``i``."""
        if not 0 <= int(i) < self._n:
            raise LedgerError(f"account id {i} out of range 0..{self._n - 1}")
        return self._names[int(i)]

    def _account(self, account: Any) -> int:
        if isinstance(account, str):
            return self.account_id(account)
        if not isinstance(account, int | np.integer) or isinstance(account, bool):
            raise LedgerError(f"account must be a name or an int id, got {account!r}")
        if not 0 <= int(account) < self._n:
            raise LedgerError(f"account id {account} out of range 0..{self._n - 1}")
        return int(account)

    def _accounts(self, accounts: Any, what: str) -> np.ndarray:
        """Ids (scalar name or int, or int array) -> validated int64 array (0-d for scalars)."""
        if isinstance(accounts, str):
            return np.asarray(self.account_id(accounts), dtype=np.int64)
        a = np.asarray(accounts)
        if a.dtype.kind not in "iu":
            raise LedgerError(f"{what} must be account ids (ints) or a name, got dtype {a.dtype}")
        if a.dtype != np.int64:
            if a.dtype.kind == "u" and a.size and a.max() > np.iinfo(np.int64).max:
                raise LedgerError(f"{what} account id {int(a.max())} out of range")
            a = a.astype(np.int64)
        # one pass: negative ids wrap to huge unsigned values
        if a.size and (a.view(np.uint64) >= self._n).any():
            bad = a[(a < 0) | (a >= self._n)].ravel()[0]
            raise LedgerError(f"{what} account id {int(bad)} out of range 0..{self._n - 1}")
        return a

    # ------------------------------------------------------------------ rounds

    @property
    def round(self) -> int:
        """The current round; entries are stamped with it. Set by :meth:`begin_round`."""
        return self._round

    def begin_round(self, t: int) -> None:
        """Stamp the following entries with round ``t`` (rounds never go back)."""
        t = int(t)
        if t < self._round:
            raise LedgerError(
                f"cannot begin round {t}: the ledger is already at round {self._round}"
            )
        if t < 0 or t > np.iinfo(np.int32).max:
            raise LedgerError(f"round must be a non-negative int32, got {t}")
        if t >= self._flows.shape[1]:
            grown = np.zeros((2, max(t + 1, 2 * self._flows.shape[1]), self._A))
            grown[:, : self._rounds_seen] = self._flows[:, : self._rounds_seen]
            self._flows = grown
        self._round = t
        self._rounds_seen = max(self._rounds_seen, t + 1)

    # --------------------------------------------------------------- transfers

    def transfer(
        self, src: Any, dst: Any, asset: Any, amount: Any, *, phase: str, reason: str
    ) -> None:
        """Move ``amount`` of ``asset`` from ``src`` to ``dst``, recorded as entries.

        ``src``, ``dst`` and ``amount`` are scalars or equal-length arrays (broadcast);
        ``asset`` is a name, an id or an int array of ids; accounts are ids (a scalar
        may be a name). Zero amounts are skipped (not recorded). Negative or
        non-finite amounts, ``src == dst``, sending from ``burn`` or to ``mint``, and
        unknown accounts or assets raise :class:`LedgerError`. Outflows are checked on
        the batch's total per ``(src, asset)`` against the balance before the batch,
        with the float tolerance described in the module docstring; an overdraft raises
        :class:`InsufficientBalance`. The batch is atomic.
        """
        where = f"round {self._round}, phase {phase!r}, reason {reason!r}"
        phase_code, reason_code = self._phases.code(phase), self._reasons.code(reason)
        s = self._accounts(src, "src")
        d = self._accounts(dst, "dst")
        a = self._asset(asset)
        a_scalar = a if isinstance(a, int) else None
        x = np.asarray(amount, dtype=np.float64)
        lengths = {v.shape for v in (s, d, x)} | {np.shape(a)}
        lengths.discard(())
        if len(lengths) == 1 and len(shape := next(iter(lengths))) == 1:  # the common case
            s, d, a, x = (v if v.ndim else np.full(shape, v) for v in (s, d, np.asarray(a), x))
        else:
            try:
                s, d, a, x = np.broadcast_arrays(s, d, a, x)
            except ValueError as e:
                raise LedgerError(
                    f"{where}: src, dst, asset and amount do not broadcast: shapes "
                    f"{np.shape(src)}, {np.shape(dst)}, {np.shape(asset)}, {np.shape(amount)}"
                ) from e
        if x.ndim != 1:
            s, d, a, x = s.ravel(), d.ravel(), a.ravel(), x.ravel()
        if x.shape[0] == 0:
            return
        low = x.min()
        if not (low >= 0.0 and x.max() < np.inf):  # NaN fails both comparisons
            i = int(np.flatnonzero(~((x >= 0.0) & np.isfinite(x)))[0])
            raise LedgerError(
                f"{where}: amount {float(x[i])!r} of {self._asset_name(a[i])} from "
                f"{self._names[s[i]]!r} to {self._names[d[i]]!r} is negative or not finite"
            )
        if low == 0.0:
            pos = x > 0.0
            s, d, a, x = s[pos], d[pos], a[pos], x[pos]
            if x.shape[0] == 0:
                return
        same = s == d
        if same.any():
            i = int(np.flatnonzero(same)[0])
            raise LedgerError(
                f"{where}: transfer of {float(x[i])!r} {self._asset_name(a[i])} from account "
                f"{self._names[s[i]]!r} to itself"
            )
        # mint and burn are the two lowest ids: most batches touch neither
        from_mint = to_burn = None
        if s.min() <= max(self.MINT, self.BURN):
            from_mint = s == self.MINT
            if (s == self.BURN).any():
                raise LedgerError(f"{where}: the account 'burn' only receives")
        if d.min() <= max(self.MINT, self.BURN):
            to_burn = d == self.BURN
            if (d == self.MINT).any():
                raise LedgerError(
                    f"{where}: the account 'mint' only sends (burn by sending to 'burn')"
                )

        # Outflows: subtract every entry, then look at the resulting balances, which is
        # the check on the total per (src, asset) against the balance before the batch.
        # ``pre`` restores the touched balances exactly if the batch is refused.
        A = self._A
        bal = self._bal.reshape(-1)
        fs = s * A + a
        pre = bal[fs]
        np.subtract.at(bal, fs, x)
        short = bal[fs] < 0.0
        if short.any():
            if from_mint is not None:
                short &= ~from_mint
            if short.any():
                bal[fs] = pre  # undo: the batch has not happened
                x = self._settle_dust(short, s, a, fs, x, pre, where)  # raises or trims
                np.subtract.at(bal, fs, x)
                bal[fs[short]] = 0.0  # trimmed accounts end at exactly zero
                keep = x > 0.0  # a zero balance trims its entries to nothing
                if not keep.all():
                    s, d, a, x = s[keep], d[keep], a[keep], x[keep]
                    if from_mint is not None:
                        from_mint = from_mint[keep]
                    if to_burn is not None:
                        to_burn = to_burn[keep]
                    if x.shape[0] == 0:
                        return
        # Inflows.
        np.add.at(bal, d * A + a, x)
        if from_mint is not None and from_mint.any():
            self._flows[0, self._round] += np.bincount(a[from_mint], x[from_mint], minlength=A)
        if to_burn is not None and to_burn.any():
            self._flows[1, self._round] += np.bincount(a[to_burn], x[to_burn], minlength=A)
        self._entries.append(
            self._round, phase_code, s, d, a if a_scalar is None else a_scalar, x, reason_code
        )

    def _settle_dust(self, short, s, a, fs, x, pre, where) -> np.ndarray:
        """Raise on a real overdraft; return ``x`` with float-dust overdrafts trimmed.

        ``short`` marks the entries whose (src, asset) ends below zero. Their groups'
        totals are recomputed exactly here (this path is rare).
        """
        groups, inverse = np.unique(fs[short], return_inverse=True)
        members = np.flatnonzero(np.isin(fs, groups))
        g_of = np.searchsorted(groups, fs[members])
        tot = np.bincount(g_of, x[members], minlength=groups.size)
        count = np.bincount(g_of, minlength=groups.size)
        first = np.flatnonzero(short)[np.unique(inverse, return_index=True)[1]]
        have = pre[first]
        over = tot - have > TOLERANCE * np.maximum(1.0, have)
        if over.any():
            k = int(np.flatnonzero(over)[0])
            i = int(first[k])
            account, asset = self._names[s[i]], self._asset_name(a[i])
            msg = (
                f"{where}: account {account!r} (id {int(s[i])}) holds {float(have[k])!r} "
                f"{asset} but the batch moves {float(tot[k])!r} {asset} out of it"
                + (f" in {int(count[k])} entries" if count[k] > 1 else "")
                + f" (short by {float(tot[k] - have[k])!r})"
                + (
                    f"; {int(over.sum()) - 1} other account(s) are short too"
                    if over.sum() > 1
                    else ""
                )
            )
            raise InsufficientBalance(
                msg, account=account, asset=asset, balance=float(have[k]), amount=float(tot[k])
            )
        x = x.copy()
        single = count[g_of] == 1
        x[members] = np.where(single, have[g_of], x[members] * (have / tot)[g_of])
        return x

    # ----------------------------------------------------------------- reading

    def balance(self, account: int | str, asset: Any) -> float:
        """Balance of one account in one asset."""
        return float(self._bal[self._account(account), self._scalar_asset(asset)])

    def balances(self, accounts: Any, asset: Any) -> np.ndarray:
        """Balances of many accounts in one asset (or in an equal-length array of assets)."""
        acc = self._accounts(accounts, "accounts")
        return self._bal[acc, self._asset(asset)]

    def _scalar_asset(self, asset: Any) -> int:
        a = self._asset(asset)
        if not isinstance(a, int):
            raise LedgerError(f"expected one asset, got an array of {np.size(a)}")
        return a

    def supply(self, asset: Any) -> float:
        """Amount of ``asset`` held by all accounts but ``mint`` and ``burn``."""
        return float(self._bal[2 : self._n, self._scalar_asset(asset)].sum())

    def minted(self, asset: Any, rounds: slice | None = None) -> float:
        """Total moved out of ``mint``, in ``rounds`` if given (a slice of rounds).

        ``rounds=slice(a, b)`` sums rounds ``a`` (inclusive) to ``b`` (exclusive).
        """
        return self._flow(0, asset, rounds)

    def burned(self, asset: Any, rounds: slice | None = None) -> float:
        """Total moved into ``burn``, in ``rounds`` if given (a slice of rounds).

        ``rounds=slice(a, b)`` sums rounds ``a`` (inclusive) to ``b`` (exclusive).
        """
        return self._flow(1, asset, rounds)

    def _flow(self, which: int, asset: Any, rounds: slice | None) -> float:
        per_round = self._flows[which, : self._rounds_seen, self._scalar_asset(asset)]
        if rounds is not None:
            if not isinstance(rounds, slice):
                raise LedgerError(f"rounds must be a slice, got {rounds!r}")
            per_round = per_round[rounds]
        return float(per_round.sum())

    def round_flows(self, t: int, asset: Any) -> tuple[float, float]:
        """``(minted, burned)`` of ``asset`` in round ``t`` (O(1); zeros for unseen rounds)."""
        a = self._scalar_asset(asset)
        t = int(t)
        if not 0 <= t < self._rounds_seen:
            return 0.0, 0.0
        return float(self._flows[0, t, a]), float(self._flows[1, t, a])

    def check_invariants(self, full: bool = False) -> None:
        """Raise :class:`InvariantViolation` unless the accounting identities hold.

        Always (O(accounts x assets)): no balance but ``mint``'s is below
        ``-NEGATIVE_TOLERANCE * max(1, minted)``; ``balance(mint) == -minted``,
        ``balance(burn) == burned`` and ``supply == minted - burned`` for every asset,
        within relative tolerance ``TOLERANCE`` of ``max(1, minted)``. With
        ``full=True`` also (O(entries)): every running balance equals the balance
        recomputed from the entries, within the same tolerance.
        """
        n, A = self._n, self._A
        bal = self._bal[:n]
        minted = self._flows[0, : self._rounds_seen].sum(axis=0)
        burned = self._flows[1, : self._rounds_seen].sum(axis=0)
        scale = np.maximum(1.0, minted)
        where = f"round {self._round}"
        neg = bal[2:] < -NEGATIVE_TOLERANCE * scale
        if neg.any():
            i, j = np.argwhere(neg)[0]
            raise InvariantViolation(
                f"{where}: account {self._names[i + 2]!r} has a negative balance "
                f"{float(bal[i + 2, j])!r} of {self._assets[j]} ({int(neg.sum())} negative in all)"
            )
        tol = TOLERANCE * scale
        for label, got, want in (
            ("balance of 'mint'", bal[self.MINT], -minted),
            ("balance of 'burn'", bal[self.BURN], burned),
            ("supply", bal[2:].sum(axis=0), minted - burned),
        ):
            bad = np.abs(got - want) > tol
            if bad.any():
                j = int(np.flatnonzero(bad)[0])
                raise InvariantViolation(
                    f"{where}: {label} of {self._assets[j]} is {float(got[j])!r} but "
                    f"minted - burned gives {float(want[j])!r} (minted {float(minted[j])!r}, "
                    f"burned {float(burned[j])!r})"
                )
        if not full:
            return
        c = self._entries.columns()
        src = c["src"].astype(np.int64) * A + c["asset"]
        dst = c["dst"].astype(np.int64) * A + c["asset"]
        size = n * A
        recomputed = (
            np.bincount(dst, c["amount"], minlength=size)
            - np.bincount(src, c["amount"], minlength=size)
        ).reshape(n, A)
        bad = np.abs(recomputed - bal) > tol
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise InvariantViolation(
                f"{where}: account {self._names[i]!r} holds {float(bal[i, j])!r} {self._assets[j]} "
                f"but its entries give {float(recomputed[i, j])!r} ({int(bad.sum())} mismatches)"
            )

    def __len__(self) -> int:
        return len(self._entries)

    def columns(self) -> dict[str, np.ndarray]:
        """Entries as raw numpy columns (ids and codes, no names).

        Keys: ``round`` int32, ``phase`` int16 (code into :attr:`phase_names`), ``src``
        and ``dst`` int32 account ids, ``asset`` int16 asset ids, ``amount`` float64,
        ``reason`` int16 (code into :attr:`reason_names`). Do not modify them.
        """
        return self._entries.columns()

    @property
    def phase_names(self) -> list[str]:
        """Phases seen so far, in code order."""
        return list(self._phases.names)

    @property
    def reason_names(self) -> list[str]:
        """Reasons seen so far, in code order."""
        return list(self._reasons.names)

    def to_frame(self) -> pd.DataFrame:
        """All entries as a data frame.

        Columns: ``round`` (int32); ``phase``, ``src``, ``dst``, ``asset`` (categoricals of
        the names); ``amount`` (float64); ``reason`` (categorical).
        """
        c = self._entries.columns()
        accounts = pd.Index(self._names[: self._n])

        def cat(codes: np.ndarray, names: list[str] | pd.Index) -> pd.Categorical:
            return pd.Categorical.from_codes(codes, categories=pd.Index(names, dtype=object))

        return pd.DataFrame(
            {
                "round": c["round"],
                "phase": cat(c["phase"], self._phases.names),
                "src": cat(c["src"], accounts),
                "dst": cat(c["dst"], accounts),
                "asset": cat(c["asset"], self._assets),
                "amount": c["amount"],
                "reason": cat(c["reason"], self._reasons.names),
            }
        )

    def __repr__(self) -> str:
        return (
            f"Ledger(assets={len(self._assets)}, accounts={self._n}, entries={len(self)}, "
            f"round={self._round})"
        )


def _nearest(name: Any, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(str(name), list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""

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

_INT64, _FLOAT64 = np.dtype(np.int64), np.dtype(np.float64)
_min, _max, _sub_reduce = np.minimum.reduce, np.maximum.reduce, np.subtract.reduce


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
    """Columnar, append-only entries: chunks of columns plus a staging buffer.

    A chunk is ``(n, columns)``, one column per field of ``_FIELDS``, each either an
    array of ``n`` values or one scalar shared by the ``n`` entries. A large batch is
    kept as its own chunk, with what is constant in it stored once (round, phase and
    reason always; asset, src or dst when the batch gives a scalar). Small batches are
    copied into a staging buffer: src, dst, asset and amount as columns, round, phase and
    reason as one run per batch, so a call writes four slices, not seven (transfers are
    many and mostly small, so this per-call cost counts). :meth:`columns` expands and
    concatenates lazily and keeps the result as the single chunk.
    """

    STAGE = 16_384  # capacity of the staging buffer for small batches
    DIRECT = 2_048  # batches at least this long become their own chunk
    _STAGED = (2, 3, 4, 5)  # the fields of _FIELDS staged as columns

    def __init__(self) -> None:
        self._chunks: list[tuple[int, tuple[Any, ...]]] = []
        self._stage = tuple(np.empty(self.STAGE, _FIELDS[j][1]) for j in self._STAGED)
        self._runs: list[tuple[int, int, int, int]] = []  # staged (entries, round, phase, reason)
        self._k = 0
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def append(
        self, n: int, rnd: int, phase: int, src: Any, dst: Any, asset: Any, amount: Any, reason: int
    ) -> None:
        """Record ``n`` entries; ``src``, ``dst``, ``asset`` and ``amount`` are arrays of
        ``n`` values or scalars shared by all of them. Arrays are copied, never kept."""
        if n >= self.DIRECT:
            self._flush()
            cols = (src, dst, asset, amount)
            src, dst, asset, amount = (
                v.astype(_FIELDS[j][1]) if isinstance(v, np.ndarray) else v
                for j, v in zip(self._STAGED, cols, strict=True)
            )
            self._chunks.append((n, (rnd, phase, src, dst, asset, amount, reason)))
        else:
            if self._k + n > self.STAGE:
                self._flush()
            k = self._k
            s, d, a, x = self._stage
            s[k : k + n] = src
            d[k : k + n] = dst
            a[k : k + n] = asset
            x[k : k + n] = amount
            self._runs.append((n, rnd, phase, reason))
            self._k = k + n
        self._n += n

    def _flush(self) -> None:
        if self._k:
            runs = np.array(self._runs, dtype=np.int64)
            rnd, phase, reason = (
                np.repeat(runs[:, j].astype(_FIELDS[f][1]), runs[:, 0])
                for j, f in ((1, 0), (2, 1), (3, 6))
            )
            src, dst, asset, amount = (c[: self._k].copy() for c in self._stage)
            self._chunks.append((self._k, (rnd, phase, src, dst, asset, amount, reason)))
            self._runs = []
            self._k = 0

    def columns(self) -> dict[str, np.ndarray]:
        self._flush()
        if len(self._chunks) != 1 or any(np.ndim(c) == 0 for c in self._chunks[0][1]):
            cols = []
            for j, (_, dt) in enumerate(_FIELDS):
                parts = [
                    np.full(n, c[j], dt) if np.ndim(c[j]) == 0 else c[j] for n, c in self._chunks
                ]
                cols.append(np.concatenate(parts) if parts else np.empty(0, dt))
            self._chunks = [(self._n, tuple(cols))]
        return {name: col for (name, _), col in zip(_FIELDS, self._chunks[0][1], strict=True)}


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
        phase_code, reason_code = self._phases.code(phase), self._reasons.code(reason)
        if not self._transfer_plain(src, dst, asset, amount, phase_code, reason_code):
            self._transfer_general(src, dst, asset, amount, phase, reason)

    def _transfer_plain(
        self, src: Any, dst: Any, asset: Any, amount: Any, phase_code: int, reason_code: int
    ) -> bool:
        """Apply a plain batch with few NumPy calls; return False, changing nothing, if not plain.

        Transfers are many (a round makes dozens, most of them small), so a call's fixed
        cost in NumPy calls matters as much as its per-entry cost. Plain is what a
        simulation almost always passes: ``src`` and ``dst`` int ids or 1-D int64 arrays
        of ordinary accounts (or a scalar ``mint`` src, a scalar ``burn`` dst), ``asset``
        a name, an int id or a 1-D int64 array, ``amount`` a float or a 1-D float64
        array, arrays of one length, amounts finite and not negative, no entry from an
        account to itself, no overdraft. Everything else (every error, mint or burn in
        an array, dust to trim, other types, broadcasting) is left to
        :meth:`_transfer_general`, which applies the rules in full. This path must give
        exactly its balances, flows and entries, bit for bit (the unit tests compare
        the two).

        What it saves: scalars stay Python ints (no ``np.full``, scalar columns in the
        entry store); one min and one max per array validate its ids or amounts and
        rule out mint and burn at once; ``src == dst`` is compared only where the id
        ranges overlap; a scalar asset works on its balance column, so no flat index is
        computed. And the entries moving out of one scalar ``(src, asset)`` (or into one
        scalar ``(dst, asset)``) are applied by ``np.subtract.reduce``, which, like
        ``np.subtract.at`` on a repeated index, subtracts them one by one in entry order
        (NumPy's subtract loop reduces sequentially; only add reduces pairwise, which is
        why ``np.add.reduce`` would not do; a unit test guards this): the same floats,
        without an index array or a scatter. Inflows ``b + x0 + x1 ...`` are computed as
        ``b - (-x0) - (-x1) ...``, which IEEE arithmetic defines to be the same. For
        large batches the cost is the scattered reads and writes of the balances and
        stays about what it was.
        """
        n_acc, n = self._n, -1  # n: the common length of the array arguments
        s, d, a, x = src, dst, asset, amount
        # Accounts: ordinary ids (mint and burn are the two lowest), or a scalar mint
        # src, a scalar burn dst.
        if type(s) is np.ndarray:
            if s.dtype != _INT64 or s.ndim != 1 or not s.shape[0]:
                return False
            n = s.shape[0]
            s_lo, s_hi = _min(s), _max(s)
            if s_lo <= self.BURN or s_hi >= n_acc:
                return False
        elif type(s) is int or isinstance(s, np.integer):
            s = int(s)
            if not (self.BURN < s < n_acc or s == self.MINT):
                return False
        else:
            return False
        if type(d) is np.ndarray:
            if d.dtype != _INT64 or d.ndim != 1 or d.shape[0] != (n if n >= 0 else d.shape[0]):
                return False
            n = d.shape[0]
            if not n:
                return False
            d_lo, d_hi = _min(d), _max(d)
            if d_lo <= self.BURN or d_hi >= n_acc:
                return False
        elif type(d) is int or isinstance(d, np.integer):
            d = int(d)
            if not self.BURN <= d < n_acc:
                return False
        else:
            return False
        # Asset: a name, an id or an array of ids.
        if type(a) is str:
            a = self._asset_ids.get(a)
            if a is None:
                return False
        elif type(a) is np.ndarray:
            if a.dtype != _INT64 or a.ndim != 1 or a.shape[0] != (n if n >= 0 else a.shape[0]):
                return False
            n = a.shape[0]
            if not n or _min(a) < 0 or _max(a) >= self._A:
                return False
        elif type(a) is int or isinstance(a, np.integer):
            a = int(a)
            if not 0 <= a < self._A:
                return False
        else:
            return False
        # Amounts: finite and not negative; zeros are skipped.
        scalar = n < 0  # every argument is a scalar: one entry, Python floats
        if type(x) is np.ndarray:
            if x.dtype != _FLOAT64 or x.ndim != 1 or x.shape[0] != (n if n >= 0 else x.shape[0]):
                return False
            n = x.shape[0]
            if not n:  # only reached when the other arguments are (valid) scalars
                return True
            low = _min(x)
            if not (low >= 0.0 and _max(x) < np.inf):  # NaN fails both comparisons
                return False
            scalar = False
            if low == 0.0:
                keep = x > 0.0
                n = int(np.count_nonzero(keep))
                if not n:
                    return True
                s, d, a, x = (v[keep] if type(v) is np.ndarray else v for v in (s, d, a, x))
        elif type(x) is float or type(x) is np.float64:
            x = float(x)
            if not 0.0 <= x < np.inf:
                return False
            if x == 0.0:
                return True
            if not scalar:
                x = np.full(n, x)
        else:
            return False
        # No entry from an account to itself (the ranges of the ids tell most batches).
        if type(s) is int:
            if type(d) is int:
                if s == d:
                    return False
            elif d_lo <= s <= d_hi and np.count_nonzero(d == s):
                return False
        elif type(d) is int:
            if s_lo <= d <= s_hi and np.count_nonzero(s == d):
                return False
        elif np.count_nonzero(s == d):
            return False
        from_mint = type(s) is int and s == self.MINT
        to_burn = type(d) is int and d == self.BURN

        # Outflows, then inflows, exactly as _transfer_general applies them.
        bal, A = self._bal, self._A
        if type(s) is int and type(a) is int:
            new = bal[s, a] - x if scalar else _sub_reduce(x, initial=bal[s, a])
            if not (new >= 0.0 or from_mint):
                return False  # the general path trims dust or raises
            bal[s, a] = new
        else:
            col, fs = (bal[:, a], s) if type(a) is int else (bal.reshape(-1), s * A + a)
            pre = col[fs]
            np.subtract.at(col, fs, x)
            if not (from_mint or _min(col[fs]) >= 0.0):
                col[fs] = pre  # undo; the general path trims dust or raises
                return False
        if type(d) is int and type(a) is int:
            bal[d, a] = bal[d, a] + x if scalar else _sub_reduce(-x, initial=bal[d, a])
        elif type(a) is int:
            np.add.at(bal[:, a], d, x)
        else:
            np.add.at(bal.reshape(-1), d * A + a, x)
        if from_mint or to_burn:
            if type(a) is int:  # what bincount sums: 0 + x0 + x1 ... in entry order
                a_flow, total = a, x if scalar else _sub_reduce(-x, initial=0.0)
            else:
                a_flow, total = slice(None), np.bincount(a, x, minlength=A)
            if from_mint:
                self._flows[0, self._round, a_flow] += total
            if to_burn:
                self._flows[1, self._round, a_flow] += total
        self._entries.append(1 if scalar else n, self._round, phase_code, s, d, a, x, reason_code)
        return True

    def _transfer_general(
        self, src: Any, dst: Any, asset: Any, amount: Any, phase: str, reason: str
    ) -> None:
        """:meth:`transfer` with every rule: validation, broadcasting, mint and burn, dust.

        The reference for :meth:`_transfer_plain`, and the path of every batch it declines.
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
            x.shape[0],
            self._round,
            phase_code,
            s,
            d,
            a if a_scalar is None else a_scalar,
            x,
            reason_code,
        )

    def _settle_dust(self, short, s, a, fs, x, pre, where) -> np.ndarray:
        """Raise on a real overdraft; return ``x`` with float-dust overdrafts trimmed.

        ``short`` marks the entries whose (src, asset) ends below zero: whole groups of
        entries, as the entries of a group end at the same balance (and mint's are all
        unmarked), so the marked entries are the members and one ``np.unique`` (sorted
        groups, first members, group of each member, sizes) groups them. Their groups'
        totals are recomputed exactly here, in entry order. Not rare in a simulation
        ("sell all I hold" computed along another path), so kept to a few NumPy calls.
        """
        members = np.flatnonzero(short)
        groups, first, g_of, count = np.unique(
            fs[members], return_index=True, return_inverse=True, return_counts=True
        )
        first = members[first]
        tot = np.bincount(g_of, x[members], minlength=groups.size)
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
        # the common call (an int64 id array and an asset name; dozens a round) checks
        # its ids with one min and one max
        if type(accounts) is np.ndarray and accounts.dtype == _INT64 and type(asset) is str:
            a = self._asset_ids.get(asset)
            if a is not None and (
                not accounts.size or (_min(accounts) >= 0 and _max(accounts) < self._n)
            ):
                return self._bal[accounts, a]
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
        floor = -NEGATIVE_TOLERANCE * scale
        # the lowest balance of each asset first (one pass, no accounts x assets temporary)
        if n > 2 and (bal[2:].min(axis=0) < floor).any():
            neg = bal[2:] < floor
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

        # the columns as they are (no copy): tens of millions of rows in a large run
        return pd.DataFrame(
            {
                "round": c["round"],
                "phase": cat(c["phase"], self._phases.names),
                "src": cat(c["src"], accounts),
                "dst": cat(c["dst"], accounts),
                "asset": cat(c["asset"], self._assets),
                "amount": c["amount"],
                "reason": cat(c["reason"], self._reasons.names),
            },
            copy=False,
        )

    def __repr__(self) -> str:
        return (
            f"Ledger(assets={len(self._assets)}, accounts={self._n}, entries={len(self)}, "
            f"round={self._round})"
        )


def _nearest(name: Any, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(str(name), list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""

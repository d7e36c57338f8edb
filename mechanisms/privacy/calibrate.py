"""Calibration: what one counted unit of secure computation takes on this machine.

The kernels count their work (:class:`mechanisms.privacy.mpc.Costs`, Paillier
operations); :func:`calibrate` times them here and returns a *profile* (a plain dict,
written as YAML by :func:`write_profile` and read by
:mod:`mechanisms.privacy.costmodel`), whose numbers turn counts into seconds.
``mlmarket calibrate`` runs it; the shipped :data:`DEFAULT_PROFILE` was made that way.

MPC. :func:`mechanisms.privacy.mpc.secure_ridge` (both computing parties and the dealer,
run one after the other in one process) is timed on a grid of
``(rows, features, epochs)`` covering a market's sizes, and its time is modelled as

    seconds ~ a * local_ops + b * dealer_bytes + c * rounds

with the run's own :class:`~mechanisms.privacy.mpc.Costs`. ``a, b, c >= 0`` minimize the
sum of squared *relative* errors ``sum_i ((A_i x - t_i) / t_i)^2``: each row of the
design matrix is divided by its measured time and solved by non-negative least squares
(Lawson & Hanson, "Solving Least Squares Problems", 1974, ch. 23; ``scipy.optimize.nnls``)
so the smallest sizes count as much as the largest. The profile reports
``max_relative_error = max_i |fitted_i - t_i| / t_i`` over the grid and the grid itself.
The time of sharing and masking the inputs (once per run) is not a regressor of its own:
it grows like the data matrix, as the dealer's mask does, and is absorbed by ``b``.
That is the fit's weak spot: setup costs more per element than the per-epoch triples
per dealer byte (more still for wide matrices, and more when fresh arrays page-fault),
so runs dominated by setup (few epochs on a large ``rows x features``) are
under-predicted; on the machine of the shipped profile by up to about 40 % at 5 epochs
on 2000 x 40, within about 15 % wherever the epochs dominate.

HE (:mod:`mechanisms.privacy.paillier`, with the backend it picks: gmpy2 when
installed), seconds per operation at each key size: ``obfuscator`` one ``r^n mod n^2``
(:meth:`RandomnessPool.fill`, method ``paillier``); ``encrypt`` one
:meth:`PublicKey.encrypt` of a full-size plaintext with a pooled obfuscator;
``decrypt`` one :meth:`PrivateKey.decrypt` (CRT); ``addition`` one ciphertext ``a + b``
(a product mod ``n^2``); ``inversion`` one ``-a`` (a modular inverse mod ``n^2``);
``exponent_bit`` the seconds per exponent bit of ``a * k`` (``c^k mod n^2``), fitted
by least squares *through the origin*, ``s = sum_j b_j t_j / sum_j b_j^2``, over
exponents of ``b_j`` = 16, 32, 48 and 64 bits (top bit set): the fixed cost of a call
is folded into the per-bit figure, so ``s * bits(k)`` slightly overstates short
exponents and understates long ones.

Timing: ``time.perf_counter`` around a batch of calls (inputs prepared outside the
clock, garbage collection paused, as ``timeit`` does), batches of about 2 ms (one call
if it takes longer), with BLAS limited to one thread (as runs are:
``sim.runner.blas_single_thread``). Every measurement keeps its fastest batch (the
minimum, as ``timeit`` advises: the machine's speed without interference; a busy
machine is slower than its profile). The measurements are interleaved: ``Plan.passes``
passes each give every measurement a short sample, because a shared machine slows
down in spells of a second or two, which would spoil every sample of whichever
measurements ran during them. Keys and data come from one seeded
``numpy.random.SeedSequence``, so the work timed is the same on every machine; such
keys are for timing only.
"""

from __future__ import annotations

import gc
import importlib.metadata
import itertools
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from mechanisms.privacy import mpc, paillier

__all__ = [
    "DEFAULT_PROFILE",
    "FULL",
    "QUICK",
    "SEED",
    "Plan",
    "calibrate",
    "fit_mpc",
    "fit_through_origin",
    "ridge_costs",
    "write_profile",
]

#: The profile shipped with the package (``mechanisms.privacy.profile: default``).
DEFAULT_PROFILE = Path(__file__).parent / "profiles" / "default.yaml"
#: Root seed of the keys and data timed (the same work on every machine).
SEED = 20261129
PROFILE_VERSION = 1
_SIGNIFICANT = 4  # significant digits written to the profile
_MAX_BATCH = 100_000
_MIN_BATCH_SECONDS = 2e-3  # shortest timed batch
_LAMBDA = 0.1  # ridge penalty of the timed problems (irrelevant to the time)


@dataclass(frozen=True)
class Plan:
    """What a calibration times: the MPC grid, the key sizes, and for how long.

    Every combination of ``rows x features x epochs`` is one grid point. Each
    measurement (a grid point, an HE operation at a key size) gets about ``seconds``
    of timed calls in all, split over ``passes`` visits: every pass visits every
    measurement once, so a slow spell of the machine touches a few samples of each
    measurement rather than all samples of some.
    """

    rows: tuple[int, ...]
    features: tuple[int, ...]
    epochs: tuple[int, ...]
    seconds: float
    passes: int
    key_bits: tuple[int, ...] = (1024, 2048, 3072)
    exponent_bits: tuple[int, ...] = (16, 32, 48, 64)

    def __post_init__(self):
        sizes = (*self.rows, *self.features, *self.epochs, *self.key_bits, *self.exponent_bits)
        if not self.rows or not self.features or not self.epochs or min(sizes) < 1:
            raise ValueError("a plan needs positive rows, features, epochs and key sizes")
        if len(self.rows) * len(self.features) * len(self.epochs) < 3:
            raise ValueError("the MPC fit has three coefficients: give at least 3 grid points")
        if not self.seconds > 0 or self.passes < 1:
            raise ValueError("seconds must be > 0 and passes >= 1")

    @property
    def grid(self) -> list[tuple[int, int, int]]:
        """The ``(rows, features, epochs)`` points, rows varying slowest."""
        return list(itertools.product(self.rows, self.features, self.epochs))

    @property
    def measurements(self) -> int:
        """How many measurements: grid points, and per key size every HE operation."""
        return len(self.grid) + len(self.key_bits) * (5 + len(self.exponent_bits))


#: ``mlmarket calibrate``: 36 sizes, 3 key sizes, 0.5 s per measurement in 10 passes.
FULL = Plan(
    rows=(100, 300, 1000, 2000),
    features=(4, 12, 40),
    epochs=(5, 15, 50),
    seconds=0.5,
    passes=10,
)
#: ``mlmarket calibrate --quick``: the grid's corners, 0.04 s per measurement.
QUICK = Plan(
    rows=(100, 2000),
    features=(4, 40),
    epochs=(5, 50),
    seconds=0.04,
    passes=2,
)


# ----------------------------------------------------------------------------- timing


class _Measurement:
    """Seconds per call of one operation: the fastest batch over every sample.

    ``batch(count)`` runs ``count`` calls and returns their time. One probe call (also
    a warm-up) sizes the batches to about ``_MIN_BATCH_SECONDS``, so the clock's own
    cost is negligible; :meth:`sample` runs batches for a while (at least one).
    """

    def __init__(self, batch: Callable[[int], float]):
        self.batch = batch
        probe = batch(1)
        self.count = max(1, min(_MAX_BATCH, math.ceil(_MIN_BATCH_SECONDS / max(probe, 1e-7))))
        self.best = probe

    def sample(self, seconds: float) -> None:
        """Run batches until ``seconds`` are spent; keep the fastest per call."""
        spent = 0.0
        while True:
            t = self.batch(self.count)
            self.best = min(self.best, t / self.count)
            spent += t
            if spent >= seconds:
                return


def _clock(calls: Callable[[], None]) -> float:
    """Seconds ``calls()`` takes, with garbage collection paused."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter()
        calls()
        return time.perf_counter() - t0
    finally:
        if enabled:
            gc.enable()


def _sig(x: float, digits: int = _SIGNIFICANT) -> float:
    """``x`` rounded to ``digits`` significant digits."""
    return float(f"{x:.{digits - 1}e}")


def _sig_up(x: float, digits: int = _SIGNIFICANT) -> float:
    """``x >= 0`` rounded *up* to ``digits`` significant digits."""
    if x <= 0:
        return 0.0
    near = _sig(x, digits)
    if near >= x:
        return near
    step = 10.0 ** (math.floor(math.log10(x)) - digits + 1)
    up = _sig(math.ceil(x / step) * step, digits)
    return up if up >= x else _sig(up + step, digits)


# ---------------------------------------------------------------------------------- MPC


def _ridge_problem(rows: int, features: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A well-scaled regression problem: ``X`` standard normal / sqrt(d), ``y = X w + e``."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, features)) / math.sqrt(features)
    y = X @ rng.standard_normal(features) + 0.1 * rng.standard_normal(rows)
    return X, y


def ridge_costs(rows: int, features: int, epochs: int) -> mpc.Costs:
    """The :class:`~mechanisms.privacy.mpc.Costs` of one timed ``secure_ridge`` run.

    Costs depend only on the sizes; this runs the protocol once to count them.
    """
    X, y = _ridge_problem(rows, features, SEED)
    return mpc.secure_ridge([X], y, _LAMBDA, np.random.default_rng(SEED), epochs=epochs)[1]


def _ridge_measurement(
    rows: int, features: int, epochs: int, seed: np.random.SeedSequence
) -> tuple[_Measurement, mpc.Costs]:
    data_seed, run_seed = seed.spawn(2)
    X, y = _ridge_problem(rows, features, int(data_seed.generate_state(1)[0]))
    rng = np.random.default_rng(run_seed)
    costs: list[mpc.Costs] = []

    def batch(count: int) -> float:
        def calls() -> None:
            for _ in range(count):
                costs.append(mpc.secure_ridge([X], y, _LAMBDA, rng, epochs=epochs)[1])

        t = _clock(calls)
        del costs[1:]
        return t

    return _Measurement(batch), costs[0]


def fit_mpc(costs: Sequence[mpc.Costs], seconds: Sequence[float]) -> np.ndarray:
    """Coefficients ``(a, b, c) >= 0`` of ``seconds ~ a ops + b dealer_bytes + c rounds``.

    Non-negative least squares on relative errors: minimizes
    ``sum_i ((A_i x - t_i) / t_i)^2`` subject to ``x >= 0`` (``scipy.optimize.nnls``
    on the rows of ``A`` divided by ``t_i``, columns scaled to unit norm so the solver's
    tolerance treats the three regressors alike).
    """
    from scipy.optimize import nnls

    t = np.asarray(seconds, dtype=float)
    A = np.array([[c.local_ops, c.dealer_bytes, c.rounds] for c in costs], dtype=float)
    if A.shape[0] != t.size or t.size < 3 or not np.all(t > 0):
        raise ValueError("need at least 3 grid points, one positive time per Costs")
    W = A / t[:, None]
    norms = np.linalg.norm(W, axis=0)
    norms[norms == 0] = 1.0
    x, _ = nnls(W / norms, np.ones(t.size))
    return x / norms


def _mpc_section(points: list[tuple[int, int, int, float, mpc.Costs]]) -> dict[str, Any]:
    coef = fit_mpc([p[4] for p in points], [p[3] for p in points])
    a, b, c = (_sig(float(v)) for v in coef)
    grid, worst = [], 0.0
    for rows, features, epochs, seconds, costs in points:
        measured = _sig(seconds)
        fitted = _sig(a * costs.local_ops + b * costs.dealer_bytes + c * costs.rounds)
        worst = max(worst, abs(fitted - measured) / measured)
        grid.append(
            {
                "rows": rows,
                "features": features,
                "epochs": epochs,
                "seconds": measured,
                "fitted": fitted,
            }
        )
    return {
        "seconds_per_op": a,
        "seconds_per_dealer_byte": b,
        "seconds_per_round": c,
        "max_relative_error": _sig_up(worst),
        "grid": grid,
    }


# ----------------------------------------------------------------------------------- HE


def fit_through_origin(x: Sequence[float], y: Sequence[float]) -> float:
    """Least-squares slope of ``y ~ s x`` with no intercept: ``sum x y / sum x^2``."""
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    return float(xs @ ys / (xs @ xs))


class _ReusedPool(paillier.RandomnessPool):
    """A pool handing out the same few obfuscators in turn: for timing encryption only.

    Reusing an obfuscator leaks plaintext differences (see :class:`RandomnessPool`);
    here only the time of ``take`` + one encryption matters, and a real pool would need
    one fresh obfuscator (``obfuscator`` seconds) per encryption.
    """

    def __init__(self, public_key: paillier.PublicKey, values: Sequence[int]):
        super().__init__(public_key, 0)
        self._cycle = itertools.cycle(list(values))

    def take(self) -> int:
        return next(self._cycle)


def _random_below(bound: int, rng: np.random.Generator) -> int:
    nbytes = (bound.bit_length() + 7) // 8 + 8
    return int.from_bytes(rng.bytes(nbytes), "little") % bound


def _calls(inputs: Sequence[Any], op: Callable[[Any], object]) -> _Measurement:
    """A measurement of ``op(x)``, the ``x`` taken from ``inputs`` in turn."""
    source = itertools.cycle(inputs)

    def batch(count: int) -> float:
        xs = [next(source) for _ in range(count)]

        def calls() -> None:
            for x in xs:
                op(x)

        return _clock(calls)

    return _Measurement(batch)


def _he_measurements(
    bits: int, plan: Plan, seed: np.random.SeedSequence
) -> dict[str, _Measurement | list[_Measurement]]:
    """A key of ``bits`` bits and a measurement of every HE operation under it."""
    key_seed, pool_seed, data_seed = seed.spawn(3)
    pub, priv = paillier.keygen(bits, np.random.default_rng(key_seed))
    rng = np.random.default_rng(data_seed)
    pool = paillier.RandomnessPool(pub, 0, method="paillier", rng=np.random.default_rng(pool_seed))
    out: dict[str, _Measurement | list[_Measurement]] = {}
    out["obfuscator"] = _Measurement(lambda count: _clock(lambda: pool.fill(count)))
    reused = _ReusedPool(pub, [pub.obfuscator(rng) for _ in range(4)])
    plains = [_random_below(pub.max_int + 1, rng) for _ in range(64)]
    out["encrypt"] = _calls(plains, lambda m: pub.encrypt(m, pool=reused))
    cts = [pub.encrypt(m, pool=reused) for m in plains]
    out["decrypt"] = _calls(cts, priv.decrypt)
    out["addition"] = _calls(list(zip(cts, cts[1:] + cts[:1], strict=True)), lambda p: p[0] + p[1])
    exps = []
    for e in plan.exponent_bits:
        ks = [(1 << (e - 1)) | _random_below(1 << (e - 1), rng) for _ in cts]
        exps.append(_calls(list(zip(cts, ks, strict=True)), lambda ck: ck[0] * ck[1]))
    out["exponent_bit"] = exps
    out["inversion"] = _calls(cts, lambda c: -c)
    return out


def _he_section(bits_measured: dict[str, Any], plan: Plan) -> dict[str, float]:
    out = {}
    for op, m in bits_measured.items():
        if op == "exponent_bit":
            out[op] = _sig(fit_through_origin(plan.exponent_bits, [x.best for x in m]))
        else:
            out[op] = _sig(m.best)
    return out


# ------------------------------------------------------------------------------ profile


def _processor() -> str:
    name = platform.processor()
    if name and name != platform.machine():
        return name
    try:  # Linux leaves platform.processor() empty or the architecture: read the model
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return name or platform.machine()


def _machine() -> dict[str, Any]:
    gmpy2 = None
    if paillier.GMPY2 is not None:
        try:
            gmpy2 = importlib.metadata.version("gmpy2")
        except importlib.metadata.PackageNotFoundError:  # pragma: no cover
            gmpy2 = "unknown"
    return {
        "platform": platform.platform(),
        "processor": _processor(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "gmpy2": gmpy2,
        "cores": os.cpu_count() or 1,
    }


def calibrate(*, quick: bool = False, progress: bool = True) -> dict[str, Any]:
    """Time the MPC and HE kernels on this machine; return the profile as a plain dict.

    ``quick`` uses :data:`QUICK` (a few seconds, rougher numbers) instead of
    :data:`FULL`; ``progress`` shows a progress bar on stderr. See the module docstring
    for what is timed and how it is fitted.
    """
    from threadpoolctl import threadpool_limits
    from tqdm import tqdm

    plan = QUICK if quick else FULL
    mpc_seed, he_seed = np.random.SeedSequence(SEED).spawn(2)
    grid = plan.grid
    created = datetime.now(UTC).isoformat(timespec="seconds")
    bar = tqdm(
        total=len(grid) + len(plan.key_bits) + plan.passes * plan.measurements,
        desc="calibrate",
        unit="step",
        disable=not progress,
        file=sys.stderr,
        leave=False,
    )
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            bar.set_description("setting up")
            ridge, costs = [], []
            for (rows, features, epochs), seed in zip(grid, mpc_seed.spawn(len(grid)), strict=True):
                m, c = _ridge_measurement(rows, features, epochs, seed)
                ridge.append(m)
                costs.append(c)
                bar.update(1)
            he = {}
            for bits, seed in zip(plan.key_bits, he_seed.spawn(len(plan.key_bits)), strict=True):
                he[bits] = _he_measurements(bits, plan, seed)
                bar.update(1)
            every = list(ridge)
            for ops in he.values():
                for m in ops.values():
                    every.extend(m if isinstance(m, list) else [m])
            for i in range(plan.passes):
                bar.set_description(f"timing, pass {i + 1}/{plan.passes}")
                for m in every:
                    m.sample(plan.seconds / plan.passes)
                    bar.update(1)
    finally:
        bar.close()
    points = [(*g, m.best, c) for g, m, c in zip(grid, ridge, costs, strict=True)]
    return {
        "version": PROFILE_VERSION,
        "created": created,
        "machine": _machine(),
        "mpc": _mpc_section(points),
        "he": {
            "backend": paillier.BACKEND.name,
            "keys": {bits: _he_section(ops, plan) for bits, ops in he.items()},
        },
    }


_HEADER = """\
# Calibration profile of the secure-computation kernels: seconds per counted unit on
# the machine described below. Made by `{command}`.
# mpc: seconds ~ seconds_per_op * local_ops + seconds_per_dealer_byte * dealer_bytes
#      + seconds_per_round * rounds (mechanisms.privacy.mpc.Costs of secure_ridge, both
#      parties and the dealer in one process), non-negative least squares on relative
#      error over the grid below (seconds measured, fitted by the formula).
# he: seconds per operation at each key size (bits of n) with the backend named;
#     exponent_bit is per bit of the exponent k of c^k mod n^2, a least-squares fit
#     through the origin over 16- to 64-bit exponents.
# See mechanisms/privacy/calibrate.py.
"""


def write_profile(
    profile: dict[str, Any], path: str | os.PathLike, *, command: str = "mlmarket calibrate"
) -> Path:
    """Write ``profile`` as YAML at ``path`` (overwriting it), under a comment header.

    The header says what the numbers mean and that ``command`` made them. Returns the
    path written.
    """
    path = Path(path)
    text = yaml.safe_dump(profile, sort_keys=False, default_flow_style=None, width=100)
    path.write_text(_HEADER.format(command=command) + text, encoding="utf-8")
    return path

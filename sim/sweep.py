"""Parameter sweeps: sweep files, designs, common random numbers, execution and resume.

A sweep file names a base scenario, the overrides every point starts from, the
parameters to vary (by key path), the design that turns them into points and the number
of seeds per point::

    base: baseline              # a shipped scenario, or a path relative to this file
    overrides: {run.rounds: 40}
    vary:
      mechanisms.slashing.name: [none, burn_negative]
      population.free_riders.count: [0, 10, 40]
    design: grid                # grid | zip | random | latin_hypercube | sobol | saltelli
    seeds: 5                    # runs per point
    seed: 0                     # root seed of the sweep (default 0)
    metrics: [roi_by_type, metamodel.mean_corr]   # summary paths to keep (default: all)
    tables: false               # also write every run's tables (model, agents, ledger)

Designs. ``grid`` is the Cartesian product of the lists (first key slowest); ``zip``
pairs the i-th values of equally long lists, and is never implied. ``random``,
``latin_hypercube`` and ``sobol`` draw ``points: N`` points in the unit cube (numpy, or
``scipy.stats.qmc``, scrambled) and map coordinate u of each key to its range
``{low: a, high: b}`` as ``a + u (b - a)`` (``log: true``: log-uniform), to the integers
a..b with equal widths when both bounds are integers (unless the scenario holds a
float there: ``{low: 0, high: 1}`` of a probability is the interval), or to an item of
a list (equal probabilities). ``saltelli`` is the design of Saltelli et al. (2010) for Sobol'
indices: ``N * (D + 2)`` points in blocks A, B, AB_1..AB_D (AB_i is A with column i
from B), A and B from one scrambled Sobol' sequence of dimension 2D
(``analysis.sweep.sobol_indices`` reads them).

Common random numbers. Run ``s`` of every point runs with the same ``run.seed``:
``SeedSequence(seed, spawn_key=(0, s))`` as a 63-bit integer. Seeds are fixed before
anything is dispatched, so points differ only by their parameters and results are the
same on one worker, many, or a Dask cluster. The design's own draws use
``spawn_key=(1,)``.

The output folder::

    DIR/sweep.yaml              the resolved sweep: the base scenario in full, every key
    DIR/points.parquet          point_id -> parameters
    DIR/provenance.json         versions, git revision, command line
    DIR/runs.parquet/part-00000.parquet, part-00001.parquet, ...
    DIR/tables/point-00003-seed-001/   each run's folder, with ``tables: true``

Every finished run is one row of ``runs.parquet`` (a Parquet dataset folder): point_id,
seed (its index), run_seed, the parameters (columns named by key path), status (ok or
failed), error, wall_s and cpu_s (the run's wall-clock and CPU seconds in its worker), and
every scalar of the run summary under its dotted path
(``roi_by_type.free_rider``; a name that clashes with these columns gets ``summary.``
in front). Rows are buffered and written as a new part every ``part_rows`` rows or
``part_seconds`` seconds, each part to a hidden temporary name first and then renamed,
so a kill at any moment leaves complete parts (and at most a temporary file, removed on
``resume``). Resuming reads the (point_id, seed) pairs of the complete parts and runs
only the missing ones; a part that cannot be read is set aside and its runs redone.
"""

from __future__ import annotations

import contextlib
import difflib
import gc
import itertools
import json
import math
import os
import re
import signal
import sys
import time
import traceback
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from sim.config import ScenarioError, load_scenario, parse_yaml, shipped_scenarios

DESIGNS = ("grid", "zip", "random", "latin_hypercube", "sobol", "saltelli")
SPACE_FILLING = ("random", "latin_hypercube", "sobol", "saltelli")
KEYS = ("base", "overrides", "vary", "design", "points", "seeds", "seed", "metrics", "tables")
#: The columns of ``runs.parquet`` before the parameters, and after them.
ID_COLUMNS = ("point_id", "seed", "run_seed")
STATUS_COLUMNS = ("status", "error", "wall_s", "cpu_s")
MAX_POINTS = 1_000_000
MAX_SEEDS = 100_000
MAX_ERROR = 2_000  # characters of a failed run's error kept in the table
PART_ROWS = 500
PART_SECONDS = 10.0
RUNS = "runs.parquet"
LOCK = ".lock"
_RUN_STREAM, _DESIGN_STREAM = 0, 1
_DESIGN_ALIASES = {"lhs": "latin_hypercube", "product": "grid", "cartesian": "grid"}
_PATH = re.compile(r"[A-Za-z_]\w*(?:\.[\w/]+)+")


class SweepError(ScenarioError):
    """A sweep file, option or output folder that cannot be used, with a message for people."""


def _show(value: object, limit: int = 80) -> str:
    r = repr(value)
    return r if len(r) <= limit else f"{r[:limit]}... ({len(r)} characters)"


# --------------------------------------------------------------------------------------
# Designs and seeds
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Range:
    """A range ``{low: a, high: b}`` (optionally ``log: true``) of a space-filling design.

    A unit coordinate u in [0, 1) maps to ``a + u (b - a)``, or with ``log`` to
    ``exp(ln a + u (ln b - ln a))``. When both bounds are integers (and the scenario's
    value there is not a float) the range holds the integers a..b, each with the same
    width: ``a + floor(u (b + 1 - a))`` (with ``log``,
    ``floor(exp(ln a + u (ln(b + 1) - ln a)))``).
    """

    low: float
    high: float
    integer: bool = False
    log: bool = False

    def scale(self, u: np.ndarray) -> list[Any]:
        """Values for unit coordinates ``u``."""
        u = np.asarray(u, dtype=float)
        lo, hi = float(self.low), float(self.high) + (1.0 if self.integer else 0.0)
        if self.log:
            x = np.exp(np.log(lo) + u * (np.log(hi) - np.log(lo)))
        else:
            x = lo + u * (hi - lo)
        if self.integer:
            return [int(v) for v in np.clip(np.floor(x), self.low, self.high)]
        return [float(v) for v in np.clip(x, self.low, self.high)]

    def to_yaml(self) -> dict[str, Any]:
        """``{low, high}`` (and ``log: true``) as written in a sweep file."""
        out: dict[str, Any] = {"low": self.low, "high": self.high}
        if self.log:
            out["log"] = True
        return out


def _choose(values: Sequence[Any], u: np.ndarray) -> list[Any]:
    """Items of ``values`` for unit coordinates ``u`` (each item with width 1/len)."""
    n = len(values)
    return [values[min(int(x * n), n - 1)] for x in np.asarray(u, dtype=float)]


def _qmc_engine(name: str, d: int, rng: np.random.Generator):
    from scipy.stats import qmc

    cls = getattr(qmc, name)
    try:
        return cls(d, rng=rng)  # scipy >= 1.15
    except TypeError:
        return cls(d, seed=rng)


def unit_sample(design: str, d: int, n: int, seed: int) -> np.ndarray:
    """The design's points in the unit cube: an ``(n, d)`` array (``saltelli``: ``n (d + 2)``).

    Drawn from ``SeedSequence(seed, spawn_key=(1,))``; ``sobol`` and ``saltelli`` use a
    scrambled Sobol' sequence (its balance needs ``n`` a power of 2, but any ``n`` works).
    """
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_DESIGN_STREAM,)))
    if design == "random":
        return rng.random((n, d))
    if design == "latin_hypercube":
        return _qmc_engine("LatinHypercube", d, rng).random(n)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*balance properties.*")
        if design == "sobol":
            return _qmc_engine("Sobol", d, rng).random(n)
        if design == "saltelli":
            ab = _qmc_engine("Sobol", 2 * d, rng).random(n)
            a, b = ab[:, :d], ab[:, d:]
            blocks = [a, b]
            for i in range(d):
                abi = a.copy()
                abi[:, i] = b[:, i]
                blocks.append(abi)
            return np.vstack(blocks)
    raise ValueError(f"not a space-filling design: {design!r}")


def run_seed(root: int, s: int) -> int:
    """``run.seed`` of run ``s`` at every point (common random numbers).

    ``SeedSequence(root, spawn_key=(0, s))``'s first 64-bit word, shifted right by one
    bit so it fits the scenario's ``run.seed`` (0 .. 2**63 - 1).
    """
    ss = np.random.SeedSequence(root, spawn_key=(_RUN_STREAM, s))
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


# --------------------------------------------------------------------------------------
# The sweep file
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: the resolved base scenario, overrides, design and seeds.

    ``base`` is the base scenario as plain data with every default filled in (workers
    need no file), ``vary`` maps key paths to lists of values or :class:`Range`.
    """

    base: dict[str, Any]
    vary: dict[str, list[Any] | Range]
    overrides: dict[str, Any] = field(default_factory=dict)
    design: str = "grid"
    seeds: int = 1
    points: int | None = None
    seed: int = 0
    metrics: tuple[str, ...] | None = None
    tables: bool = False
    name: str = "sweep"
    base_ref: str = ""

    @property
    def parameters(self) -> list[str]:
        """The varied key paths, in file order (the parameter columns)."""
        return list(self.vary)

    @cached_property
    def design_points(self) -> list[tuple[Any, ...]]:
        """The values of :attr:`parameters` at every point, in point_id order."""
        dims = [self.vary[k] for k in self.vary]
        if self.design == "grid":
            return list(itertools.product(*dims))
        if self.design == "zip":
            return list(zip(*dims, strict=True))
        u = unit_sample(self.design, len(dims), int(self.points or 0), self.seed)
        cols = [
            d.scale(u[:, j]) if isinstance(d, Range) else _choose(d, u[:, j])
            for j, d in enumerate(dims)
        ]
        return list(zip(*cols, strict=True))

    @property
    def n_points(self) -> int:
        """Points in the design."""
        return len(self.design_points)

    @property
    def n_runs(self) -> int:
        """Points times seeds."""
        return self.n_points * self.seeds

    @cached_property
    def run_seeds(self) -> list[int]:
        """``run.seed`` of each seed index (the same at every point)."""
        return [run_seed(self.seed, s) for s in range(self.seeds)]

    @cached_property
    def column_kinds(self) -> dict[str, str]:
        """Each parameter column's type in the tables: bool, int, float or str."""
        out = {}
        for k, d in self.vary.items():
            vals = [d.low, d.high] if isinstance(d, Range) else list(d)
            if isinstance(d, Range):
                out[k] = "int" if d.integer else "float"
            elif all(isinstance(v, bool) for v in vals):
                out[k] = "bool"
            elif all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
                out[k] = "int"
            elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in vals):
                out[k] = "float"
            else:
                out[k] = "str"
        return out

    def point_params(self, point_id: int) -> dict[str, Any]:
        """``{key path: value}`` at one point, as the scenario gets them."""
        return dict(zip(self.vary, self.design_points[point_id], strict=True))

    def point_overrides(self, point_id: int) -> list[tuple[str, Any]]:
        """Every override of a point's scenario (``run.seed`` excluded)."""
        return [*self.overrides.items(), *self.point_params(point_id).items()]

    def scenario(self, point_id: int, seed: int = 0):
        """The validated scenario of run ``seed`` at ``point_id``."""
        return load_scenario(
            self.base,
            [*self.point_overrides(point_id), ("run.seed", self.run_seeds[seed])],
        )

    def columns(self, point_id: int) -> dict[str, Any]:
        """A point's parameters as table cells (see :attr:`column_kinds`)."""
        kinds = self.column_kinds
        return {k: _cell(v, kinds[k]) for k, v in self.point_params(point_id).items()}

    def points_frame(self):
        """``point_id`` and the parameter columns, one row per point (a DataFrame)."""
        import pandas as pd

        rows = [{"point_id": i, **self.columns(i)} for i in range(self.n_points)]
        return pd.DataFrame(rows, columns=["point_id", *self.parameters])

    def tasks(
        self, done: np.ndarray | None = None, tables: str | Path | None = None
    ) -> Iterator[Task]:
        """The runs not marked in ``done`` (points x seeds booleans), seed by seed.

        Seed 0 of every point comes first, so a partial sweep already covers the design.
        """
        for s in range(self.seeds):
            for p in range(self.n_points):
                if done is not None and done[p, s]:
                    continue
                folder = None
                if tables is not None:
                    folder = str(Path(tables) / f"point-{p:05d}-seed-{s:03d}")
                yield Task(
                    point_id=p,
                    seed=s,
                    run_seed=self.run_seeds[s],
                    params=tuple(self.columns(p).items()),
                    overrides=(*self.point_overrides(p), ("run.seed", self.run_seeds[s])),
                    base=self.base,
                    metrics=self.metrics,
                    tables=folder,
                )

    def to_dict(self) -> dict[str, Any]:
        """The resolved sweep as plain data: a sweep file that :func:`load_sweep` reads."""
        out: dict[str, Any] = {
            "base": self.base,
            "overrides": dict(self.overrides),
            "vary": {
                k: v.to_yaml() if isinstance(v, Range) else list(v) for k, v in self.vary.items()
            },
            "design": self.design,
        }
        if self.points is not None:
            out["points"] = self.points
        out["seeds"] = self.seeds
        out["seed"] = self.seed
        if self.metrics is not None:
            out["metrics"] = list(self.metrics)
        out["tables"] = self.tables
        return out

    def to_yaml(self) -> str:
        """:meth:`to_dict` as YAML, with a comment naming where it came from."""
        head = (
            f"# The resolved sweep {self.name!r} (base scenario {self.base_ref or 'inline'!s}, "
            "every default filled in).\n"
            "# `mlmarket sweep THIS_FILE --out DIR` runs it again.\n"
        )
        return head + yaml.safe_dump(self.to_dict(), sort_keys=False)


def _cell(value: Any, kind: str) -> Any:
    """A parameter value as a table cell of ``kind``."""
    if kind == "float":
        return float(value)
    if kind in ("int", "bool"):
        return value
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


def shipped_sweeps() -> list[str]:
    """Names of the sweep files shipped in ``scenarios/sweeps``."""
    root = resources.files("scenarios.sweeps")
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))


def _is_name(ref: str) -> bool:
    return not ref.endswith((".yaml", ".yml")) and "/" not in ref and "\\" not in ref


def load_sweep(
    ref: str | Path | Mapping[str, Any], base_dir: str | Path | None = None
) -> SweepSpec:
    """Read and validate a sweep: a file path, a shipped sweep name or a mapping.

    Every point's scenario is validated (with :func:`sim.config.load_scenario`) before
    this returns; anything wrong raises :class:`SweepError` naming the key. A ``base``
    path is relative to the sweep file's folder (``base_dir`` for a mapping, default
    the current folder).
    """
    if isinstance(ref, Mapping):
        where = "sweep"
        data = dict(ref)
        folder = Path(base_dir) if base_dir is not None else Path.cwd()
        name = "sweep"
    else:
        text, where, folder, name = _read_sweep(str(ref))
        data = parse_yaml(text, where)
        if base_dir is not None:
            folder = Path(base_dir)
    return _parse(data, where, folder, name)


def _read_sweep(ref: str) -> tuple[bytes, str, Path, str]:
    p = Path(ref)
    if _is_name(ref) and not p.exists():
        res = resources.files("scenarios.sweeps") / f"{ref}.yaml"
        if res.is_file():
            return res.read_bytes(), f"{ref}.yaml", Path.cwd(), ref
    if p.is_file():
        try:
            return p.read_bytes(), str(p), p.resolve().parent, p.stem
        except OSError as e:
            raise SweepError(f"{p}: cannot be read ({e.strerror})") from None
    if p.exists():
        raise SweepError(f"{p}: is not a file")
    names = shipped_sweeps()
    msg = f"sweep file {_show(ref)} not found"
    close = difflib.get_close_matches(p.stem, names, n=1, cutoff=0.6)
    if close:
        msg += f"; did you mean the shipped sweep {close[0]!r}?"
    raise SweepError(msg + f" (shipped: {', '.join(names)})")


def _unknown(where: str, key: object, allowed: Sequence[str]) -> str:
    msg = f"{where}: unknown key {_show(key)}"
    close = difflib.get_close_matches(str(key)[:200], list(allowed), n=1, cutoff=0.5)
    if close:
        msg += f"; did you mean {close[0]!r}?"
    return msg + f" (allowed: {', '.join(allowed)})"


def _int(where: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise SweepError(f"{where}: expected an integer in [{lo}, {hi}]; got {_show(value)}")
    return value


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _key_path(where: str, key: Any) -> str:
    if not isinstance(key, str) or not key or any(not p for p in key.split(".")):
        raise SweepError(
            f"{where}: {_show(key)} is not a key path like population.developers.count"
        )
    return key


def _load_base(ref: Any, where: str, folder: Path) -> tuple[dict[str, Any], str]:
    try:
        if isinstance(ref, Mapping):
            raw = dict(ref)
            parent = raw.get("extends")
            if isinstance(parent, str) and not (_is_name(parent) and parent in shipped_scenarios()):
                raw["extends"] = str((folder / parent).resolve())
            return load_scenario(raw).to_dict(), "inline"
        if not isinstance(ref, str) or not ref:
            raise SweepError(f"{where}: base: expected a scenario name or path; got {_show(ref)}")
        path = (folder / ref).resolve()
        if _is_name(ref) and (ref in shipped_scenarios() or not path.exists()):
            return load_scenario(ref).to_dict(), ref  # a shipped name (or a close one)
        return load_scenario(str(path)).to_dict(), ref
    except SweepError:
        raise
    except ScenarioError as e:
        raise SweepError(f"{where}: base: {e}") from None


def _lookup(data: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted key path of plain data (None when there is none)."""
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _vary_entry(
    where: str, key: str, value: Any, design: str, current: Any = None
) -> list[Any] | Range:
    at = f"{where}: vary.{key}"
    if isinstance(value, Mapping):
        if design not in SPACE_FILLING:
            raise SweepError(
                f"{at}: a range {{low, high}} needs a space-filling design "
                f"({', '.join(SPACE_FILLING)}); design {design} takes a list of values"
            )
        extra = sorted(set(value) - {"low", "high", "log"}, key=str)
        if extra:
            raise SweepError(_unknown(at, extra[0], ["low", "high", "log"]))
        missing = [k for k in ("low", "high") if k not in value]
        if missing:
            raise SweepError(f"{at}: a range needs low and high; missing {', '.join(missing)}")
        lo, hi, log = value["low"], value["high"], value.get("log", False)
        for k, x in (("low", lo), ("high", hi)):
            if not _number(x):
                raise SweepError(f"{at}.{k}: expected a finite number; got {_show(x)}")
        if lo > hi:
            raise SweepError(f"{at}: low {lo} > high {hi}; a range needs low <= high")
        if not isinstance(log, bool):
            raise SweepError(f"{at}.log: expected true or false; got {_show(log)}")
        if log and lo <= 0:
            raise SweepError(f"{at}: a log range needs low > 0; got low {lo}")
        # integer bounds mean integers, unless the scenario holds a number with a
        # fraction there ({low: 0, high: 1} of a probability is the interval)
        integer = isinstance(lo, int) and isinstance(hi, int) and not isinstance(current, float)
        return Range(lo, hi, integer=integer, log=log)
    if not isinstance(value, list):
        allowed = "a list of values" + (
            " or a range {low: A, high: B}" if design in SPACE_FILLING else ""
        )
        raise SweepError(f"{at}: expected {allowed}; got {_show(value)}")
    if not value:
        raise SweepError(f"{at}: the list of values is empty; give at least one value")
    return list(value)


def _parse(data: dict[str, Any], where: str, folder: Path, name: str) -> SweepSpec:
    for k in data:
        if k not in KEYS:
            raise SweepError(_unknown(where, k, KEYS))
    if "base" not in data:
        raise SweepError(
            f"{where}: base: missing; name a shipped scenario "
            f"({', '.join(shipped_scenarios())}) or a scenario file"
        )
    design = data.get("design", "grid")
    if not isinstance(design, str) or design not in DESIGNS:
        msg = f"{where}: design: unknown design {_show(design)}"
        close = difflib.get_close_matches(str(design), DESIGNS, n=1, cutoff=0.5)
        close = [_DESIGN_ALIASES[design]] if design in _DESIGN_ALIASES else close
        if close:
            msg += f"; did you mean {close[0]!r}?"
        raise SweepError(msg + f" (allowed: {', '.join(DESIGNS)})")

    overrides = data.get("overrides") or {}
    if not isinstance(overrides, Mapping):
        raise SweepError(
            f"{where}: overrides: expected a mapping of key paths to values; got {_show(overrides)}"
        )
    overrides = {_key_path(f"{where}: overrides", k): v for k, v in overrides.items()}

    vary_raw = data.get("vary")
    if not isinstance(vary_raw, Mapping) or not vary_raw:
        raise SweepError(
            f"{where}: vary: expected a mapping of key paths to lists of values (or ranges); "
            f"got {_show(vary_raw)}"
        )
    base, base_ref = _load_base(data["base"], where, folder)
    vary = {}
    for k, v in vary_raw.items():
        key = _key_path(f"{where}: vary", k)
        vary[key] = _vary_entry(where, key, v, design, _lookup(base, key))
    for key in [*overrides, *vary]:
        if key == "run.seed":
            section = "vary" if key in vary else "overrides"
            raise SweepError(
                f"{where}: {section}.run.seed: every run's seed comes from 'seeds' and the "
                "root 'seed' (the same seeds at every point); remove run.seed"
            )
    both = [k for k in vary if k in overrides]
    if both:
        raise SweepError(
            f"{where}: {both[0]} is in both overrides and vary; keep it in one of them"
        )

    points = data.get("points")
    if design in SPACE_FILLING:
        if points is None:
            raise SweepError(f"{where}: points: design {design} needs points: N (how many)")
        points = _int(f"{where}: points", points, 1, MAX_POINTS)
        if design == "saltelli" and points * (len(vary) + 2) > MAX_POINTS:
            raise SweepError(
                f"{where}: points: saltelli makes points * (parameters + 2) = "
                f"{points * (len(vary) + 2)} points; allowed: at most {MAX_POINTS}"
            )
    elif points is not None:
        raise SweepError(
            f"{where}: points: only for the designs {', '.join(SPACE_FILLING)}; "
            f"design {design} makes one point per combination of the lists"
        )
    if design == "zip":
        lengths = {k: len(v) for k, v in vary.items()}
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"{k}: {n}" for k, n in lengths.items())
            raise SweepError(
                f"{where}: vary: design zip pairs the i-th values of every key, so every list "
                f"needs the same length; got {shown}"
            )
    if design == "grid":
        n = math.prod(len(v) for v in vary.values())
        if n > MAX_POINTS:
            raise SweepError(
                f"{where}: vary: the grid has {n} points; allowed: at most {MAX_POINTS}"
            )

    seeds = _int(f"{where}: seeds", data.get("seeds", 1), 1, MAX_SEEDS)
    root = _int(f"{where}: seed", data.get("seed", 0), 0, 2**63 - 1)
    metrics = data.get("metrics")
    if metrics is not None:
        if (
            not isinstance(metrics, list)
            or not metrics
            or not all(isinstance(m, str) and m and "" not in m.split(".") for m in metrics)
        ):
            raise SweepError(
                f"{where}: metrics: expected a list of summary paths like metamodel.mean_corr "
                f"(a section keeps all its values); got {_show(metrics)}"
            )
        metrics = tuple(metrics)
    tables = data.get("tables", False)
    if not isinstance(tables, bool):
        raise SweepError(f"{where}: tables: expected true or false; got {_show(tables)}")

    spec = SweepSpec(
        base=base,
        vary=vary,
        overrides=overrides,
        design=design,
        seeds=seeds,
        points=points,
        seed=root,
        metrics=metrics,
        tables=tables,
        name=name,
        base_ref=base_ref,
    )
    _check_points(spec, where)
    return spec


def _blame(message: str, spec: SweepSpec) -> str | None:
    """The ``vary.KEY`` or ``overrides.KEY`` a scenario error is about, if it names one."""
    for path in _PATH.findall(message):
        for section, keys in (("vary", spec.vary), ("overrides", spec.overrides)):
            for k in keys:
                if k == path or k.startswith(path + ".") or path.startswith(k + "."):
                    return f"{section}.{k}"
    return None


def _check_points(spec: SweepSpec, where: str) -> None:
    """Validate the scenario at every point (``run.seed`` aside, seeds cannot break it)."""
    seen: set[str] = set()
    for i, values in enumerate(spec.design_points):
        ident = repr(values)
        if ident in seen:  # a repeated point (a zip or a categorical design) validates once
            continue
        seen.add(ident)
        try:
            load_scenario(spec.base, spec.point_overrides(i))
        except ScenarioError as e:
            params = spec.point_params(i)
            blame = _blame(str(e), spec)
            if blame and blame.startswith("vary."):
                key = blame[5:]
                raise SweepError(
                    f"{where}: {blame} = {_show(params[key])} (point {i}): {e}"
                ) from None
            shown = ", ".join(f"{k}={_show(v, 40)}" for k, v in params.items())
            raise SweepError(
                f"{where}: {blame + ' at ' if blame else ''}point {i} ({shown}): {e}"
            ) from None


# --------------------------------------------------------------------------------------
# One run (the task every worker executes)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """One run of a sweep, as plain data: what a local process or a Dask worker gets."""

    point_id: int
    seed: int
    run_seed: int
    params: tuple[tuple[str, Any], ...]
    overrides: tuple[tuple[str, Any], ...]
    base: dict[str, Any]
    metrics: tuple[str, ...] | None = None
    tables: str | None = None


def flatten(summary: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Every scalar (number, bool, string) of a nested summary, keyed by its dotted path.

    Lists, ``None`` and other non-scalars are skipped.
    """
    out: dict[str, Any] = {}
    for k, v in summary.items():
        path = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, path + "."))
        elif isinstance(v, np.generic):
            out[path] = v.item()
        elif isinstance(v, bool | int | float | str):
            out[path] = v
    return out


def keep_metric(column: str, metrics: Sequence[str] | None) -> bool:
    """Whether ``column`` is one of ``metrics`` or lies under one (None keeps all)."""
    if metrics is None:
        return True
    return any(column == m or column.startswith(m + ".") for m in metrics)


def _simulate(task: Task):
    """Run a task's scenario (a :class:`sim.runner.RunResult`)."""
    from sim.runner import run

    with _forget_models():
        return run(load_scenario(task.base, task.overrides))


@contextlib.contextmanager
def _forget_models():
    """Let the models made inside the block be freed once nothing else holds them.

    mesa before 3.4 keeps every model it ever saw in the class attribute
    ``mesa.Agent._ids`` (mesa issue #3179, fixed by mesa PR #3180), so a worker's
    memory grew by the whole model with each run. Only the keys added inside the block
    are dropped; other live models keep theirs. Does nothing on a fixed mesa.
    """
    import mesa

    ids = getattr(mesa.Agent, "_ids", None)
    before = {id(k) for k in ids} if isinstance(ids, dict) else set()
    try:
        yield
    finally:
        if isinstance(ids, dict):
            for k in [k for k in ids if id(k) not in before]:
                del ids[k]


def _error_text(e: BaseException) -> str:
    """``Type: message (at file:line)``, the innermost frame, cut to ``MAX_ERROR``."""
    text = f"{type(e).__name__}: {e}"
    tb = traceback.extract_tb(e.__traceback__)
    if tb:
        f = tb[-1]
        text += f" (at {Path(f.filename).name}:{f.lineno} in {f.name})"
    return text[:MAX_ERROR]


def run_task(task: Task) -> dict[str, Any]:
    """Run one task and return its row; an exception becomes ``status: failed``."""
    t0, c0 = time.perf_counter(), time.process_time()
    row: dict[str, Any] = {
        "point_id": task.point_id,
        "seed": task.seed,
        "run_seed": task.run_seed,
        **dict(task.params),
        "status": "ok",
        "error": None,
        "wall_s": 0.0,
        "cpu_s": 0.0,
    }
    metrics: dict[str, Any] = {}
    try:
        result = _simulate(task)
        for k, v in flatten(result.summary).items():
            if keep_metric(k, task.metrics):
                metrics[f"summary.{k}" if k in row else k] = v
        if task.tables is not None:
            result.write(task.tables)
    except Exception as e:  # a failing run is recorded and the sweep goes on
        row["status"] = "failed"
        row["error"] = _error_text(e)
        metrics = {}
    result = None
    _release_garbage()
    row["wall_s"] = time.perf_counter() - t0
    row["cpu_s"] = time.process_time() - c0
    row.update(metrics)
    return row


def _release_garbage() -> None:
    """Free a finished run's objects now, cheaply.

    A run leaves reference cycles (agents and their model) that Python collects only
    in its rare full collections, so a worker's memory crept up run after run. A full
    collection scans every object, imports included (~0.1 s on a sweep worker), so the
    objects alive after the first run (modules, caches) are moved to the permanent
    generation (``gc.freeze``) and later collections scan only what runs create
    (under a millisecond). :class:`_Serial` unfreezes them when its sweep ends.
    """
    gc.collect()
    if gc.get_freeze_count() == 0:
        gc.freeze()


def failed_row(task: Task, error: str) -> dict[str, Any]:
    """The row of a task that did not come back from its worker."""
    return {
        "point_id": task.point_id,
        "seed": task.seed,
        "run_seed": task.run_seed,
        **dict(task.params),
        "status": "failed",
        "error": error[:MAX_ERROR],
        "wall_s": float("nan"),
        "cpu_s": float("nan"),
    }


# --------------------------------------------------------------------------------------
# Streaming Parquet parts
# --------------------------------------------------------------------------------------


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """``write(temp)`` to a hidden temporary name beside ``path``, sync, rename over ``path``."""
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _arrow_table(rows: list[dict[str, Any]], kinds: Mapping[str, str]):
    """A Parquet-ready table of ``rows`` with stable column types.

    Ids are int64, ``status`` and ``error`` strings, ``wall_s`` and ``cpu_s`` float64, parameters
    follow ``kinds``. A metric is bool or int64 when all its values are, else float64
    when all are numbers, else string (a summary value keeps its type from run to run,
    so parts agree); a failed run's metrics are nulls.
    """
    import pyarrow as pa

    types = {
        "point_id": pa.int64(),
        "seed": pa.int64(),
        "run_seed": pa.int64(),
        "status": pa.string(),
        "error": pa.string(),
        "wall_s": pa.float64(),
        "cpu_s": pa.float64(),
    }
    arrow = {"bool": pa.bool_(), "int": pa.int64(), "float": pa.float64(), "str": pa.string()}
    types.update({k: arrow[v] for k, v in kinds.items()})
    names: dict[str, None] = {}
    for r in rows:
        names.update(dict.fromkeys(r))
    arrays, fields = [], []
    for name in names:
        vals = [r.get(name) for r in rows]
        typ = types.get(name)
        if typ is None:
            present = [v for v in vals if v is not None]
            if present and all(isinstance(v, bool) for v in present):
                typ = pa.bool_()
            elif present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
                typ = pa.int64()
            elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
                typ = pa.float64()
                vals = [None if v is None else float(v) for v in vals]
            else:
                typ = pa.string()
        if typ == pa.string():
            vals = [None if v is None else str(v) for v in vals]
        arrays.append(pa.array(vals, type=typ))
        fields.append(name)
    return pa.Table.from_arrays(arrays, names=fields)


def part_name(index: int) -> str:
    """File name of part ``index`` of ``runs.parquet``."""
    return f"part-{index:05d}.parquet"


def _part_index(path: Path) -> int | None:
    stem = path.name
    if not (stem.startswith("part-") and stem.endswith(".parquet")):
        return None
    digits = stem[5:-8]
    return int(digits) if digits.isdigit() else None


class PartWriter:
    """Buffers rows and writes them as new parts of a Parquet dataset folder.

    A part is written every ``rows`` rows or ``seconds`` seconds (checked on
    :meth:`add` and :meth:`tick`), to a hidden temporary name and renamed into place,
    so a reader (or a resume) sees whole parts only. Memory holds at most ``rows`` rows.
    """

    def __init__(
        self,
        folder: str | Path,
        kinds: Mapping[str, str],
        start: int = 0,
        rows: int = PART_ROWS,
        seconds: float = PART_SECONDS,
    ):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.kinds = dict(kinds)
        self.index = start
        self.rows = rows
        self.seconds = seconds
        self.buffer: list[dict[str, Any]] = []
        self.since = time.monotonic()

    def add(self, row: dict[str, Any]) -> None:
        """Buffer one row; write a part when the buffer is full or old enough."""
        if not self.buffer:
            self.since = time.monotonic()
        self.buffer.append(row)
        self.tick()

    def tick(self) -> None:
        """Write a part if the buffer is full or older than ``seconds``."""
        if self.buffer and (
            len(self.buffer) >= self.rows or time.monotonic() - self.since >= self.seconds
        ):
            self.flush()

    def flush(self) -> Path | None:
        """Write the buffered rows as the next part now (None when there are none)."""
        if not self.buffer:
            return None
        import pyarrow.parquet as pq

        table = _arrow_table(self.buffer, self.kinds)
        path = self.folder / part_name(self.index)
        _atomic_write(path, lambda tmp: pq.write_table(table, tmp))
        self.index += 1
        self.buffer = []
        return path


@dataclass
class PartScan:
    """What the parts of a ``runs.parquet`` folder hold (see :func:`scan_parts`)."""

    done: np.ndarray  # points x seeds booleans
    failed: int = 0
    duplicates: int = 0
    next_index: int = 0
    broken: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def scan_parts(folder: str | Path, n_points: int, seeds: int, repair: bool = False) -> PartScan:
    """The finished (point_id, seed) pairs in the complete parts of ``folder``.

    A part that cannot be read (a file left half-written by a power cut) is listed in
    ``broken``; with ``repair`` it is renamed to a hidden ``.NAME.broken`` file (its runs
    count as missing) and leftover temporary files are deleted (``removed``).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = Path(folder)
    scan = PartScan(np.zeros((n_points, seeds), dtype=bool))
    if not folder.is_dir():
        return scan
    top = -1
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") and path.name.endswith(".tmp"):
            scan.removed.append(path.name)
            if repair:
                path.unlink(missing_ok=True)
            continue
        index = _part_index(path)
        if index is None:
            continue
        try:
            t = pq.read_table(path, columns=["point_id", "seed", "status"])
        except (pa.ArrowException, OSError, ValueError):
            scan.broken.append(path.name)
            if repair:
                os.replace(path, path.with_name(f".{path.name}.broken"))
            else:
                top = max(top, index)
            continue
        top = max(top, index)
        p = t.column("point_id").to_numpy().astype(np.int64)
        s = t.column("seed").to_numpy().astype(np.int64)
        status = np.asarray(t.column("status").to_pylist(), dtype=object)
        ok = (p >= 0) & (p < n_points) & (s >= 0) & (s < seeds)
        keys, first = np.unique(p[ok] * seeds + s[ok], return_index=True)
        already = scan.done.flat[keys]
        scan.duplicates += int(ok.sum()) - len(keys) + int(already.sum())
        scan.done.flat[keys[~already]] = True
        scan.failed += int((status[ok][first[~already]] == "failed").sum())
    scan.next_index = top + 1
    return scan


# --------------------------------------------------------------------------------------
# Executors: one process, local processes, Dask
# --------------------------------------------------------------------------------------


class WorkerLost(Exception):
    """The process running a task died (the task's own fault or not)."""


class SweepAborted(Exception):
    """The executor failed as a whole (a lost cluster); finished runs are saved."""


def _worker_init(main_pid: int) -> None:
    """Set up a local worker process: Ctrl-C is for the sweep's main process (which
    stops the workers), and the worker exits when the main process is gone (killed with
    SIGKILL, its pool could not stop it), checking once a second."""
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            try:
                os.kill(main_pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:  # pragma: no cover - the pid was reused by another user
                os._exit(1)

    threading.Thread(target=watch, name="mlmarket-orphan-watch", daemon=True).start()


class _Serial:
    """Runs each task in this process when it is submitted (``--workers 1``)."""

    label = "1 process (in-process)"

    def __init__(self, fn: Callable | None = None) -> None:
        self.fn = fn or run_task
        self.frozen = gc.get_freeze_count() > 0  # whether someone else froze objects

    def capacity(self) -> int:
        return 1

    def submit(self, task: Task):
        from concurrent.futures import Future

        fut: Future = Future()
        fut.set_result(self.fn(task))
        return fut

    def wait(self, handles: list, timeout: float) -> list:
        return [h for h in handles if h.done()]

    def outcome(self, handle, task: Task) -> dict[str, Any]:
        return handle.result()

    def close(self, abort: bool = False) -> None:
        if not self.frozen:
            gc.unfreeze()  # undo _release_garbage's freeze in this process


class _LocalPool:
    """A pool of worker processes (``forkserver`` where there is one, else ``spawn``)."""

    def __init__(self, workers: int, fn: Callable | None = None):
        import multiprocessing as mp

        methods = mp.get_all_start_methods()
        self.context = mp.get_context("forkserver" if "forkserver" in methods else "spawn")
        self.fn = fn or run_task
        self.workers = workers
        self.label = f"{workers} local processes"
        self.pool = None
        self.broken = False

    def _start(self) -> None:
        from concurrent.futures import ProcessPoolExecutor

        self.pool = ProcessPoolExecutor(
            self.workers,
            mp_context=self.context,
            initializer=_worker_init,
            initargs=(os.getpid(),),
        )
        self.broken = False

    def capacity(self) -> int:
        return 2 * self.workers

    def submit(self, task: Task):
        if self.pool is None or self.broken:
            if self.pool is not None:
                self.pool.shutdown(wait=False, cancel_futures=True)
            self._start()
        return self.pool.submit(self.fn, task)

    def wait(self, handles: list, timeout: float) -> list:
        from concurrent.futures import FIRST_COMPLETED, wait

        done, _ = wait(handles, timeout=timeout, return_when=FIRST_COMPLETED)
        return list(done)

    def outcome(self, handle, task: Task) -> dict[str, Any]:
        from concurrent.futures.process import BrokenProcessPool

        try:
            return handle.result()
        except BrokenProcessPool as e:
            self.broken = True
            raise WorkerLost(str(e) or "a worker process died") from None

    def close(self, abort: bool = False) -> None:
        if self.pool is None:
            return
        if not abort:
            self.pool.shutdown(wait=True)
            return
        self.pool.shutdown(wait=False, cancel_futures=True)
        stop = getattr(self.pool, "terminate_workers", None)  # Python >= 3.14
        if stop is not None:
            stop()
            return
        for proc in list((getattr(self.pool, "_processes", None) or {}).values()):
            with contextlib.suppress(Exception):
                proc.terminate()


def connect_dask(scheduler: str, workers: int):
    """``(client, cluster, label)`` for an existing scheduler or ``local`` (a LocalCluster).

    ``cluster`` is None for an existing scheduler. Raises :class:`SweepError` when the
    scheduler cannot be reached or dask distributed is missing.
    """
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError:  # pragma: no cover - a dependency of mlmarket
        raise SweepError(
            "--scheduler needs dask distributed: pip install 'dask[distributed]'"
        ) from None
    cluster = None
    try:
        if scheduler == "local":
            # the statistical profiler samples the running task's stack every 10 ms,
            # which slows pure-Python runs down by taking the GIL
            with dask.config.set({"distributed.worker.profile.enabled": False}):
                cluster = LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                )
            return Client(cluster), cluster, f"Dask LocalCluster of {workers} processes"
        return Client(scheduler, timeout="10s"), None, f"Dask cluster at {scheduler}"
    except (OSError, TimeoutError) as e:
        if cluster is not None:
            cluster.close()
        raise SweepError(f"--scheduler {scheduler}: cannot reach the scheduler ({e})") from None


class _Dask:
    """A Dask distributed client: an existing scheduler, or a LocalCluster (``local``)."""

    def __init__(self, scheduler: str, workers: int, fn: Callable | None = None):
        self.client, self.cluster, self.label = connect_dask(scheduler, workers)
        self.fn = fn or run_task
        self._threads = 1
        self._checked = -math.inf

    def capacity(self) -> int:
        now = time.monotonic()
        if now - self._checked > 5.0:
            with contextlib.suppress(Exception):
                self._threads = max(1, sum(self.client.nthreads().values()))
            self._checked = now
        return 4 * self._threads

    def submit(self, task: Task):
        return self.client.submit(self.fn, task, pure=False)

    def wait(self, handles: list, timeout: float) -> list:
        from distributed import wait

        with contextlib.suppress(TimeoutError):
            wait(handles, timeout=timeout, return_when="FIRST_COMPLETED")
        return [h for h in handles if h.done()]

    def outcome(self, handle, task: Task) -> dict[str, Any]:
        from distributed import KilledWorker

        try:
            return handle.result()
        except KilledWorker as e:  # Dask already retried it on other workers
            return failed_row(task, f"KilledWorker: the workers running it died ({e})")
        except Exception as e:
            raise SweepAborted(f"the Dask cluster failed: {type(e).__name__}: {e}") from None

    def close(self, abort: bool = False) -> None:
        with contextlib.suppress(Exception):
            self.client.close()
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.close()


def default_workers() -> int:
    """Cores this process may use (``sched_getaffinity``, else ``os.cpu_count``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


def make_executor(workers: int, scheduler: str | None, fn: Callable | None = None):
    """The executor for ``--workers`` and ``--scheduler`` (one code path for all three).

    ``fn`` is the module-level function each task is handed to (default
    :func:`run_task`, a sweep's run; ``mlmarket check`` passes its own).
    """
    if scheduler is not None:
        return _Dask(scheduler, workers, fn)
    if workers == 1:
        return _Serial(fn)
    return _LocalPool(workers, fn)


# --------------------------------------------------------------------------------------
# Progress
# --------------------------------------------------------------------------------------


class _Progress:
    """A tqdm bar on a terminal; a plain line every ``every`` seconds in a log."""

    def __init__(self, total: int, initial: int, label: str, show: bool, every: float = 30.0):
        self.total, self.initial, self.n, self.failed = total, initial, initial, 0
        self.bar = None
        self.show = show
        self.every = every
        self.t0 = self.last = time.monotonic()
        self.label = label
        if show and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, unit="run", desc=label, file=sys.stderr)

    def update(self, row: dict[str, Any]) -> None:
        self.n += 1
        if row.get("status") == "failed":
            self.failed += 1
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(failed=self.failed, refresh=False)
        elif self.show and time.monotonic() - self.last >= self.every:
            self._line()

    def _line(self) -> None:
        self.last = time.monotonic()
        ran = self.n - self.initial
        rate = ran / max(self.last - self.t0, 1e-9)
        left = (self.total - self.n) / rate if rate > 0 else float("inf")
        eta = f"{left:.0f} s left" if math.isfinite(left) else "time left unknown"
        print(
            f"{self.label}: {self.n}/{self.total} runs, {self.failed} failed, "
            f"{rate:.2f} runs/s, {eta}",
            file=sys.stderr,
            flush=True,
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# --------------------------------------------------------------------------------------
# Running a sweep
# --------------------------------------------------------------------------------------


@dataclass
class SweepOutcome:
    """What :func:`run_sweep` did: counts, time and the executor."""

    out: Path
    points: int
    seeds: int
    total: int
    done_before: int
    ran: int
    failed: int  # in the whole sweep, earlier sessions included
    wall: float
    executor: str
    complete: bool
    errors: list[str] = field(default_factory=list)  # a few examples
    unmatched_metrics: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)


def _first_difference(a: Any, b: Any, path: str = "") -> str | None:
    """The first key path where ``a`` and ``b`` differ (None when equal)."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for k in list(a) + [k for k in b if k not in a]:
            where = f"{path}.{k}" if path else str(k)
            if k not in a or k not in b:
                return where
            d = _first_difference(a[k], b[k], where)
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            d = _first_difference(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    return None if a == b else (path or "the top level")


def _check_resume(out: Path, spec: SweepSpec) -> None:
    saved_path = out / "sweep.yaml"
    saved = parse_yaml(saved_path.read_bytes(), str(saved_path))
    diff = _first_difference(saved, spec.to_dict())
    if diff:
        raise SweepError(
            f"--resume: this sweep differs from {saved_path} at {diff}; --resume continues "
            "only the same sweep (give another --out for a new one)"
        )
    points_path = out / "points.parquet"
    if points_path.is_file():
        import pandas as pd

        try:
            stored = pd.read_parquet(points_path)
        except Exception as e:
            raise SweepError(f"--resume: {points_path} cannot be read ({e})") from None
        mine = spec.points_frame()
        same = list(stored.columns) == list(mine.columns) and len(stored) == len(mine)
        if same:
            for c in mine.columns:
                a, b = stored[c].to_numpy(), mine[c].to_numpy()
                if not (a == b).all():
                    same = False
                    break
        if not same:
            raise SweepError(
                f"--resume: the design's points differ from {points_path} (another scipy or "
                "mlmarket version?); finish the sweep with the versions that started it"
            )


def _start(out: Path, spec: SweepSpec, command: list[str] | None) -> None:
    """Write sweep.yaml, points.parquet and provenance.json (sweep.yaml last)."""
    from sim.runner import provenance

    (out / RUNS).mkdir(parents=True, exist_ok=True)
    frame = spec.points_frame()
    _atomic_write(out / "points.parquet", lambda tmp: frame.to_parquet(tmp, index=False))
    prov = provenance(load_scenario(spec.base), command)
    prov.pop("seed", None)
    prov["sweep"] = {"points": spec.n_points, "seeds": spec.seeds, "root_seed": spec.seed}
    text = json.dumps(prov, indent=2) + "\n"
    _atomic_write(out / "provenance.json", lambda tmp: tmp.write_text(text, encoding="utf-8"))
    _atomic_write(out / "sweep.yaml", lambda tmp: tmp.write_text(spec.to_yaml(), encoding="utf-8"))


def prepare_sweep_output(out: str | Path, spec: SweepSpec, resume: bool) -> tuple[Path, bool]:
    """Check ``out`` for a fresh sweep or a resume; return it and whether to start fresh.

    A fresh sweep needs ``out`` missing or empty; ``resume`` needs the same sweep in it
    (or nothing yet).
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise SweepError(f"--out {out} is a file; give a folder")
    entries = [p for p in out.iterdir() if p.name != LOCK] if out.is_dir() else []
    if not resume:
        if entries:
            raise SweepError(
                f"--out {out} is not empty; add --resume to continue the sweep in it, "
                "or give another --out"
            )
        return out, True
    if (out / "sweep.yaml").is_file():
        _check_resume(out, spec)
        return out, False
    parts = [p for p in (out / RUNS).glob("part-*.parquet")] if (out / RUNS).is_dir() else []
    if parts:
        raise SweepError(f"--resume: {out} holds runs but no sweep.yaml; it cannot be resumed")
    foreign = [p.name for p in entries if p.name not in (RUNS, "points.parquet", "provenance.json")]
    if foreign:
        raise SweepError(f"--resume: {out} holds no sweep (no sweep.yaml, but {foreign[0]})")
    return out, True


def run_sweep(
    spec: SweepSpec,
    out: str | Path,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    resume: bool = False,
    progress: bool = False,
    max_runs: int | None = None,
    part_rows: int = PART_ROWS,
    part_seconds: float = PART_SECONDS,
    command: list[str] | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> SweepOutcome:
    """Run ``spec`` into the folder ``out`` and return what happened.

    ``workers`` local processes (default: the cores; 1 runs in this process), or the
    Dask cluster at ``scheduler`` (``"local"`` starts a LocalCluster of ``workers``
    processes). ``resume`` continues a sweep already in ``out``. ``max_runs`` stops
    after starting that many runs (for tests of resuming). ``on_row`` is called in this
    process with each finished run's row. Ctrl-C (KeyboardInterrupt) saves every
    finished run before it propagates.
    """
    workers = workers or default_workers()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise SweepError(f"--out {out} is a file; give a folder")
    prepare_dir(out)
    with _locked(out):
        return _run_locked(
            spec,
            out,
            workers,
            scheduler,
            resume,
            progress,
            max_runs,
            part_rows,
            part_seconds,
            command,
            on_row,
        )


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    """Hold ``out/.lock`` (an advisory ``flock``, freed by the system however the process
    ends), so two sweeps never write parts into one folder at once."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock
        yield
        return
    with open(out / LOCK, "a+") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise SweepError(
                f"--out {out}: another sweep is writing there now; wait for it or stop it"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _run_locked(
    spec: SweepSpec,
    out: Path,
    workers: int,
    scheduler: str | None,
    resume: bool,
    progress: bool,
    max_runs: int | None,
    part_rows: int,
    part_seconds: float,
    command: list[str] | None,
    on_row: Callable[[dict[str, Any]], None] | None,
) -> SweepOutcome:
    out, fresh = prepare_sweep_output(out, spec, resume)
    t0 = time.perf_counter()
    executor = make_executor(workers, scheduler)  # before writing: it may fail to connect
    writer = bar = None
    ran = 0
    abort = True
    try:
        if fresh:
            _start(out, spec, command)
        scan = scan_parts(out / RUNS, spec.n_points, spec.seeds, repair=True)
        done_before = int(scan.done.sum())
        total = spec.n_runs
        writer = PartWriter(out / RUNS, spec.column_kinds, scan.next_index, part_rows, part_seconds)
        tables = (out / "tables").resolve() if spec.tables else None  # workers' cwd may differ
        tasks = spec.tasks(scan.done, tables)
        failed = scan.failed
        errors: list[str] = []
        unmatched = list(spec.metrics or ())
        bar = _Progress(total, done_before, spec.name, progress)
        suspects: deque[Task] = deque()
        in_flight: dict[Any, tuple[Task, bool]] = {}
        submitted = 0
        exhausted = False
        while True:
            while True:
                if suspects:
                    if in_flight:
                        break
                    task, alone = suspects.popleft(), True
                else:
                    if exhausted or len(in_flight) >= executor.capacity():
                        break
                    if max_runs is not None and submitted >= max_runs:
                        break
                    task = next(tasks, None)
                    if task is None:
                        exhausted = True
                        break
                    alone = False
                    submitted += 1
                in_flight[executor.submit(task)] = (task, alone)
            if not in_flight:
                break
            for handle in executor.wait(list(in_flight), timeout=1.0):
                task, alone = in_flight.pop(handle)
                try:
                    row = executor.outcome(handle, task)
                except WorkerLost as e:
                    if not alone:  # run the suspects one at a time to find the culprit
                        suspects.append(task)
                        continue
                    row = failed_row(task, f"WorkerLost: its worker process died ({e})")
                ran += 1
                if row["status"] == "failed":
                    failed += 1
                    if len(errors) < 3:
                        errors.append(f"point {task.point_id} seed {task.seed}: {row['error']}")
                elif unmatched:
                    unmatched = [m for m in unmatched if not any(keep_metric(c, [m]) for c in row)]
                writer.add(row)
                bar.update(row)
                if on_row is not None:
                    on_row(row)
            writer.tick()
        abort = False
    finally:
        if writer is not None:
            writer.flush()
        executor.close(abort=abort)
        if bar is not None:
            bar.close()
    finished = done_before + ran
    return SweepOutcome(
        out=out,
        points=spec.n_points,
        seeds=spec.seeds,
        total=total,
        done_before=done_before,
        ran=ran,
        failed=failed,
        wall=time.perf_counter() - t0,
        executor=executor.label,
        complete=finished >= total,
        errors=errors,
        unmatched_metrics=unmatched if ran - (failed - scan.failed) > 0 else [],
        repaired=[*scan.broken, *scan.removed],
    )


def prepare_dir(out: Path) -> None:
    """Create ``out`` and prove it is writable, or raise :class:`SweepError`."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise SweepError(f"--out {str(out)!r} is not writable: {e.strerror}") from None


def format_outcome(o: SweepOutcome, spec: SweepSpec) -> str:
    """A few lines saying what a sweep did."""
    rate = o.ran / o.wall if o.wall > 0 else 0.0
    lines = [
        f"mlmarket sweep {spec.name}: {o.points} points x {o.seeds} seeds = {o.total} runs "
        f"({spec.design}) on {o.executor}",
    ]
    if o.done_before:
        lines.append(f"  resumed: {o.done_before} runs were already done")
    lines.append(f"  ran {o.ran} in {o.wall:.1f} s ({rate:.2f} runs/s); {o.failed} failed")
    lines += [f"  failed: {e}" for e in o.errors]
    if not o.complete:
        left = o.total - o.done_before - o.ran
        lines.append(f"  stopped with {left} runs to go; `--resume` continues")
    return "\n".join(lines)

"""The prediction task behind the market (a small interface, so other tasks can plug in).

:class:`CrossSectionTask` is the default: every round is an era of ``A`` assets (as
Numerai's eras). Latent features ``x_t`` (``A x F``, i.i.d. standard normal, ``F =
groups * features_per_group``) drive the round's target

    r_t = x_t @ beta + noise * e_t,   e_t ~ N(0, I_A),

with ``beta`` drawn once per run and scaled so that ``Var(x @ beta) = signal``. The best
possible correlation with the target is therefore ``sqrt(signal / (signal + noise^2))``.
The target of round ``t`` resolves at round ``t + lag``.

A provider sees one feature group through its own noise ``sigma``:
``z_t = x_t[:, group] + sigma * u_t``. Its true data quality is ``1 / (1 + sigma^2)``,
the share of the feed's variance that is signal.
"""

from __future__ import annotations

import math
from concurrent.futures import Executor, Future
from typing import Protocol

import numpy as np

from sim.config import TaskConfig


class Task(Protocol):
    """What the engine needs from a task."""

    n_assets: int
    feed_dim: int

    def draw(self) -> tuple[np.ndarray, np.ndarray]:
        """This round's latent features and target."""
        ...

    def observe(self, x: np.ndarray, groups: np.ndarray, noise: np.ndarray) -> np.ndarray:
        """Every provider's feed for features ``x``: array ``(P, A, feed_dim)``."""
        ...

    def draw_ahead(self, providers: int, pool: Executor) -> None:
        """Start drawing the random numbers of the next :meth:`draw` and :meth:`observe`
        (for ``providers`` feeds) in ``pool``; the results must not depend on it."""
        ...


class NormalStream:
    """The standard normals of one generator, in order, optionally drawn ahead in a
    background thread.

    NumPy's ``Generator`` makes each standard normal from the bit stream on its own
    (ziggurat method, no cached second value), so ``standard_normal(n)`` followed by
    ``standard_normal(m)`` gives the first ``n`` and the next ``m`` numbers of
    ``standard_normal(n + m)``: drawing ahead, in chunks of any size, gives the same
    numbers as drawing each array when it is needed. The generator releases the GIL
    while it fills an array, so a draw ahead runs beside the caller on another core.
    """

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self._ahead = np.empty(0)  # drawn and not used yet, in order
        self._job: Future | None = None

    def draw(self, shape: tuple[int, ...]) -> np.ndarray:
        """The next ``prod(shape)`` normals as an array of ``shape`` that no other draw
        shares (a piece of the numbers drawn ahead, when they suffice), the ones drawn
        ahead first (waiting for a draw in progress)."""
        n = math.prod(shape)
        self._wait()
        have = self._ahead
        if have.size >= n:
            out, self._ahead = have[:n], have[n:]
        elif have.size:
            out = np.concatenate([have, self.rng.standard_normal(n - have.size)])
            self._ahead = have[:0]
        else:
            out = self.rng.standard_normal(n)
        return out.reshape(shape)

    def draw_ahead(self, n: int, pool: Executor) -> None:
        """Have at least the next ``n`` normals drawn ahead: draw what is missing in
        ``pool``."""
        self._wait()
        if n > self._ahead.size:
            self._job = pool.submit(self._fill, n - self._ahead.size)

    def _fill(self, n: int) -> None:
        more = self.rng.standard_normal(n)
        self._ahead = np.concatenate([self._ahead, more]) if self._ahead.size else more

    def _wait(self) -> None:
        job, self._job = self._job, None
        if job is not None:
            job.result()


class CrossSectionTask:
    """A cross-section of assets per round; linear signal plus noise."""

    def __init__(self, cfg: TaskConfig, rng: np.random.Generator):
        self.cfg = cfg
        self.rng = rng
        self.n_assets = cfg.assets
        self.n_groups = cfg.feature_groups
        self.feed_dim = cfg.features_per_group
        n_features = self.n_groups * self.feed_dim
        beta = rng.normal(size=n_features)
        self.beta = beta * np.sqrt(cfg.signal / float(beta @ beta))
        self.normals = NormalStream(rng)  # every later draw: standard normals, in order

    @staticmethod
    def quality(noise: np.ndarray) -> np.ndarray:
        """True data quality of feeds with observation noise ``noise``: 1 / (1 + noise^2)."""
        return 1.0 / (1.0 + np.square(noise))

    def draw(self) -> tuple[np.ndarray, np.ndarray]:
        """Latent features ``(A, F)`` and target ``(A,)`` of a new round."""
        x = self.normals.draw((self.n_assets, self.beta.shape[0]))
        r = x @ self.beta + self.cfg.noise * self.normals.draw((self.n_assets,))
        return x, r

    def observe(self, x: np.ndarray, groups: np.ndarray, noise: np.ndarray) -> np.ndarray:
        """Feeds ``(P, A, k)``: each provider's group of ``x`` plus its own noise."""
        k = self.feed_dim
        cols = groups[:, None] * k + np.arange(k)[None, :]  # (P, k)
        clean = np.transpose(x[:, cols], (1, 0, 2))  # (P, A, k)
        feeds = self.normals.draw(clean.shape)
        feeds *= noise[:, None, None]
        feeds += clean  # clean + noise * shock, in the shocks' array
        return feeds

    def draw_ahead(self, providers: int, pool: Executor) -> None:
        """Draw the next round's normals in ``pool``: ``A x F`` features, ``A`` target
        shocks and ``providers x A x k`` feed shocks, with room for a few more
        providers by then (what is not used is the next round's; more than that are
        drawn when needed; the numbers are the same either way, :class:`NormalStream`).
        """
        A, F = self.n_assets, self.beta.shape[0]
        feeds = providers + providers // 32 + 16
        self.normals.draw_ahead(A * F + A + feeds * A * self.feed_dim, pool)


TASKS = {"cross_section": CrossSectionTask}


def make_task(cfg: TaskConfig, rng: np.random.Generator) -> CrossSectionTask:
    """The task named by ``cfg.kind``."""
    return TASKS[cfg.kind](cfg, rng)

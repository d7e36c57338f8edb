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

    @staticmethod
    def quality(noise: np.ndarray) -> np.ndarray:
        """True data quality of feeds with observation noise ``noise``: 1 / (1 + noise^2)."""
        return 1.0 / (1.0 + np.square(noise))

    def draw(self) -> tuple[np.ndarray, np.ndarray]:
        """Latent features ``(A, F)`` and target ``(A,)`` of a new round."""
        x = self.rng.standard_normal((self.n_assets, self.beta.shape[0]))
        r = x @ self.beta + self.cfg.noise * self.rng.standard_normal(self.n_assets)
        return x, r

    def observe(self, x: np.ndarray, groups: np.ndarray, noise: np.ndarray) -> np.ndarray:
        """Feeds ``(P, A, k)``: each provider's group of ``x`` plus its own noise."""
        k = self.feed_dim
        cols = groups[:, None] * k + np.arange(k)[None, :]  # (P, k)
        clean = np.transpose(x[:, cols], (1, 0, 2))  # (P, A, k)
        feeds = self.rng.standard_normal(clean.shape)
        feeds *= noise[:, None, None]
        feeds += clean  # clean + noise * shock, in the shocks' array
        return feeds


TASKS = {"cross_section": CrossSectionTask}


def make_task(cfg: TaskConfig, rng: np.random.Generator) -> CrossSectionTask:
    """The task named by ``cfg.kind``."""
    return TASKS[cfg.kind](cfg, rng)

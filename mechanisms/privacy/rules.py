"""The privacy rules registered in ``PRIVACY``: ``plaintext``, ``dp``, ``mpc`` and ``he``.

Contract (every rule):

- ``leaks: ClassVar[bool]``: buyers hold the (possibly noised) data, which can leak to
  free riders;
- ``secure: ClassVar[bool]``: the developer's model is trained inside a secure protocol
  (gradient descent for ``params.epochs`` epochs at rate ``params.lr``), so the engine
  fits that model, charges :meth:`training_cost` and applies the round's deadline; the
  protocol also verifies the computation (nobody can claim a model it did not train);
- ``training_cost(job: TrainingJob) -> ComputeCost``: latency, traffic, fee and
  core-seconds of training on ``job.rows`` samples of ``job.feeds[j]`` feeds of
  ``job.feed_dim`` columns each and scoring ``job.assets`` samples, one entry per
  trainer (arrays);
- ``perturb(feeds, rng) -> feeds``: what the buyers receive, given the providers' feeds
  ``(P, A, k)`` (the identity except under ``dp``).

Secure rules have ``params.mode``: ``modeled`` charges the cost computed from the
shapes (exactly the counts the kernels report, turned into seconds and fees by the
calibration profile, :mod:`mechanisms.privacy.costmodel`), and the engine computes the
protocol's model in plaintext (the same gradient descent, in closed form); ``faithful``
runs the real kernels for each training and scoring event (:meth:`train`,
:meth:`predict`) and charges what they counted, for small markets.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import numpy as np
import pydantic
from pydantic import field_validator
from pydantic.dataclasses import dataclass

from mechanisms.base import ComputeCost, TrainingJob
from mechanisms.privacy import mpc
from mechanisms.privacy.costmodel import (
    NETWORKS,
    CostModel,
    Network,
    Prices,
    ProfileError,
    load_profile,
)
from mechanisms.registry import PARAMS_CONFIG, PRIVACY

__all__ = ["DifferentialPrivacy", "Homomorphic", "MultiParty", "Plaintext"]


def _identity(feeds: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return feeds


@PRIVACY.register("plaintext")
class Plaintext:
    """Buyers receive the raw data: training is free and the data leaks.

    Formula: ``cost = ComputeCost(seconds=0, bytes_sent=0, fee=0)``; ``leaks = True``.

    Source: data marketplaces that deliver the file itself, such as Ocean Protocol's
    download access (a datatoken redeemed for the dataset URL; MECHANISMS.md, "Ocean
    Protocol") and Algorithmia DanKu's revealed training data. Transfer cost of the
    download is not charged here.
    """

    leaks: ClassVar[bool] = True
    secure: ClassVar[bool] = False

    @dataclass(frozen=True, config=PARAMS_CONFIG)
    class Params:
        """``plaintext`` has no parameters."""

    def __init__(self, params: Params):
        self.params = params

    def training_cost(self, job: TrainingJob) -> ComputeCost:
        zero = np.zeros(np.shape(job.feeds))
        return ComputeCost(zero, zero, zero.copy(), zero)

    perturb = staticmethod(_identity)


@PRIVACY.register("dp")
class DifferentialPrivacy:
    """Providers add Laplace noise at privacy budget epsilon before selling.

    Formula: each value of a feed is clipped to ``[-clip, clip]`` and released as
    ``clip(x) + Laplace(0, b)`` with ``b = 2 clip / epsilon``: the Laplace mechanism
    (Dwork & Roth, "The Algorithmic Foundations of Differential Privacy", 2014,
    Theorem 3.6), each released value being one record whose sensitivity under
    replacement is ``2 clip``; the guarantee is epsilon-DP per value and per round
    (composition over rounds adds up, Theorem 3.16). Buyers still hold the data, so it
    leaks (``leaks = True``), but what leaks is the noised copy: a free rider gains
    less from it, and every honest buyer's accuracy pays the same price. Training
    is ordinary (free) ridge regression on the noised feeds.

    Source: the differential-privacy route the essay contrasts with secure computation;
    local (provider-side) noise as in Dwork & Roth Sec. 3.3 and Apple/Google-style
    local DP deployments.
    """

    leaks: ClassVar[bool] = True
    secure: ClassVar[bool] = False

    @dataclass(frozen=True, config=PARAMS_CONFIG)
    class Params:
        """Parameters of ``dp``."""

        epsilon: Annotated[
            float,
            pydantic.Field(gt=0.0, le=1e6, description="privacy budget per released value"),
        ] = 2.0
        clip: Annotated[
            float,
            pydantic.Field(
                gt=0.0, le=1e6, description="values are clipped to [-clip, clip] before noise"
            ),
        ] = 3.0

    def __init__(self, params: Params):
        self.params = params

    @property
    def scale(self) -> float:
        """Laplace scale ``b = 2 clip / epsilon``."""
        return 2.0 * self.params.clip / self.params.epsilon

    def training_cost(self, job: TrainingJob) -> ComputeCost:
        zero = np.zeros(np.shape(job.feeds))
        return ComputeCost(zero, zero, zero.copy(), zero)

    def perturb(self, feeds: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``clip(feeds) + Laplace(0, 2 clip / epsilon)``, elementwise."""
        c = self.params.clip
        return np.clip(feeds, -c, c) + rng.laplace(0.0, self.scale, size=np.shape(feeds))


def _check_profile(v: str) -> str:
    try:
        load_profile(v)
    except ProfileError as e:
        raise ValueError(str(e)) from None
    return v


_MODE = Annotated[
    Literal["modeled", "faithful"],
    pydantic.Field(
        description="modeled: charge the calibrated cost; faithful: run the real kernels"
    ),
]
_NETWORK = Annotated[
    Literal["lan", "wan"],
    pydantic.Field(
        description="network preset (SecureML's LAN or WAN: 1 GB/s 0.17 ms, 9 MB/s 72 ms)"
    ),
]
_BANDWIDTH = Annotated[
    float | None,
    pydantic.Field(ge=1e-3, le=1e6, description="custom bandwidth in MB/s (overrides the preset)"),
]
_RTT = Annotated[
    float | None,
    pydantic.Field(
        ge=0.0, le=1e6, description="custom round-trip time in ms (overrides the preset)"
    ),
]
_PROFILE = Annotated[
    str,
    pydantic.Field(
        min_length=1,
        description=(
            "calibration profile: 'default' or the path (from the current folder) of a "
            "YAML file written by `mlmarket calibrate`"
        ),
    ),
]
_CORE_PRICE = Annotated[
    float, pydantic.Field(ge=0.0, le=1e6, description="tokens per core-second of compute")
]
_GB_PRICE = Annotated[float, pydantic.Field(ge=0.0, le=1e6, description="tokens per GB sent")]
_EPOCHS = Annotated[
    int, pydantic.Field(ge=1, le=100_000, description="gradient-descent epochs of secure training")
]
_LR = Annotated[float, pydantic.Field(gt=0.0, le=10.0, description="gradient-descent step size")]


class _Secure:
    """Shared machinery of the secure rules (``mpc``, ``he``)."""

    leaks: ClassVar[bool] = False
    secure: ClassVar[bool] = True
    perturb = staticmethod(_identity)

    def __init__(self, params):
        self.params = p = params
        base = NETWORKS[p.network]
        self.network = Network(
            bandwidth=base.bandwidth if p.bandwidth is None else p.bandwidth * 1e6,
            rtt=base.rtt if p.rtt is None else p.rtt * 1e-3,
        )
        self.model = CostModel(
            load_profile(p.profile), self.network, Prices(p.price_per_core_second, p.price_per_gb)
        )

    def training_cost(self, job: TrainingJob) -> ComputeCost:
        """Cost of training and scoring, per trainer, priced from the counts of the shapes.

        Computed once per distinct number of feeds and broadcast (0 feeds cost nothing).
        """
        feeds = np.asarray(job.feeds, dtype=np.int64)
        names = ("seconds", "bytes_sent", "fee", "compute_seconds")
        out = {f: np.zeros(feeds.shape) for f in names}
        for m in np.unique(feeds):
            if m <= 0:
                continue
            train, score = self.counts(job.rows, [job.feed_dim] * int(m), job.assets, job.ridge)
            c = self.price(train, score)
            at = feeds == m
            for f in names:
                out[f][at] = getattr(c, f)
        return ComputeCost(**out)

    def counts(self, rows: int, dims: list[int], assets: int, lam: float) -> tuple:
        """``(training counts, scoring counts)`` of one trainer, from the shapes alone."""
        raise NotImplementedError

    def price(self, *counts) -> ComputeCost:
        """Counted protocol runs, summed and priced by the cost model."""
        raise NotImplementedError


@PRIVACY.register("mpc")
class MultiParty(_Secure):
    """Two-party secret sharing: providers share their feeds, the developer gets only w.

    Formula: the model is ridge regression trained by ``epochs`` epochs of full-batch
    gradient descent ``w <- w (1 - lr lam) - (lr / n) X' (X w - y)`` from ``w = 0`` on
    secret-shared features (:func:`mechanisms.privacy.mpc.secure_ridge`) and scored by
    one secure product with this round's shared features
    (:func:`mechanisms.privacy.mpc.secure_predict`). Cost: the counts of
    :func:`~mechanisms.privacy.mpc.training_costs` and
    :func:`~mechanisms.privacy.mpc.inference_costs` (equal to what the kernels count)
    priced by :class:`~mechanisms.privacy.costmodel.CostModel`: latency ``= compute +
    rounds * RTT + online bytes / bandwidth``, fee ``= core-seconds *
    price_per_core_second + GB * price_per_gb``. Nothing leaks (``leaks = False``).

    Source: SecureML (Mohassel & Zhang, IEEE S&P 2017): additive sharing over Z_2^64,
    dealer Beaver matrix triples, local truncation, and its LAN/WAN settings; Beaver
    (CRYPTO '91). See :mod:`mechanisms.privacy.mpc`.
    """

    @dataclass(frozen=True, config=PARAMS_CONFIG)
    class Params:
        """Parameters of ``mpc``."""

        mode: _MODE = "modeled"
        network: _NETWORK = "wan"
        bandwidth: _BANDWIDTH = None
        rtt: _RTT = None
        profile: _PROFILE = "default"
        price_per_core_second: _CORE_PRICE = 1.24e-5
        price_per_gb: _GB_PRICE = 0.09
        epochs: _EPOCHS = 100
        lr: _LR = 0.1

        _profile_exists = field_validator("profile")(_check_profile)

    def __init__(self, params: Params):
        super().__init__(params)

    def counts(self, rows: int, dims: list[int], assets: int, lam: float) -> tuple:
        p, d = self.params, sum(dims)
        return (
            mpc.training_costs(rows, d, epochs=p.epochs, lr=p.lr, lam=lam),
            mpc.inference_costs(assets, d),
        )

    def price(self, *counts) -> ComputeCost:
        total = mpc.Costs()
        for c in counts:
            total += c
        return self.model.mpc(total)

    def train(self, blocks: list[np.ndarray], y: np.ndarray, lam: float, rng) -> tuple:
        """Faithful mode: run :func:`~mechanisms.privacy.mpc.secure_ridge`; ``(w, counts)``."""
        p = self.params
        return mpc.secure_ridge(blocks, y, lam, rng, epochs=p.epochs, lr=p.lr)

    def predict(self, blocks: list[np.ndarray], w: np.ndarray, rng) -> tuple:
        """Faithful mode: run :func:`~mechanisms.privacy.mpc.secure_predict`; ``(X w, counts)``."""
        return mpc.secure_predict(blocks, w, rng)


@PRIVACY.register("he")
class Homomorphic(_Secure):
    """Paillier encryption: providers compute on their own feeds, the developer decrypts.

    Formula: the same model as ``mpc`` (``epochs`` epochs of ridge gradient descent
    from ``w = 0``), trained by the vertically partitioned protocol of
    :func:`mechanisms.privacy.he.secure_ridge_he` (providers hold their columns and
    their part of ``w``; the developer holds the key and decrypts only masked
    gradients) and scored by :func:`mechanisms.privacy.he.secure_predict_he` (the
    developer's encrypted weights times each provider's plaintext features). Cost: the
    counts of :func:`~mechanisms.privacy.he.he_training_costs` and
    :func:`~mechanisms.privacy.he.he_inference_costs` at ``key_bits``, priced by
    :class:`~mechanisms.privacy.costmodel.CostModel` (latency ``= compute + rounds *
    RTT + critical bytes / bandwidth``). Nothing leaks (``leaks = False``).

    Source: Hardy et al., "Private federated learning on vertically partitioned data via
    entity resolution and additively homomorphic encryption", arXiv:1711.10677 (2017);
    Paillier (EUROCRYPT '99). See :mod:`mechanisms.privacy.he`.
    """

    @dataclass(frozen=True, config=PARAMS_CONFIG)
    class Params:
        """Parameters of ``he``."""

        mode: _MODE = "modeled"
        network: _NETWORK = "wan"
        bandwidth: _BANDWIDTH = None
        rtt: _RTT = None
        profile: _PROFILE = "default"
        price_per_core_second: _CORE_PRICE = 1.24e-5
        price_per_gb: _GB_PRICE = 0.09
        epochs: _EPOCHS = 100
        lr: _LR = 0.1
        key_bits: Annotated[
            int,
            pydantic.Field(
                ge=256, le=8192, description="Paillier modulus size in bits (2048 for real use)"
            ),
        ] = 2048

        _profile_exists = field_validator("profile")(_check_profile)

    def __init__(self, params: Params):
        super().__init__(params)
        self._keys = None

    def counts(self, rows: int, dims: list[int], assets: int, lam: float) -> tuple:
        from mechanisms.privacy import he

        p = self.params
        return (
            he.he_training_costs(rows, dims, p.epochs, key_bits=p.key_bits),
            he.he_inference_costs(assets, dims, key_bits=p.key_bits),
        )

    def price(self, *counts) -> ComputeCost:
        total = counts[0]
        for c in counts[1:]:
            total = total + c
        return self.model.he(total, self.params.key_bits)

    def _keypair(self, rng):
        from mechanisms.privacy.paillier import keygen

        if self._keys is None:  # one long-lived key pair (its generation is not charged)
            self._keys = keygen(self.params.key_bits, rng)
        return self._keys

    def train(self, blocks: list[np.ndarray], y: np.ndarray, lam: float, rng) -> tuple:
        """Faithful mode: run :func:`~mechanisms.privacy.he.secure_ridge_he`."""
        from mechanisms.privacy import he

        p = self.params
        return he.secure_ridge_he(
            blocks, y, lam, rng, epochs=p.epochs, lr=p.lr, keys=self._keypair(rng)
        )

    def predict(self, blocks: list[np.ndarray], w: np.ndarray, rng) -> tuple:
        """Faithful mode: run :func:`~mechanisms.privacy.he.secure_predict_he`."""
        from mechanisms.privacy import he

        return he.secure_predict_he(blocks, w, rng, keys=self._keypair(rng))

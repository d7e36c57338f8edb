"""What secure computation costs: counted operations to seconds, bytes, latency and fees.

The kernels count their work (:class:`mechanisms.privacy.mpc.Costs`,
:class:`mechanisms.privacy.he.HeCosts`); a calibration profile (written by
``mlmarket calibrate``, :mod:`mechanisms.privacy.calibrate`) says what one counted unit
takes on a machine; a network profile says what a byte and a round trip take; prices
say what a core-second and a gigabyte cost. :class:`CostModel` combines them:

* **compute** (core-seconds). MPC: ``a * local_ops + b * dealer_bytes + c * rounds``,
  the calibrated fit of the single-process emulation's time (both parties and the
  dealer, one after the other: a conservative latency, since real parties work in
  parallel). HE: ``sum_op count_op * t_op`` over obfuscators, encryptions,
  decryptions, additions, exponent bits and inversions at the key size (timings
  interpolated log-log between calibrated key sizes, the last segment's slope beyond).
* **latency** (seconds) ``= compute + rounds * RTT + online_bytes / bandwidth``, the
  formula of the issue and of SecureML's LAN/WAN accounting (Mohassel & Zhang 2017,
  Sec. 7). Online bytes: MPC sends ``bytes_per_party`` from each party at once, plus
  the owners' ``input_bytes``; the dealer's traffic is offline (sent before the round).
  HE: ``bytes_critical``, the largest message of each round summed over rounds.
* **traffic** (bytes): everything sent, dealer and inputs included.
* **fee** (tokens) ``= compute * price_per_core_second + traffic / 1e9 * price_per_gb``.

A model whose latency exceeds the round's deadline misses the round (the engine).

Network presets (SecureML, Mohassel & Zhang, "SecureML: A System for Scalable
Privacy-Preserving Machine Learning", IEEE S&P 2017, Sec. 7: "LAN ... average
round-trip time 0.17 ms, bandwidth 1 GB/s; WAN ... 72 ms, 9 MB/s"): ``lan`` =
1e9 B/s, 0.17 ms; ``wan`` = 9e6 B/s, 72 ms. Default prices: 0.0446 USD per vCPU-hour
(Amazon EC2 c7i.large on-demand, 0.0893 USD/h for 2 vCPU, us-east-1,
aws.amazon.com/ec2/pricing) = 1.24e-5 per core-second, and 0.09 USD per GB (EC2 data
transfer out to the internet, first 10 TB), read as tokens at a token price of one
USD, as the hosting rules do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from mechanisms.base import ComputeCost

__all__ = [
    "GB",
    "HE_OPERATIONS",
    "NETWORKS",
    "CostModel",
    "Network",
    "Prices",
    "Profile",
    "ProfileError",
    "load_profile",
    "profile_path",
]

GB = 1e9
#: HE operation names of a profile's ``he.keys.<bits>`` entry (seconds per operation).
HE_OPERATIONS = ("obfuscator", "encrypt", "decrypt", "addition", "exponent_bit", "inversion")
_MPC_KEYS = ("seconds_per_op", "seconds_per_dealer_byte", "seconds_per_round")


class ProfileError(ValueError):
    """A calibration profile that cannot be found or read, with a message for people."""


@dataclass(frozen=True)
class Network:
    """Bandwidth (bytes per second, each direction) and round-trip time (seconds)."""

    bandwidth: float
    rtt: float

    def __post_init__(self):
        if not (self.bandwidth > 0 and math.isfinite(self.bandwidth)):
            raise ValueError(
                f"bandwidth must be a positive number of bytes/s, got {self.bandwidth}"
            )
        if not (self.rtt >= 0 and math.isfinite(self.rtt)):
            raise ValueError(f"rtt must be >= 0 seconds, got {self.rtt}")


#: Named network profiles (SecureML's LAN and WAN settings; see the module docstring).
NETWORKS: dict[str, Network] = {
    "lan": Network(bandwidth=1e9, rtt=0.17e-3),
    "wan": Network(bandwidth=9e6, rtt=72e-3),
}


@dataclass(frozen=True)
class Prices:
    """Tokens per core-second of compute and per GB of traffic."""

    core_second: float = 1.24e-5  # 0.0446 USD per vCPU-hour / 3600
    gigabyte: float = 0.09


@dataclass(frozen=True)
class Profile:
    """A calibration profile: seconds per counted unit on one machine."""

    mpc: Mapping[str, float]
    he_keys: Mapping[int, Mapping[str, float]]
    source: str = ""

    @classmethod
    def from_dict(cls, data: Any, source: str = "") -> Profile:
        """Validate a profile read from YAML (``mlmarket calibrate``'s schema)."""
        where = f"profile {source}" if source else "profile"
        if not isinstance(data, Mapping):
            raise ProfileError(f"{where}: expected a mapping, got {type(data).__name__}")
        mpc = data.get("mpc")
        he = data.get("he")
        if not isinstance(mpc, Mapping) or not isinstance(he, Mapping):
            raise ProfileError(f"{where}: needs the sections 'mpc' and 'he'")
        out_mpc = {}
        for key in _MPC_KEYS:
            out_mpc[key] = _nonneg(mpc.get(key), f"{where}: mpc.{key}")
        keys = he.get("keys")
        if not isinstance(keys, Mapping) or not keys:
            raise ProfileError(f"{where}: he.keys must map key sizes to operation timings")
        out_he: dict[int, dict[str, float]] = {}
        for bits, ops in keys.items():
            try:
                b = int(bits)
            except (TypeError, ValueError):
                raise ProfileError(f"{where}: he.keys has a key size {bits!r}") from None
            if not isinstance(ops, Mapping):
                raise ProfileError(f"{where}: he.keys.{b} must be a mapping")
            out_he[b] = {
                op: _nonneg(ops.get(op), f"{where}: he.keys.{b}.{op}") for op in HE_OPERATIONS
            }
        return cls(out_mpc, dict(sorted(out_he.items())), source)

    def he_seconds(self, key_bits: int) -> dict[str, float]:
        """Seconds per HE operation at ``key_bits``, log-log interpolated between sizes."""
        sizes = np.array(sorted(self.he_keys), dtype=float)
        out = {}
        for op in HE_OPERATIONS:
            t = np.array([max(self.he_keys[int(b)][op], 1e-15) for b in sizes])
            if sizes.size == 1:  # one size: scale as the square of the modulus size
                out[op] = float(t[0] * (key_bits / sizes[0]) ** 2)
                continue
            x, y, lx = np.log(sizes), np.log(t), math.log(key_bits)
            i = int(np.clip(np.searchsorted(x, lx) - 1, 0, x.size - 2))
            slope = (y[i + 1] - y[i]) / (x[i + 1] - x[i])
            out[op] = float(math.exp(y[i] + slope * (lx - x[i])))
        return out


def _nonneg(v: Any, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (v >= 0 and math.isfinite(v)):
        raise ProfileError(f"{what}: expected a number >= 0, got {v!r}")
    return float(v)


def profile_path(ref: str) -> Path:
    """The file a scenario's ``profile`` names: ``default`` (shipped) or a YAML path."""
    if ref == "default":
        from mechanisms.privacy.calibrate import DEFAULT_PROFILE

        return Path(DEFAULT_PROFILE)
    return Path(ref).expanduser()


@lru_cache(maxsize=16)
def _load(path: str, mtime_ns: int) -> Profile:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ProfileError(f"cannot read profile {path}: {e.__class__.__name__}") from None
    return Profile.from_dict(data, path)


def load_profile(ref: str) -> Profile:
    """Load and validate a calibration profile (``default`` or a path); cached per file."""
    path = profile_path(ref)
    if not path.is_file():
        raise ProfileError(
            f"profile {ref!r} not found (allowed: 'default' or the path of a YAML file "
            "written by `mlmarket calibrate`)"
        )
    return _load(str(path), path.stat().st_mtime_ns)


@dataclass(frozen=True)
class CostModel:
    """Counted operations -> :class:`ComputeCost` under a profile, a network and prices."""

    profile: Profile
    network: Network
    prices: Prices = Prices()

    def _cost(self, compute, rounds, online_bytes, traffic) -> ComputeCost:
        compute = np.asarray(compute, dtype=float)
        latency = compute + rounds * self.network.rtt + online_bytes / self.network.bandwidth
        fee = compute * self.prices.core_second + traffic / GB * self.prices.gigabyte
        return ComputeCost(
            seconds=_scalar(latency),
            bytes_sent=_scalar(np.asarray(traffic, dtype=float)),
            fee=_scalar(fee),
            compute_seconds=_scalar(compute),
        )

    def mpc(self, costs) -> ComputeCost:
        """Cost of an MPC protocol run from its :class:`~mechanisms.privacy.mpc.Costs`.

        Fields may be numbers or equal-shape arrays (one entry per developer).
        """
        p = self.profile.mpc
        ops = np.asarray(costs.local_ops, dtype=float)
        dealer = np.asarray(costs.dealer_bytes, dtype=float)
        rounds = np.asarray(costs.rounds, dtype=float)
        party = np.asarray(costs.bytes_per_party, dtype=float)
        inputs = np.asarray(costs.input_bytes, dtype=float)
        compute = (
            p["seconds_per_op"] * ops
            + p["seconds_per_dealer_byte"] * dealer
            + p["seconds_per_round"] * rounds
        )
        return self._cost(compute, rounds, party + inputs, 2 * party + dealer + inputs)

    def he(self, costs, key_bits: int) -> ComputeCost:
        """Cost of a Paillier protocol run from its :class:`~mechanisms.privacy.he.HeCosts`."""
        t = self.profile.he_seconds(key_bits)
        compute = (
            t["obfuscator"] * np.asarray(costs.obfuscators, dtype=float)
            + t["encrypt"] * np.asarray(costs.encryptions, dtype=float)
            + t["decrypt"] * np.asarray(costs.decryptions, dtype=float)
            + t["addition"] * np.asarray(costs.additions, dtype=float)
            + t["exponent_bit"] * np.asarray(costs.exponent_bits, dtype=float)
            + t["inversion"] * np.asarray(costs.inversions, dtype=float)
        )
        return self._cost(
            compute,
            np.asarray(costs.rounds, dtype=float),
            np.asarray(costs.bytes_critical, dtype=float),
            np.asarray(costs.bytes_total, dtype=float),
        )


def _scalar(a: np.ndarray):
    return float(a) if a.ndim == 0 else a

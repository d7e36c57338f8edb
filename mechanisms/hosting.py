"""Hosting rules: where data feeds and models live, and what that costs (registry ``HOSTING``).

Contract: ``host(h: HostingInput, rng) -> HostingOutcome``: for each of ``m`` items, the
tokens its owner pays this round (``fees >= 0``) and whether it can be fetched this
round (``available``). ``h.sizes`` are the bytes the item occupies (for a feed, its
archive over the training window; for a model, its weights and predictions) and
``h.new_bytes`` the bytes written this round (what on-chain storage charges); ``h.pinned``
says whether someone pays to keep it (only ``ipfs`` depends on it: on chain data needs
no pinning and the secure nodes are paid by the listing itself).

Every rule draws the same number of random numbers whatever its parameters (``m``
uniforms, or none for ``onchain``), so changing a probability never shifts the other
random streams of a run. Prices are in tokens; the defaults take 1 token = 1 USD
(the exchange's genesis price) and one round = one week.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
import pydantic
from pydantic.dataclasses import dataclass

from mechanisms.base import HostingInput, HostingOutcome
from mechanisms.registry import HOSTING, PARAMS_CONFIG

__all__ = ["IPFS", "OnChain", "SecureNodes"]

GB = 1e9  # bytes per (decimal) gigabyte, as storage is billed

#: Ethereum gas to set a fresh 32-byte storage word (SSTORE, zero to non-zero).
SSTORE_SET_GAS = 20_000
#: ... hence gas per byte stored on chain.
GAS_PER_BYTE = SSTORE_SET_GAS / 32  # 625


def _sizes(h: HostingInput) -> np.ndarray:
    return np.maximum(np.nan_to_num(np.asarray(h.sizes, dtype=float), nan=0.0), 0.0)


@HOSTING.register("onchain")
class OnChain:
    """The item is written to contract storage: a per-byte fee, always available.

    Formula: ``fee_i = new_bytes_i * fee_per_byte`` (``size_i`` when the engine does not
    say what is new); ``available_i = True``.

    The default ``fee_per_byte = 0.025`` tokens is ``625 gas/byte x 20 gwei x 2,000
    tokens/ETH``: an SSTORE that sets a zero word costs 20,000 gas per 32-byte word
    (Ethereum Yellow Paper, Appendix G, ``G_sset``; unchanged by EIP-2200/EIP-2929),
    i.e. 625 gas per byte, at a gas price of 20 gwei and 2,000 USD per ETH.

    Source: Ethereum Yellow Paper (Wood, Appendix G, fee schedule); EIP-2929 (cold
    storage access adds 2,100 gas per word, ignored here). Deliberate differences:
    calldata (16 gas per non-zero byte, EIP-2028) and transaction overhead are not
    charged; Ethereum has no storage rent, so the fee is for the bytes written this
    round (a feed's new rows, a model's new weights), and ``pinned`` is ignored.
    """

    @dataclass(frozen=True, config=PARAMS_CONFIG)
    class Params:
        """Parameters of ``onchain``."""

        fee_per_byte: Annotated[
            float,
            pydantic.Field(
                ge=0.0,
                le=1e3,
                description="tokens per byte written to contract storage (625 gas/byte "
                "x gas price x token value of ETH)",
            ),
        ] = 0.025

    def __init__(self, params: Params):
        self.params = params

    def host(self, h: HostingInput, rng: np.random.Generator) -> HostingOutcome:
        sizes = _sizes(h)
        written = sizes if h.new_bytes is None else _sizes(HostingInput(h.new_bytes, h.pinned))
        return HostingOutcome(
            fees=written * self.params.fee_per_byte, available=np.ones(sizes.shape[0], dtype=bool)
        )


@HOSTING.register("ipfs")
class IPFS:
    """Content-addressed off-chain storage: pay to pin, unreachable when nobody pins.

    Formula: ``fee_i = pinned_i * size_i / 1e9 * pin_cost_per_gb_month /
    rounds_per_month``; ``available_i = pinned_i and u_i >= gateway_failure`` with
    ``u_i`` uniform on [0, 1) (a pinned item is still missed when the gateway fails).

    The default ``pin_cost_per_gb_month = 0.30`` tokens is Pinata's published rate of
    0.30 USD per GiB-month after the free tier (reported by ctrl.blog, "IPFS pinning
    services overcharge for duplicated objects"; PinBits listed 0.35 USD per
    GB-month); Filecoin storage deals are far cheaper, so treat it as the convenient,
    managed end. ``rounds_per_month = 4.345`` (weekly rounds, 52.14 / 12).

    Source: IPFS documentation, "Persistence, permanence, and pinning" (unpinned
    content is garbage-collected and becomes unreachable when no node holds it);
    Pinata pricing as above. Deliberate differences: GiB billed as GB (2.4 % off) and
    no per-request gateway fees.
    """

    @dataclass(frozen=True, config=PARAMS_CONFIG)
    class Params:
        """Parameters of ``ipfs``."""

        pin_cost_per_gb_month: Annotated[
            float,
            pydantic.Field(ge=0.0, le=1e4, description="tokens per GB pinned for one month"),
        ] = 0.30
        rounds_per_month: Annotated[
            float,
            pydantic.Field(
                ge=0.01, le=1e4, description="rounds in a month (4.345 = weekly rounds)"
            ),
        ] = 4.345
        gateway_failure: Annotated[
            float,
            pydantic.Field(
                ge=0.0,
                le=1.0,
                description="chance a pinned item cannot be fetched this round",
            ),
        ] = 0.0

    def __init__(self, params: Params):
        self.params = params

    def host(self, h: HostingInput, rng: np.random.Generator) -> HostingOutcome:
        p = self.params
        sizes = _sizes(h)
        pinned = np.asarray(h.pinned, dtype=bool)
        fees = np.where(pinned, sizes / GB * p.pin_cost_per_gb_month / p.rounds_per_month, 0.0)
        reached = rng.random(sizes.shape[0]) >= p.gateway_failure
        return HostingOutcome(fees=fees, available=pinned & reached)


@HOSTING.register("secure_nodes")
class SecureNodes:
    """Hosted as secret shares inside the secure-computation network, priced per GB.

    Formula: ``fee_i = parties * size_i / 1e9 * price_per_gb_round + fee_per_item``;
    ``available_i = all of the parties' nodes are up``, each node down independently
    with probability ``outage_probability`` (``u_i >= 1 - (1 - outage)^parties``, one
    uniform per item). Additive secret sharing gives each of the ``parties`` nodes a
    share as large as the item, so storage is paid ``parties`` times, and an n-of-n
    sharing cannot be opened when any one share is missing.

    The default ``price_per_gb_round = 0.0053`` tokens is cloud object storage at
    0.023 USD per GB-month (Amazon S3 Standard, first 50 TB, us-east-1, aws.amazon.com
    /s3/pricing) per weekly round (/ 4.345); ``fee_per_item = 0.01`` tokens stands for
    the per-item bookkeeping of the node operators; ``outage_probability = 0.001`` a
    99.9 % per-node service level.

    Source: additive secret sharing as in the MPC kernels of ``mechanisms/privacy``
    (each party holds a full-size share; DESIGN.md, "Secure computation"); storage
    price as above. Deliberate difference: the network's compute is charged by the
    privacy rule's ``training_cost``, not here; ``pinned`` is ignored (the listing
    pays the nodes).
    """

    @dataclass(frozen=True, config=PARAMS_CONFIG)
    class Params:
        """Parameters of ``secure_nodes``."""

        price_per_gb_round: Annotated[
            float,
            pydantic.Field(
                ge=0.0, le=1e4, description="tokens per GB of share held by one node per round"
            ),
        ] = 0.0053
        fee_per_item: Annotated[
            float,
            pydantic.Field(ge=0.0, le=1e6, description="tokens per hosted item per round"),
        ] = 0.01
        parties: Annotated[
            int,
            pydantic.Field(ge=1, le=16, description="nodes holding a share of each item (n-of-n)"),
        ] = 2
        outage_probability: Annotated[
            float,
            pydantic.Field(ge=0.0, le=1.0, description="chance per round that one node is down"),
        ] = 0.001

    def __init__(self, params: Params):
        self.params = params

    def host(self, h: HostingInput, rng: np.random.Generator) -> HostingOutcome:
        p = self.params
        sizes = _sizes(h)
        fees = p.parties * sizes / GB * p.price_per_gb_round + p.fee_per_item
        down = 1.0 - (1.0 - p.outage_probability) ** p.parties
        available = rng.random(sizes.shape[0]) >= down
        return HostingOutcome(fees=fees, available=available)

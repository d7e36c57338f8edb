"""Privacy rules: how developers reach the providers' data (registry ``PRIVACY``).

Contract: ``training_cost(rows, features) -> ComputeCost`` of one training run. Every
rule has a class attribute ``leaks``: whether buyers end up holding the raw data.
The rules live in :mod:`mechanisms.privacy.rules`; importing this package registers
them.
"""

from mechanisms.privacy.rules import Plaintext

__all__ = ["Plaintext"]

"""Privacy rules: how developers reach the providers' data (registry ``PRIVACY``).

Contract: ``training_cost(job: TrainingJob) -> ComputeCost`` per trainer, the class
attributes ``leaks`` (buyers end up holding the data) and ``secure`` (the model is
trained inside a secure protocol, priced and timed against the round's deadline), and
``perturb(feeds, rng)`` (what buyers receive). The rules live in
:mod:`mechanisms.privacy.rules`; importing this package registers them. The kernels
are :mod:`mechanisms.privacy.mpc` (secret sharing), :mod:`mechanisms.privacy.paillier`
and :mod:`mechanisms.privacy.he` (homomorphic encryption); their costs become seconds
and fees in :mod:`mechanisms.privacy.costmodel`, calibrated by
:mod:`mechanisms.privacy.calibrate`.
"""

from mechanisms.privacy.rules import DifferentialPrivacy, Homomorphic, MultiParty, Plaintext

__all__ = ["DifferentialPrivacy", "Homomorphic", "MultiParty", "Plaintext"]

"""Swappable market rules: reward, slashing, aggregation, pricing, verification, privacy,
submission.

Rules import nothing from ``agents`` or ``sim``; they take numpy arrays and plain data.
"""

"""Sweep files that compare the rules of each mechanism family on the baseline economy."""

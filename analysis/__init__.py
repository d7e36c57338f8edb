"""Reading a run's outputs (tables, ledger) for metrics and reports."""

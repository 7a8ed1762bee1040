"""evbt engine: prices, events, planning, execution, analysis, reporting, sweeps (see docs/design.md).

The boundaries are import-linter contracts (``.importlinter``, run by tests/test_architecture.py).
"""

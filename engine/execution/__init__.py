"""Execution: sizing, trade records and the drivers that replay a plan (backtrader and the fast path)."""

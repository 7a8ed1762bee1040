"""Prices: the parquet store, the yfinance client, Yahoo CSV import, validation, the synthetic sample."""

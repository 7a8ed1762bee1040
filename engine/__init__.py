"""evbt engine: data, events, backtrader wiring, metrics and reports.

Module boundaries (keep them):
- yfinance is imported only in ``engine.prices.yahoo`` and ``engine.events.ratings``
- parquet files are written only by ``engine.prices.store`` (and ``engine.atomic`` helpers)
- backtrader is imported only in ``engine.execution.backtrader_driver``
- click is imported only in ``cli.py``
"""

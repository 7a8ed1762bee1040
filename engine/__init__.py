"""evbt engine: data, events, backtrader wiring, metrics and reports.

Module boundaries (keep them):
- yfinance is imported only in ``engine.data`` and ``engine.ratings``
- parquet files are written only by ``engine.cache`` (and ``engine.atomic`` helpers)
- backtrader is imported only in ``engine.runner``
- click is imported only in ``cli.py``
"""

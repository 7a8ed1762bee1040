"""The price cache as the command line asks for it: fetch, import, verify, remove, the synthetic sample, one
symbol's summary. Each returns (or yields, one symbol at a time) the metadata the CLI prints."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from engine.api.settings import Settings
from engine.errors import ConfigError, MissingDataError


def fetch_prices(settings: Settings, symbols: Sequence[str], start: dt.date | None,
                 end: dt.date | None) -> Iterator[tuple[str, dict[str, Any]]]:
    """Download the missing part of each symbol's history (symbols checked first); yields (symbol, metadata)."""
    from engine.market.symbols import parse_symbol_list

    syms = parse_symbol_list(list(symbols))
    if start is not None and end is not None and start > end:  # was sent to Yahoo (retried, then a network error)
        raise ConfigError(f"--start {start} is after --end {end}: nothing to fetch")
    if settings.offline:
        raise MissingDataError("data fetch needs the network but evbt is offline (--offline/--sample/EVBT_OFFLINE)")
    store = settings.store()
    for sym in syms:
        store.update(sym, start, end, refresh=True)
        yield sym, store.read_meta(sym)


def import_prices(settings: Settings, files: Sequence[Path],
                  symbol: str | None) -> Iterator[tuple[Any, dict[str, Any]]]:
    """Yahoo CSV files into the cache, every file checked before any cache file is replaced; the returned
    iterator yields (imported file: .symbol, .path; metadata written).

    Not a generator: the names are checked and the parse pool started by the call itself, before the caller
    imports anything heavy (the pool's workers are forked from a process without pandas; see
    ``engine.prices.import_files``). The store is opened on the first ``next``."""
    from engine.prices.import_files import start_import

    if symbol and len(files) > 1:
        raise ConfigError("--symbol works with one FILE only")
    job = start_import(files, symbol)

    def stored() -> Iterator[tuple[Any, dict[str, Any]]]:
        yield from job.write(settings.store())

    return stored()


def cache_entries(settings: Settings) -> list[dict[str, Any]]:
    return settings.store().entries()


def verify_cache(settings: Settings, symbols: Sequence[str]) -> list[Any]:
    """Every file (or the symbols named) re-validated: VerifyResult per file."""
    from engine.market.symbols import parse_symbol_list

    return settings.store().verify(parse_symbol_list(list(symbols)) if symbols else None)


def remove_prices(settings: Settings, symbols: Sequence[str]) -> Iterator[str]:
    """Remove the symbols (nothing is removed if one is not cached); yields each removed symbol."""
    from engine.market.symbols import parse_symbol_list

    store = settings.store()
    syms = parse_symbol_list(list(symbols))
    missing = [s for s in syms if not store.has(s)]
    if missing:
        raise MissingDataError(f"not in the cache {settings.cache_dir}: {', '.join(missing)}")
    for sym in syms:
        store.remove(sym)
        yield sym


def write_sample_data(settings: Settings) -> list[dict[str, Any]]:
    """The SYNTHETIC sample written into the settings' cache; metadata per symbol.

    A cache file of a sample symbol that is not itself the sample (real prices: imported, fetched, or a damaged
    file) is never replaced: that is a ConfigError before anything is written, pointing at the sample's own
    folder (``--sample``). It used to be overwritten with synthetic bars, so real data was lost."""
    from engine.errors import DataError
    from engine.prices.synthetic import SAMPLE_SYMBOLS, write_sample

    store = settings.store()
    kept: list[str] = []
    for sym in SAMPLE_SYMBOLS:
        if not store.has(sym):
            continue
        try:
            source = store.read_meta(sym).get("source")
        except (DataError, MissingDataError):
            source = None
        if source != "sample":
            kept.append(sym)
    if kept:
        raise ConfigError(
            f"the cache {store.root} holds prices that are not the synthetic sample for {', '.join(kept)}; "
            f"`evbt data sample` would replace them with SYNTHETIC bars, so nothing was written. Write the sample "
            f"into its own folder with `evbt --sample data sample` (and use it with `evbt --sample ...`), or give "
            f"an empty --cache-dir")
    return list(write_sample(store))


def price_summary(settings: Settings, symbol: str, start: dt.date | None,
                  end: dt.date | None) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(symbol, summary of its bars in start..end with source/currency/synthetic, cache metadata)."""
    from engine.market.symbols import normalize_symbol
    from engine.prices.store import price_summary as summarise

    store = settings.store()
    sym = normalize_symbol(symbol)
    summary = summarise(store.load(sym, start, end), sym)
    meta = store.read_meta(sym)
    summary.update(source=meta["source"], currency=meta["currency"], synthetic=meta["source"] == "sample")
    return sym, summary, meta

"""Venue fees with effective dates (engine/market/data/fees.csv), pinned by hand-computed examples.

Every figure below is worked out by hand from the official rates quoted in the README's fee table; the
boundary days of each rate change are tested on both sides.
"""

from __future__ import annotations

import pytest

from engine.market import fee_schedule
from engine.market.costs import CostModel, order_fees
from engine.market.symbols import listing

NO_BROKER = CostModel(commission_pct=0.0, min_commission=0.0, slippage_bps=0.0)
HK = listing("0700.HK")


def fees_local(symbol: str, side: str, day: str, size: int, price_local: float, fx: float,
               model: CostModel = NO_BROKER) -> dict[str, float]:
    """Fees of one fill converted back to the listing's currency (for readable hand figures)."""
    info = listing(symbol)
    signed = size if side == "buy" else -size
    fees = order_fees(model, signed, price_local / fx, fx=fx, side=side, day=day, listing=info)
    return {k: round(v * fx, 6) for k, v in fees.items() if v}


# 1,000 x HKD 250.05 = HKD 250,050 at 7.8 HKD per USD.
# stamp 0.10% = 250.05 -> 251 (up to a whole HKD); 0.13% = 325.065 -> 326
# trading fee 0.005% = 12.5025 -> 12.50; 0.00565% (2023) = 14.127825 -> 14.13; SFC 0.0027% = 6.75135 -> 6.75
# AFRC 0.00015% (2022 on) = 0.375075 -> 0.38
@pytest.mark.parametrize(
    ("day", "expected"),
    [
        ("2021-07-30", {"stamp_duty": 251, "trading_fee": 12.50, "sfc_levy": 6.75}),
        ("2021-07-31", {"stamp_duty": 251, "trading_fee": 12.50, "sfc_levy": 6.75}),
        ("2021-08-01", {"stamp_duty": 326, "trading_fee": 12.50, "sfc_levy": 6.75}),
        ("2021-12-31", {"stamp_duty": 326, "trading_fee": 12.50, "sfc_levy": 6.75}),
        ("2022-01-03", {"stamp_duty": 326, "trading_fee": 12.50, "sfc_levy": 6.75, "afrc_levy": 0.38}),
        ("2022-12-30", {"stamp_duty": 326, "trading_fee": 12.50, "sfc_levy": 6.75, "afrc_levy": 0.38}),
        ("2023-01-03", {"stamp_duty": 326, "trading_fee": 14.13, "sfc_levy": 6.75, "afrc_levy": 0.38}),
        ("2023-11-16", {"stamp_duty": 326, "trading_fee": 14.13, "sfc_levy": 6.75, "afrc_levy": 0.38}),
        ("2023-11-17", {"stamp_duty": 251, "trading_fee": 14.13, "sfc_levy": 6.75, "afrc_levy": 0.38}),
    ],
)
def test_hong_kong_fees_by_date(day: str, expected: dict[str, float]) -> None:
    for side in ("buy", "sell"):  # every HK item is charged on both sides
        assert fees_local("0700.HK", side, day, 1000, 250.05, 7.8) == pytest.approx(expected, abs=1e-9)


def test_hong_kong_total_in_base_currency_and_stamp_override() -> None:
    fees = order_fees(NO_BROKER, 1000, 250.05 / 7.8, fx=7.8, side="buy", day="2021-07-30", listing=HK)
    assert fees.total == pytest.approx((251 + 12.50 + 6.75) / 7.8, rel=1e-12)
    # --stamp-duty replaces the dated rate: 0.2% of 250,050 = 500.1 -> 501 HKD
    override = order_fees(CostModel(0.0, 0.0, 0.0, stamp_duty_rate=0.002), 1000, 250.05 / 7.8, fx=7.8,
                          side="buy", day="2021-07-30", listing=HK)
    assert override.stamp_duty * 7.8 == pytest.approx(501)


# Sell 1,000 x USD 123.45678 = USD 123,456.78; SEC fee on sells, rounded up to the cent.
@pytest.mark.parametrize(
    ("day", "per_million", "fee"),
    [
        ("2021-02-24", 22.10, 2.73),  # 2.72839... -> 2.73
        ("2021-02-25", 5.10, 0.63),  # 0.62963 -> 0.63
        ("2022-05-13", 5.10, 0.63),
        ("2022-05-16", 22.90, 2.83),  # 2.82716 -> 2.83
        ("2023-02-24", 22.90, 2.83),
        ("2023-02-27", 8.00, 0.99),  # 0.98765 -> 0.99
        ("2024-05-22", 27.80, 3.44),  # 3.43210 -> 3.44
        ("2025-05-14", 0.0, 0.0),
        ("2008-04-01", 5.60, 0.70),  # 0.69136 -> 0.70
    ],
)
def test_us_sec_fee_on_sells_by_date(day: str, per_million: float, fee: float) -> None:
    got = fees_local("BABA", "sell", day, 1000, 123.45678, 1.0)
    assert got.get("sec_fee", 0.0) == pytest.approx(fee, abs=1e-9)
    assert fee == pytest.approx(-(-per_million * 0.12345678 * 100 // 1) / 100, abs=1e-9)  # the hand figure
    assert fees_local("BABA", "buy", day, 1000, 123.45678, 1.0) == {}  # buys pay no SEC fee


# Sell 1,000 x CNY 10.00 = CNY 10,000: stamp duty 0.1% = 10.00 until 2023-08-27, 0.05% = 5.00 from 2023-08-28.
@pytest.mark.parametrize("symbol", ["600519.SS", "000858.SZ"])
def test_mainland_stamp_duty_on_sells(symbol: str) -> None:
    assert fees_local(symbol, "sell", "2023-08-25", 1000, 10.0, 7.0) == pytest.approx({"stamp_duty": 10.0})
    assert fees_local(symbol, "sell", "2023-08-28", 1000, 10.0, 7.0) == pytest.approx({"stamp_duty": 5.0})
    assert fees_local(symbol, "buy", "2023-08-25", 1000, 10.0, 7.0) == {}
    # before 2008-09-19 both sides paid 0.1% (from 2008-04-24)
    assert fees_local(symbol, "buy", "2008-09-18", 1000, 10.0, 7.0) == pytest.approx({"stamp_duty": 10.0})
    assert fees_local(symbol, "buy", "2008-09-19", 1000, 10.0, 7.0) == {}


def test_uk_stamp_duty_reserve_tax_on_buys() -> None:
    # buy 1,000 x GBP 2.00 (quoted 200 pence; prices are in GBP once converted) = GBP 2,000 -> 0.5% = 10.00
    assert fees_local("BARC.L", "buy", "2022-06-01", 1000, 2.0, 0.8) == pytest.approx({"stamp_duty": 10.0})
    assert fees_local("BARC.L", "sell", "2022-06-01", 1000, 2.0, 0.8) == {}


# Sell 1,000 x TWD 600 = TWD 600,000: securities transaction tax 0.3% on the seller = TWD 1,800 (Securities
# Transaction Tax Act art. 2; TWSE "Transaction Costs and Taxes"); buys pay none. It was not charged at all.
@pytest.mark.parametrize("symbol", ["2330.TW", "6488.TWO"])
def test_taiwan_securities_transaction_tax_on_sells(symbol: str) -> None:
    assert fees_local(symbol, "sell", "2024-04-01", 1000, 600.0, 31.5) == pytest.approx({"transaction_tax": 1800.0})
    assert fees_local(symbol, "buy", "2024-04-01", 1000, 600.0, 31.5) == {}


def test_side_defaults_to_the_sign_of_size_and_indexes_pay_no_venue_fees() -> None:
    sell = order_fees(NO_BROKER, -1000, 123.45678, day="2021-02-25", listing=listing("BABA"))
    assert sell["sec_fee"] == pytest.approx(0.63)
    assert order_fees(NO_BROKER, 1000, 10.0, day="2022-01-03", listing=listing("^HSI")).total == 0.0


def test_undated_calls_keep_the_old_behaviour() -> None:
    model = CostModel(commission_pct=0.001, min_commission=0.0, slippage_bps=5.0)
    fees = order_fees(model, 1000, 250.05 / 7.8, hk=True, fx=7.8)
    assert set(fees) == {"commission", "slippage", "stamp_duty"}
    assert fees.stamp_duty * 7.8 == pytest.approx(326)  # 0.13%, rounded up to a whole HKD
    assert fees.total == pytest.approx(fees.commission + fees.slippage + fees.stamp_duty)


def test_fee_table_has_sources_and_no_overlaps() -> None:
    rules = fee_schedule.load_rules()
    assert all(r.source for r in rules)
    assert fee_schedule.coverage_gaps("HK", "2021-01-01", "2023-06-30") == []
    gaps = fee_schedule.coverage_gaps("HK", "2010-01-01", "2012-01-01")
    assert gaps == ["HK sfc_levy: no rate in fees.csv before 2014-11-01; not charged on earlier fills"]


def test_fee_coverage_warnings_follow_the_bars_not_the_requested_period(tmp_path) -> None:
    """`--start 1800-01-01` warned that US SEC fees have no rate before 2008 although the data (so every fill)
    begins in 2019; the warnings are about the days the run can fill on: its symbols' bars in the period."""
    import datetime as dt
    import warnings
    from types import SimpleNamespace

    from engine.market.prepare import prepare_market
    from engine.prices.store import PriceStore
    from tests.engine_helpers import frame_on_sessions

    frames = {"BABA": frame_on_sessions("XNYS", "2019-01-02", "2019-03-29"),
              "0700.HK": frame_on_sessions("XHKG", "2013-01-02", "2013-03-28", base=300.0)}
    config = SimpleNamespace(start=dt.date(1800, 1, 1), end=dt.date(2030, 12, 31), base_currency="USD")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        prepare_market(PriceStore(tmp_path, offline=True), config, frames, frames)
    gaps = [str(w.message) for w in caught if "fees.csv" in str(w.message)]
    # HK bars of 2013 are before the SFC levy's first rate (2014-11-01); nothing else lacks a rate on a bar's day
    assert gaps == ["HK sfc_levy: no rate in fees.csv before 2014-11-01; not charged on earlier fills"]

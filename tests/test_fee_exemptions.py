"""HK ETFs pay no stamp duty (Stamp Duty (Amendment) Ordinance 2015, in force 2015-02-13: "stamp duty is waived
for the transfer of shares or units of all ETFs", IRD press release 2015-02-13); the HKEX trading fee and the
SFC and AFRC levies still apply. 2800.HK (Tracker Fund of Hong Kong, board lot 500) used to be charged 0.13%
stamp duty per side like a share. Expected fees are computed by hand below."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.market.costs import CostModel, fee_totals, order_fees
from engine.market.symbols import listing

Run = Callable[..., tuple[int, str, str]]


def _cent(x: float) -> float:
    return math.floor(x * 100 + 0.5 + 1e-7) / 100


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_etf_pays_levies_but_no_stamp_duty(side: str) -> None:
    model = CostModel(commission_pct=0.0, min_commission=0.0, slippage_bps=0)
    size, price_hkd = 10_000, 18.33  # HKD 183,300 of 2800.HK on 2022-09-28
    fees = order_fees(model, size, price_hkd / 7.8, fx=7.8, side=side, day="2022-09-28",
                      listing=listing("2800.HK"))
    value = size * price_hkd
    want = {"stamp_duty": 0.0, "trading_fee": _cent(value * 0.00005) / 7.8, "sfc_levy": _cent(value * 0.000027) / 7.8,
            "afrc_levy": _cent(value * 0.0000015) / 7.8}
    for item, amount in want.items():
        assert fees.get(item, 0.0) == pytest.approx(amount, abs=1e-12), item
    total = fee_totals(model, listing("2800.HK"))(size, price_hkd / 7.8, 7.8, side, "2022-09-28")
    assert total == pytest.approx(sum(want.values()), abs=1e-12)
    # a share on the same day still pays 0.13% stamp duty, up to a whole HKD
    share = order_fees(model, size, price_hkd / 7.8, fx=7.8, side=side, day="2022-09-28", listing=listing("0700.HK"))
    assert share["stamp_duty"] == pytest.approx(math.ceil(value * 0.0013 - 1e-9) / 7.8, abs=1e-12)
    # and so does the ETF before the waiver
    before = order_fees(model, size, price_hkd / 7.8, fx=7.8, side=side, day="2015-02-12", listing=listing("2800.HK"))
    assert before["stamp_duty"] == pytest.approx(math.ceil(value * 0.001 - 1e-9) / 7.8, abs=1e-12)


def test_real_data_tracker_fund_buy_hold(run_cli: Run, real_import: Callable[[list[str]], Path]) -> None:
    real_import(["2800.HK", "KWEB"])
    code, out, err = run_cli("--offline", "run", "buy_hold", "--symbols", "2800.HK", "--end", "2021-06-30",
                             "--json", "--no-save")
    assert code == 0, err
    (t,) = json.loads(out)["trades"]
    # 2800.HK.csv 2021-01-04 Open 27.360001; 0.98 x 1,000,000 USD x 7.8 / 27.360001 = 279,385 -> 279,000 (lots of 500)
    assert (t["entry_date"], t["entry_price"], t["size"]) == ("2021-01-04", 27.360001, 279_000)
    value = 279_000 * 27.360001  # HKD 7,633,440.28
    items = dict(kv.split("=") for kv in t["entry_fee_items"].split(";"))
    assert float(items["stamp_duty"]) == 0.0
    want = (0.001 * value / 7.8 + 5e-4 * value / 7.8  # commission 0.1%, slippage 5 bps
            + (_cent(value * 0.00005) + _cent(value * 0.000027)) / 7.8)  # trading fee, SFC levy (no AFRC in 2021)
    assert t["entry_fees"] == pytest.approx(want, rel=1e-12)

"""Bad input catalogue: CLI arguments, TOML config files, event files, CSV imports and sweep grid specs/options.

Every case must end with exit code 2, an ``error:`` (or click ``Error:``) message that names the problem and
where it is (option, key, file and line), no traceback, and nothing written: the cache and runs folders
(including ``runs/sweeps``) are byte-for-byte unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

Run = Callable[..., tuple[int, str, str]]

EVENT_HEADER = ("id,date,time,tz,session_hint,market,type,scope,symbols,firm,from_grade,to_grade,description,"
                "source,confidence")
GOOD_EVENT = "my-1,2022-03-16,14:00,Asia/Hong_Kong,,,official_reassurance,single,BABA,,,,Calm words,https://x.org,high"
CSV_HEADER = "Date,Open,High,Low,Close,Adj Close,Volume"


def _csv_rows(n: int, start: int = 0) -> list[str]:
    import datetime as dt

    day = dt.date(2022, 1, 3)
    rows = []
    while len(rows) < n + start:
        if day.weekday() < 5:
            rows.append(f"{day.isoformat()},10.0,11.0,9.5,10.5,10.4,1000")
        day += dt.timedelta(days=1)
    return rows[start:]


def _event_row(**changes: str) -> str:
    cols = EVENT_HEADER.split(",")
    values = dict(zip(cols, GOOD_EVENT.split(","), strict=True))
    values.update(changes)
    return ",".join(values[c] for c in cols)


@dataclass(frozen=True)
class Case:
    name: str
    area: str  # cli | config | events | csv | grid
    argv: tuple[str, ...]  # "{f}" is replaced by the path of the written file
    expect: tuple[str, ...]  # substrings the error output must contain (problem and place)
    content: bytes | None = None  # file written at {f} before the call
    filename: str = "input.txt"
    extra: dict[str, bytes] = field(default_factory=dict)  # other files next to it (name -> bytes)


def _toml(text: str, *expect: str) -> dict:
    return {"content": text.encode(), "filename": "run.toml", "expect": ("run.toml", *expect)}


def _events(text: str, *expect: str, enc: str = "utf-8") -> dict:
    return {"content": text.encode(enc), "filename": "events.csv", "expect": ("events.csv", *expect)}


def _csv(text: str | bytes, *expect: str, name: str = "BABA.csv") -> dict:
    data = text if isinstance(text, bytes) else text.encode()
    return {"content": data, "filename": name, "expect": (name, *expect)}


RUN = ("--offline", "run", "reassurance")
VALIDATE = ("events", "validate", "{f}")
RUN_EV = (*RUN, "--events", "{f}")
RUN_CFG = (*RUN, "--config", "{f}")
IMPORT = ("data", "import", "{f}")
SWEEP = ("--offline", "sweep", "reassurance", "--quiet", "--symbols", "BABA,JD,0700.HK,9988.HK", "--end",
         "2022-12-30")
SWEEP_G = (*SWEEP, "-g", "hold=1..3")
HEAT = ("-g", "fill=open,close", "--heatmap", "{dir}/heat.png")
_BIG_CSV = "\n".join([CSV_HEADER, *_csv_rows(60_000)]) + "\n2199-01-01,1,2,0.5,x,1,1\n"  # ~2.6 MB
_BIG_EVENTS = "\n".join([EVENT_HEADER] + [_event_row(id=f"e{i}") for i in range(30_000)]
                        + [_event_row(id="last", date="2022-02-30")]) + "\n"  # ~3 MB, bad date on the last line

CASES: list[Case] = [
    # ------------------------------------------------------------------ CLI arguments
    Case("unknown strategy", "cli", ("--offline", "run", "reasurance"), ("reasurance", "reassurance")),
    Case("unknown parameter", "cli", (*RUN, "-p", "hodl=3"), ("hodl", "hold")),
    Case("parameter not an integer", "cli", (*RUN, "-p", "hold=abc"), ("hold", "not an integer")),
    Case("parameter fraction for integer", "cli", (*RUN, "-p", "hold=2.5"), ("hold", "not an integer")),
    Case("parameter without =", "cli", (*RUN, "-p", "hold"), ("-p", "KEY=VALUE")),
    Case("parameter zero", "cli", (*RUN, "-p", "hold=0"), ("hold",)),
    Case("parameter negative", "cli", (*RUN, "-p", "hold=-3"), ("hold",)),
    Case("parameter huge integer", "cli", (*RUN, "-p", "hold=1e400"), ("hold",)),
    Case("boolean parameter", "cli", (*RUN, "-p", "include_policy_support=maybe"),
         ("include_policy_support", "boolean")),
    Case("start month 13", "cli", (*RUN, "--start", "2022-13-01"), ("start", "2022-13-01")),
    Case("start with slashes", "cli", (*RUN, "--start", "2022/01/03"), ("start", "2022/01/03")),
    Case("start as a word", "cli", (*RUN, "--start", "yesterday"), ("start", "yesterday")),
    Case("start with a time zone", "cli", (*RUN, "--start", "2022-01-03T00:00+08:00"), ("start",)),
    Case("end 30 February", "cli", (*RUN, "--end", "2022-02-30"), ("end", "2022-02-30")),
    Case("start after end", "cli", (*RUN, "--start", "2022-06-01", "--end", "2022-01-01"), ("start", "end")),
    Case("start equals end", "cli", (*RUN, "--start", "2022-06-01", "--end", "2022-06-01"), ("start", "end")),
    Case("symbol path traversal", "cli", (*RUN, "--symbols", "../../etc/x"), ("invalid symbol", "../../etc/x")),
    Case("symbol absolute path", "cli", (*RUN, "--symbols", "/etc/passwd"), ("invalid symbol",)),
    Case("symbol missing offline", "cli", (*RUN, "--symbols", "NOSUCH"), ("NOSUCH", "not in the cache")),
    Case("benchmark path traversal", "cli", (*RUN, "--benchmark", "../x"), ("invalid symbol", "../x")),
    Case("cash negative", "cli", (*RUN, "--cash", "-5"), ("cash",)),
    Case("cash not a number", "cli", (*RUN, "--cash", "lots"), ("cash", "lots")),
    Case("cash nan", "cli", (*RUN, "--cash", "nan"), ("cash", "nan")),
    Case("cash infinite", "cli", (*RUN, "--cash", "inf"), ("cash", "inf")),
    Case("commission not a number", "cli", (*RUN, "--commission", "abc"), ("commission", "abc")),
    Case("commission negative", "cli", (*RUN, "--commission", "-0.1"), ("commission",)),
    Case("slippage negative", "cli", (*RUN, "--slippage-bps", "-5"), ("slippage",)),
    Case("size above 1", "cli", (*RUN, "--size", "3"), ("size", "fraction of equity")),
    Case("size zero", "cli", (*RUN, "--size", "0"), ("size",)),
    Case("fill choice", "cli", (*RUN, "--fill", "noon"), ("--fill", "noon")),
    Case("sizing choice", "cli", (*RUN, "--sizing", "kelly"), ("--sizing", "kelly")),
    Case("unknown option", "cli", (*RUN, "--holdd", "3"), ("--holdd",)),
    Case("events file missing", "cli", (*RUN, "--events", "/nonexistent/ev.csv"), ("/nonexistent/ev.csv",)),
    Case("replace events without file", "cli", (*RUN, "--replace-events"), ("--replace",)),
    Case("runs show unknown run", "cli", ("runs", "show", "nosuchrun"), ("nosuchrun",)),
    Case("compare one run", "cli", ("compare", "onlyone"), ("compare", "two")),
    Case("data fetch offline", "cli", ("--offline", "data", "fetch", "BABA"), ("offline",)),
    Case("data fetch path symbol", "cli", ("data", "fetch", "../../etc/x"), ("invalid symbol", "../../etc/x")),
    Case("data fetch bad date", "cli", ("data", "fetch", "BABA", "--start", "2022-13-01"), ("--start",)),
    Case("data show unknown offline", "cli", ("--offline", "data", "show", "NOSUCH"), ("NOSUCH",)),
    Case("data rm unknown", "cli", ("data", "rm", "NOSUCH"), ("NOSUCH",)),
    Case("data rm path symbol", "cli", ("data", "rm", "../x"), ("invalid symbol",)),
    Case("events ls bad from", "cli", ("events", "ls", "--from", "03/16/2022"), ("--from", "03/16/2022")),
    Case("events ls unknown type", "cli", ("events", "ls", "--type", "rumour"), ("rumour",)),
    Case("fetch-ratings path symbol", "cli", ("events", "fetch-ratings", "../x"), ("invalid symbol",)),
    # ------------------------------------------------------------------ TOML config files
    Case("config unknown key", "config", RUN_CFG, **_toml("holdd = 3\n", "holdd")),
    Case("config syntax error", "config", RUN_CFG, **_toml("symbols = [BABA\n", "line 1")),
    Case("config cash wrong type", "config", RUN_CFG, **_toml('cash = "lots"\n', "cash")),
    Case("config symbols wrong type", "config", RUN_CFG, **_toml("symbols = 5\n", "symbols")),
    Case("config symbols list of numbers", "config", RUN_CFG, **_toml('symbols = ["BABA", 5]\n', "symbols")),
    Case("config symbol path", "config", RUN_CFG, **_toml('symbols = ["../../x"]\n', "invalid symbol")),
    Case("config params not a table", "config", RUN_CFG, **_toml("params = 3\n", "params")),
    Case("config params unknown key", "config", RUN_CFG, **_toml("[params]\nhodl = 3\n", "hodl")),
    Case("config params wrong type", "config", RUN_CFG, **_toml('[params]\nhold = "abc"\n', "hold")),
    Case("config params fraction", "config", RUN_CFG, **_toml("[params]\nhold = 1.5\n", "hold")),
    Case("config invalid TOML date", "config", RUN_CFG, **_toml("start = 2022-13-01\n", "line 1")),
    Case("config start not a date", "config", RUN_CFG, **_toml('start = "soon"\n', "start", "soon")),
    Case("config fill number", "config", RUN_CFG, **_toml("fill = 3\n", "fill")),
    Case("config bool wrong", "config", RUN_CFG, **_toml('allow_short = "maybe"\n', "allow_short")),
    Case("config commission bool", "config", RUN_CFG, **_toml("commission = true\n", "commission")),
    Case("config events wrong type", "config", RUN_CFG, **_toml("events = 5\n", "events")),
    Case("config benchmark wrong type", "config", RUN_CFG, **_toml("benchmark = 5\n", "benchmark")),
    Case("config other strategy", "config", RUN_CFG, **_toml('strategy = "fade"\n', "fade")),
    Case("config latin-1", "config", RUN_CFG, content='# caf\xe9\nhold = 3\n'.encode("latin-1"),
         filename="run.toml", expect=("run.toml",)),
    Case("config utf-16", "config", RUN_CFG, content='fill = "close"\n'.encode("utf-16"),
         filename="run.toml", expect=("run.toml",)),
    Case("config missing", "config", (*RUN, "--config", "/nonexistent/run.toml"), ("/nonexistent/run.toml",)),
    Case("config is binary", "config", RUN_CFG, content=bytes(range(256)) * 4, filename="run.toml",
         expect=("run.toml",)),
    # ------------------------------------------------------------------ event files
    Case("events empty file", "events", VALIDATE, **_events("", "empty file")),
    Case("events missing column", "events", VALIDATE, **_events("id,date\nx,2022-01-01\n", ":1:", "missing")),
    Case("events unknown column", "events", VALIDATE,
         **_events(EVENT_HEADER + ",mood\n" + GOOD_EVENT + ",calm\n", ":1:", "mood")),
    Case("events bad date", "events", VALIDATE, **_events(f"{EVENT_HEADER}\n{_event_row(date='2022-02-30')}\n",
                                                         ":2:", "2022-02-30")),
    Case("events US date", "events", VALIDATE, **_events(f"{EVENT_HEADER}\n{_event_row(date='03/16/2022')}\n",
                                                        ":2:", "03/16/2022")),
    Case("events bad time", "events", VALIDATE, **_events(f"{EVENT_HEADER}\n{_event_row(time='25:00')}\n",
                                                         ":2:", "25:00")),
    Case("events unknown tz", "events", VALIDATE,
         **_events(f"{EVENT_HEADER}\n{_event_row(tz='Mars/Olympus')}\n", ":2:", "Mars/Olympus")),
    Case("events tz path", "events", VALIDATE,
         **_events(f"{EVENT_HEADER}\n{_event_row(tz='../../etc/passwd')}\n", ":2:", "time zone")),
    Case("events tz offset", "events", VALIDATE, **_events(f"{EVENT_HEADER}\n{_event_row(tz='+08:00')}\n",
                                                          ":2:", "+08:00")),
    Case("events unknown type", "events", VALIDATE, **_events(f"{EVENT_HEADER}\n{_event_row(type='rumour')}\n",
                                                             ":2:", "rumour")),
    Case("events duplicate id", "events", VALIDATE,
         **_events(f"{EVENT_HEADER}\n{GOOD_EVENT}\n{GOOD_EVENT}\n", ":3:", "duplicate id")),
    Case("events single without symbols", "events", VALIDATE,
         **_events(f"{EVENT_HEADER}\n{_event_row(symbols='')}\n", ":2:", "symbols")),
    Case("events path symbol", "events", VALIDATE,
         **_events(f"{EVENT_HEADER}\n{_event_row(symbols='../../x')}\n", ":2:", "bad symbol")),
    Case("events hint without market", "events", VALIDATE,
         **_events(f"{EVENT_HEADER}\n{_event_row(time='', session_hint='before_open')}\n", ":2:", "market")),
    Case("events field count", "events", VALIDATE, **_events(f"{EVENT_HEADER}\n{GOOD_EVENT},extra\n",
                                                            ":2:", "fields")),
    Case("events analyst without firm", "events", VALIDATE,
         **_events(f"{EVENT_HEADER}\n{_event_row(type='analyst_upgrade')}\n", ":2:", "firm")),
    Case("events latin-1", "events", VALIDATE,
         **_events(EVENT_HEADER + "\n" + _event_row(description="caf\xe9 talk") + "\n", "UTF-8", enc="latin-1")),
    Case("events utf-16", "events", VALIDATE, **_events(f"{EVENT_HEADER}\n{GOOD_EVENT}\n", "UTF-8", enc="utf-16")),
    Case("events huge file bad last line", "events", VALIDATE, **_events(_BIG_EVENTS, ":30002:", "2022-02-30")),
    Case("events bad file in a run", "events", RUN_EV,
         **_events(f"{EVENT_HEADER}\n{_event_row(tz='Mars/Olympus')}\n", ":2:", "Mars/Olympus")),
    Case("events id clash with curated", "events", RUN_EV,
         **_events(f"{EVENT_HEADER}\n{_event_row(id='2020-11-02-ant-regulator-interview')}\n", "duplicate id")),
    # ------------------------------------------------------------------ CSV imports
    Case("csv empty file", "csv", IMPORT, **_csv("", "empty")),
    Case("csv header only", "csv", IMPORT, **_csv(CSV_HEADER + "\n", "no price rows")),
    Case("csv missing column", "csv", IMPORT, **_csv("Date,Open,Close\n2022-01-03,1,1\n", "line 1", "High")),
    Case("csv bad number", "csv", IMPORT, **_csv(f"{CSV_HEADER}\n2022-01-03,10,11,9,abc,10,1\n", "line 2",
                                                 "Close", "abc")),
    Case("csv decimal comma", "csv", IMPORT, **_csv(f'{CSV_HEADER}\n2022-01-03,"10,5",11,9,10,10,1\n',
                                                    "line 2", "Open")),
    Case("csv US date", "csv", IMPORT, **_csv(f"{CSV_HEADER}\n01/03/2022,10,11,9,10,10,1\n", "line 2", "Date")),
    Case("csv impossible date", "csv", IMPORT, **_csv(f"{CSV_HEADER}\n2022-02-30,10,11,9,10,10,1\n", "line 2",
                                                      "2022-02-30")),
    Case("csv duplicate rows", "csv", IMPORT,
         **_csv("\n".join([CSV_HEADER, *_csv_rows(3), _csv_rows(1)[0]]) + "\n", "line 5", "duplicate")),
    Case("csv nan", "csv", IMPORT, **_csv(f"{CSV_HEADER}\n2022-01-03,10,11,9,nan,10,1\n", "line 2", "Close")),
    Case("csv negative price", "csv", IMPORT, **_csv(f"{CSV_HEADER}\n2022-01-03,-10,11,9,10,10,1\n", "line 2",
                                                     "open")),
    Case("csv high below low", "csv", IMPORT, **_csv(f"{CSV_HEADER}\n2022-01-03,10,9,11,10,10,1\n", "line 2")),
    Case("csv negative volume", "csv", IMPORT, **_csv(f"{CSV_HEADER}\n2022-01-03,10,11,9,10,10,-1\n", "line 2",
                                                      "volume")),
    Case("csv short row", "csv", IMPORT, **_csv(f"{CSV_HEADER}\n2022-01-03,10,11\n", "line 2", "fields")),
    Case("csv partial nulls", "csv", IMPORT, **_csv(f"{CSV_HEADER}\n2022-01-03,10,null,9,10,10,1\n", "line 2")),
    Case("csv latin-1", "csv", IMPORT, **_csv(f"{CSV_HEADER},Note\n2022-01-03,10,11,9,10,10,1,caf\xe9\n"
                                              .encode("latin-1"), "line 2", "UTF-8")),
    Case("csv utf-16", "csv", IMPORT, **_csv("\n".join([CSV_HEADER, *_csv_rows(3)]).encode("utf-16"), "UTF-8")),
    Case("csv huge file bad last line", "csv", IMPORT, **_csv(_BIG_CSV, "line 60002", "Close")),
    Case("csv binary garbage", "csv", IMPORT, **_csv(os.urandom(0) + bytes(range(256)) * 2000, "BABA.csv")),
    Case("csv file name not a symbol", "csv", IMPORT, **_csv("\n".join([CSV_HEADER, *_csv_rows(3)]),
                                                           "invalid symbol", name="my prices.csv")),
    Case("csv --symbol path", "csv", (*IMPORT, "--symbol", "../../etc/x"),
         content="\n".join([CSV_HEADER, *_csv_rows(3)]).encode(), filename="BABA.csv",
         expect=("invalid symbol", "../../etc/x")),
    Case("csv second of two files bad", "csv", ("data", "import", "{f}", "{dir}/JD.csv"),
         content="\n".join([CSV_HEADER, *_csv_rows(3)]).encode(), filename="BABA.csv",
         extra={"JD.csv": f"{CSV_HEADER}\n2022-01-03,10,11,9,x,10,1\n".encode()}, expect=("JD.csv", "line 2")),
    Case("csv missing file", "csv", ("data", "import", "/nonexistent/BABA.csv"), ("/nonexistent/BABA.csv",)),
    # ------------------------------------------------------------------ sweep grid specs and options
    Case("grid without -g", "grid", SWEEP, ("-g", "KEY=SPEC")),
    Case("grid zero points", "grid", (*SWEEP, "-g", "hold="), ("-g hold=", "zero points")),
    Case("grid only commas", "grid", (*SWEEP, "-g", "hold=,,"), ("-g hold=,,", "zero points")),
    Case("grid unknown key", "grid", (*SWEEP, "-g", "hodl=1..3"), ("hodl", "did you mean 'hold'")),
    Case("grid empty range", "grid", (*SWEEP, "-g", "hold=5..1"), ("hold=5..1", "empty range")),
    Case("grid range not numbers", "grid", (*SWEEP, "-g", "hold=a..b"), ("hold=a..b", "'a'", "not a number")),
    Case("grid range fraction", "grid", (*SWEEP, "-g", "hold=1.5..3"), ("hold=1.5..3", "not an integer")),
    Case("grid range infinite end", "grid", (*SWEEP, "-g", "hold=1..inf"), ("hold=1..inf", "'inf'")),
    Case("grid range step zero", "grid", (*SWEEP, "-g", "hold=1..10:0"), ("hold=1..10:0", "step")),
    Case("grid range step negative", "grid", (*SWEEP, "-g", "hold=1..10:-2"), ("hold=1..10:-2", "step")),
    Case("grid range three parts", "grid", (*SWEEP, "-g", "hold=1..2..3"), ("hold=1..2..3", "START..END")),
    Case("grid range too many values", "grid", (*SWEEP, "-g", "hold=1..2000000"), ("hold=1..2000000", "GB of memory")),
    Case("grid malformed no =", "grid", (*SWEEP, "-g", "hold"), ("-g 'hold'", "KEY=SPEC")),
    Case("grid malformed empty key", "grid", (*SWEEP, "-g", "=3"), ("-g '=3'", "KEY=SPEC")),
    Case("grid key twice", "grid", (*SWEEP_G, "-g", "hold=4"), ("-g hold", "twice")),
    Case("grid int param not integer", "grid", (*SWEEP, "-g", "hold=x,y"), ("-g hold=x,y", "not an integer")),
    Case("grid bool param", "grid", (*SWEEP, "-g", "include_policy_support=maybe"),
         ("include_policy_support=maybe", "boolean")),
    Case("grid fill choice", "grid", (*SWEEP, "-g", "fill=open,noon"), ("fill=open,noon", "'noon'")),
    Case("grid run option not a number", "grid", (*SWEEP, "-g", "size=abc"), ("size=abc", "not a number")),
    Case("grid run option nan", "grid", (*SWEEP, "-g", "commission=nan"), ("commission=nan", "finite")),
    Case("grid run option negative", "grid", (*SWEEP, "-g", "slippage_bps=-1"), ("slippage_bps=-1", ">= 0")),
    Case("grid point out of range", "grid", (*SWEEP, "-g", "hold=0,1"), ("hold", ">= 1")),
    Case("grid point size above 1", "grid", (*SWEEP, "-g", "size=0.1,3"), ("size", "fraction of equity")),
    Case("grid unknown metric", "grid", (*SWEEP_G, "--metric", "sharp"), ("metric", "'sharp'", "'sharpe'")),
    Case("grid split after the period", "grid", (*SWEEP_G, "--split", "2030-01-01"), ("--split", "2030-01-01")),
    Case("grid split before the period", "grid", (*SWEEP_G, "--split", "2001-01-01"), ("--split", "2001-01-01")),
    Case("grid split on the last day", "grid", (*SWEEP_G, "--split", "2022-12-30"), ("--split", "2022-12-30")),
    Case("grid split not a date", "grid", (*SWEEP_G, "--split", "2022-13-01"), ("--split", "2022-13-01")),
    Case("grid walk-forward one number", "grid", (*SWEEP_G, "--walk-forward", "12"), ("--walk-forward", "TRAIN:TEST")),
    Case("grid walk-forward zero", "grid", (*SWEEP_G, "--walk-forward", "0:3"), ("--walk-forward", "'0:3'")),
    Case("grid walk-forward words", "grid", (*SWEEP_G, "--walk-forward", "a:b"), ("--walk-forward", "'a:b'")),
    Case("grid walk-forward too long", "grid", (*SWEEP_G, "--walk-forward", "600:3"), ("--walk-forward", "too short")),
    Case("grid split and walk-forward", "grid", (*SWEEP_G, "--split", "2022-01-01", "--walk-forward", "6:3"),
         ("--split", "--walk-forward")),
    Case("grid top negative", "grid", (*SWEEP_G, "--top", "-1"), ("--top", "-1")),  # --top 0 means all rows
    Case("grid top not a number", "grid", (*SWEEP_G, "--top", "ten"), ("--top", "ten")),
    Case("grid workers zero", "grid", (*SWEEP_G, "--workers", "0"), ("--workers",)),
    Case("grid heatmap one key", "grid", (*SWEEP_G, "--heatmap", "{dir}/heat.png"), ("--heatmap", "two grid keys")),
    Case("grid heatmap unknown key", "grid", (*SWEEP_G, *HEAT, "--heatmap-keys", "hold,size"),
         ("--heatmap-keys", "'size'")),
    Case("grid heatmap keys malformed", "grid", (*SWEEP_G, *HEAT, "--heatmap-keys", "hold"), ("--heatmap-keys",)),
    Case("grid cluster malformed", "grid", (*SWEEP_G, "--cluster", "nonsense"), ("--cluster", "nonsense")),
    Case("grid unknown parameter -p", "grid", (*SWEEP_G, "-p", "hodl=3"), ("hodl", "hold")),
    Case("grid unknown strategy", "grid", ("--offline", "sweep", "reasurance", "-g", "hold=1..3"),
         ("reasurance", "reassurance")),
    # ------------------------------------------------------------------ issue 17: inputs that silently changed results
    Case("grid million points", "grid", (*SWEEP, "-g", "hold=1..1000000"), ("hold=1..1000000", "about 5.7 GB")),
    Case("grid product too large", "grid", (*SWEEP, "-g", "hold=1..1000", "-g", "size=" + ",".join(
        f"0.{i:03d}" for i in range(1, 201))), ("the grid has 200,000 points", "GB of memory")),
    Case("stop_loss negative", "cli", (*RUN, "-p", "stop_loss=-0.1"), ("stop_loss", "> 0")),
    Case("stop_loss zero", "cli", (*RUN, "-p", "stop_loss=0"), ("stop_loss", "> 0")),
    Case("take_profit negative", "cli", (*RUN, "-p", "take_profit=-0.5"), ("take_profit", "> 0")),
    Case("take_profit absurd", "cli", (*RUN, "-p", "take_profit=1e9"), ("take_profit", "<= 100")),
    Case("event type typo in -p types", "cli", ("--offline", "run", "event_hold", "-p",
                                                "types=official_reasurance"),
         ("official_reasurance", "did you mean 'official_reassurance'")),
    Case("grid event type typo", "grid", ("--offline", "sweep", "event_hold", "--quiet", "-g", "hold=1..2", "-p",
                                          "types=policy_suport"), ("policy_suport", "did you mean")),
    Case("symbols empty string", "cli", (*RUN, "--symbols", ""), ("--symbols", "empty")),
    Case("config symbols empty list", "config", RUN_CFG, **_toml("symbols = []\n", "symbols is empty")),
    Case("config nested 100,000 deep", "config", RUN_CFG,
         **_toml("x = " + "[" * 100_000 + "]" * 100_000 + "\n", "nested too deeply")),
    Case("events tz localtime", "events", VALIDATE,
         **_events(f"{EVENT_HEADER}\n{_event_row(tz='localtime')}\n", ":2:", "localtime")),
    Case("events tz Factory", "events", VALIDATE,
         **_events(f"{EVENT_HEADER}\n{_event_row(tz='Factory')}\n", ":2:", "Factory")),
    Case("csv date with extra digit", "csv", IMPORT,
         **_csv(f"{CSV_HEADER}\n2022-01-015,10,11,9,10.5,10.4,100\n", "line 2", "2022-01-015")),
    Case("csv year 1", "csv", IMPORT, **_csv(f"{CSV_HEADER}\n0001-01-03,10,11,9,10.5,10.4,100\n", "line 2",
                                             "0001-01-03", "outside")),
    Case("csv year 9999", "csv", IMPORT, **_csv(f"{CSV_HEADER}\n9999-12-30,10,11,9,10.5,10.4,100\n", "line 2",
                                                "9999-12-30", "outside")),
    Case("csv denormal price", "csv", IMPORT,
         **_csv(f"{CSV_HEADER}\n2022-01-03,1e-310,1e-310,1e-310,1e-310,1e-310,100\n", "line 2", "plausible")),
    Case("csv absurd price", "csv", IMPORT, **_csv(f"{CSV_HEADER}\n2022-01-03,1e300,1e300,1e300,1e300,1e300,1\n",
                                                   "line 2", "plausible")),
    # more values than the header names: the extra cells were silently dropped (short rows were refused)
    Case("csv row longer than the header", "csv", IMPORT,
         **_csv(f"{CSV_HEADER}\n2022-01-03,10,11,9,10.5,10.4,100,7\n", "line 2", "8 fields but the header names 7",
                "'7'")),
    Case("csv thousands separator unquoted", "csv", IMPORT,
         **_csv(f"{CSV_HEADER}\n2022-01-03,1,234.5,1,240.0,1,230.0,1,235.0,1,235.0,100\n", "line 2",
                "12 fields but the header names 7")),
    # went to the network (retries, then a download error, exit 1) instead of stopping at the input
    Case("fetch start after end", "cli", ("data", "fetch", "BABA", "--start", "2023-01-01", "--end", "2022-01-01"),
         ("--start 2023-01-01 is after --end 2022-01-01",)),
    # saved as given, they broke the `runs ls` table (tags are joined by commas there)
    Case("tag empty", "cli", (*RUN, "--tag", ""), ("--tag ''", "non-empty")),
    Case("tag with a comma", "cli", (*RUN, "--tag", "a,b"), ("--tag 'a,b'", "without commas")),
    Case("tag with a line break", "cli", (*RUN, "--tag", "a\nb"), ("--tag 'a\\nb'", "on one line")),
    # the PNG overwrote the HTML report
    Case("html and plot the same file", "cli", (*RUN, "--html", "{dir}/r.html", "--plot", "{dir}/r.html"),
         ("--html and --plot name the same file",)),
    Case("study html and plot the same file", "cli", ("--offline", "study", "--type", "official_reassurance",
                                                      "--html", "{dir}/s.html", "--plot", "{dir}/s.html"),
         ("--html and --plot name the same file",)),
    # the default size 0.05 (a fraction of equity) was taken as $0.05 per entry: every order skipped, 0 trades
    Case("sizing cash without size", "cli", (*RUN, "--sizing", "cash"), ("--sizing cash", "--size AMOUNT")),
    Case("grid sizing cash without size", "grid", (*SWEEP_G, "--sizing", "cash"), ("--sizing cash", "--size AMOUNT")),
    # a grid point with sizing=cash and the default size 0.05 bought $0.05 per entry: that point made no trade
    Case("grid sizing swept to cash without size", "grid", (*SWEEP, "-g", "sizing=cash,percent"),
         ("sizing cash buys a fixed base-currency amount", "size 0.05 is less than 1 USD", "-g size=")),
    Case("config sizing cash without size", "config", RUN_CFG,
         **_toml('sizing = "cash"\n', "--sizing cash", "--size AMOUNT")),
    # named the internal field (commission_pct, stamp_duty_rate), not the option given
    Case("commission negative names the option", "cli", (*RUN, "--commission", "-0.1"),
         ("error: --commission (commission in a config file) must be a finite number >= 0, got -0.1",)),
    Case("stamp duty negative names the option", "cli", (*RUN, "--stamp-duty", "-1"),
         ("error: --stamp-duty (stamp_duty in a config file) must be a finite number >= 0",)),
    # a rate of 100% or more is a unit mistake, and it ran: --stamp-duty 2 charged 200% of every order
    Case("stamp duty of 200%", "cli", (*RUN, "--stamp-duty", "2"),
         ("error: --stamp-duty (stamp_duty in a config file) must be below 1 (0.0013 = 0.13%), got 2.0",)),
    Case("commission of 100%", "cli", (*RUN, "--commission", "1"), ("--commission", "must be below 1")),
    Case("slippage of 100%", "cli", (*RUN, "--slippage-bps", "100000"), ("--slippage-bps", "must be below 10000")),
    Case("grid slippage of 100%", "grid", (*SWEEP, "-g", "slippage_bps=5,10000"),
         ("slippage_bps", "must be below 10000")),
    # two outputs asked for at once: --json won silently (the CSV asked for never came)
    Case("run --json with --csv", "cli", (*RUN, "--json", "--csv"), ("--json and --csv cannot be used together",)),
    Case("runs show --json with --csv", "cli", ("runs", "show", "reassurance", "--csv", "--json"),
         ("--json and --csv cannot be used together",)),
    # a swept key set again: the grid's values won and the other value was silently ignored
    Case("grid key also given with -p", "grid", (*SWEEP_G, "-p", "hold=4"), ("-g hold", "-p hold", "ignored")),
    Case("grid run option also given as its option", "grid", (*SWEEP, "-g", "fill=open,close", "--fill", "close"),
         ("-g fill", "--fill", "ignored")),
    Case("heatmap keys without --heatmap", "grid", (*SWEEP, "-g", "hold=1,2", "-g", "fill=open,close",
                                                    "--heatmap-keys", "hold,fill"),
         ("--heatmap-keys hold,fill", "--heatmap FILE")),
    Case("grid slippage also given as its option", "grid", (*SWEEP, "-g", "slippage_bps=1,5", "--slippage-bps", "3"),
         ("-g slippage_bps", "--slippage-bps", "ignored")),
]


def _snapshot(*roots: Path) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for root in roots:
        if root.is_dir():
            for p in sorted(root.rglob("*")):
                if p.is_file():
                    out[str(p)] = p.read_bytes()
    return out


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, run_cli: Run, sample_cache: Path, tmp_path: Path) -> None:
    runs = Path(os.environ["EVBT_RUNS_DIR"])
    files = tmp_path / "in"
    files.mkdir()
    target = files / case.filename
    if case.content is not None:
        target.write_bytes(case.content)
    for name, data in case.extra.items():
        (files / name).write_bytes(data)
    argv = [a.replace("{f}", str(target)).replace("{dir}", str(files)) for a in case.argv]
    before = _snapshot(sample_cache, runs)
    code, out, err = run_cli(*argv)
    assert not (files / "heat.png").exists(), "no heatmap on bad input"
    assert not (runs / "sweeps").exists(), "no sweep folder on bad input"
    assert code == 2, (code, out, err)
    assert "Traceback" not in err + out
    assert err.lstrip().startswith(("error:", "Error:", "Usage:")) or case.argv == VALIDATE, err
    for text in case.expect:
        assert text in err, f"{text!r} not in {err!r}"
    first = err.strip().splitlines()[0] if err.strip() else ""
    assert len(first) < 2000, "the message must be readable, not a dump"
    assert _snapshot(sample_cache, runs) == before, "nothing may be written on bad input"


def test_catalogue_size() -> None:
    by_area: dict[str, int] = {}
    for case in CASES:
        by_area[case.area] = by_area.get(case.area, 0) + 1
    assert len(CASES) >= 60
    assert set(by_area) == {"cli", "config", "events", "csv", "grid"}
    assert by_area["grid"] >= 12
    assert len({c.name for c in CASES}) == len(CASES)


# Inputs that look odd but are valid: they must be accepted (exit 0), not rejected.
TOLERATED: list[tuple[str, tuple[str, ...], str, bytes]] = [
    ("toml with UTF-8 BOM", (*RUN, "--symbols", "BABA", "--no-save", "--config", "{f}"), "run.toml",
     b'\xef\xbb\xbffill = "close"\n'),
    ("csv with UTF-8 BOM", IMPORT, "BABA.csv", ("\ufeff" + "\n".join([CSV_HEADER, *_csv_rows(3)])).encode()),
    ("csv with CRLF", IMPORT, "BABA.csv", "\r\n".join([CSV_HEADER, *_csv_rows(3)]).encode()),
    ("csv lower-case header, no Adj Close", IMPORT, "BABA.csv",
     b"date,open,high,low,close,volume\n2022-01-03,10,11,9,10.5,100\n"),
    ("csv trailing comma on every line", IMPORT, "BABA.csv",
     "\n".join([CSV_HEADER + ",", *[r + "," for r in _csv_rows(3)]]).encode()),
    ("csv rows out of order", IMPORT, "BABA.csv", "\n".join([CSV_HEADER, *reversed(_csv_rows(3))]).encode()),
    ("sweep of size with cash sizing (the grid gives the amount)", (*SWEEP, "-g", "size=20000,50000", "--sizing",
                                                                      "cash", "--workers", "1"), "unused.txt", b""),
    ("events with BOM and CRLF", VALIDATE, "events.csv", ("\ufeff" + EVENT_HEADER + "\r\n" + GOOD_EVENT).encode()),
]


@pytest.mark.parametrize(("name", "argv", "filename", "content"), TOLERATED, ids=[t[0] for t in TOLERATED])
def test_tolerated_input(name: str, argv: tuple[str, ...], filename: str, content: bytes, run_cli: Run,
                         sample_cache: Path, tmp_path: Path) -> None:
    target = tmp_path / filename
    target.write_bytes(content)
    code, out, err = run_cli(*[a.replace("{f}", str(target)) for a in argv])
    assert code == 0, (out, err)
    assert "Traceback" not in err

"""Run configuration: typed, validated, built from CLI options, ``-p key=value`` pairs and TOML files."""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import ConfigError
from engine.market.costs import CostModel
from engine.market.fx import check_currency
from engine.market.symbols import parse_symbol_list
from strategies.base import Exits

FILLS = ("open", "close")
LIMIT_KEYS = ("max_positions", "max_gross", "max_weight")
SIZINGS = ("percent", "cash", "equal")
OVERLAPS = ("extend", "ignore", "add")


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a backtest (with the data and the event calendar)."""

    strategy: str
    params: dict[str, Any]
    symbols: tuple[str, ...]
    start: dt.date
    end: dt.date
    cash: float = 1_000_000.0
    costs: CostModel = field(default_factory=CostModel)
    fill: str = "open"
    benchmark: str | None = "KWEB"
    base_currency: str = "USD"
    sizing: str = "percent"  # percent of equity per entry | fixed cash per entry | equal split per event
    size: float = 0.05  # fraction of equity (percent/equal) or base-currency amount (cash)
    overlap: str = "extend"  # a new signal on a held symbol: restart the hold clock | ignore | add a position
    allow_short: bool = False
    allow_margin: bool = False
    events_files: tuple[str, ...] = ()
    replace_events: bool = False
    ratings: bool = False  # merge yfinance analyst rating changes (cached) for the universe into the calendar
    # portfolio limits (None = none): entries beyond them are skipped and reported with the reason
    max_positions: int | None = None  # open positions (lots) at once
    max_gross: float | None = None  # gross position value / equity after the entry
    max_weight: float | None = None  # one symbol's position value / equity after the entry

    def __post_init__(self) -> None:
        if self.start >= self.end:
            raise ConfigError(f"start {self.start} must be before end {self.end}")
        if not self.symbols:
            raise ConfigError("empty universe: give --symbols or use a strategy with default symbols")
        if not math.isfinite(self.cash) or self.cash <= 0:
            raise ConfigError(f"cash must be a positive number, got {self.cash}")
        _choice("fill", self.fill, FILLS)
        _choice("sizing", self.sizing, SIZINGS)
        _choice("overlap", self.overlap, OVERLAPS)
        object.__setattr__(self, "base_currency", check_currency(self.base_currency))
        if not math.isfinite(self.size) or self.size <= 0:
            raise ConfigError(f"size must be positive, got {self.size}")
        if self.max_positions is not None and (isinstance(self.max_positions, bool) or self.max_positions < 1):
            raise ConfigError(f"max_positions must be a whole number >= 1, got {self.max_positions}")
        for name in ("max_gross", "max_weight"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{name} must be a positive fraction of equity (e.g. 0.5), got {value}")
        if self.sizing in ("percent", "equal") and self.size > 1 and not self.allow_margin:
            raise ConfigError(f"size {self.size} is a fraction of equity: use a value in (0, 1] (or --allow-margin)")

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["start"] = self.start.isoformat()
        data["end"] = self.end.isoformat()
        data["symbols"] = list(self.symbols)
        data["events_files"] = list(self.events_files)
        data["params"] = {k: list(v) if isinstance(v, tuple) else v for k, v in self.params.items()}
        for key in LIMIT_KEYS:  # absent when unset: configurations without limits keep their run ids
            if data[key] is None:
                del data[key]
        return data


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def parse_date(text: str | dt.date, what: str) -> dt.date:
    if isinstance(text, dt.datetime):
        return text.date()
    if isinstance(text, dt.date):
        return text
    try:
        return dt.date.fromisoformat(str(text).strip())
    except ValueError:
        raise ConfigError(f"{what}: {text!r} is not a date (expected YYYY-MM-DD)") from None


# ----------------------------------------------------------------------------- strategy parameters


def suggest(name: str, known: list[str]) -> str:
    hint = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {hint[0]!r}?)" if hint else ""


def parse_param_pairs(pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``["hold=5", "firms=JPMorgan,Goldman"]`` -> ``{"hold": "5", ...}``; malformed pairs are ConfigError."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"-p {pair!r}: expected KEY=VALUE")
        out[key] = value.strip()
    return out


def coerce(value: Any, annotation: Any, key: str) -> Any:
    """Convert a CLI/TOML value to a Params field's type (int, float, bool, str, tuple[str, ...], X | None)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null", "")):
            return None
        inner = [a for a in args if a is not type(None)]
        return coerce(value, inner[0], key)
    if origin is tuple:
        items = value if isinstance(value, list | tuple) else [v for v in str(value).split(",")]
        return tuple(str(item).strip() for item in items if str(item).strip())
    if annotation is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"parameter {key}: {value!r} is not a boolean (true/false)")
    if annotation is int:
        if isinstance(value, bool):
            raise ConfigError(f"parameter {key}: {value!r} is not an integer")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"parameter {key}: {value!r} is not an integer") from None
        if not number.is_integer():
            raise ConfigError(f"parameter {key}: {value!r} is not an integer")
        return int(number)
    if annotation is float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"parameter {key}: {value!r} is not a number") from None
        if not math.isfinite(number):
            raise ConfigError(f"parameter {key}: {value!r} is not a finite number")
        return number
    return str(value)


def build_params(params_cls: type, raw: dict[str, Any], strategy: str) -> Any:
    """Validate raw values against a strategy's Params dataclass; unknown keys get "did you mean"."""
    hints = typing.get_type_hints(params_cls)
    known = [f.name for f in dataclasses.fields(params_cls)]
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            raise ConfigError(
                f"unknown parameter {key!r} for strategy {strategy}{suggest(key, known)}; "
                f"parameters: {', '.join(known)}"
            )
        values[key] = coerce(value, hints[key], key)
    _check_guards(values)
    _check_event_types(values)
    _normalise_symbols(values)
    try:
        params = params_cls(**values)
    except (ValueError, TypeError) as exc:
        from strategies.registry import user_location

        where = user_location(exc)  # a user strategy file's Params check: name its file and line
        raise ConfigError(f"strategy {strategy}: {exc}" + (f" ({where})" if where else "")) from None
    try:  # the exit rules every strategy takes (stop_loss, take_profit, trailing_stop)
        Exits().with_defaults(params)
    except ValueError as exc:
        raise ConfigError(f"strategy {strategy}: {exc}") from None
    return params


# stop_loss / take_profit are fractions of the entry price (0.1 = exit after a 10% loss / gain). Zero or a
# negative value would exit every trade after one session; the upper bounds are far beyond any real move
# (a long position cannot lose more than 100%, so a larger stop only matters for shorts).
GUARD_BOUNDS = {"stop_loss": 10.0, "take_profit": 100.0}


def _check_guards(values: dict[str, Any]) -> None:
    for key, upper in GUARD_BOUNDS.items():
        value = values.get(key)
        if value is not None and not 0 < value <= upper:
            raise ConfigError(f"parameter {key}: {value:g} must be > 0 and <= {upper:g} (a fraction of the entry "
                              f"price: 0.1 = 10%; leave it out to switch the guard off)")


def _check_event_types(values: dict[str, Any]) -> None:
    """A ``types`` parameter names event types: a typo would silently select no event (0 trades)."""
    from engine.events.catalog import EVENT_TYPES

    chosen = values.get("types")
    for name in chosen if isinstance(chosen, tuple) else ():
        if name not in EVENT_TYPES:
            raise ConfigError(f"parameter types: unknown event type {name!r}{suggest(name, list(EVENT_TYPES))}; "
                              f"types: {', '.join(EVENT_TYPES)}")


def _normalise_symbols(values: dict[str, Any]) -> None:
    """A ``symbols`` parameter (event_hold's) names symbols as ``--symbols`` does: ``baba`` or ``700`` matched no
    universe symbol (BABA, 0700.HK) and the run silently made no trade; an unknown venue is an input error."""
    chosen = values.get("symbols")
    if isinstance(chosen, tuple) and chosen:
        try:
            values["symbols"] = tuple(parse_symbol_list(list(chosen)))
        except ConfigError as exc:
            raise ConfigError(f"parameter symbols: {exc}") from None


def params_to_dict(params: Any) -> dict[str, Any]:
    return {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}


# ----------------------------------------------------------------------------- TOML config files

CONFIG_KEYS = {
    "strategy", "params", "symbols", "start", "end", "cash", "commission", "min_commission", "slippage_bps",
    "stamp_duty", "fill", "benchmark", "sizing", "size", "overlap", "allow_short", "allow_margin", "events",
    "replace_events", "ratings", "base_currency", "venue_fees", "max_positions", "max_gross", "max_weight",
}  # fmt: skip


def load_config_file(path: Path) -> dict[str, Any]:
    """Read a TOML run configuration (safe loader: tomllib); unknown keys are rejected."""
    try:
        with path.open("rb") as handle:
            data = tomllib.loads(handle.read().decode("utf-8-sig"))  # a UTF-8 BOM (Windows editors) is fine
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: {exc}") from None
    except RecursionError:  # tomllib recurses per nesting level: an array nested 100,000 deep
        raise ConfigError(f"config file {path}: nested too deeply to be a run configuration") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path}: cannot read ({exc})") from None
    for key in data:
        if key not in CONFIG_KEYS:
            raise ConfigError(f"config file {path}: unknown key {key!r}{suggest(key, sorted(CONFIG_KEYS))}")
    if "params" in data and not isinstance(data["params"], dict):
        raise ConfigError(f"config file {path}: 'params' must be a table ([params])")
    for key, value in data.items():
        texts = value if key in ("symbols", "events") and isinstance(value, list) else [value]
        if key in _TEXT_KEYS and not all(isinstance(v, str) for v in texts):
            raise ConfigError(f"config file {path}: {key!r} must be text, got {value!r}")
    if "events" in data:  # a relative event file is the config file's neighbour, wherever evbt is started
        files = [data["events"]] if isinstance(data["events"], str) else data["events"]
        data["events"] = [str(path.parent / Path(f).expanduser()) if not Path(f).expanduser().is_absolute()
                          else str(Path(f).expanduser()) for f in files]
    if "symbols" in data:
        try:
            data["symbols"] = parse_symbol_list(data["symbols"])
        except ConfigError as exc:
            raise ConfigError(f"config file {path}: symbols: {exc}") from None
        if not data["symbols"]:
            raise ConfigError(f"config file {path}: symbols is empty (leave the key out for the strategy's "
                              "default universe)")
    return data


_TEXT_KEYS = ("strategy", "symbols", "events", "fill", "benchmark", "sizing", "overlap", "base_currency")


# ----------------------------------------------------------------------------- assembling a run

SEED_START = dt.date(2021, 1, 1)
SEED_END = dt.date(2023, 6, 30)

_COST_KEYS = {"commission": "commission_pct", "min_commission": "min_commission",
              "slippage_bps": "slippage_bps", "stamp_duty": "stamp_duty_rate"}


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"{key}: {value!r} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: {value!r} is not a number") from None
    if not math.isfinite(number):
        raise ConfigError(f"{key}: {value!r} is not a finite number")
    return number


def make_run_config(
    strategy: str,
    param_pairs: tuple[str, ...] | list[str] = (),
    options: dict[str, Any] | None = None,
    config_file: Path | None = None,
    default_symbols: tuple[str, ...] = (),
    params_cls: type | None = None,
    swept: tuple[str, ...] = (),
) -> RunConfig:
    """Merge defaults < config file < command-line options into a validated RunConfig.

    ``swept``: the keys a sweep's grid sets per point (the base configuration may leave them out).

    ``options`` holds command-line values; ``None`` means "not given". With ``params_cls`` (the strategy's
    Params dataclass) the parameters are validated and stored typed and complete (defaults included), so the
    same run spelled two ways has the same configuration and run id.
    """
    file_values = load_config_file(config_file) if config_file is not None else {}
    if file_values.get("strategy") not in (None, strategy):
        raise ConfigError(f"config file is for strategy {file_values['strategy']!r}, not {strategy!r}")
    merged: dict[str, Any] = {k: v for k, v in file_values.items() if k not in ("strategy", "params")}
    merged.update({k: v for k, v in (options or {}).items() if v is not None})
    params: dict[str, Any] = dict(file_values.get("params", {}))
    params.update(parse_param_pairs(param_pairs))
    if params_cls is not None:
        params = params_to_dict(build_params(params_cls, params, strategy))

    costs = CostModel()
    cost_values: dict[str, Any] = {field: _number(key, merged.pop(key))
                                   for key, field in _COST_KEYS.items() if key in merged}
    if "venue_fees" in merged:
        cost_values["venue_fees"] = coerce(merged.pop("venue_fees"), bool, "venue_fees")
    try:
        costs = dataclasses.replace(costs, **cost_values)
    except ValueError as exc:  # named by the option the user gave, not the CostModel field (commission_pct)
        message = str(exc)
        for key, field in _COST_KEYS.items():
            if message.startswith(f"{field} "):
                message = f"--{key.replace('_', '-')} ({key} in a config file)" + message[len(field):]
        raise ConfigError(message) from None
    symbols = merged.pop("symbols", None)
    symbols_tuple = tuple(parse_symbol_list(symbols)) if symbols is not None else tuple(default_symbols)
    if symbols is not None and not symbols_tuple:
        raise ConfigError("--symbols is empty (leave it out for the strategy's default universe)")
    events = merged.pop("events", ())
    # saved absolute, so `evbt rerun` from another folder reads the same file
    events_files = tuple(str(Path(e).absolute()) for e in ((events,) if isinstance(events, str) else events))
    benchmark = merged.pop("benchmark", "KWEB")
    if isinstance(benchmark, str) and benchmark.strip().lower() in ("", "none"):
        benchmark = None
    elif benchmark is not None:
        benchmark = parse_symbol_list(str(benchmark))[0]
    kwargs: dict[str, Any] = {}
    for key in ("cash", "size"):
        if key in merged:
            kwargs[key] = _number(key, merged.pop(key))
    for key in ("max_gross", "max_weight"):
        if key in merged:
            kwargs[key] = _number(key, merged.pop(key))
    if "max_positions" in merged:
        kwargs["max_positions"] = coerce(merged.pop("max_positions"), int, "max_positions")
    for key in ("allow_short", "allow_margin", "replace_events", "ratings"):
        if key in merged:
            kwargs[key] = coerce(merged.pop(key), bool, key)
    for key in ("fill", "sizing", "overlap", "base_currency"):
        if key in merged:
            kwargs[key] = str(merged.pop(key))
    if kwargs.get("sizing") == "cash" and "size" not in kwargs and "size" not in swept:  # 0.05 bought $0.05
        raise ConfigError("--sizing cash buys a fixed base-currency amount per entry: give it with --size AMOUNT "
                          "(e.g. --size 20000); the default size 0.05 is the fraction of equity of percent/equal "
                          "sizing")
    start = parse_date(merged.pop("start", SEED_START), "start")
    end = parse_date(merged.pop("end", SEED_END), "end")
    if merged:
        raise ConfigError(f"unknown option(s): {', '.join(sorted(merged))}")
    return RunConfig(
        strategy=strategy,
        params=params,
        symbols=symbols_tuple,
        start=start,
        end=end,
        costs=costs,
        benchmark=benchmark,
        events_files=events_files,
        **kwargs,
    )


def run_config_from_dict(data: dict[str, Any]) -> RunConfig:
    """Rebuild a RunConfig saved by ``RunConfig.to_dict`` (used by ``evbt rerun``)."""
    try:
        values = dict(data)
        values["costs"] = CostModel(**values.get("costs", {}))
        values["symbols"] = tuple(values["symbols"])
        values["events_files"] = tuple(values.get("events_files", ()))
        values["start"] = parse_date(values["start"], "start")
        values["end"] = parse_date(values["end"], "end")
        return RunConfig(**values)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"saved run configuration is not valid: {exc}") from None

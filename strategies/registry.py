"""Find strategies by name: every ``Strategy`` subclass with a ``name`` in a module of this package."""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from functools import cache

import strategies
from engine.errors import ConfigError
from strategies.base import Strategy

_SKIP = {"base", "registry"}


@cache
def _discover() -> tuple[dict[str, type[Strategy]], dict[str, str]]:
    found: dict[str, type[Strategy]] = {}
    broken: dict[str, str] = {}
    for info in sorted(pkgutil.iter_modules(strategies.__path__), key=lambda m: m.name):
        if info.name in _SKIP or info.name.startswith("_"):
            continue
        try:
            module = importlib.import_module(f"strategies.{info.name}")
        except Exception as exc:  # a broken user module must not break the other strategies
            broken[info.name] = f"{type(exc).__name__}: {exc}"
            continue
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, Strategy) and obj.name and obj.name not in found:
                found[obj.name] = obj
    return found, broken


def available() -> dict[str, type[Strategy]]:
    """Name -> class, sorted by name."""
    found, _ = _discover()
    return dict(sorted(found.items()))


def get_strategy(name: str) -> type[Strategy]:
    found, broken = _discover()
    if name in found:
        return found[name]
    hint = difflib.get_close_matches(name, list(found), n=1)
    message = f"unknown strategy {name!r}"
    if hint:
        message += f" (did you mean {hint[0]!r}?)"
    message += f"; available: {', '.join(sorted(found))}"
    if broken:
        message += "; modules that failed to import: " + "; ".join(f"{k} ({v})" for k, v in broken.items())
    raise ConfigError(message)

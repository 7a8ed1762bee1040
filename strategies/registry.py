"""Find strategies: the built-ins of this package, user folders, and single user files.

A strategy reference is either a name or the path of a ``.py`` file holding one ``Strategy`` subclass:

- a built-in name (``reassurance``): every ``Strategy`` subclass with a ``name`` in a module of this package;
- a name defined by a module in a user folder: ``--strategies-dir DIR`` (repeatable) or ``EVBT_STRATEGIES_PATH``
  (folders separated by ``os.pathsep``); built-ins win a name clash (the clash is reported, not hidden);
- a file: ``evbt run path/to/my_rule.py``.

``resolve(ref, dirs)`` turns a user strategy's reference into the absolute path of its file, which then travels in
the run configuration: a saved run, a rerun and sweep worker processes find the rule without the folder option.

Errors in user modules name the file and line: importing one is a ``ConfigError`` (exit 2); an exception raised
inside a user rule while it runs is shown by the CLI with that rule's own traceback frames (``user_frames``).
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import importlib
import importlib.util
import os
import pkgutil
import sys
import traceback
import typing
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType, TracebackType

import strategies
from engine.errors import ConfigError
from strategies.base import EXIT_PARAMS, BaseParams, Strategy

ENV_PATH = "EVBT_STRATEGIES_PATH"
_SKIP = {"base", "registry", "indicators"}
_USER_FILES: set[str] = set()  # absolute paths of user modules loaded in this process (for user_frames)


@dataclass(frozen=True)
class Found:
    """What a lookup of every strategy found: classes by name, their files, and modules that failed."""

    classes: dict[str, type[Strategy]]
    files: dict[str, str]  # name -> user file (absent for built-ins)
    broken: dict[str, str]  # module or file -> "file, line N: Error: message"


def _location(exc: BaseException, path: str | None = None) -> str:
    """``file, line N`` of the deepest frame of ``exc`` in a user file (or ``path``), or of a SyntaxError."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{exc.filename}, line {exc.lineno}"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename in _USER_FILES | {path}]
    return f"{frames[-1].filename}, line {frames[-1].lineno}" if frames else (path or "?")


def _describe(exc: BaseException, path: str | None = None) -> str:
    message = exc.msg if isinstance(exc, SyntaxError) else str(exc)
    return f"{_location(exc, path)}: {type(exc).__name__}: {message}"


@cache
def _builtins() -> tuple[dict[str, type[Strategy]], dict[str, str]]:
    found: dict[str, type[Strategy]] = {}
    broken: dict[str, str] = {}
    for info in sorted(pkgutil.iter_modules(strategies.__path__), key=lambda m: m.name):
        if info.name in _SKIP or info.name.startswith("_"):
            continue
        try:
            module = importlib.import_module(f"strategies.{info.name}")
        except Exception as exc:  # a broken module dropped in here must not break the other strategies
            broken[info.name] = _describe(exc)
            continue
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, Strategy) and obj.name and obj.name not in found:
                found[obj.name] = obj
    return found, broken


def _import_file(path: Path) -> ModuleType:
    """Import a user file under a private module name (the same file twice = the same module)."""
    resolved = str(path.resolve())
    try:  # the content is in the name: an edited file is imported anew (its runs have new ids)
        content = hashlib.sha256(path.read_bytes()).hexdigest()[:10]
    except OSError:
        content = "unreadable"
    name = f"evbt_user_{path.stem}_{hashlib.sha256(resolved.encode()).hexdigest()[:10]}_{content}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{path}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    _USER_FILES.add(resolved)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def load_file(path: str | Path) -> type[Strategy]:
    """The one ``Strategy`` subclass defined in a user file; its ``name`` defaults to the file's stem."""
    file = Path(path).expanduser()
    if file.suffix != ".py":
        raise ConfigError(f"{file}: a strategy file must be a .py file")
    if not file.is_file():
        raise ConfigError(f"strategy file {file} not found")
    try:
        module = _import_file(file)
    except ConfigError:
        raise
    except (Exception, SystemExit) as exc:  # a sys.exit() in the file ended evbt with its code and no message
        raise ConfigError(f"strategy file {_describe(exc, str(file.resolve()))}") from None
    defined = [obj for obj in vars(module).values()
               if isinstance(obj, type) and issubclass(obj, Strategy) and obj.__module__ == module.__name__]
    if len(defined) != 1:
        names = ", ".join(c.__name__ for c in defined) or "none"
        raise ConfigError(f"{file}: a strategy file must define exactly one Strategy subclass (found {names})")
    cls = defined[0]
    if not cls.name:
        cls.name = file.stem
    _check_shape(cls, file)
    checked_exit_params(cls, str(file))
    return cls


def _check_shape(cls: type[Strategy], file: Path) -> None:
    """What the engine calls exists: ``Params`` a dataclass of ``BaseParams``, and a ``signals`` of the file's own
    (each was an internal TypeError / NotImplementedError when the run reached it)."""
    params = cls.Params
    if not (isinstance(params, type) and dataclasses.is_dataclass(params) and issubclass(params, BaseParams)):
        raise ConfigError(f"{file}: {cls.__name__}.Params must be a @dataclass(frozen=True) subclass of "
                          f"strategies.base.BaseParams, got {getattr(params, '__name__', repr(params))!r} "
                          f"({'not a dataclass' if not dataclasses.is_dataclass(params) else 'not a BaseParams'})")
    try:  # the parameters' types are read to parse -p values: an annotation that does not resolve was a NameError
        typing.get_type_hints(params)
    except Exception as exc:
        raise ConfigError(f"{file}: {cls.__name__}.Params has a type annotation that cannot be resolved "
                          f"({type(exc).__name__}: {exc})") from None
    if _owner(cls, "signals") is Strategy and _owner(cls, "signal_rows") is Strategy:
        raise ConfigError(f"{file}: {cls.__name__} defines no signals(self, ctx) method (it must yield "
                          f"Signal objects; see the README tutorial)")


def checked_exit_params(cls: type[Strategy], where: str | None = None) -> tuple[str, ...]:
    """``cls.exit_params`` once checked: only exit parameters (``EXIT_PARAMS``) its ``Params`` has.

    A declaration inherited from above the class defining ``signals`` or ``explain`` (a rule subclassing a
    built-in and rewriting its signals) promises nothing about the new code: it counts as none."""
    declared = tuple(cls.exit_params or ())
    owner = _owner(cls, "exit_params")
    if not all(issubclass(owner, _owner(cls, name)) for name in ("signals", "explain")):
        return ()
    params = cls.Params
    fields = {f.name for f in dataclasses.fields(params)} if dataclasses.is_dataclass(params) else set()
    wrong = [n for n in declared if n not in EXIT_PARAMS or n not in fields]
    if wrong:
        raise ConfigError(f"{where or 'strategy ' + repr(cls.name or cls.__name__)}: exit_params names "
                          f"{', '.join(map(repr, wrong))}, not an exit parameter of its Params "
                          f"(exit_params may name {', '.join(EXIT_PARAMS)})")
    return declared


def _owner(cls: type, name: str) -> type:
    """The class of ``cls``'s MRO whose own body defines ``name``."""
    return next(k for k in cls.__mro__ if name in vars(k))


def strategy_dirs(extra: tuple[Path, ...] | list[Path] = ()) -> list[Path]:
    """User strategy folders: ``extra`` (``--strategies-dir``) first, then ``EVBT_STRATEGIES_PATH``."""
    env = [Path(p).expanduser() for p in os.environ.get(ENV_PATH, "").split(os.pathsep) if p.strip()]
    out: list[Path] = []
    for folder in [*extra, *env]:
        if not folder.is_dir():
            what = ("is a file, not a folder (a single rule file runs as `evbt run FILE.py`)" if folder.exists()
                    else "not found")
            raise ConfigError(f"strategies folder {folder} {what} (--strategies-dir or {ENV_PATH})")
        if folder.resolve() not in [f.resolve() for f in out]:
            out.append(folder)
    return out


def discover(dirs: tuple[Path, ...] | list[Path] = ()) -> Found:
    """Built-ins plus every module of the user folders (sorted by file name)."""
    builtin, broken_builtin = _builtins()
    classes = dict(builtin)
    files: dict[str, str] = {}
    broken = dict(broken_builtin)
    for folder in strategy_dirs(dirs):
        for file in sorted(folder.glob("*.py")):
            if file.name.startswith("_"):
                continue
            try:
                cls = load_file(file)
            except ConfigError as exc:
                broken[str(file)] = str(exc).removeprefix("strategy file ")
                continue
            if cls.name in classes:
                where = files.get(cls.name, f"the built-in {cls.name!r}")
                broken[str(file)] = f"{file}: strategy name {cls.name!r} is already taken by {where}"
                continue
            classes[cls.name] = cls
            files[cls.name] = str(file.resolve())
    return Found(dict(sorted(classes.items())), files, broken)


def available(dirs: tuple[Path, ...] | list[Path] = ()) -> dict[str, type[Strategy]]:
    """Name -> class, sorted by name."""
    return discover(dirs).classes


def is_file_ref(ref: str) -> bool:
    return ref.endswith(".py")


def resolve(ref: str, dirs: tuple[Path, ...] | list[Path] = ()) -> str:
    """The reference a run configuration keeps: a built-in's name, else the absolute path of the user file."""
    if is_file_ref(ref):
        load_file(ref)
        return str(Path(ref).expanduser().resolve())
    builtin, _ = _builtins()
    if ref in builtin:
        return ref
    found = discover(dirs)
    if ref in found.files:
        return found.files[ref]
    raise _unknown(ref, found)


def get_strategy(ref: str, dirs: tuple[Path, ...] | list[Path] = ()) -> type[Strategy]:
    """The class of a name or a ``.py`` path (see ``resolve``)."""
    if is_file_ref(ref):
        return load_file(ref)
    builtin, _ = _builtins()
    if ref in builtin:
        return builtin[ref]
    found = discover(dirs)
    if ref in found.classes:
        return found.classes[ref]
    raise _unknown(ref, found)


def _unknown(ref: str, found: Found) -> ConfigError:
    hint = difflib.get_close_matches(ref, list(found.classes), n=1)
    message = f"unknown strategy {ref!r}"
    if hint:
        message += f" (did you mean {hint[0]!r}?)"
    message += f"; available: {', '.join(found.classes)}"
    if found.broken:
        message += "; modules that failed to import: " + "; ".join(f"{k} ({v})" for k, v in found.broken.items())
    return ConfigError(message)


def user_error(exc: BaseException) -> str | None:
    """For an exception raised inside a user strategy file: the error line and that file's traceback frames
    (what the CLI shows without --debug); None when no frame of ``exc`` lies in a user file."""
    tb: TracebackType | None = exc.__traceback__
    frames = [f for f in traceback.extract_tb(tb) if f.filename in _USER_FILES]
    if not frames:
        return None
    return (f"strategy raised {type(exc).__name__}: {exc}\nTraceback (frames in the strategy file):\n"
            + "".join(traceback.format_list(frames)).rstrip("\n"))


def user_location(exc: BaseException) -> str | None:
    """``file, line N`` of the deepest frame of ``exc`` in a user file, or None."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename in _USER_FILES]
    return f"{frames[-1].filename}, line {frames[-1].lineno}" if frames else None

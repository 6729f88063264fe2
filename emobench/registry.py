"""Plugin registries fed by Python entry points.

Built-in controllers and classifiers register through the same entry-point groups as third-party
ones, so every run exercises the plugin path. Entry points are loaded lazily: listing the installed
names imports nothing, and a broken plugin only fails when it is asked for.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import traceback
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from emobench.errors import PluginLoadError, UnknownPluginError

CONTROLLERS = "emobench.controllers"
CLASSIFIERS = "emobench.classifiers"
_KIND = {CONTROLLERS: "controller", CLASSIFIERS: "classifier"}


@dataclass(frozen=True)
class PluginInfo:
    name: str
    target: str  # "module:attr"
    distribution: str  # the installed package that declared it


def installed(group: str) -> dict[str, PluginInfo]:
    """The plugins declared in an entry-point group, by name (nothing is imported)."""
    found: dict[str, PluginInfo] = {}
    for ep in entry_points(group=group):
        dist = ep.dist.name if ep.dist is not None else "?"
        found[ep.name] = PluginInfo(ep.name, ep.value, dist)
    return dict(sorted(found.items()))


def _unknown(group: str, name: str) -> UnknownPluginError:
    kind = _KIND.get(group, "plugin")
    names = list(installed(group))
    hint = difflib.get_close_matches(name, names, n=1)
    suggestion = f" Did you mean {hint[0]!r}?" if hint else ""
    return UnknownPluginError(
        f"unknown {kind} {name!r}. Installed {kind}s: {', '.join(names) or '(none)'}.{suggestion} "
        f"(`emobench list {kind}s` shows them; a third-party {kind} registers under the "
        f"entry-point group {group!r}, or pass 'package.module:ClassName')"
    )


def load_class(group: str, name: str) -> type:
    """Resolve a plugin class by entry-point name, or by an explicit 'module:attr' path."""
    if ":" in name:
        module_name, _, attr = name.partition(":")
        target = name
        try:
            obj = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise PluginLoadError(f"cannot import {target!r}: {exc}") from exc
        return obj
    eps = {ep.name: ep for ep in entry_points(group=group)}
    if name not in eps:
        raise _unknown(group, name)
    ep: EntryPoint = eps[name]
    try:
        return ep.load()
    except Exception as exc:  # any import-time failure of a third-party plugin
        dist = ep.dist.name if ep.dist is not None else "an unknown package"
        raise PluginLoadError(
            f"{_KIND.get(group, 'plugin')} {name!r} (from {dist}, {ep.value}) failed to load: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def bound_arguments(cls: type, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The constructor arguments with defaults filled in, so a log says exactly what ran.

    Unknown argument names fail here, with the accepted names, rather than deep inside __init__.
    """
    if cls.__init__ is object.__init__:  # a plugin without arguments of its own
        if kwargs:
            raise PluginLoadError(
                f"{getattr(cls, 'name', cls.__name__)} takes no arguments (got {', '.join(kwargs)})"
            )
        return {}
    sig = inspect.signature(cls.__init__)
    params = [p for p in sig.parameters.values() if p.name != "self"]
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in params)
    known = {p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    unknown = sorted(set(kwargs) - known)
    if unknown and not accepts_any:
        raise PluginLoadError(
            f"{getattr(cls, 'name', cls.__name__)} does not take argument(s) {', '.join(unknown)}; "
            f"it takes: {', '.join(sorted(known)) or '(no arguments)'}"
        )
    bound = sig.bind_partial(None, **kwargs)
    bound.apply_defaults()
    args = dict(bound.arguments)
    args.pop("self", None)
    for p in params:
        if p.kind is p.VAR_KEYWORD:
            args.update(args.pop(p.name, {}))
    return args


def changed_arguments(cls: type, args: dict[str, Any]) -> dict[str, Any]:
    """The arguments that differ from the constructor's defaults: `alpha=4` given where 4 is
    the default is the same setting as nothing given."""
    if cls.__init__ is object.__init__:
        return {}
    params = inspect.signature(cls.__init__).parameters.values()
    defaults = {p.name: p.default for p in params if p.default is not p.empty}

    def same(key: str, value: Any) -> bool:
        try:
            return key in defaults and bool(defaults[key] == value)
        except Exception:  # a value that cannot say whether it equals the default differs
            return False

    return {k: v for k, v in args.items() if not same(k, v)}


def _where(exc: BaseException, cls: type) -> str:
    """Where in the plugin's own file its constructor raised (not in a library it called): the
    one-line error would otherwise hide the line."""
    try:
        source = inspect.getsourcefile(cls)
    except TypeError:
        return ""
    own = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == source]
    return f" (raised at {own[-1].filename}:{own[-1].lineno})" if own else ""


def create(group: str, name: str, **kwargs: Any) -> Any:
    """Instantiate a plugin and record the arguments it was built with: ``plugin.args`` with
    defaults filled in, ``plugin.given`` as passed, ``plugin.changed`` those not at their
    default."""
    cls = load_class(group, name)
    args = bound_arguments(cls, kwargs)
    try:
        obj = cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise PluginLoadError(
            f"{_KIND.get(group, 'plugin')} {name!r}: {exc}{_where(exc, cls)}"
        ) from exc
    obj.registry_name = name
    obj.args = args
    obj.given = dict(kwargs)
    obj.changed = changed_arguments(cls, args)
    return obj

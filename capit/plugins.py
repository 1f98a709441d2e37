"""Finding built-in and third-party plugins (platforms, consumers, stores).

Built-ins are named here as ``module:attribute`` strings and imported only when used.
Third-party plugins register entry points in the groups ``capit.platforms.v1``,
``capit.consumers.v1`` and ``capit.stores.v1`` (the pattern of simonw/llm and httpie);
``importlib.metadata`` is consulted only when a name is not built in or a full list is
asked for.  A plugin that fails to load is a warning naming it, never a crash.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from capit import ui

_loaded: dict[tuple[str, str], Any] = {}
_broken: set[tuple[str, str]] = set()


def load_ref(ref: str) -> Any:
    module, _, attr = ref.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def entry_points(group: str) -> dict[str, Any]:
    """Name -> entry point for one group (not loaded yet)."""
    from importlib.metadata import entry_points as _eps

    return {ep.name: ep for ep in _eps(group=group)}


def _instantiate(obj: Any) -> Any:
    return obj() if isinstance(obj, type) else obj


def load_plugin(group: str, name: str, builtins: dict[str, str],
                check: Callable[[Any], bool] | None = None) -> Any | None:
    """The plugin called ``name`` in ``group``, built-ins first; None if there is none."""
    key = (group, name)
    if key in _loaded:
        return _loaded[key]
    if key in _broken:
        return None
    if name in builtins:
        obj = _instantiate(load_ref(builtins[name]))
    else:
        ep = entry_points(group).get(name)
        if ep is None:
            return None
        try:
            obj = _instantiate(ep.load())
        except Exception as exc:  # noqa: BLE001 - any plugin failure is a warning
            ui.warn(f"plugin {name!r} ({ep.value}) failed to load: {type(exc).__name__}: {exc}")
            _broken.add(key)
            return None
        if check is not None and not check(obj):
            ui.warn(f"plugin {name!r} ({ep.value}) is not a valid {group} plugin; ignored")
            _broken.add(key)
            return None
    _loaded[key] = obj
    return obj


def plugin_names(group: str, builtins: dict[str, str]) -> list[str]:
    names = list(builtins)
    try:
        extra = sorted(n for n in entry_points(group) if n not in builtins)
    except Exception as exc:  # noqa: BLE001 - broken metadata must not break listing
        ui.warn(f"cannot read installed {group} plugins: {exc}")
        extra = []
    return names + extra

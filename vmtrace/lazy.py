"""A module name that imports the module on first attribute use, so that a command's code can
name a heavy dependency at module level and still not load it on a path that never uses it."""

from __future__ import annotations

import importlib
from types import ModuleType


class LazyModule:
    """Stands for the module `name`; `lazy.attr` imports it (once) and returns its `attr`."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str):
        module: ModuleType = importlib.import_module(self._name)
        return getattr(module, attr)


def lazy_module(name: str) -> LazyModule:
    """`name` imported on first attribute use (see `LazyModule`)."""
    return LazyModule(name)

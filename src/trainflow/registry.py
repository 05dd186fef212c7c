"""Registries: bind a name used in params.yaml to a factory and its config class.

``@models.register("mlp", MLPConfig)`` on a class (or function) makes ``model.name: mlp`` in
params.yaml select it; the config section is validated against ``MLPConfig`` and the factory
is called as ``factory(config, **context)``. An unknown name fails with the list of known
names and the closest match, so a typo is a one-line fix.
"""

from __future__ import annotations

import difflib
import importlib
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from trainflow.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry:
    """One registered component: its name, what builds it, and the config class it takes."""

    name: str
    factory: Callable[..., Any]
    config_class: type


class Registry(Generic[T]):
    """A named collection of components of one kind (models, losses, ...)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, config_class: type) -> Callable[[T], T]:
        """Decorator: register ``factory`` under ``name`` with ``config_class``."""

        def decorate(factory: T) -> T:
            existing = self._entries.get(name)
            if existing is not None and existing.factory is not factory:
                raise ValueError(f"{self.kind} {name!r} is already registered by {existing.factory!r}")
            self._entries[name] = Entry(name, factory, config_class)  # type: ignore[arg-type]
            return factory

        return decorate

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def get(self, name: str, key: str | None = None) -> Entry:
        """The entry for ``name``; ``key`` (the dotted params key) is named in the error."""
        entry = self._entries.get(name)
        if entry is None:
            raise ConfigError(unknown_name_message(key or f"{self.kind}.name", name, self.names()))
        return entry

    def build(self, config: Any, **context: Any) -> Any:
        """Build the component that ``config.name`` selects: ``factory(config, **context)``."""
        return self.get(config.name).factory(config, **context)


def unknown_name_message(key: str, name: object, known: Iterable[str]) -> str:
    known = sorted(known)
    close = difflib.get_close_matches(str(name), known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{key}: unknown name {name!r}{hint}; known: {', '.join(known)}"


def import_plugins(modules: Iterable[str]) -> None:
    """Import user modules listed under ``imports:`` so their ``@register`` calls run.

    The working directory (the project root, where DVC runs every stage) is searched first, so
    a ``my_models.py`` beside params.yaml imports without setting PYTHONPATH, as it would for
    ``python -c`` (the ``trainflow`` console script does not put it on ``sys.path`` itself).
    """
    modules = list(modules)
    root = os.getcwd()
    if modules and root not in sys.path:
        sys.path.insert(0, root)
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise ConfigError(f"imports: cannot import {module!r} ({error}); list importable module names") from None


datasets: Registry[Any] = Registry("dataset")
encoders: Registry[Any] = Registry("encoder")
models: Registry[Any] = Registry("model")
losses: Registry[Any] = Registry("loss")
optimizers: Registry[Any] = Registry("optimizer")
schedulers: Registry[Any] = Registry("scheduler")
metrics: Registry[Any] = Registry("metric")
loggers: Registry[Any] = Registry("logger")
callbacks: Registry[Any] = Registry("callback")
problems: Registry[Any] = Registry("problem")

"""Registries: bind a name used in params.yaml to a config class and a lazily imported factory.

Built-ins are *declared*: ``models.declare("mlp", MLPConfig, "trainflow.models.mlp:MLP")`` binds
``model.name: mlp`` to its config class (torch-free, in :mod:`trainflow.components`) and names
the implementation, which is imported only when ``entry.factory`` or ``build`` needs it. So
validating params.yaml costs pydantic alone, and a stage imports only the code it runs.

User plug-ins listed under ``imports:`` keep the decorator form, ``@models.register("linear",
LinearConfig)``, on a class or function. Either way the factory is called as
``factory(config, **context)``. An unknown name fails with the list of known names and the
closest match, so a typo is a one-line fix.
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
    """One registered component: its name, its config class, and what builds it.

    ``target`` is the factory itself or ``"module:attribute"``, imported on first use of
    :attr:`factory`. ``task`` is the problem type the component fits (``classification``,
    ``regression``), or None for any; config validation checks it against the data set's task.
    """

    name: str
    config_class: type
    target: Callable[..., Any] | str
    task: str | None = None

    @property
    def factory(self) -> Callable[..., Any]:
        """The class or function that builds the component (importing its module if needed)."""
        if not isinstance(self.target, str):
            return self.target
        module, _, attribute = self.target.partition(":")
        return getattr(importlib.import_module(module), attribute)

    def fits(self, task: str) -> bool:
        """Whether the component can be used for a data set of ``task``."""
        return self.task is None or self.task == task


def _target_name(factory: Any) -> str:
    return f"{getattr(factory, '__module__', '')}:{getattr(factory, '__qualname__', '')}"


class Registry(Generic[T]):
    """A named collection of components of one kind (models, losses, ...)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def declare(self, name: str, config_class: type, target: str, task: str | None = None) -> None:
        """Bind ``name`` to ``config_class`` and the factory at ``target`` (``"module:attr"``),
        which is imported only when the component is built."""
        self._add(Entry(name, config_class, target, task))

    def register(self, name: str, config_class: type, task: str | None = None) -> Callable[[T], T]:
        """Decorator: register ``factory`` under ``name`` with ``config_class``."""

        def decorate(factory: T) -> T:
            self._add(Entry(name, config_class, factory, task))  # type: ignore[arg-type]
            return factory

        return decorate

    def _add(self, entry: Entry) -> None:
        existing = self._entries.get(entry.name)
        if existing is not None and existing.target is not entry.target:
            same = isinstance(existing.target, str) and existing.target == _target_name(entry.target)
            if not same or existing.config_class is not entry.config_class:
                raise ValueError(f"{self.kind} {entry.name!r} is already registered by {existing.target!r}")
        self._entries[entry.name] = entry

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

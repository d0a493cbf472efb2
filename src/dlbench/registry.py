"""One generic registry, used by every component family (the timm pattern).

A family module owns one ``Registry`` and registers its members with a one-line
description and optional capability flags. Study files refer to members by name only,
so names are lowercase snake_case and never change once used (they end up in MLflow).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Generic, TypeVar

from dlbench.errors import ConfigError, unknown_message

T = TypeVar("T")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A registered member: the factory, what it is for, and what it can do."""

    name: str
    factory: Callable[..., T]
    description: str
    flags: dict[str, Any] = field(default_factory=dict)

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """Keyword arguments the factory accepts by name, with their defaults.

        Positional-only parameters (``params`` of an optimizer, say) are the caller's,
        not hyperparameters, and are left out.
        """
        return dict(self._keyword_defaults)

    @cached_property
    def _keyword_defaults(self) -> dict[str, Any]:
        # Read once: validation asks every entry thousands of times (inspect is slow).
        sig = inspect.signature(self.factory)
        return {
            p.name: p.default
            for p in sig.parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY
        }


@dataclass(frozen=True)
class Choice:
    """A member chosen by name with hyperparameters, passed to code that builds it later.

    Models build their norms, activations and initializers by name deep inside their
    constructors; a ``Choice`` carries a study file's ``{name: groupnorm, groups: 4}``
    there without the model knowing about hyperparameters. ``str(choice)`` is the name.
    """

    name: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.name


# What code that builds a member takes: a plain name or a Choice with hyperparameters.
Named = str | Choice


class Registry(Generic[T]):
    """Name -> factory for one family (optimizers, initializers, ...)."""

    def __init__(self, family: str):
        self.family = family
        self._entries: dict[str, Entry[T]] = {}

    def register(
        self, name: str, *, description: str, **flags: Any
    ) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator: register ``factory`` under ``name``; hyperparameters are keyword-only."""
        if not _NAME.match(name):
            raise ValueError(f"{self.family} name {name!r} is not lowercase snake_case")
        if name in self._entries:
            raise ValueError(f"{self.family} {name!r} is registered twice")

        def decorate(factory: Callable[..., T]) -> Callable[..., T]:
            self._entries[name] = Entry(name, factory, description, dict(flags))
            return factory

        return decorate

    def get(self, name: Named) -> Entry[T]:
        """The entry for ``name``; an unknown name raises ConfigError listing close matches."""
        if isinstance(name, Choice):
            name = name.name
        try:
            return self._entries[name]
        except (KeyError, TypeError):  # TypeError: a list or mapping where a name belongs
            raise ConfigError(self.unknown_message(name)) from None

    def unknown_message(self, name: object) -> str:
        return unknown_message(self.family, name, self.names())

    def create(self, name: Named, *args: Any, **kwargs: Any) -> T:
        """Build the member ``name`` (a Choice adds its hyperparameters); unknown ones are a ConfigError."""
        if isinstance(name, Choice):
            name, kwargs = name.name, {**name.kwargs, **kwargs}
        entry = self.get(name)
        allowed = entry.hyperparameters
        unknown = sorted(set(kwargs) - set(allowed))
        if unknown:
            raise ConfigError(
                f"{self.family} {name!r} takes no {', '.join(unknown)}; "
                f"allowed: {', '.join(allowed) or 'none'}"
            )
        return entry.factory(*args, **kwargs)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def describe(self) -> dict[str, str]:
        """name -> one-line description, sorted by name (what `dlbench list` prints)."""
        return {name: self._entries[name].description for name in self.names()}

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._entries

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(self._entries[name] for name in self.names())

    def __len__(self) -> int:
        return len(self._entries)

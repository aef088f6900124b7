"""Name → class registries filled by a decorator (torchdistill style): rules, losses, students."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, TypeVar

T = TypeVar("T", bound=type)


class Registry(dict):
    """`@registry.register("name")` on a class; `registry.get_class(name)`; `registry.build(name, options)`."""

    def __init__(self, kind: str, error: type[Exception] = KeyError) -> None:
        super().__init__()
        self.kind = kind
        self.error = error

    def register(self, name: str) -> Callable[[T], T]:
        def decorate(cls: T) -> T:
            if name in self:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            cls.name = name
            self[name] = cls
            return cls

        return decorate

    def get_class(self, name: str) -> type:
        if name not in self:
            raise self.error(f"unknown {self.kind} {name!r} (known: {', '.join(sorted(self))})")
        return self[name]

    def build(self, name: str, options: dict[str, Any] | None = None) -> Any:
        """Instantiate a registered dataclass, refusing options it does not have."""
        cls = self.get_class(name)
        options = dict(options or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(options) - known
        if unknown:
            raise self.error(f"{self.kind} {name!r} has no option(s) {', '.join(sorted(unknown))} "
                             f"(options: {', '.join(sorted(known))})")
        return cls(**options)

"""Name → class registries filled by a decorator (torchdistill style): rules, losses, students."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, TypeVar

from distill.common.config_io import ConfigError, construct, validate_fields

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

    def options(self, name: str) -> list[str]:
        """The options of a registered dataclass: its init fields, less `compare=False` runtime state."""
        return [f.name for f in dataclasses.fields(self.get_class(name)) if f.init and f.compare]

    def build(self, name: str, options: dict[str, Any] | None = None) -> Any:
        """Instantiate a registered dataclass; unknown options raise `self.error`, bad values `ConfigError`."""
        cls = self.get_class(name)
        if options is not None and not isinstance(options, dict):
            raise ConfigError(f"options of {self.kind} {name!r} must be a mapping, not {options!r}")
        options = dict(options or {})
        known = self.options(name)
        unknown = set(options) - set(known)
        if unknown:
            raise self.error(f"{self.kind} {name!r} has no option(s) {', '.join(sorted(map(str, unknown)))} "
                             f"(options: {', '.join(sorted(known))})")
        return construct(cls, validate_fields(cls, options))

"""Name → rule class registry, filled by `@register_rule` (torchdistill style).

A rule belongs to a family that says how it combines with the others: `tang` rules are
combined by `augment.tang`, `tinybert` rules by `augment.tinybert`.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

RULES: dict[str, type] = {}
T = TypeVar("T", bound=type)


class UnknownRuleError(ValueError):
    pass


def register_rule(name: str) -> Callable[[T], T]:
    def decorate(cls: T) -> T:
        if name in RULES:
            raise ValueError(f"rule {name!r} registered twice")
        cls.name = name
        RULES[name] = cls
        return cls

    return decorate


def get_rule(name: str) -> type:
    try:
        return RULES[name]
    except KeyError:
        raise UnknownRuleError(f"unknown rule {name!r} (known rules: {', '.join(sorted(RULES))})") from None


def build_rule(name: str, params: dict[str, Any] | None = None):
    cls = get_rule(name)
    params = dict(params or {})
    known = set(cls.__dataclass_fields__)
    unknown = set(params) - known
    if unknown:
        raise ValueError(f"rule {name!r} has no option(s) {', '.join(sorted(unknown))} (options: {', '.join(sorted(known))})")
    return cls(**params)

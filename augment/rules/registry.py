"""Name → rule class registry, filled by `@register_rule` (torchdistill style). `augment.tang`
combines mask, pos, ngram and mention; `augment.tinybert` combines mlm and glove."""

from __future__ import annotations

from typing import Any

from distill.common.registry import Registry
from distill.errors import UserError


class UnknownRuleError(UserError, ValueError):
    pass


RULES = Registry("rule", UnknownRuleError)
register_rule = RULES.register
get_rule = RULES.get_class


def build_rule(name: str, params: dict[str, Any] | None = None):
    try:
        return RULES.build(name, params)
    except UnknownRuleError as err:
        if name in RULES:  # an unknown option: a value problem, as the config layer expects
            raise ValueError(str(err)) from None
        raise

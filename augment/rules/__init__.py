"""Augmentation rules, one module each, registered by name (see `registry.RULES`)."""

from augment.rules import glove, mask, mention, mlm, ngram, pos  # noqa: F401  (registration side effect)
from augment.rules.registry import RULES, UnknownRuleError, build_rule, get_rule, register_rule

__all__ = ["RULES", "UnknownRuleError", "build_rule", "get_rule", "register_rule"]

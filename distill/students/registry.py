"""Student registry: recipes name a student (`student: {name: bilstm, ...}`)."""

from __future__ import annotations

import dataclasses
from typing import Any

from distill.common.config_io import ConfigError, validate_fields
from distill.common.registry import Registry

STUDENTS = Registry("student")
register_student = STUDENTS.register
get_student = STUDENTS.get_class


def check_student_options(name: str, options_cls, options: dict[str, Any], exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """A recipe's `student:` options checked against `options_cls`, before any cache is opened (`ConfigError`)."""
    allowed = [f.name for f in dataclasses.fields(options_cls) if f.name not in exclude]
    unknown = sorted(set(options) - set(allowed), key=str)
    if unknown:
        raise ConfigError(f"{name} has no option(s) {', '.join(map(str, unknown))} (options: {', '.join(allowed)})")
    return validate_fields(options_cls, options)

"""Student registry: recipes name a student (`student: {name: bilstm, ...}`)."""

from __future__ import annotations

from typing import Callable

STUDENTS: dict[str, type] = {}


def register_student(name: str) -> Callable[[type], type]:
    def add(cls: type) -> type:
        if name in STUDENTS:
            raise ValueError(f"student {name!r} registered twice")
        cls.kind = name
        STUDENTS[name] = cls
        return cls

    return add


def get_student(name: str) -> type:
    if name not in STUDENTS:
        raise KeyError(f"unknown student {name!r}; choose from {', '.join(sorted(STUDENTS))}")
    return STUDENTS[name]

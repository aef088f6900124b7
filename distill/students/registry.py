"""Student registry: recipes name a student (`student: {name: bilstm, ...}`)."""

from __future__ import annotations

from distill.common.registry import Registry

STUDENTS = Registry("student")
register_student = STUDENTS.register
get_student = STUDENTS.get_class

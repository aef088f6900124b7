"""A teacher's label space, and gold labels checked against it, by name (`ClassLabel` ids arrive as names),
before any work is done: a label the teacher cannot produce is refused in one line."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from distill.errors import InputError

log = logging.getLogger(__name__)


class LabelError(InputError):
    """Gold labels the teacher cannot have produced (one line: file, row, value, the teacher's classes)."""


@dataclass(frozen=True)
class LabelSpace:
    num_labels: int
    label2id: dict[str, int] | None = None  # names as the teacher's config has them

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "LabelSpace":
        """From a transformers config dict (`num_labels` or `id2label`, and `label2id`)."""
        num_labels = int(config.get("num_labels") or len(config.get("id2label") or {}) or 2)
        label2id = {str(k): int(v) for k, v in (config.get("label2id") or {}).items()} or None
        return cls(num_labels, label2id)

    @property
    def is_regression(self) -> bool:
        return self.num_labels == 1

    def names(self) -> list[str]:
        """The name of each class id (the id itself where the teacher names none): tag names of a token task."""
        by_id = {i: name for name, i in (self.label2id or {}).items()}
        return [by_id.get(i, str(i)) for i in range(self.num_labels)]

    def describe(self) -> str:
        if self.is_regression:
            return "a regression teacher (1 output)"
        names = sorted((self.label2id or {}).items(), key=lambda kv: kv[1])
        named = f": {', '.join(f'{i}={n}' for n, i in names)}" if names else ""
        return f"the teacher's {self.num_labels} classes (ids 0..{self.num_labels - 1}{named})"

    def ids(self, values: Sequence[Any], rows: Sequence[int], source: str, what: str = "label") -> list[int | None]:
        """Class ids of gold `values` (None: unlabelled) at 1-based `rows` of `source`; `what` names a value
        in the refusal (`tag` for a token task)."""
        if self.is_regression:
            bad = next(((r, v) for r, v in zip(rows, values) if isinstance(v, str)), None)
            if bad:
                raise LabelError(f"{source}: row {bad[0]}: label {bad[1]!r} is not a number, but the teacher is "
                                 "a regression model (1 output)")
            return list(values)
        return [None if value is None else self._id(value, row, source, what, values)
                for row, value in zip(rows, values)]

    def _id(self, value: Any, row: int, source: str, what: str, values: Sequence[Any]) -> int:
        if isinstance(value, str):
            if self.label2id and value in self.label2id:
                return self.label2id[value]
            if not value.strip().lstrip("+-").isdigit():
                known = f"its label names are {sorted(self.label2id)}" if self.label2id else "it has no label names"
                data_names = sorted({v for v in values if isinstance(v, str)})
                raise LabelError(f"{source}: row {row}: {what} {value!r} is not one of the teacher's labels "
                                 f"({known}; the data's are {data_names}); pass a teacher fine-tuned on these labels")
            value = int(value)
        if isinstance(value, float):
            if not value.is_integer():
                raise LabelError(f"{source}: row {row}: {what} {value!r} is not a class id, but the teacher is a "
                                 f"{self.num_labels}-class classifier")
            value = int(value)
        if not 0 <= int(value) < self.num_labels:
            raise LabelError(f"{source}: row {row}: {what} {value!r} is outside {self.describe()}; "
                             "pass a teacher fine-tuned on these labels")
        return int(value)

    def warn_unused(self, ids: Sequence[int | None], source: str) -> None:
        """One warning when the data uses fewer classes than the teacher has (allowed: a subset)."""
        used = {i for i in ids if i is not None}
        if not self.is_regression and used and len(used) < self.num_labels:
            log.warning("%s uses %d of %s (%s); the others never appear as gold labels", source, len(used),
                        self.describe(), ", ".join(map(str, sorted(used))))

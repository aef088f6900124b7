"""The end-of-run report: student against teacher on the dev set, written as JSON and Markdown.

The teacher is loaded here, once, for its dev metrics, only when a copy matching the cache's
fingerprint is at hand; otherwise the report says so in one line. Training itself never runs it
(unless `--online`)."""

from __future__ import annotations

import json
from pathlib import Path
from collections.abc import Sequence
from typing import Any

from distill.train.evaluate import evaluate, parameter_count


def _weights_mb(directory: Path) -> float:
    return sum(f.stat().st_size for f in directory.glob("*.safetensors")) / 1e6


TEACHER_MISSING = ("not reachable (no --teacher given and the path recorded in the cache is absent or "
                   "holds other files); pass --teacher PATH_OR_NAME for its dev metrics")


def write_report(run_dir: Path, student, student_dir: Path, teacher_dir: Path | None, dev, device: str,
                 note: str | None = None, task: str = "classification",
                 metrics: Sequence[str] = ("accuracy", "f1")) -> dict[str, Any]:
    """Student (and, when its weights are at hand, teacher) dev metrics; a missing teacher is one line.
    A token dev set is scored per word (the teacher loaded as a token classifier, read at first pieces)."""
    from distill.common.models import model_class

    student.eval()
    rows = {"student": {**evaluate(lambda t: student(t).logits, dev, device, task, metrics),
                        "parameters": parameter_count(student), "size_mb": _weights_mb(student_dir)}}
    if teacher_dir is not None:
        teacher = model_class("token_classification" if task == "token_classification" else "classification")
        teacher = teacher.from_pretrained(teacher_dir)
        teacher = teacher.to(device).eval()
        rows["teacher"] = {**evaluate(lambda t: teacher_logits(teacher, t), dev, device, task, metrics),
                           "parameters": parameter_count(teacher), "size_mb": _weights_mb(Path(teacher_dir))}
    else:
        note = note or TEACHER_MISSING
    dev_rows = {"file": dev.source, "rows_scored": dev.rows, "rows_rejected": dev.rejected, "rejected": dev.reasons}
    (run_dir / "report.json").write_text(json.dumps({**rows, "task": task, "metrics": list(metrics), "dev": dev_rows,
                                                    **({"note": note} if note else {})}, indent=2))
    lines = [metrics_table(rows, metrics), "", f"Dev set: {dev.describe()}."]
    if teacher_dir is None:
        lines += ["", f"Teacher row omitted: {note}."]
    (run_dir / "report.md").write_text("\n".join(lines) + "\n")
    return rows


def teacher_logits(teacher, tensors):
    """The teacher's logits; for token tasks at each word's first piece, like the students'."""
    from distill.common.models import at_words

    inputs = {k: v for k, v in tensors.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
    logits = teacher(**inputs).logits
    return at_words(logits, tensors["word_starts"]) if "word_starts" in tensors else logits


def metrics_table(rows: dict[str, dict[str, Any]], metrics: Sequence[str]) -> str:
    """A Markdown table: one row per model, the metrics, then size and speed where known."""
    extra = [(key, title) for key, title in (("parameters", "parameters"), ("size_mb", "size (MB)"),
                                             ("examples_per_second", "examples/s"))
             if any(key in row for row in rows.values())]
    lines = ["| model | " + " | ".join([*(f"dev {m}" for m in metrics), *(t for _, t in extra)]) + " |",
             "|---|" + "---:|" * (len(metrics) + len(extra))]
    for name, row in rows.items():
        cells = [f"{row[m]:.4f}" if m in row else "-" for m in metrics]
        cells += [_cell(key, row.get(key)) for key, _ in extra]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key == "parameters":
        return f"{value:,}"
    return f"{value:.1f}" if key == "size_mb" else f"{value:.0f}"

"""The end-of-run report: student against teacher on the dev set, written as JSON and Markdown.

The teacher is loaded here, once, for its dev metrics, only when a copy matching the cache's
fingerprint is at hand; otherwise the report says so in one line. Training itself never runs it
(unless `--online`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from distill.train.evaluate import evaluate, parameter_count


def _weights_mb(directory: Path) -> float:
    return sum(f.stat().st_size for f in directory.glob("*.safetensors")) / 1e6


TEACHER_MISSING = ("not reachable (no --teacher given and the path recorded in the cache is absent or "
                   "holds other files); pass --teacher PATH_OR_NAME for its dev metrics")


def write_report(run_dir: Path, student, student_dir: Path, teacher_dir: Path | None, dev, device: str,
                 note: str | None = None) -> dict[str, Any]:
    """Student (and, when its weights are at hand, teacher) dev metrics; a missing teacher is one line.
    A token dev set (`dev.tag_names`) is scored by entity F1 / precision / recall and token accuracy,
    with the teacher loaded as a token classifier."""
    from distill.common.models import model_class

    tokens = bool(getattr(dev, "tag_names", None))
    student.eval()
    rows = {"student": {**evaluate(lambda t: student(t).logits, dev, device),
                        "parameters": parameter_count(student), "size_mb": _weights_mb(student_dir)}}
    if teacher_dir is not None:
        teacher = model_class("token_classification" if tokens else "classification").from_pretrained(teacher_dir)
        teacher = teacher.to(device).eval()
        rows["teacher"] = {**evaluate(lambda t: _teacher_logits(teacher, t), dev, device),
                           "parameters": parameter_count(teacher), "size_mb": _weights_mb(Path(teacher_dir))}
    else:
        note = note or TEACHER_MISSING
    dev_rows = {"file": dev.source, "rows_scored": dev.rows, "rows_rejected": dev.rejected, "rejected": dev.reasons}
    (run_dir / "report.json").write_text(json.dumps({**rows, "dev": dev_rows, **({"note": note} if note else {})},
                                                    indent=2))
    lines = _token_table(rows) if tokens else _table(rows)
    lines += ["", f"Dev set: {dev.describe()}."]
    if teacher_dir is None:
        lines += ["", f"Teacher row omitted: {note}."]
    (run_dir / "report.md").write_text("\n".join(lines) + "\n")
    return rows


def _teacher_logits(teacher, tensors):
    """The teacher's logits; for token tasks at each word's first piece, like the students'."""
    from distill.common.models import at_words

    inputs = {k: v for k, v in tensors.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
    logits = teacher(**inputs).logits
    return at_words(logits, tensors["word_starts"]) if "word_starts" in tensors else logits


def _table(rows: dict[str, dict[str, Any]]) -> list[str]:
    lines = ["| model | dev accuracy | F1 | parameters | size (MB) | dev examples/s |", "|---|---:|---:|---:|---:|---:|"]
    for name, row in rows.items():
        f1 = f"{row['f1']:.4f}" if "f1" in row else "-"
        lines.append(f"| {name} | {row['accuracy']:.4f} | {f1} | {row['parameters']:,} | {row['size_mb']:.1f} | "
                     f"{row['examples_per_second']:.0f} |")
    return lines


def _token_table(rows: dict[str, dict[str, Any]]) -> list[str]:
    lines = ["| model | entity F1 | precision | recall | token accuracy | parameters | size (MB) | dev examples/s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, row in rows.items():
        lines.append(f"| {name} | {row['entity_f1']:.4f} | {row['entity_precision']:.4f} | {row['entity_recall']:.4f} | "
                     f"{row['token_accuracy']:.4f} | {row['parameters']:,} | {row['size_mb']:.1f} | "
                     f"{row['examples_per_second']:.0f} |")
    return lines

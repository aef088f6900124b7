"""The end-of-run report: student against teacher on the dev set, written as JSON and Markdown.

The teacher is loaded here, once, for its dev metrics; training itself never runs it
(unless `--online`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from distill.train.evaluate import evaluate, parameter_count


def _weights_mb(directory: Path) -> float:
    return sum(f.stat().st_size for f in directory.glob("*.safetensors")) / 1e6


def write_report(run_dir: Path, student, student_dir: Path, teacher_dir: str, dev, device: str,
                 include_teacher: bool = True) -> dict[str, Any]:
    from transformers import AutoModelForSequenceClassification

    student.eval()
    rows = {"student": {**evaluate(lambda t: student(t).logits, dev, device),
                        "parameters": parameter_count(student), "size_mb": _weights_mb(student_dir)}}
    if include_teacher:
        teacher = AutoModelForSequenceClassification.from_pretrained(teacher_dir).to(device).eval()
        rows["teacher"] = {**evaluate(lambda t: teacher(**t).logits, dev, device),
                           "parameters": parameter_count(teacher), "size_mb": _weights_mb(Path(teacher_dir))}
    (run_dir / "report.json").write_text(json.dumps(rows, indent=2))
    lines = ["| model | dev accuracy | F1 | parameters | size (MB) | dev examples/s |", "|---|---:|---:|---:|---:|---:|"]
    for name, row in rows.items():
        f1 = f"{row['f1']:.4f}" if "f1" in row else "-"
        lines.append(f"| {name} | {row['accuracy']:.4f} | {f1} | {row['parameters']:,} | {row['size_mb']:.1f} | "
                     f"{row['examples_per_second']:.0f} |")
    (run_dir / "report.md").write_text("\n".join(lines) + "\n")
    return rows

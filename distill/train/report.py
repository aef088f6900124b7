"""The end-of-run report: student against teacher on the dev set, written as JSON and Markdown,
and the curves (training loss, dev headline metric) as a PNG.

The teacher is loaded here, once, for its dev metrics, only when a copy matching the cache's
fingerprint is at hand; otherwise the report says so in one line. Training itself never runs it
(unless `--online`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from distill.evaluate import evaluate, load_model, metrics_table, parameter_count

TEACHER_MISSING = ("not reachable (no --teacher given and the path recorded in the cache is absent or "
                   "holds other files); pass --teacher PATH_OR_NAME for its dev metrics")


def _weights_mb(directory: Path) -> float:
    return sum(f.stat().st_size for f in directory.glob("*.safetensors")) / 1e6


def write_report(run_dir: Path, student, student_dir: Path, teacher_dir: Path | None, dev, device: str,
                 note: str | None = None, task: str = "classification",
                 metrics: Sequence[str] = ("accuracy", "f1")) -> dict[str, Any]:
    """Student (and, when its weights are at hand, teacher) dev metrics; a missing teacher is one line.
    A token dev set is scored per word (the teacher loaded as a token classifier, read at first pieces)."""
    student.eval()
    rows = {"student": {**evaluate(lambda t: student(t).logits, dev, device, task, metrics),
                        "parameters": parameter_count(student), "size_mb": _weights_mb(student_dir)}}
    if teacher_dir is not None:
        teacher = load_model(str(teacher_dir), device)
        rows["teacher"] = {**evaluate(teacher.logits, dev, device, task, metrics),
                           "parameters": parameter_count(teacher.model), "size_mb": _weights_mb(Path(teacher_dir))}
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


def plot_metrics(metrics_path: Path, out_path: Path, metric: str = "accuracy") -> Path:
    """The training loss and the dev `metric` from `metrics.jsonl` (matplotlib, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
    train, key = [r for r in rows if "loss" in r], f"dev_{metric}"
    dev = [r for r in rows if key in r]
    fig, loss_axis = plt.subplots(figsize=(7, 4))
    loss_axis.plot([r["step"] for r in train], [r["loss"] for r in train], color="tab:blue", label="train loss")
    loss_axis.set_xlabel("step")
    loss_axis.set_ylabel("loss", color="tab:blue")
    if dev:
        acc_axis = loss_axis.twinx()
        acc_axis.plot([r["step"] for r in dev], [r[key] for r in dev], "o-", color="tab:orange", label=f"dev {metric}")
        acc_axis.set_ylabel(f"dev {metric}", color="tab:orange")
    fig.tight_layout()
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
    return out_path

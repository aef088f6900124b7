"""A PNG of the training loss and the dev headline metric from `metrics.jsonl` (matplotlib, no display)."""

from __future__ import annotations

import json
from pathlib import Path


def plot_metrics(metrics_path: Path, out_path: Path, metric: str = "accuracy") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
    train = [r for r in rows if "loss" in r]
    key = f"dev_{metric}"
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

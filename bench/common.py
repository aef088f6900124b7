"""Inputs shared by the benchmarks."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def scaled_input(directory: Path, sentences: int) -> Path:
    """The bundled sentiment sample cycled to `sentences` rows (each row keeps a distinct id)."""
    lines = (REPO / "pipelines" / "samples" / "sentiment.csv").read_text(encoding="utf-8").splitlines()
    body = lines[1:]
    path = directory / f"sentiment-{sentences}.csv"
    path.write_text("\n".join([lines[0]] + [body[i % len(body)] for i in range(sentences)]) + "\n", encoding="utf-8")
    return path

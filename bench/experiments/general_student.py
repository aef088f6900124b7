"""TinyBERT general distillation on WikiText-2 (corpus → encoder targets → the 4×312 student of
`tinybert_general.yaml`), the general init of the experiments' TinyBERT rows."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench.common import pipeline_section, recipe, reuse_or_run, wikitext_paragraphs, write_if_changed
from distill.train.loop import train


def run_dir_of(out: Path) -> Path:
    """Where `general_student(out, ...)` trains; the student is its `student` folder."""
    return out / "general" / "student-run"


def general_dir(out: Path) -> Path:
    """Where `general_student(out, ...)` saves the TinyBERT general student."""
    return run_dir_of(out) / "student"


def general_student(out: Path, encoder: str, documents: int | None = None, epochs: float = 3.0) -> tuple[Path, dict]:
    """The general student's directory and its facts; cached under `out/general` (a rerun reuses it).
    `documents`: WikiText-2 paragraphs (None: all of valid + test)."""
    from distill import corpus, label

    paragraphs = wikitext_paragraphs("valid", "test")[:documents]
    source = write_if_changed(out / "data" / "wikitext-2.txt", "\n".join(paragraphs) + "\n")
    started = time.perf_counter()
    built = corpus.run(source, out / "general" / "corpus",
                       pipeline_section("general/tinybert", "corpus", corpus.CorpusConfig, {"tokenizer": encoder}))
    labelled = label.run(built.output_dir, out / "general", pipeline_section(
        "general/tinybert", "label", label.LabelConfig,
        {"teacher": encoder, "hidden_layers": [1, 2, 3, 4], "attention_layers": [1, 2, 3, 4]}))
    label_seconds = time.perf_counter() - started
    run_dir = run_dir_of(out)

    def distil() -> dict[str, Any]:
        config = recipe("tinybert_general", {"epochs": epochs, "checkpoint_every": 500, "seed": 0})
        result = train(config, labelled.cache_dir, run_dir, overwrite=True)
        totals = built.manifest["totals"]
        return {"facts": {"documents": totals["documents"], "sequences": totals["sequences"],
                          "wordpieces": totals["tokens"], "cache_bytes": labelled.manifest["totals"]["bytes"],
                          "bytes_per_example": labelled.manifest["totals"]["bytes_per_example"],
                          "label_seconds": label_seconds, "train_seconds": result.seconds, "steps": result.steps}}

    # finished earlier: its timings are the first run's
    record = reuse_or_run(run_dir / "general.json", {"cache": str(labelled.cache_dir), "epochs": epochs}, distil)
    return general_dir(out), record["facts"]

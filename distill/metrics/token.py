"""Token-classification metrics (CoNLL-2003): entity-level precision / recall / F1 by seqeval, and
token accuracy. Predictions and gold are per-sentence lists of tag names (`B-PER`, `I-LOC`, `O`).

`mode=None` is seqeval's default, conlleval's lenient chunking (an `I-X` without a `B-X` still
opens an entity); `mode="strict"` with a `scheme` (IOB2, IOBES, ...) counts only well-formed spans.
"""

from __future__ import annotations

from collections.abc import Sequence

Sentences = Sequence[Sequence[str]]


def _entity(kind: str, mode: str | None = None, scheme: str | None = None):
    def metric(pred: Sentences, gold: Sentences) -> float:
        from seqeval import metrics
        from seqeval import scheme as schemes

        fn = {"f1": metrics.f1_score, "precision": metrics.precision_score, "recall": metrics.recall_score}[kind]
        options = {"mode": mode, "scheme": getattr(schemes, scheme)} if mode else {}
        return float(fn([list(s) for s in gold], [list(s) for s in pred], zero_division=0, **options))

    return metric


def token_accuracy(pred: Sentences, gold: Sentences) -> float:
    """Words whose predicted tag equals the gold tag, over all words."""
    pairs = [(p, g) for ps, gs in zip(pred, gold) for p, g in zip(ps, gs)]
    return sum(p == g for p, g in pairs) / len(pairs) if pairs else 0.0


def token_metrics(pred: Sentences, gold: Sentences, mode: str | None = None, scheme: str | None = None) -> dict[str, float]:
    """All four at once, with a chosen seqeval `mode` / `scheme`."""
    return {"entity_f1": _entity("f1", mode, scheme)(pred, gold),
            "entity_precision": _entity("precision", mode, scheme)(pred, gold),
            "entity_recall": _entity("recall", mode, scheme)(pred, gold),
            "token_accuracy": token_accuracy(pred, gold)}


def register() -> None:
    from distill.metrics import register_metric

    task = ("token_classification",)
    for kind in ("f1", "precision", "recall"):
        register_metric(f"entity_{kind}", task, _entity(kind))
        register_metric(f"strict_entity_{kind}", task, _entity(kind, "strict", "IOB2"))  # well-formed IOB2 spans only
    register_metric("token_accuracy", task, token_accuracy)

"""Token-classification metrics (CoNLL-2003): seqeval's entity-level P / R / F1 and token accuracy.

`mode=None` is conlleval's lenient chunking; `mode="strict"` with a `scheme` counts only well-formed spans.
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


TOKEN_METRICS = {
    **{f"entity_{kind}": _entity(kind) for kind in ("f1", "precision", "recall")},
    **{f"strict_entity_{kind}": _entity(kind, "strict", "IOB2") for kind in ("f1", "precision", "recall")},
    "token_accuracy": token_accuracy,
}  # strict: well-formed IOB2 spans only

"""Token classification (CoNLL-2003 NER): a tag per word, read at the word's first wordpiece."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from distill.common.config_io import ConfigError
from distill.common.models import at_words
from distill.tasks.base import Classifier

ENTITY = ("entity_f1", "entity_precision", "entity_recall")


class TokenClassification(Classifier):
    name = head = input_task = "token_classification"
    auto_class = "AutoModelForTokenClassification"
    noun = "token classifier"
    words = True
    logits_layout = "per_word"
    metrics = (*ENTITY, *(f"strict_{m}" for m in ENTITY), "token_accuracy")
    recipe = "ner_bilstm"

    def head_config(self, teacher_config: Any, num_labels: int) -> dict[str, Any]:
        """The teacher's tag names too: a saved tagger then decodes its own predictions."""
        return {"num_labels": num_labels, "id2label": dict(teacher_config.id2label),
                "label2id": dict(teacher_config.label2id)}

    def check_label_config(self, config: Any, masked_input: bool) -> None:
        if config.wants("topk"):
            raise ConfigError("a token-classification teacher stores full logits per word; drop the topk feature",
                              "features")
        if masked_input:
            raise ConfigError("a token-classification teacher labels tagged words, not a masked corpus", "head")

    def check_topk(self, topk: int | None) -> None:
        if topk:
            raise ValueError("a token-classification teacher stores full logits per word "
                             "(top-k is for large label spaces)")

    def forward(self, model, inputs: dict, hidden_states: bool, extra: Mapping[str, Any]):
        """Logits [B, W, C] at each word's first piece when `word_starts` is given, else [B, T, C]."""
        logits, _, hidden = super().forward(model, inputs, hidden_states, extra)
        return (at_words(logits, extra["word_starts"]) if "word_starts" in extra else logits), None, hidden

    def default_metrics(self, num_labels: int) -> list[str]:
        return [*ENTITY, "token_accuracy"]

    def scored(self, logits, gold, names: Sequence[str] | None = None) -> tuple[list, list]:
        """Tag names of each sentence's real words (gold −100 = padding)."""
        predicted, expected = [], []
        for row_pred, row_gold in zip(logits.argmax(dim=-1).tolist(), gold.tolist()):
            pairs = [(p, g) for p, g in zip(row_pred, row_gold) if g != -100]
            predicted.append([names[p] for p, _ in pairs])
            expected.append([names[g] for _, g in pairs])
        return predicted, expected

    def card_lines(self, totals: Mapping[str, Any]) -> list[str]:
        return [f"- token task: logits and gold tag ids per word at its first wordpiece (`word_starts`); "
                f"{totals.get('words_truncated', 0)} of {totals.get('words', 0)} words cut by max length, "
                f"{totals.get('words_without_pieces', 0)} without a wordpiece (dropped with their tags)"]

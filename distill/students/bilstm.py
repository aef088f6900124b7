"""Tang et al. (2019) BiLSTM student: embeddings → BiLSTM → final states → ReLU MLP → logits; pairs use a
siamese encoder and [h1, h2, h1 ⊙ h2, |h1 − h2|]; on a token task a tagger at each word's first piece.

It reads the cache's wordpiece ids; `vocabulary: cache` keeps embedding rows only for the wordpieces the cache
uses. Saved as `model.safetensors` + `student_config.json`.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from distill.common.config_io import ConfigError, PositiveInt, Probability
from distill.common.models import INPUT_EMBEDDINGS, at_words, model_tensor
from distill.students.output import StudentOutput
from distill.students.registry import BuildContext, check_student_options, register_student
from distill.tasks import task_of_head

CONFIG_NAME = "student_config.json"
PAD_ROW, UNKNOWN_ROW = 0, 1  # with vocabulary: cache, rows 2.. are the cache's wordpieces
WEIGHTS_NAME = "model.safetensors"


@dataclass
class BiLSTMConfig:
    vocab_size: int
    num_labels: int
    pad_token_id: int = 0
    pair: bool = False
    embedding_dim: PositiveInt = 300
    hidden_size: PositiveInt = 150
    mlp_size: PositiveInt = 200
    dropout: Probability = 0.1
    init_embeddings: Literal["random", "teacher"] = "random"
    freeze_embeddings: bool = False
    vocabulary: Literal["cache", "full"] = "cache"  # cache: rows only for wordpieces seen in the cache
    table_size: int | None = None  # rows of the embedding table (set when built)
    head: Literal["classification", "token_classification"] = "classification"  # the cache's: a tagger for token tasks


# Set from the cache when the student is built, not by a recipe.
_FROM_CONTEXT = ("vocab_size", "num_labels", "pad_token_id", "pair", "table_size", "head")


def _teacher_rows(context: BuildContext, kept: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The teacher's embedding rows of `kept` ids (None: all) and the vocabulary mean, from the cache or weights."""
    stored = context.input_embeddings() if kept is not None else None
    if stored is not None:
        ids = stored["token_ids"]
        position = torch.searchsorted(ids, kept).clamp_max(max(len(ids) - 1, 0))
        if len(ids) and bool((ids[position] == kept).all()):
            return stored["rows"][position], stored["mean"]
    table = model_tensor(context.teacher_weights("bilstm with init_embeddings: teacher"), INPUT_EMBEDDINGS).float()
    return (table if kept is None else table[kept]), table.mean(dim=0)


@register_student("bilstm")
class BiLSTMStudent(nn.Module):
    num_layers = 1
    options_class, context_options = BiLSTMConfig, _FROM_CONTEXT

    def __init__(self, config: BiLSTMConfig) -> None:
        super().__init__()
        self.config = config
        self.words = task_of_head(config.head).words  # a tagger: logits per word
        rows = config.table_size or config.vocab_size
        # teacher id -> embedding row; identity for the full vocabulary
        self.register_buffer("id_map", torch.arange(config.vocab_size), persistent=True)
        self.embedding = nn.Embedding(rows, config.embedding_dim, padding_idx=PAD_ROW if config.table_size else config.pad_token_id)
        self.lstm = nn.LSTM(config.embedding_dim, config.hidden_size, batch_first=True, bidirectional=True)
        features = 2 * config.hidden_size * (4 if config.pair else 1)
        self.classifier = nn.Sequential(nn.Linear(features, config.mlp_size), nn.ReLU(), nn.Dropout(config.dropout),
                                        nn.Linear(config.mlp_size, config.num_labels))
        self.embedding.weight.requires_grad_(not config.freeze_embeddings)

    @classmethod
    def build(cls, options: dict, context: BuildContext) -> "BiLSTMStudent":
        options = check_student_options(cls, dict(options))
        if not context.task.has_labels:
            raise ConfigError(f"the BiLSTM is a classifier or tagger; this cache's teacher head is {context.head} "
                              "(general distillation trains narrow_bert or bert_from_teacher)", "student.name")
        kept = None
        if options.get("vocabulary", "cache") == "cache":
            kept = torch.from_numpy(context.token_ids()).long()
            kept = kept[kept != context.pad_token_id]
            options["table_size"] = len(kept) + 2
        rows = mean = None
        if options.get("init_embeddings", "random") == "teacher":
            rows, mean = _teacher_rows(context, kept)
            options["embedding_dim"] = rows.shape[1]
        config = BiLSTMConfig(vocab_size=context.vocab_size, num_labels=context.num_labels,
                              pad_token_id=context.pad_token_id, pair=context.pair and not context.task.words,
                              head=context.head, **options)
        student = cls(config)
        with torch.no_grad():
            if kept is not None:
                student.id_map.fill_(UNKNOWN_ROW)
                student.id_map[context.pad_token_id] = PAD_ROW
                student.id_map[kept] = torch.arange(2, len(kept) + 2)
            if rows is not None:
                if kept is None:
                    student.embedding.weight.copy_(rows)
                else:
                    student.embedding.weight[2:] = rows
                    student.embedding.weight[PAD_ROW].zero_()
                    student.embedding.weight[UNKNOWN_ROW] = mean
        return student

    def encode(self, ids: torch.Tensor, mask: torch.Tensor, tokens: bool = False) -> torch.Tensor:
        """Both directions' final states [B, 2H]; with `tokens`, states at every wordpiece [B, T, 2H]."""
        lengths = mask.sum(dim=1).clamp_min(1).cpu()
        vectors = self.embedding(self.id_map[ids])
        packed = nn.utils.rnn.pack_padded_sequence(vectors, lengths, batch_first=True, enforce_sorted=False)
        states, (final, _) = self.lstm(packed)
        if tokens:
            return nn.utils.rnn.pad_packed_sequence(states, batch_first=True, total_length=ids.shape[1])[0]
        return torch.cat([final[0], final[1]], dim=-1)

    @staticmethod
    def _segment(tensors: dict[str, torch.Tensor], segment: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-aligned ids and mask of one side of `[CLS] a [SEP] b [SEP]`."""
        keep = tensors["attention_mask"].bool() & (tensors["token_type_ids"] == segment)
        order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)  # kept positions first
        ids = torch.gather(tensors["input_ids"], 1, order)
        mask = torch.gather(keep, 1, order)
        width = max(int(mask.sum(dim=1).max()), 1)
        return ids[:, :width], mask[:, :width].long()

    def forward(self, tensors: dict[str, torch.Tensor], needs_hidden: bool = False, attention_layers=()) -> StudentOutput:
        if self.words:
            states = self.encode(tensors["input_ids"], tensors["attention_mask"], tokens=True)
            return StudentOutput(logits=self.classifier(at_words(states, tensors["word_starts"])), num_layers=1)
        if self.config.pair:
            h1 = self.encode(*self._segment(tensors, 0))
            h2 = self.encode(*self._segment(tensors, 1))
            features = torch.cat([h1, h2, h1 * h2, (h1 - h2).abs()], dim=-1)
        else:
            features = self.encode(tensors["input_ids"], tensors["attention_mask"])
        return StudentOutput(logits=self.classifier(features), num_layers=1)

    def save(self, directory: str | Path) -> None:
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(directory / WEIGHTS_NAME))
        (directory / CONFIG_NAME).write_text(json.dumps({"student": "bilstm", **dataclasses.asdict(self.config)}, indent=2))

    @classmethod
    def load(cls, directory: str | Path) -> "BiLSTMStudent":
        """Rebuild a saved BiLSTM student (safetensors only: no pickle)."""
        from safetensors.torch import load_file

        directory = Path(directory)
        data = json.loads((directory / CONFIG_NAME).read_text())
        data.pop("student")
        student = cls(BiLSTMConfig(**data))
        student.load_state_dict(load_file(str(directory / WEIGHTS_NAME)))
        return student

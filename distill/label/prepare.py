"""The teacher as the label stage needs it, checked against its tokenizer and the config before any data,
and checks of the input against it (label space, head, tokenizer) before augmentation or labelling."""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.compute as pc

from distill.cache.attention_qk import check_recompute_verified
from distill.cache.features import FeatureSet
from distill.common.config_io import ConfigError
from distill.common.inputs.records import TextTable
from distill.common.labels import LabelSpace
from distill.common.models import load_complete
from distill.corpus.vocab import vocab_fingerprint
from distill.errors import InputError
from distill.label.config import LabelConfig
from distill.label.teacher import check_vocabulary, load_tokenizer, resolve_teacher, teacher_dims, teacher_identity
from distill.storage.shards import read_shard
from distill.tasks import Task, input_task, teacher_task

log = logging.getLogger(__name__)


@dataclass
class PreparedTeacher:
    """A teacher checked against its tokenizer and the config, before any data is touched."""

    model_dir: Path
    tokenizer_dir: Path
    tokenizer: Any
    features: FeatureSet
    identity: dict[str, Any]
    label_space: LabelSpace
    labels: dict[str, Any]  # id2label / label2id as the teacher's config has them, for the manifest
    positions: int | None = None  # the teacher's position embeddings: the longest input it can read

    def check_length(self, length: int, key: str) -> None:
        """Refuse inputs longer than the teacher's position embeddings, before any work."""
        if self.positions and length > self.positions:
            raise ConfigError(f"{length} is more than the teacher's {self.positions} position embeddings "
                              f"({self.model_dir}); use at most {self.positions}", key)


def prepare_teacher(config: LabelConfig, corpus: bool = False, data: Task | None = None) -> PreparedTeacher:
    """Resolve the teacher and tokenizer, refuse mismatches, missing weights, bad layer lists and lengths past the
    teacher's positions: a pipeline calls it before augmenting. `corpus` (a masked corpus) or `data` (its task)
    decides an `auto` head."""
    model_dir, tokenizer_dir = resolve_teacher(config.teacher, config.tokenizer)
    model_config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    task = teacher_task(model_config, corpus, data is not None and data.words, config.head)
    dims = teacher_dims(model_dir, config.trust_remote_code, task)
    tokenizer = load_tokenizer(tokenizer_dir, config.trust_remote_code)
    check_vocabulary(tokenizer, dims, tokenizer_dir, model_dir, strict=config.check_vocab)
    features = config.feature_set(dims, task, masked_input=corpus)
    if features.topk and features.topk < config.topk:
        log.warning("label.topk=%d is more than the teacher's %d outputs: %d kept (the manifest's features.topk)",
                    config.topk, task.output_size(dims), features.topk)
    load_complete(task.model_class(), model_dir, trust_remote_code=config.trust_remote_code)  # a random head: refused
    if features.projection_layers:
        check_recompute_verified(model_config, model_dir)
    identity = teacher_identity(model_dir, tokenizer_dir, dims, config.teacher, model_config.get("model_type"))
    labels = {"id2label": model_config.get("id2label"), "label2id": model_config.get("label2id")}  # ids as strings
    positions = model_config.get("max_position_embeddings")
    if positions and "roberta" in str(model_config.get("model_type")):  # RoBERTa's positions start after padding
        positions -= (model_config.get("pad_token_id") or 0) + 1
    teacher = PreparedTeacher(model_dir, tokenizer_dir, tokenizer, features, identity, task.label_space(model_config),
                              labels, positions)
    teacher.check_length(config.max_length, "label.max_length")
    return teacher


def check_input_labels(teacher: PreparedTeacher, text: TextTable, source: str | Path) -> None:
    """Refuse gold labels the teacher cannot produce (before any augmentation); warn about unused classes."""
    table = text.table
    if "tags" in table.column_names:  # a token task: every word's tag
        tags = table.column("tags")
        rows = table.column("row").take(pc.list_parent_indices(tags)).to_pylist()
        ids = teacher.label_space.ids(pc.list_flatten(tags).to_pylist(), rows, str(source), "tag")
    else:
        ids = teacher.label_space.ids(table.column("label").to_pylist(), table.column("row").to_pylist(), str(source))
    teacher.label_space.warn_unused(ids, str(source))


def check_tags(augmented_dir: Path, input_manifest: dict[str, Any], teacher: PreparedTeacher) -> None:
    """Refuse, before any actor starts, a tag the token teacher cannot produce: one line naming the
    shard, the row and the tag (the manifest's `tag_names` say cheaply whether any shard needs a look)."""
    names = input_manifest.get("tag_names")
    if names is not None:
        with contextlib.suppress(InputError):  # else find the first row that has it
            teacher.label_space.ids(list(names), [0] * len(names), str(augmented_dir), "tag")
            return
    for shard in input_manifest["shards"]:
        path = augmented_dir / shard["file"]
        table = read_shard(path)
        if "tags" not in table.column_names:
            continue
        for row, row_tags in enumerate(table.column("tags").to_pylist(), start=1):
            if row_tags:
                teacher.label_space.ids(row_tags, [row] * len(row_tags), str(path), "tag")


def check_teacher_fits(augmented_dir: Path, input_manifest: dict[str, Any], teacher: PreparedTeacher) -> None:
    """Refuse a teacher prepared for another kind of input, a tag it cannot produce, or another vocabulary."""
    corpus = input_manifest.get("kind") == "corpus"
    wanted = input_task(input_manifest)
    if teacher.features.teacher_task.words != wanted.words:
        raise InputError(f"{augmented_dir}: the input's task is {wanted.input_task}, but the teacher's head is "
                         f"{teacher.features.head}; pass a {wanted.noun} (or label.head={wanted.head})")
    if wanted.words:
        check_tags(augmented_dir, input_manifest, teacher)
    if teacher.features.masked != corpus:
        raise InputError(f"{augmented_dir}: {'a corpus' if corpus else 'task data'}, but the teacher was prepared for "
                         f"{'task data' if corpus else 'a corpus'}")
    if corpus:
        check_corpus_tokenizer(input_manifest, teacher.tokenizer, augmented_dir)
        teacher.check_length((input_manifest.get("config") or {}).get("max_length", 0), "corpus.max_length")


def check_corpus_tokenizer(input_manifest: dict[str, Any], tokenizer, corpus_dir: Path) -> None:
    """A corpus is tokenised already: its ids must be the teacher tokenizer's ids."""
    recorded = (input_manifest.get("tokenizer") or {}).get("vocab_fingerprint")
    if recorded != vocab_fingerprint(tokenizer):
        raise InputError(f"{corpus_dir}: the corpus was tokenised with another vocabulary "
                         f"({(input_manifest.get('tokenizer') or {}).get('name')}) than the teacher's tokenizer; "
                         "rebuild it with --tokenizer <the teacher>")

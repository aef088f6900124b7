"""Loading a teacher and its tokenizer, checking they belong together, and naming them (a hash of
the files that define it, so a changed fine-tune gets a new cache)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from distill.cache.features import TeacherDims
from distill.common.models import check_model_files, load_complete, resolve_model_dir
from distill.errors import UserError
from distill.storage.fingerprint import model_fingerprint
from distill.tasks import Task, task_of_head


class TeacherMismatchError(UserError, ValueError):
    """The tokenizer cannot be the one the teacher was trained with."""


def teacher_dims(model_dir: Path, trust_remote_code: bool = False, head: str | Task = "classification") -> TeacherDims:
    """`num_labels` is the head's output size: the classes, the vocabulary (masked LM) or 0 (encoder)."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
    return TeacherDims(task_of_head(head).output_size(config), config.hidden_size, config.num_hidden_layers,
                       config.num_attention_heads, config.vocab_size)


def load_tokenizer(tokenizer_dir: Path, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tokenizer_dir, trust_remote_code=trust_remote_code)


def check_vocabulary(tokenizer, dims: TeacherDims, tokenizer_dir: Path, model_dir: Path, strict: bool = True) -> None:
    """Refuse a tokenizer whose ids do not index the teacher's embedding matrix one-to-one: ids past it
    would crash or silently read other rows, and another vocabulary size means another tokenizer.
    Teachers with a deliberately padded matrix pass `check_vocab: false` (ids must still fit)."""
    vocab = tokenizer.get_vocab()
    largest = max(vocab.values())
    if largest >= dims.vocab_size:
        raise TeacherMismatchError(f"tokenizer {tokenizer_dir} produces ids up to {largest} but teacher {model_dir} "
                                   f"embeds only {dims.vocab_size} tokens: this is not the teacher's tokenizer")
    if strict and len(vocab) != dims.vocab_size:
        raise TeacherMismatchError(f"tokenizer {tokenizer_dir} has {len(vocab)} tokens but teacher {model_dir} embeds "
                                   f"{dims.vocab_size}: pass the teacher's own tokenizer (or label.check_vocab=false "
                                   "for a padded embedding matrix)")


def resolve_teacher(teacher: str | None, tokenizer: str | None) -> tuple[Path, Path]:
    if not teacher:
        raise FileNotFoundError("no teacher given: pass a fine-tuned model directory or hub name (--teacher)")
    model_dir = resolve_model_dir(teacher)
    tokenizer_dir = resolve_model_dir(tokenizer) if tokenizer else model_dir
    check_model_files(model_dir, tokenizer_dir)  # every stage loads these: refuse a broken teacher up front
    return model_dir, tokenizer_dir


def teacher_identity(model_dir: Path, tokenizer_dir: Path, dims: TeacherDims, name: str | None = None,
                     model_type: str | None = None) -> dict[str, Any]:
    """Hashes of the model's and tokenizer's files plus the dimensions: what the cache depends on.
    `name` (as the user gave it) and the absolute `model` path are provenance, not part of the hash."""
    identity = {"name": name or str(model_dir), "model": str(model_dir.resolve()), "model_type": model_type,
                "model_files": model_fingerprint(model_dir), **dims.__dict__}
    if tokenizer_dir != model_dir:
        identity["tokenizer"] = str(tokenizer_dir.resolve())
        identity["tokenizer_files"] = model_fingerprint(tokenizer_dir)
    return identity


def load_model(model_dir: Path, device: str, attn_implementation: str, trust_remote_code: bool = False,
               head: str | Task = "classification"):
    """The teacher in eval mode on `device`: safetensors (or weights_only torch files) only, every tensor present."""
    model = load_complete(task_of_head(head).model_class(), model_dir, trust_remote_code=trust_remote_code,
                          attn_implementation=attn_implementation)
    return model.to(device).eval()

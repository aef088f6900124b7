"""Tiny NER-shaped data for the token-task tests: tagged sentences, augmented shards written with the
project's storage writers (a stand-in for an augment run of a token task), jsonl dev files, and a
random BertForTokenClassification teacher."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa

ID2LABEL = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"}
PEOPLE = [["john", "smith"], ["mary"], ["anna", "karenina"], ["peter"], ["zorbathrax"]]  # the last: many pieces
PLACES = [["paris"], ["new", "york"], ["london"], ["rio", "de", "janeiro"], ["kathmandu"]]
FRAMES = [("{p} visited {l} on monday .",), ("yesterday {p} flew to {l} .",), ("{l} welcomed {p} warmly",),
          ("the weather in {l} was fine , said {p}",)]


def _span(words: list[str], kind: str) -> list[str]:
    return [f"B-{kind}"] + [f"I-{kind}"] * (len(words) - 1)


def tagged_sentences(n: int, seed: int = 0) -> list[tuple[list[str], list[str]]]:
    """`n` (words, tags) sentences of one person and one place, IOB2 tags."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        (frame,), person, place = rng.choice(FRAMES), rng.choice(PEOPLE), rng.choice(PLACES)
        words, tags = [], []
        for piece in frame.split():
            if piece == "{p}":
                words += person
                tags += _span(person, "PER")
            elif piece == "{l}":
                words += place
                tags += _span(place, "LOC")
            else:
                words.append(piece)
                tags.append("O")
        out.append((words, tags))
    return out


def augmented_rows(sentences, copies: int = 1, seed: int = 0) -> list[dict]:
    """Each sentence as original plus `copies` Tang-style masked copies (only `O` words masked)."""
    rng = random.Random(seed)
    rows = []
    for source, (words, tags) in enumerate(sentences):
        rows.append({"uid": f"{source}-0", "source_id": str(source), "aug_index": 0, "rule": "original",
                     "tokens": list(words), "tags": list(tags)})
        for copy in range(1, copies + 1):
            masked = [("[MASK]" if t == "O" and rng.random() < 0.5 else w) for w, t in zip(words, tags)]
            rows.append({"uid": f"{source}-{copy}", "source_id": str(source), "aug_index": copy, "rule": "mask",
                         "tokens": masked, "tags": list(tags)})
    return rows


def write_augmented(directory: Path, rows: list[dict], shards: int = 2) -> Path:
    """An augmented-stage output of a token task (tokens/tags list<string>, task in the manifest), written directly."""
    from distill.storage.stage_dir import StageDir

    schema = pa.schema([pa.field("uid", pa.string(), nullable=False), pa.field("source_id", pa.string(), nullable=False),
                        pa.field("aug_index", pa.int32(), nullable=False), pa.field("tokens", pa.list_(pa.string())),
                        pa.field("tags", pa.list_(pa.string())), pa.field("rule", pa.dictionary(pa.int32(), pa.string()))])
    stage = StageDir(directory, "augment", f"token-fixture-{len(rows)}-{shards}")
    stage.begin()
    size = -(-len(rows) // shards)
    records = []
    for index in range(shards):
        part = rows[index * size:(index + 1) * size]
        table = pa.table({name: pa.array([r[name] for r in part], type=schema.field(name).type) if name != "rule"
                          else pa.array([r[name] for r in part]).dictionary_encode() for name in schema.names},
                         schema=schema)
        records.append(stage.commit_shard(table, f"part-{index:05d}.parquet"))
    tags = sorted({t for r in rows for t in (r["tags"] or [])})
    stage.finalize(records, {"task": "token_classification", "is_pair": False, "tag_names": tags,
                             "columns": {"tokens": "tokens", "tags": "tags"}, "totals": {"rows": len(rows)}})
    return directory


def write_jsonl(path: Path, sentences, tokens: str = "tokens", tags: str = "tags") -> Path:
    path.write_text("".join(json.dumps({tokens: w, tags: t}) + "\n" for w, t in sentences), encoding="utf-8")
    return path


def build_tiny_token_teacher(path: Path, tokenizer_dir: Path, seed: int = 0) -> Path:
    """A random 2-layer BertForTokenClassification (hidden 32, 4 heads) with the real uncased tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForTokenClassification

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = BertConfig(vocab_size=len(tokenizer.get_vocab()), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=256, num_labels=len(ID2LABEL), id2label=ID2LABEL,
                        label2id={v: k for k, v in ID2LABEL.items()}, initializer_range=0.2)
    BertForTokenClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path

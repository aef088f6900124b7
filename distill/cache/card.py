"""The cache's `README.md`: a dataset card a person reads before using someone else's cache.

It is generated from the manifest alone, so it never disagrees with what a reader will find.
"""

from __future__ import annotations

import json
from typing import Any

from distill.cache.format import FORMAT_VERSION, TEACHER_FILES_DIR


def _layers(values: list[int]) -> str:
    return ", ".join(map(str, values)) if values else "none"


def render_card(manifest: dict[str, Any]) -> str:
    features, teacher, totals = manifest["features"], manifest["teacher"], manifest["totals"]
    inputs, tokenizer = manifest["input"], manifest["tokenizer"]
    config = manifest.get("config", {})
    produced = manifest.get("produced_by") or {}
    layout = features.get("layout", {})
    per_column = totals.get("column_bytes_per_example", {})
    labels = manifest.get("labels") or {}
    shard_suffix = manifest["shards"][0]["file"].rsplit(".", 1)[-1] if manifest["shards"] else "arrow"
    lines = [
        f"# Teacher cache {manifest['fingerprint'][:16]}",
        "",
        "Soft targets and intermediate features of a fine-tuned teacher, cached once so that students train "
        "without running it (distill-data, cache format version "
        f"{manifest.get('format_version', FORMAT_VERSION)}).",
        "",
        "## What was labelled",
        "",
        f"- Input: {inputs['rows']} rows ({'sentence pairs' if inputs['is_pair'] else 'single sentences'}), "
        f"augmented data fingerprint `{inputs['fingerprint'][:16]}`, from `{inputs.get('path')}`.",
        f"- Teacher: `{teacher.get('name') or teacher['model']}` ({teacher.get('model_type', 'model')}, "
        f"{teacher['num_layers']} layers, hidden {teacher['hidden_size']}, {teacher['num_heads']} heads, "
        f"vocabulary {teacher['vocab_size']}), file fingerprint `{teacher['model_files'][:16]}`.",
        f"- Labels ({teacher['num_labels']}): {json.dumps(labels.get('id2label')) if labels.get('id2label') else 'not named'}.",
        f"- Tokenization: max length {tokenizer['max_length']}, pad id {tokenizer['pad_token_id']}, "
        f"segment ids {'rebuilt from [SEP]' if tokenizer.get('segment_ids') and inputs['is_pair'] else 'not used'}.",
        f"- Compute precision: {', '.join(manifest.get('precision', []))}; storage dtype {features['dtype']}, "
        f"hidden states {features['hidden_dtype']}.",
        "",
        "## Features",
        "",
        f"- teacher head: {features.get('head', 'classification')}; full logits: "
        f"{'yes' if 'logits' in features.get('columns', ['logits']) else 'no'}; top-k: {features.get('topk') or 'no'}"
        + (f" (indices {layout.get('topk_indices', {}).get('dtype')}, log-normaliser at T = {features.get('topk_temperature')})"
           if features.get("topk") and features.get("topk_temperature") else ""),
        *([f"- token task: logits and gold tag ids per word at its first wordpiece (`word_starts`); "
           f"{totals.get('words_truncated', 0)} of {totals.get('words', 0)} words cut by max length, "
           f"{totals.get('words_without_pieces', 0)} without a wordpiece (dropped with their tags)"]
          if features.get("head") == "token_classification" else []),
        f"- [CLS] of layers: {_layers(features['cls_layers'])}",
        f"- token hidden states of layers: {_layers(features['hidden_layers'])}; embedding output: "
        f"{'yes' if features['embedding'] or 0 in features['hidden_layers'] else 'no'}",
        f"- pre-softmax attention scores of layers: {_layers(features['attention_layers'])}"
        + (" (recomputed from the stored hidden states of the layer below and "
           f"`{TEACHER_FILES_DIR}/attention_qk.safetensors`, not stored)"
           if features.get("attention_mode") == "recompute" and features['attention_layers'] else ""),
        "",
        f"## Size: {totals['rows']} rows, {totals['bytes'] / 1e6:.2f} MB in {len(manifest['shards'])} shard(s), "
        f"{totals['bytes_per_example']:.0f} bytes per example",
        "",
        "| column | layout | stored as | shape | bytes / example |",
        "|---|---|---|---|---:|",
    ]
    for name, nbytes in per_column.items():
        column = layout.get(name, {})
        shape = "×".join(map(str, column.get("shape", []))) or "scalar"
        lines.append(f"| `{name}` | {column.get('layout', '')} | {column.get('dtype', '')} | {shape} | {nbytes:,.1f} |")
    lines += [
        "",
        "Layouts: `fixed` = one value of that shape per example; `per_token` = one per real token "
        "(no padding stored); `square` = heads × len × len per example, row-major, pre-softmax, unmasked. "
        "`per_masked` = one per masked position, in `mlm_positions` order. "
        "`per_word` = one per kept word of a token task, in word order. "
        "`bfloat16` is stored as its uint16 bit pattern; `int8` columns have a float32 per-vector scale "
        "in `<column>_scale`. Rows of a shard are in length order; `uid` joins them to the augmented rows.",
        "",
        "## How it was produced",
        "",
        f"- Command: `{produced.get('command', 'not recorded')}`",
        f"- Created {manifest.get('created')}; libraries: "
        + ", ".join(f"{k} {v}" for k, v in manifest.get("versions", {}).items() if v) + ".",
        f"- Labelling config: `{json.dumps(config, sort_keys=True)}`",
        "",
        "## How to load it",
        "",
        f"`{TEACHER_FILES_DIR}/` holds the teacher's `config.json` and tokenizer (no weights): "
        f"`AutoTokenizer.from_pretrained(\"<cache>/{TEACHER_FILES_DIR}\")`.",
        "",
        "```python",
        "import distill.cache",
        "cache = distill.cache.load(\"<cache>\")            # verified manifest, memory-mapped rows",
        "batch = cache.batch([0, 1, 2])                    # padded torch tensors of every feature",
        "",
        "import pyarrow as pa, glob                       # any Arrow tool, no distill-data needed",
        f"files = sorted(glob.glob(\"<cache>/part-*.{shard_suffix}\"))",
    ]
    if shard_suffix == "arrow":
        lines += ["table = pa.concat_tables([pa.ipc.open_stream(pa.memory_map(f)).read_all() for f in files])",
                  "",
                  "import datasets",
                  "ds = datasets.concatenate_datasets([datasets.Dataset.from_file(f) for f in files])",
                  "",
                  "import ray",
                  "rows = ray.data.from_arrow(table)"]
    else:
        lines += ["import pyarrow.parquet as pq; table = pq.read_table(files)",
                  "",
                  "import datasets",
                  "ds = datasets.load_dataset(\"parquet\", data_files=files, split=\"train\")",
                  "",
                  "import ray",
                  "rows = ray.data.read_parquet(\"<cache>\")  # the part-*.parquet files of the folder"]
    lines += [
        "```",
        "",
        "Train a student from it (no teacher needed unless the student copies teacher layers):",
        "",
        "```bash",
        "python pipelines/train_student.py --recipe pipelines/recipes/students/"
        f"{'ner_bilstm' if features.get('head') == 'token_classification' else 'tang_bilstm'}.yaml "
        "--cache <cache> --out <run>",
        "```",
        "",
    ]
    return "\n".join(lines)

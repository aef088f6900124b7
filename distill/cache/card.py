"""The cache's `README.md`: a dataset card a person reads before using someone else's cache.

It is generated from the manifest alone, so it never disagrees with what a reader will find.
"""

from __future__ import annotations

import json
from typing import Any

from distill.cache.format import FORMAT_VERSION, TEACHER_FILES_DIR
from distill.tasks import Task, task_of_head

LAYOUTS = ("Layouts: `fixed` = one value of that shape per example; `per_token` = one per real token "
           "(no padding stored); `square` = heads × len × len per example, row-major, pre-softmax, unmasked. "
           "`per_masked` = one per masked position, in `mlm_positions` order. "
           "`per_word` = one per kept word of a token task, in word order. "
           "`bfloat16` is stored as its uint16 bit pattern; `int8` columns have a float32 per-vector scale "
           "in `<column>_scale`. Rows of a shard are in length order; `uid` joins them to the augmented rows.")
READERS = {
    "arrow": ["table = pa.concat_tables([pa.ipc.open_stream(pa.memory_map(f)).read_all() for f in files])", "",
              "import datasets", "ds = datasets.concatenate_datasets([datasets.Dataset.from_file(f) for f in files])",
              "", "import ray", "rows = ray.data.from_arrow(table)"],
    "parquet": ["import pyarrow.parquet as pq; table = pq.read_table(files)", "", "import datasets",
                "ds = datasets.load_dataset(\"parquet\", data_files=files, split=\"train\")", "", "import ray",
                "rows = ray.data.read_parquet(\"<cache>\")  # the part-*.parquet files of the folder"],
}


def _layers(values: list[int]) -> str:
    return ", ".join(map(str, values)) if values else "none"


def _labelled(manifest: dict[str, Any]) -> list[str]:
    teacher, inputs, tokenizer = manifest["teacher"], manifest["input"], manifest["tokenizer"]
    features, labels = manifest["features"], manifest.get("labels") or {}
    return [
        "## What was labelled", "",
        f"- Input: {inputs['rows']} rows ({'sentence pairs' if inputs['is_pair'] else 'single sentences'}), "
        f"augmented data fingerprint `{inputs['fingerprint'][:16]}`, from `{inputs.get('path')}`.",
        f"- Teacher: `{teacher.get('name') or teacher['model']}` ({teacher.get('model_type', 'model')}, "
        f"{teacher['num_layers']} layers, hidden {teacher['hidden_size']}, {teacher['num_heads']} heads, "
        f"vocabulary {teacher['vocab_size']}), file fingerprint `{teacher['model_files'][:16]}`.",
        f"- Labels ({teacher['num_labels']}): {json.dumps(labels.get('id2label')) if labels.get('id2label') else 'not named'}.",
        f"- Tokenization: max length {tokenizer['max_length']}, pad id {tokenizer['pad_token_id']}, "
        f"segment ids {'rebuilt from [SEP]' if tokenizer.get('segment_ids') and inputs['is_pair'] else 'not used'}.",
        f"- Compute precision: {', '.join(manifest.get('precision', []))}; storage dtype {features['dtype']}, "
        f"hidden states {features['hidden_dtype']}.", "",
    ]


def _features(features: dict[str, Any], task: Task, totals: dict[str, Any]) -> list[str]:
    topk = features.get("topk")
    return [
        "## Features", "",
        f"- teacher head: {features.get('head', 'classification')}; full logits: "
        f"{'yes' if 'logits' in features.get('columns', ['logits']) else 'no'}; top-k: {topk or 'no'}"
        + (f" (indices {features.get('layout', {}).get('topk_indices', {}).get('dtype')}, log-normaliser at T = "
           f"{features.get('topk_temperature')})" if topk and features.get("topk_temperature") else ""),
        *task.card_lines(totals),
        f"- [CLS] of layers: {_layers(features['cls_layers'])}",
        f"- token hidden states of layers: {_layers(features['hidden_layers'])}; embedding output: "
        f"{'yes' if features['embedding'] or 0 in features['hidden_layers'] else 'no'}",
        f"- pre-softmax attention scores of layers: {_layers(features['attention_layers'])}"
        + (" (recomputed from the stored hidden states of the layer below and "
           f"`{TEACHER_FILES_DIR}/attention_qk.safetensors`, not stored)"
           if features.get("attention_mode") == "recompute" and features['attention_layers'] else ""),
        *([f"- MiniLM self-attention and value relations of layers: {_layers(features['relation_layers'])} "
           f"(recomputed from the stored hidden states of the layer below and `{TEACHER_FILES_DIR}/"
           "attention_qk.safetensors`)"] if features.get("relation_layers") else []), "",
    ]


def _size(manifest: dict[str, Any]) -> list[str]:
    totals, layout = manifest["totals"], manifest["features"].get("layout", {})
    lines = [f"## Size: {totals['rows']} rows, {totals['bytes'] / 1e6:.2f} MB in {len(manifest['shards'])} shard(s), "
             f"{totals['bytes_per_example']:.0f} bytes per example", "",
             "| column | layout | stored as | shape | bytes / example |", "|---|---|---|---|---:|"]
    for name, nbytes in totals.get("column_bytes_per_example", {}).items():
        column = layout.get(name, {})
        shape = "×".join(map(str, column.get("shape", []))) or "scalar"
        lines.append(f"| `{name}` | {column.get('layout', '')} | {column.get('dtype', '')} | {shape} | {nbytes:,.1f} |")
    return [*lines, "", LAYOUTS, ""]


def _usage(manifest: dict[str, Any], task: Task) -> list[str]:
    produced = manifest.get("produced_by") or {}
    suffix = manifest["shards"][0]["file"].rsplit(".", 1)[-1] if manifest["shards"] else "arrow"
    return [
        "## How it was produced", "",
        f"- Command: `{produced.get('command', 'not recorded')}`",
        f"- Created {manifest.get('created')}; libraries: "
        + ", ".join(f"{k} {v}" for k, v in manifest.get("versions", {}).items() if v) + ".",
        f"- Labelling config: `{json.dumps(manifest.get('config', {}), sort_keys=True)}`", "",
        "## How to load it", "",
        f"`{TEACHER_FILES_DIR}/` holds the teacher's `config.json` and tokenizer (no weights): "
        f"`AutoTokenizer.from_pretrained(\"<cache>/{TEACHER_FILES_DIR}\")`.", "",
        "```python", "import distill.cache",
        "cache = distill.cache.load(\"<cache>\")            # verified manifest, memory-mapped rows",
        "batch = cache.batch([0, 1, 2])                    # padded torch tensors of every feature", "",
        "import pyarrow as pa, glob                       # any Arrow tool, no distill-data needed",
        f"files = sorted(glob.glob(\"<cache>/part-*.{suffix}\"))",
        *READERS["arrow" if suffix == "arrow" else "parquet"],
        "```", "", "Train a student from it (no teacher needed unless the student copies teacher layers):", "",
        "```bash", f"python pipelines/train_student.py --recipe pipelines/configs/students/{task.recipe}.yaml "
        "--cache <cache> --out <run>", "```", "",
    ]


def render_card(manifest: dict[str, Any]) -> str:
    features = manifest["features"]
    task = task_of_head(features.get("head", "classification"), features.get("num_labels"))
    version = manifest.get("format_version", FORMAT_VERSION)
    head = [f"# Teacher cache {manifest['fingerprint'][:16]}", "",
            "Soft targets and intermediate features of a fine-tuned teacher, cached once so that students train "
            f"without running it (distill-data, cache format version {version}).", ""]
    lines = head + _labelled(manifest) + _features(features, task, manifest["totals"]) + _size(manifest)
    return "\n".join(lines + _usage(manifest, task))

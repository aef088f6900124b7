"""The augmentation stage: input → `<output>/part-*.parquet` + `_manifest.json` (docs/design.md, "Augment").
The driver validates the input (bad rows → `_rejects.jsonl`) and cuts it into fixed ranges of `rows_per_shard`
rows; pass 1 (pos rule only) tags every row with spaCy and sums the unigram counts; pass 2 augments whole shards.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from itertools import accumulate
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from augment.augmenter import RowKind, row_kind
from augment.config import AugmentConfig
from augment.rules import build_rule
from augment.rules.mention import MentionPool
from augment.subphrases import mark_subphrases
from augment.workers import ShardWriter, Splitter
from distill.common.inputs.records import TextTable
from distill.common.inputs.source import input_format, input_identity
from distill.common.inputs.text import read_text_table
from distill.common.inputs.tokens import is_conll, tag_names
from distill.common.ray_runtime import ActorPlan, plan_actors, ray_session
from distill.common.shard_map import map_shards
from distill.errors import InputError
from distill.storage.atomic import write_bytes_atomic
from distill.storage.fingerprint import fingerprint_json, package_version
from distill.storage.lock import OutputLock
from distill.storage.runner import StageResult, run_sharded_stage
from distill.storage.shards import ShardRecord, read_shard, shard_name, write_shard
from distill.storage.stage_dir import StageDir
from distill.tasks import data_task

STAGE = "augment"
STAGE_VERSION = 3  # bump when the output changes (2: whitespace kept; 3: auto shard rows, mlm masks and dtype)
REJECTS_NAME = "_rejects.jsonl"
MLM_GPUS_PER_ACTOR = 0.5  # gpus_per_actor auto: two masked-LM actors share each GPU
POS_COUNTS_NAME = "_pos_unigrams.parquet"
log = logging.getLogger(__name__)


class AugmentResult(StageResult):
    def summary(self) -> str:
        totals = self.manifest["totals"]
        return (f"augment: {totals['source_rows']} source rows ({totals['rejected_rows']} rejected) -> "
                f"{totals['rows']} rows in {len(self.manifest['shards'])} shards at {self.output_dir} {self.state()}")


def _spacy_identity(name: str) -> dict[str, Any]:
    meta = Path(name) / "meta.json"
    if meta.exists():
        data = json.loads(meta.read_text())
        return {"name": data.get("name"), "version": data.get("version"), "path": name}
    version = package_version(name) or package_version(name.replace("_", "-"))
    if version is None:
        raise InputError(f"spaCy pipeline {name!r} is not installed (pip install it or pass a pipeline directory)")
    return {"name": name, "version": version}


def model_identities(config: AugmentConfig) -> dict[str, Any]:
    """What the output depends on besides input and config: tagger, masked LM, word vectors."""
    return {"spacy": _spacy_identity(config.spacy_model),
            **{name: build_rule(name, config.rules[name]).identity() for name in ("mlm", "glove") if config.uses(name)}}


def _write_rejects(output_dir: Path, rejects: list[dict[str, Any]]) -> None:
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rejects)
    write_bytes_atomic(output_dir / REJECTS_NAME, lines.encode("utf-8"))
    for item in rejects[:20]:
        log.warning("rejected %s row %s field %s: %s", item["file"], item["row"], item["field"], item["reason"])
    if len(rejects) > 20:
        log.warning("... and %d more rejected rows (see %s)", len(rejects) - 20, output_dir / REJECTS_NAME)


def _shard_blocks(table: pa.Table) -> list[pa.Table]:
    """One Arrow block per shard, the unit Ray Data parallelises pass 1 over (a shard's rows are contiguous)."""
    counts = pc.value_counts(table.column("shard")).field("counts").to_pylist()
    return [table.slice(start, count) for start, count in zip(accumulate([0, *counts]), counts)]


def actor_plans(config: AugmentConfig, resources: dict[str, float], blocks: int,
                rows: int | None = None) -> tuple[ActorPlan, ActorPlan]:
    """Actors for pass 1 (spaCy tagging: CPU only) and pass 2 (augment, commit), which reserves GPUs only for the
    masked LM on a GPU cluster: half a GPU per actor by default, so one's batch runs while the other tokenizes."""
    tagging = plan_actors(resources, blocks, config.workers, config.cpus_per_actor, 0.0, uses_gpu=False, rows=rows)
    writing = plan_actors(resources, blocks, config.workers, config.cpus_per_actor, config.gpus_per_actor,
                          uses_gpu=config.mlm_wants_gpu(), auto_gpus=MLM_GPUS_PER_ACTOR, rows=rows)
    return tagging, writing


def _tag_and_augment(table: pa.Table, pending: list[int], config: AugmentConfig, stage: StageDir) -> None:
    """Pass 1 (only while the POS statistic is unknown): tag every row, sum the counts.
    Pass 2: augment and commit the pending shards, splitting words there when pass 1 did not."""
    import ray

    # Token tasks: the mention pool is a statistic of the whole input, like the POS tables.
    mentions = ray.put(MentionPool.from_table(table)) if config.is_token_task and config.uses("mention") else None
    counts_path = stage.directory / POS_COUNTS_NAME
    pos_counts = read_shard(counts_path) if config.uses("pos") and counts_path.exists() else None
    two_passes = config.uses("pos") and pos_counts is None
    if not two_passes:
        table = table.filter(pc.is_in(table.column("shard"), pa.array(sorted(pending), pa.int64())))
    blocks = _shard_blocks(table)
    tagging, writing = _plan_pools(config, len(blocks), two_passes, table.num_rows)
    if two_passes:
        pos_counts, shard_refs = _tag(blocks, config, tagging, stage)
    else:
        shard_refs = {block.column("shard")[0].as_py(): [ray.put(block)] for block in blocks}
    started = time.perf_counter()
    todo = [shard for shard in sorted(shard_refs) if shard in pending]
    writer = dict(config=config, label_type=row_kind(config).value_type(table), stage_dir=stage,
                  threads=writing.threads, mentions=mentions,
                  pos_counts=ray.put(pos_counts) if pos_counts is not None else None,
                  expected_rows=dict(Counter(table.column("shard").to_pylist())),
                  shard_refs={shard: shard_refs[shard] for shard in todo}, split=not two_passes)
    # Pass 2 maps over shard ids, so a call sees its shard whole (from the object store) even on GPU actors.
    written = map_shards(ray.data.from_items([{"shard": shard} for shard in todo]), ShardWriter, writer, writing,
                         batch_format="pyarrow", batch_size=1).take_all()
    log.info("pass 2 (%saugment, commit): %d shard(s) in %.1fs", "" if two_passes else "split words, ",
             len(written), time.perf_counter() - started)


def _plan_pools(config: AugmentConfig, blocks: int, two_passes: bool, rows: int) -> tuple[ActorPlan, ActorPlan]:
    """The two passes' actor pools on this cluster, logged (with a hint when shards leave actors idle)."""
    import ray

    resources = ray.cluster_resources()
    tagging, writing = actor_plans(config, resources, blocks, rows)
    if two_passes:
        log.info("pass 1 (spaCy tagging): %s", tagging.describe())
    log.info("pass 2 (augment, commit): %s", writing.describe())
    slots = actor_plans(config, resources, rows, rows)[1].actors  # the pool if shards did not bound it
    if slots > blocks and not config.workers and not writing.gpus:
        log.info("%d shard(s) to write, fewer than the cluster's %d actor slots: a lower rows_per_shard "
                 "would keep them all busy", blocks, slots)
    return tagging, writing


def _tag(blocks: list[pa.Table], config: AugmentConfig, plan: ActorPlan, stage: StageDir) -> tuple[pa.Table, dict]:
    """Pass 1: tag every shard, save the summed POS counts; returns them and each shard's tagged blocks."""
    import ray

    started = time.perf_counter()
    # from_blocks: one block per shard, metadata computed here (from_arrow: a remote task per block, ~3 s)
    tagged = map_shards(ray.data.from_blocks(blocks), Splitter, {"config": config}, plan, batch_format="pyarrow",
                        batch_size=None).materialize()
    # the materialised blocks one by one, zero-copy (another Ray Data operator: seconds of scheduling)
    shard_refs: dict[int, list] = {}
    counts = []
    for ref in tagged.to_arrow_refs():
        block = ray.get(ref)
        counts.append(block)
        for shard in pc.unique(block.column("shard")).to_pylist():
            shard_refs.setdefault(shard, []).append(ref)
    pos_counts = row_kind(config).pos_counts(counts)
    del counts
    write_shard(pos_counts, stage.directory, POS_COUNTS_NAME)
    log.info("pass 1 (spaCy tagging, POS unigram tables: %d (tag, word) pairs) over %d rows: %.1fs",
             pos_counts.num_rows, sum(block.num_rows for block in blocks), time.perf_counter() - started)
    return pos_counts, shard_refs


def _read_input(input_path: str | Path, config: AugmentConfig,
                validate: Callable[[TextTable], None] | None) -> tuple[str | Path, AugmentConfig, TextTable]:
    """Read and check the input before anything is written, so a refused input leaves nothing
    that would block the corrected rerun; CoNLL input implies tokens=tokens, tags=tags."""
    if input_format(input_path) != "hub":
        input_path = Path(input_path)
        if not input_path.exists():
            raise InputError(f"{input_path}: input file not found")
        if not config.is_token_task and is_conll(input_path, config.columns):
            config = config.with_token_columns()
    text = read_text_table(input_path, config.columns)
    row_kind(config).check(text.table, input_path)
    if validate is not None:
        validate(text)
    return input_path, config, text


def run(input_path: str | Path, output_dir: str | Path, config: AugmentConfig | None = None, address: str | None = None,
        overwrite: bool = False, validate: Callable[[TextTable], None] | None = None) -> AugmentResult:
    """Augment `input_path` into `output_dir`; skip if done, resume if interrupted. `validate` (the teacher's
    label check) sees the input before anything is written."""
    started = time.perf_counter()
    output_dir = Path(output_dir)
    input_path, config, text = _read_input(input_path, config or AugmentConfig(), validate)
    identities = model_identities(config)
    source = input_identity(input_path, config.columns.split, config.columns)
    resolved = config.resolved()
    fingerprint = fingerprint_json({"stage": STAGE, "version": STAGE_VERSION, "input": source["fingerprint"],
                                    "config": resolved, "models": identities})
    if text.table.num_rows == 0:
        with OutputLock(output_dir):
            _write_rejects(output_dir, text.rejects)
        raise InputError(f"{input_path}: no valid rows ({len(text.rejects)} rejected, see {output_dir / REJECTS_NAME})")
    shard_rows = config.shard_rows(text.rows_read)
    table = text.table.append_column("shard", pc.divide(pc.subtract(text.table.column("row"), 1), shard_rows))
    if config.tang.skip_subphrases and not config.is_token_task:
        table = mark_subphrases(table)
    names = {shard: shard_name(shard, config.shard_format) for shard in sorted(set(table.column("shard").to_pylist()))}

    def write(stage: StageDir, pending: list[int]) -> None:
        with ray_session(address, num_cpus=config.workers * config.cpus_per_actor if config.workers else None):
            _tag_and_augment(table, pending, config, stage)

    def on_begin(pending: int) -> None:
        _write_rejects(output_dir, text.rejects)
        log.info("%d shard(s) of %d rows planned, %d to write", len(names), shard_rows, pending)

    body = partial(_manifest_body, source, text, resolved, identities, shard_rows, row_kind(config))
    done = run_sharded_stage(output_dir, STAGE, fingerprint, names, write, body, on_begin=on_begin, overwrite=overwrite)
    result = AugmentResult.of(output_dir, done, started)
    log.info(result.summary())
    idle = [name for name in config.rules if not any(name in key.split("+") for key in done.manifest["totals"]["by_rule"])]
    if idle and not done.skipped:  # e.g. mention on data without entities, ngram on sentences under min_words
        log.warning("rule(s) %s produced no augmented row over the whole input", ", ".join(idle))
    return result


def _manifest_body(source: dict[str, str], text: TextTable, resolved: dict, identities: dict, shard_rows: int,
                   kind: type[RowKind], records: list[ShardRecord]) -> dict:
    by_rule = sum((Counter(record.extra["rules"]) for record in records), Counter())
    tokens = "tokens" in text.table.column_names
    return {
        "stage_version": STAGE_VERSION, "input": source, "config": resolved, "models": identities,
        "task": data_task(tokens).input_task,
        "columns": resolved["columns"],
        "label_type": str(kind.value_type(text.table)),
        "is_pair": False if tokens else resolved["columns"]["text_b"] is not None,
        "rejects_file": REJECTS_NAME,
        "rows_per_shard": shard_rows,
        "totals": {"rows_read": text.rows_read, "source_rows": text.table.num_rows, "rejected_rows": len(text.rejects),
                   "rows": sum(r.rows for r in records), "by_rule": dict(sorted(by_rule.items()))},
        **({"tag_names": tag_names(text.table)} if tokens else {}),
    }

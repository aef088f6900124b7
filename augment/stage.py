"""The augmentation stage: input corpus → `<output>/part-*.parquet` + `_manifest.json`.

Flow (docs/design.md, "Data flow"): read and validate the input on the driver (bad rows → `_rejects.jsonl`);
cut it into shards of `rows_per_shard` input rows, one Ray Data block each. When the pos
rule is on, pass 1 tags every row with spaCy in an actor pool and the per-tag unigram
counts are summed and broadcast with `ray.put`. Pass 2 augments and commits whole shards
in a second actor pool (splitting words itself when pass 1 did not run). Shards are fixed
ranges of input rows, so output does not depend on worker count or block size, and a
rerun after a kill redoes only the shards without a valid commit record.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from augment.config import AugmentConfig
from augment.rules import build_rule
from augment.rules.pos import sum_pos_counts
from augment.token_augmenter import TokenTagger, mention_pool, token_pos_counts
from augment.workers import ShardWriter, WordSplitter
from distill.storage.atomic import write_bytes_atomic
from distill.storage.fingerprint import fingerprint_json
from distill.storage.lock import OutputLock
from distill.common.ray_runtime import ActorPlan, plan_actors, ray_session
from distill.storage.shards import ShardRecord, read_shard, shard_name, write_shard
from distill.storage.stage_dir import StageDir
from distill.storage.stage_result import StageResult
from distill.common.text_inputs import InputError, TextTable, input_format, input_identity, read_text_table
from distill.common.token_inputs import is_conll, tag_names
from distill.storage.versions import library_versions, package_version

STAGE = "augment"
# Bump when the output for the same input/config changes (2: whitespace between words kept;
# 3: rows_per_shard auto, mlm masks_per_query and dtype auto).
STAGE_VERSION = 3
REJECTS_NAME = "_rejects.jsonl"
MLM_GPUS_PER_ACTOR = 0.5  # gpus_per_actor auto: two masked-LM actors share each GPU
POS_COUNTS_NAME = "_pos_unigrams.parquet"
log = logging.getLogger(__name__)


class AugmentResult(StageResult):
    def summary(self) -> str:
        totals = self.manifest["totals"]
        return (
            f"augment: {totals['source_rows']} source rows ({totals['rejected_rows']} rejected) -> "
            f"{totals['rows']} rows in {len(self.manifest['shards'])} shards at {self.output_dir} {self.state()}"
        )


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
    identities: dict[str, Any] = {"spacy": _spacy_identity(config.spacy_model)}
    for name in ("mlm", "glove"):
        if config.uses(name):
            identities[name] = build_rule(name, config.rules[name]).identity()
    return identities


def _write_rejects(output_dir: Path, rejects: list[dict[str, Any]]) -> None:
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rejects)
    write_bytes_atomic(output_dir / REJECTS_NAME, lines.encode("utf-8"))
    for item in rejects[:20]:
        log.warning("rejected %s row %s field %s: %s", item["file"], item["row"], item["field"], item["reason"])
    if len(rejects) > 20:
        log.warning("... and %d more rejected rows (see %s)", len(rejects) - 20, output_dir / REJECTS_NAME)


def _shard_blocks(table: pa.Table) -> list[pa.Table]:
    """One Arrow block per shard: the unit Ray Data parallelises pass 1 over."""
    shards = table.column("shard").to_pylist()
    blocks, start = [], 0
    for end in range(1, len(shards) + 1):
        if end == len(shards) or shards[end] != shards[start]:
            blocks.append(table.slice(start, end - start))
            start = end
    return blocks


def actor_plans(config: AugmentConfig, resources: dict[str, float], blocks: int) -> tuple[ActorPlan, ActorPlan]:
    """Actors for pass 1 (spaCy tagging: CPU only) and pass 2 (augment and commit), given the
    cluster's resources. Pass 2 reserves GPUs only when it runs the masked LM and the cluster has
    some: half a GPU per actor by default, so one actor's batch runs while the other tokenizes."""
    tagging = plan_actors(resources, blocks, config.workers, config.cpus_per_actor, 0.0, uses_gpu=False)
    writing = plan_actors(resources, blocks, config.workers, config.cpus_per_actor, config.gpus_per_actor,
                          uses_gpu=config.mlm_wants_gpu(), auto_gpus=MLM_GPUS_PER_ACTOR)
    return tagging, writing


def _tag_and_augment(table: pa.Table, pending: set[int], config: AugmentConfig, stage: StageDir, label_type) -> None:
    """Pass 1 (only while the POS statistic is unknown): tag every row, sum the counts.
    Pass 2: augment and commit the pending shards, splitting words there when pass 1 did not."""
    import ray

    pos_rule = build_rule("pos", config.rules["pos"]) if config.uses("pos") else None
    tokens = config.is_token_task
    # Token tasks: the mention pool is a statistic of the whole input, like the POS tables.
    mentions = ray.put(mention_pool(table)) if tokens and config.uses("mention") else None
    counts_path = stage.directory / POS_COUNTS_NAME
    pos_counts = read_shard(counts_path) if pos_rule and counts_path.exists() else None
    two_passes = pos_rule is not None and pos_counts is None
    if not two_passes:
        table = table.filter(pc.is_in(table.column("shard"), pa.array(sorted(pending), pa.int64())))
    blocks = _shard_blocks(table)
    resources = ray.cluster_resources()
    tagging, writing = actor_plans(config, resources, len(blocks))
    if two_passes:
        log.info("pass 1 (spaCy tagging): %s", tagging.describe())
    log.info("pass 2 (augment, commit): %s", writing.describe())
    idle = int(resources.get("CPU", 1) // config.cpus_per_actor) - len(blocks)
    if idle > 0 and not config.workers and not writing.gpus:
        log.info("%d shard(s) to write, fewer than the cluster's %d actor slots: a lower rows_per_shard "
                 "would keep them all busy", len(blocks), len(blocks) + idle)
    splitter_args = dict(
        spacy_model=config.spacy_model, tag_attr=pos_rule.tag_attr if pos_rule else None, batch_size=config.spacy_batch_size
    )
    splitter_class = TokenTagger if tokens else WordSplitter
    if two_passes:
        started = time.perf_counter()
        # from_blocks keeps exactly one block per shard and computes block metadata here;
        # from_arrow would run a remote task per block just for metadata (~3 s on a cold start).
        tagged = ray.data.from_blocks(blocks).map_batches(
            splitter_class,
            fn_constructor_kwargs=splitter_args,
            batch_format="pyarrow",
            batch_size=None,
            compute=ray.data.ActorPoolStrategy(size=tagging.actors),
            num_cpus=tagging.cpus,
        ).materialize()
        # Read the materialised blocks one by one (zero-copy from the local object store):
        # another Ray Data operator here would cost seconds of scheduling for a tiny table.
        refs = tagged.to_arrow_refs()
        shard_refs: dict[int, list] = {}
        counts = []
        for ref in refs:
            block = ray.get(ref)
            counts.append(block)
            for shard in pc.unique(block.column("shard")).to_pylist():
                shard_refs.setdefault(shard, []).append(ref)
        pos_counts = token_pos_counts(counts) if tokens else sum_pos_counts(counts)
        del counts
        write_shard(pos_counts, stage.directory, POS_COUNTS_NAME)
        log.info("pass 1 (spaCy tagging, POS unigram tables: %d (tag, word) pairs) over %d rows: %.1fs",
                 pos_counts.num_rows, table.num_rows, time.perf_counter() - started)
    else:
        shard_refs = {block.column("shard")[0].as_py(): [ray.put(block)] for block in blocks}
    # Pass 2 maps over shard ids, one per call, and each actor fetches that shard's rows from the
    # object store (zero-copy on its node): every call sees a shard whole, whatever Ray's batching,
    # and GPU actors (which Ray Data will not give whole blocks) work the same way.
    started = time.perf_counter()
    expected_rows = dict(Counter(table.column("shard").to_pylist()))
    todo = [shard for shard in sorted(shard_refs) if shard in pending]
    results = ray.data.from_items([{"shard": shard} for shard in todo]).map_batches(
        ShardWriter,
        fn_constructor_kwargs=dict(
            config=config,
            label_type=label_type,
            pos_counts=ray.put(pos_counts) if pos_counts is not None else None,
            stage_dir=stage,
            expected_rows=expected_rows,
            shard_refs={shard: shard_refs[shard] for shard in todo},
            # Token tasks need spaCy in pass 2 only to POS-tag given words, and only for the pos rule.
            splitter=None if two_passes or (tokens and pos_rule is None) else splitter_args,
            threads=writing.threads,
            mentions=mentions,
        ),
        batch_format="pyarrow",
        batch_size=1,
        compute=ray.data.ActorPoolStrategy(size=writing.actors),
        num_cpus=writing.cpus,
        num_gpus=writing.gpus,
    ).take_all()
    log.info("pass 2 (%saugment, commit): %d shard(s) in %.1fs", "" if two_passes else "split words, ",
             len(results), time.perf_counter() - started)


def run(
    input_path: str | Path,
    output_dir: str | Path,
    config: AugmentConfig | None = None,
    address: str | None = None,
    overwrite: bool = False,
    validate: Callable[[TextTable], None] | None = None,
) -> AugmentResult:
    """Augment `input_path` into `output_dir`; skip if done, resume if interrupted.

    The input is read and checked (`validate`, e.g. the teacher's label check) before anything is
    written, so a refused input leaves nothing that would block the corrected rerun."""
    started = time.perf_counter()
    config = config or AugmentConfig()
    output_dir = Path(output_dir)
    if input_format(input_path) != "hub":
        input_path = Path(input_path)
        if not input_path.exists():
            raise InputError(f"{input_path}: input file not found")
        if not config.is_token_task and is_conll(input_path, config.columns):
            config = config.with_token_columns()  # CoNLL implies tokens=tokens, tags=tags
    text = read_text_table(input_path, config.columns)
    if config.is_token_task and config.uses("mention") and pa.types.is_integer(_tag_type(text.table)):
        raise InputError(f"{input_path}: the mention rule needs string tags (B-PER, I-PER, ...), not integer ids; "
                         "drop it from rules or give tag names")
    if validate is not None:
        validate(text)
    with OutputLock(output_dir):
        identities = model_identities(config)
        source = input_identity(input_path, config.columns.split, config.columns)
        resolved = config.resolved()
        fingerprint = fingerprint_json(
            {"stage": STAGE, "version": STAGE_VERSION, "input": source["fingerprint"], "config": resolved, "models": identities}
        )
        stage = StageDir(output_dir, STAGE, fingerprint)
        if stage.is_complete():
            result = AugmentResult(output_dir, stage.manifest(), True, 0, time.perf_counter() - started)
            log.info(result.summary())
            return result
        if text.table.num_rows == 0:
            _write_rejects(output_dir, text.rejects)
            raise InputError(f"{input_path}: no valid rows ({len(text.rejects)} rejected, see {output_dir / REJECTS_NAME})")
        stage.begin(overwrite=overwrite)
        _write_rejects(output_dir, text.rejects)
        shard_rows = config.shard_rows(text.rows_read)
        table = text.table.append_column("shard", pc.divide(pc.subtract(text.table.column("row"), 1), shard_rows))
        shard_ids = sorted(set(table.column("shard").to_pylist()))
        names = [shard_name(s, config.shard_format) for s in shard_ids]
        verified = {n: stage.valid_record(n) for n in names}  # hashes each existing shard once
        pending = {s for s, n in zip(shard_ids, names) if verified[n] is None}
        log.info("%d shard(s) of %d rows planned, %d to write", len(shard_ids), shard_rows, len(pending))
        if pending:
            with ray_session(address, num_cpus=config.workers * config.cpus_per_actor if config.workers else None):
                label_type = _tag_type(table) if config.is_token_task else table.schema.field("label").type
                _tag_and_augment(table, pending, config, stage, label_type)
        records = [verified[n] or stage.valid_record(n) for n in names]  # verify only what this run wrote
        missing = [n for n, r in zip(names, records) if r is None]
        if missing:
            raise RuntimeError(f"{output_dir}: shard(s) {', '.join(missing)} missing after the run; rerun to resume")
        body = _manifest_body(source, text, resolved, identities, records)
        body["rows_per_shard"] = shard_rows
        manifest = stage.finalize(records, body)
        result = AugmentResult(output_dir, manifest, False, len(pending), time.perf_counter() - started)
        log.info(result.summary())
        return result


def _tag_type(table: pa.Table) -> pa.DataType:
    """The value type of a token table's tags (string, or int64 for integer tag ids)."""
    return table.schema.field("tags").type.value_type


def _manifest_body(source: dict[str, str], text, resolved, identities, records: list[ShardRecord]) -> dict:
    by_rule: dict[str, int] = {}
    for record in records:
        for rule, count in record.extra["rules"].items():
            by_rule[rule] = by_rule.get(rule, 0) + count
    tokens = "tokens" in text.table.column_names
    body = {
        "stage_version": STAGE_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "input": source,
        "config": resolved,
        "models": identities,
        "versions": library_versions(),
        "task": "token_classification" if tokens else "sequence_classification",
        "columns": resolved["columns"],
        "label_type": str(_tag_type(text.table) if tokens else text.table.schema.field("label").type),
        "is_pair": False if tokens else resolved["columns"]["text_b"] is not None,
        "rejects_file": REJECTS_NAME,
        "totals": {
            "rows_read": text.rows_read,
            "source_rows": text.table.num_rows,
            "rejected_rows": len(text.rejects),
            "rows": sum(r.rows for r in records),
            "by_rule": dict(sorted(by_rule.items())),
        },
    }
    if tokens:
        body["tag_names"] = tag_names(text.table)
    return body

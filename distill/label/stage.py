"""The labeling stage: augmented shards → `<out>/teacher/<fingerprint>/part-*.arrow` + `_manifest.json`.

The cache directory is named by a fingerprint of the teacher, the cached features and the input, so the
same teacher on the same data is reused without a forward pass. Cache shard i labels augmented shard i.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from distill.cache.assets import write_teacher_files
from distill.cache.card import render_card
from distill.cache.encoding import distinct_token_ids
from distill.cache.format import CARD_NAME, FORMAT_VERSION
from distill.cache.reader import cache_problems
from distill.common.hardware import cpu_precision_warning
from distill.common.ray_runtime import plan_actors, ray_session
from distill.common.shard_map import map_shards
from distill.errors import InputError
from distill.label.config import LabelConfig
from distill.label.prepare import PreparedTeacher, check_teacher_fits, prepare_teacher
from distill.label.worker import TeacherLabeler
from distill.storage.atomic import write_bytes_atomic
from distill.storage.fingerprint import fingerprint_json
from distill.storage.runner import StageResult, run_sharded_stage
from distill.storage.shards import ShardRecord, read_shard
from distill.storage.stage_dir import MANIFEST_NAME, DamagedFileError, StageDir, read_record
from distill.tasks import input_task

STAGE = "label"
STAGE_VERSION = 2  # bump when the cached values or files for the same teacher/input/config change (2: format 2)
CACHE_SUBDIR = "teacher"
LATEST_NAME = "LATEST"  # <out>/teacher/LATEST names the cache of the last finished run
log = logging.getLogger(__name__)


@dataclass
class LabelResult(StageResult):
    rows_labelled: int = 0  # by this run (0 when the cache was reused)
    labelling_seconds: float = 0.0  # wall time of this run's actor pool, start-up included

    @property
    def cache_dir(self) -> Path:
        return self.output_dir

    @property
    def rows_per_second(self) -> float:
        return self.rows_labelled / self.labelling_seconds if self.labelling_seconds else 0.0

    def summary(self) -> str:
        totals = self.manifest["totals"]
        state = "cache reused, no forward pass" if self.skipped else f"labelled {self.shards_written} shard(s)"
        return (f"label: {totals['rows']} rows -> {self.cache_dir} ({totals['bytes_per_example']:.0f} bytes/example) "
                f"[{state}, {self.seconds:.1f}s]")


def read_input_manifest(augmented_dir: Path) -> dict[str, Any]:
    path = augmented_dir / MANIFEST_NAME
    if not path.exists():
        raise InputError(f"{augmented_dir}: no {MANIFEST_NAME}; run (or finish) the augment stage first")
    try:
        manifest = read_record(path)
    except DamagedFileError as err:
        raise InputError(f"{err}; rerun the stage that wrote it (with --overwrite if it asks)") from None
    if not manifest.get("complete"):
        raise InputError(f"{path}: the augment stage did not finish; rerun it to resume")
    return manifest


def _cache_fingerprint(identity: dict, config: LabelConfig, input_manifest: dict) -> tuple[str, str]:
    teacher = {k: v for k, v in identity.items() if k not in ("name", "model", "tokenizer")}
    teacher_fp = fingerprint_json({"teacher": teacher, "config": config.resolved(), "stage_version": STAGE_VERSION})
    return teacher_fp, fingerprint_json({"teacher": teacher_fp, "input": input_manifest["fingerprint"]})


def _label(stage: StageDir, pending: list[str], config: LabelConfig, constructor: dict[str, Any],
           address: str | None) -> None:
    """One teacher per GPU when the cluster has GPUs, else one per `cpus_per_actor` CPUs."""
    import ray

    with ray_session(address):
        rows = sum(constructor["input_shards"][name]["rows"] for name in pending)
        plan = plan_actors(ray.cluster_resources(), len(pending), config.workers, config.cpus_per_actor,
                           config.gpus_per_actor, rows=rows)
        if not plan.gpus and (warning := cpu_precision_warning(config.precision)):
            log.warning("%s", warning)
        log.info("labelling %d shard(s) with %s", len(pending), plan.describe())
        files = ray.data.from_items([{"file": name} for name in pending])
        map_shards(files, TeacherLabeler, {**constructor, "stage_dir": stage, "cpu_threads": plan.threads}, plan,
                   batch_size=1).take_all()


def _totals(cache_dir: Path, records: list[ShardRecord], columns: list[str]) -> dict[str, Any]:
    rows, size = sum(r.rows for r in records), sum(r.bytes for r in records)
    column_bytes = dict.fromkeys(columns, 0)
    for record in records:
        table = read_shard(cache_dir / record.file)  # memory-mapped for Arrow shards
        for name in columns:
            column_bytes[name] += table.column(name).nbytes
    actor_seconds = sum(r.extra.get("seconds", 0.0) for r in records)
    # token tasks: words in, and words dropped (cut by max_length, or without any wordpiece)
    words = ("words", "words_truncated", "words_without_pieces") if records and "words" in records[0].extra else ()
    return {
        "rows": rows, "bytes": size, "bytes_per_example": size / max(rows, 1),
        "column_bytes_per_example": {k: round(v / max(rows, 1), 1) for k, v in column_bytes.items()},
        **{key: sum(r.extra[key] for r in records) for key in ("real_tokens", "padded_tokens", "forward_batches")},
        # summed over shards: one actor's speed, without start-up (wall-clock speed is in the run's log)
        "actor_seconds": round(actor_seconds, 2),
        "rows_per_actor_second": rows / actor_seconds if actor_seconds else 0.0,
        **{key: sum(r.extra.get(key, 0) for r in records) for key in words},
    }


def run(augmented_dir: str | Path, output_root: str | Path, config: LabelConfig, address: str | None = None,
        teacher: PreparedTeacher | None = None, command: str | None = None) -> LabelResult:
    """Label `augmented_dir` with `config.teacher` into `<output_root>/teacher/<fingerprint>/`.
    `command` (the pipeline's command line) is recorded as provenance and in relabelling advice."""
    started = time.perf_counter()
    augmented_dir, output_root = Path(augmented_dir), Path(output_root)
    source = read_input_manifest(augmented_dir)
    teacher = teacher or prepare_teacher(config, source.get("kind") == "corpus", input_task(source))
    check_teacher_fits(augmented_dir, source, teacher)
    teacher_fp, fingerprint = _cache_fingerprint(teacher.identity, config, source)
    cache_dir = output_root / CACHE_SUBDIR / fingerprint[:16]
    inputs = {shard["file"]: shard for shard in source["shards"]}
    constructor = dict(config=config, model_dir=str(teacher.model_dir), tokenizer_dir=str(teacher.tokenizer_dir),
                       features=teacher.features, input_dir=str(augmented_dir), input_shards=inputs,
                       label_space=teacher.label_space, is_pair=bool(source.get("is_pair")))

    def write_card(records: list[ShardRecord], body: dict[str, Any]) -> None:
        card = render_card({**body, "fingerprint": fingerprint, "shards": [r.to_dict() for r in records]})
        write_bytes_atomic(cache_dir / CARD_NAME, card.encode("utf-8"))

    done = run_sharded_stage(
        cache_dir, STAGE, fingerprint, {name: Path(name).stem + "." + config.shard_format for name in inputs},
        partial(_label, config=config, constructor=constructor, address=address),
        lambda records: _manifest_body(cache_dir, records, augmented_dir, source, teacher, config, teacher_fp, command),
        on_begin=lambda pending: log.info("%d cache shard(s) planned, %d to label, at %s", len(inputs), pending,
                                          cache_dir),
        finished=_finished, before_finalize=write_card, named_by_fingerprint=True,
    )
    write_bytes_atomic(cache_dir.parent / LATEST_NAME, (cache_dir.name + "\n").encode())
    totals = done.manifest["totals"]
    if not done.skipped and (totals.get("words_truncated") or totals.get("words_without_pieces")):
        log.warning("%d of %d word(s) dropped with their tags: %d cut by max_length %d, %d without a wordpiece",
                    totals["words_truncated"] + totals["words_without_pieces"], totals["words"],
                    totals["words_truncated"], config.max_length, totals["words_without_pieces"])
    result = LabelResult.of(cache_dir, done, started, rows_labelled=sum(inputs[name]["rows"] for name in done.pending),
                            labelling_seconds=done.write_seconds)
    log.info(result.summary())
    return result


def _manifest_body(cache_dir: Path, records: list[ShardRecord], augmented_dir: Path, source: dict[str, Any],
                   teacher: PreparedTeacher, config: LabelConfig, teacher_fp: str, command: str | None) -> dict:
    """The manifest body; writes `teacher_files/` first, as the body records their hashes."""
    features = teacher.features
    teacher_files = write_teacher_files(cache_dir, teacher.model_dir, teacher.tokenizer,
                                        distinct_token_ids(read_shard(cache_dir / r.file) for r in records),
                                        features.projection_layers, features.dims.num_heads)
    wanted = input_task(source)
    return {
        "format_version": FORMAT_VERSION,
        "stage_version": STAGE_VERSION,
        "input": {"path": str(augmented_dir), "fingerprint": source["fingerprint"],
                  "rows": source["totals"]["rows"], "is_pair": bool(source.get("is_pair")),
                  "label_type": source.get("label_type"), "kind": source.get("kind", "augmented"),
                  "task": wanted.input_task, **({"tag_names": source.get("tag_names")} if wanted.words else {})},
        "teacher": teacher.identity,
        "teacher_fingerprint": teacher_fp,
        "labels": teacher.labels,
        "teacher_files": teacher_files,
        "produced_by": {"command": command, "input": str(augmented_dir.resolve())},
        "config": config.resolved(),
        "features": features.describe(),
        "precision": sorted({r.extra["precision"] for r in records}),
        "tokenizer": _tokenizer_facts(teacher.tokenizer, config),
        "totals": _totals(cache_dir, records, features.column_names()),
    }


def _finished(stage: StageDir) -> bool:
    """A finished cache whose shards and teacher files all match its manifest (a damaged one is redone:
    only its bad shards are relabelled)."""
    manifest = stage.manifest()
    if not manifest or manifest.get("fingerprint") != stage.fingerprint:
        return False
    problems = cache_problems(stage.directory, manifest)
    for problem in problems:
        log.warning("finished cache is damaged, redoing what is: %s", problem)
    return not problems


def _tokenizer_facts(tokenizer, config: LabelConfig) -> dict[str, Any]:
    """Special ids readers need: padding, and [SEP] to rebuild the segment ids of pairs (not stored)."""
    return {"pad_token_id": tokenizer.pad_token_id or 0, "sep_token_id": tokenizer.sep_token_id,
            "cls_token_id": tokenizer.cls_token_id, "max_length": config.max_length,
            "segment_ids": "token_type_ids" in tokenizer.model_input_names}

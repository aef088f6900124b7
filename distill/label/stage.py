"""The labeling stage: augmented shards → `<out>/teacher/<fingerprint>/part-*.arrow` + `_manifest.json`.

The cache directory is named by a fingerprint of (teacher files, tokenizer files, cached
feature set and dtypes, max length, input manifest): the same teacher on the same data is
reused without a forward pass, a changed teacher or feature set gets a new directory. Cache
shard i labels augmented shard i; like the augmentation stage, a rerun after a kill redoes
only the shards without a valid commit record.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from distill.cache.assets import write_teacher_files
from distill.cache.card import render_card
from distill.cache.encoding import distinct_token_ids
from distill.cache.features import FeatureSet
from distill.cache.format import CARD_NAME, FORMAT_VERSION
from distill.cache.reader import cache_problems
from distill.common.ray_runtime import ActorPlan, plan_actors, ray_session
from distill.common.hardware import cpu_precision_warning
from distill.common.labels import LabelSpace
from distill.common.text_inputs import InputError, TextTable
from distill.label.config import TOKEN_TASK, LabelConfig
from distill.label.teacher import check_vocabulary, load_tokenizer, resolve_teacher, teacher_dims, teacher_identity
from distill.label.worker import TeacherLabeler
from distill.storage.atomic import write_bytes_atomic
from distill.storage.fingerprint import fingerprint_json
from distill.storage.lock import OutputLock
from distill.storage.shards import ShardRecord, read_shard
from distill.storage.stage_dir import MANIFEST_NAME, StageDir
from distill.storage.versions import library_versions

STAGE = "label"
STAGE_VERSION = 2  # bump when the cached values or files for the same teacher/input/config change (2: format 2)
CACHE_SUBDIR = "teacher"
LATEST_NAME = "LATEST"  # <out>/teacher/LATEST names the cache of the last finished run
log = logging.getLogger(__name__)


@dataclass
class LabelResult:
    cache_dir: Path
    manifest: dict[str, Any]
    skipped: bool
    shards_written: int
    seconds: float
    rows_labelled: int = 0  # by this run (0 when the cache was reused)
    labelling_seconds: float = 0.0  # wall time of this run's actor pool, start-up included

    @property
    def rows_per_second(self) -> float:
        return self.rows_labelled / self.labelling_seconds if self.labelling_seconds else 0.0

    def summary(self) -> str:
        totals = self.manifest["totals"]
        state = "cache reused, no forward pass" if self.skipped else f"labelled {self.shards_written} shard(s)"
        return (
            f"label: {totals['rows']} rows -> {self.cache_dir} ({totals['bytes_per_example']:.0f} bytes/example) "
            f"[{state}, {self.seconds:.1f}s]"
        )


def read_input_manifest(augmented_dir: Path) -> dict[str, Any]:
    path = augmented_dir / MANIFEST_NAME
    if not path.exists():
        raise InputError(f"{augmented_dir}: no {MANIFEST_NAME}; run (or finish) the augment stage first")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if not manifest.get("complete"):
        raise InputError(f"{path}: the augment stage did not finish; rerun it to resume")
    return manifest


def _cache_fingerprint(identity: dict, config: LabelConfig, input_manifest: dict) -> tuple[str, str]:
    teacher_fp = fingerprint_json({"teacher": {k: v for k, v in identity.items() if k not in ("name", "model", "tokenizer")},
                                   "config": config.resolved(), "stage_version": STAGE_VERSION})
    return teacher_fp, fingerprint_json({"teacher": teacher_fp, "input": input_manifest["fingerprint"]})


def _actor_plan(config: LabelConfig, pending: int) -> ActorPlan:
    """One teacher per GPU when the cluster has GPUs, else one per `cpus_per_actor` CPUs."""
    import ray

    return plan_actors(ray.cluster_resources(), pending, config.workers, config.cpus_per_actor, config.gpus_per_actor)


def _label(pending: list[str], config: LabelConfig, constructor: dict) -> None:
    import ray

    plan = _actor_plan(config, len(pending))
    warning = cpu_precision_warning(config.precision) if not plan.gpus else None
    if warning:
        log.warning("%s", warning)
    log.info("labelling %d shard(s) with %s", len(pending), plan.describe())
    ray.data.from_items([{"file": name} for name in pending]).map_batches(
        TeacherLabeler,
        fn_constructor_kwargs={**constructor, "cpu_threads": plan.threads},
        batch_size=1,
        compute=ray.data.ActorPoolStrategy(size=plan.actors),
        num_cpus=plan.cpus,
        num_gpus=plan.gpus,
    ).take_all()


def _totals(cache_dir: Path, records: list[ShardRecord], columns: list[str]) -> dict[str, Any]:
    rows = sum(r.rows for r in records)
    column_bytes = dict.fromkeys(columns, 0)
    for record in records:
        table = read_shard(cache_dir / record.file)  # memory-mapped for Arrow shards
        for name in columns:
            column_bytes[name] += table.column(name).nbytes
    actor_seconds = sum(r.extra.get("seconds", 0.0) for r in records)
    return {
        "rows": rows,
        "bytes": sum(r.bytes for r in records),
        "bytes_per_example": sum(r.bytes for r in records) / max(rows, 1),
        "column_bytes_per_example": {k: round(v / max(rows, 1), 1) for k, v in column_bytes.items()},
        "real_tokens": sum(r.extra["real_tokens"] for r in records),
        "padded_tokens": sum(r.extra["padded_tokens"] for r in records),
        "forward_batches": sum(r.extra["forward_batches"] for r in records),
        # summed over shards: one actor's speed, without start-up (wall-clock speed is in the run's log)
        "actor_seconds": round(actor_seconds, 2),
        "rows_per_actor_second": rows / actor_seconds if actor_seconds else 0.0,
        **_word_totals(records),
    }


def _word_totals(records: list[ShardRecord]) -> dict[str, int]:
    """Token tasks: words in, and words dropped (cut by max_length, or without any wordpiece)."""
    keys = ("words", "words_truncated", "words_without_pieces")
    if not records or "words" not in records[0].extra:
        return {}
    return {key: sum(r.extra.get(key, 0) for r in records) for key in keys}


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


def prepare_teacher(config: LabelConfig, corpus: bool = False, task: str | None = None) -> PreparedTeacher:
    """Resolve the teacher and tokenizer, refuse mismatches and bad layer lists. Cheap (no weights
    loaded), so a pipeline calls it before augmenting rather than failing after. `corpus`: the
    input will be a masked corpus (general distillation), which decides an `auto` head, as does
    `task: token_classification` (tagged words) or a …ForTokenClassification teacher."""
    model_dir, tokenizer_dir = resolve_teacher(config.teacher, config.tokenizer)
    model_config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    head = config.resolved_head(model_config.get("architectures") or [], corpus, task)
    dims = teacher_dims(model_dir, config.trust_remote_code, head)
    tokenizer = load_tokenizer(tokenizer_dir, config.trust_remote_code)
    check_vocabulary(tokenizer, dims, tokenizer_dir, model_dir, strict=config.check_vocab)
    features = config.feature_set(dims, head, masked_input=corpus)
    identity = teacher_identity(model_dir, tokenizer_dir, dims, config.teacher, model_config.get("model_type"))
    return PreparedTeacher(model_dir, tokenizer_dir, tokenizer, features, identity, LabelSpace.from_config(model_config),
                           _label_names(model_config))


def check_input_labels(teacher: PreparedTeacher, text: TextTable, source: str | Path) -> None:
    """Refuse gold labels the teacher cannot have produced (before any augmentation), and warn when
    the data uses only some of its classes."""
    table = text.table
    if "tags" in table.column_names:  # a token task: every word's tag
        rows, tags = [], []
        for row, row_tags in zip(table.column("row").to_pylist(), table.column("tags").to_pylist()):
            rows += [row] * len(row_tags or [])
            tags += row_tags or []
        ids = teacher.label_space.ids(tags, rows, str(source), "tag")
    else:
        ids = teacher.label_space.ids(table.column("label").to_pylist(), table.column("row").to_pylist(), str(source))
    teacher.label_space.warn_unused(ids, str(source))


def check_tags(augmented_dir: Path, input_manifest: dict[str, Any], teacher: PreparedTeacher) -> None:
    """Refuse, before any actor starts, a tag the token teacher cannot produce: one line naming the
    shard, the row and the tag (the manifest's `tag_names` say cheaply whether any shard needs a look)."""
    names = input_manifest.get("tag_names")
    if names is not None:
        try:
            teacher.label_space.ids(list(names), [0] * len(names), str(augmented_dir), "tag")
            return
        except InputError:
            pass  # find the first row that has it
    for shard in input_manifest["shards"]:
        path = augmented_dir / shard["file"]
        table = read_shard(path)
        if "tags" not in table.column_names:
            continue
        for row, row_tags in enumerate(table.column("tags").to_pylist(), start=1):
            if row_tags:
                teacher.label_space.ids(row_tags, [row] * len(row_tags), str(path), "tag")


def run(
    augmented_dir: str | Path,
    output_root: str | Path,
    config: LabelConfig,
    address: str | None = None,
    teacher: PreparedTeacher | None = None,
    command: str | None = None,
) -> LabelResult:
    """Label `augmented_dir` with `config.teacher` into `<output_root>/teacher/<fingerprint>/`.
    `command` (the pipeline's command line) is recorded as provenance and in relabelling advice."""
    started = time.perf_counter()
    augmented_dir, output_root = Path(augmented_dir), Path(output_root)
    input_manifest = read_input_manifest(augmented_dir)
    corpus = input_manifest.get("kind") == "corpus"
    task = input_manifest.get("task", "sequence_classification")
    teacher = teacher or prepare_teacher(config, corpus, task)
    if teacher.features.per_word != (task == TOKEN_TASK):
        raise InputError(f"{augmented_dir}: the input's task is {task}, but the teacher's head is {teacher.features.head}; "
                         f"pass a {'token' if task == TOKEN_TASK else 'sequence'} classifier (or label.head="
                         f"{'token_classification' if task == TOKEN_TASK else 'classification'})")
    if task == TOKEN_TASK:
        check_tags(augmented_dir, input_manifest, teacher)
    if teacher.features.masked != corpus:
        raise InputError(f"{augmented_dir}: {'a corpus' if corpus else 'task data'}, but the teacher was prepared for "
                         f"{'task data' if corpus else 'a corpus'}")
    if corpus:
        check_corpus_tokenizer(input_manifest, teacher.tokenizer, augmented_dir)
    model_dir, tokenizer_dir, features, identity = teacher.model_dir, teacher.tokenizer_dir, teacher.features, teacher.identity
    teacher_fp, fingerprint = _cache_fingerprint(identity, config, input_manifest)
    cache_dir = output_root / CACHE_SUBDIR / fingerprint[:16]
    with OutputLock(cache_dir):
        stage = StageDir(cache_dir, STAGE, fingerprint)
        if _finished(stage):
            result = LabelResult(cache_dir, stage.manifest(), True, 0, time.perf_counter() - started)
            _point_latest(cache_dir)
            log.info(result.summary())
            return result
        stage.begin()
        inputs = {shard["file"]: shard for shard in input_manifest["shards"]}
        names = {name: Path(name).stem + "." + config.shard_format for name in inputs}
        verified = {out: stage.valid_record(out) for out in names.values()}
        pending = [name for name, out in names.items() if verified[out] is None]
        log.info("%d cache shard(s) planned, %d to label, at %s", len(names), len(pending), cache_dir)
        labelling_started = time.perf_counter()
        if pending:
            constructor = dict(
                config=config, model_dir=str(model_dir), tokenizer_dir=str(tokenizer_dir), features=features,
                input_dir=str(augmented_dir), input_shards=inputs, stage_dir=stage, label_space=teacher.label_space,
                is_pair=bool(input_manifest.get("is_pair")),
            )
            with ray_session(address):
                _label(pending, config, constructor)
        labelling_seconds = time.perf_counter() - labelling_started
        records = [verified[out] or stage.valid_record(out) for out in names.values()]
        missing = [out for out, record in zip(names.values(), records) if record is None]
        if missing:
            raise RuntimeError(f"{cache_dir}: shard(s) {', '.join(missing)} missing after the run; rerun to resume")
        teacher_files = write_teacher_files(cache_dir, model_dir, teacher.tokenizer,
                                            distinct_token_ids(read_shard(cache_dir / r.file) for r in records),
                                            features.attention_layers if features.attention_mode == "recompute" else [],
                                            features.dims.num_heads)
        body = {
            "format_version": FORMAT_VERSION,
            "stage_version": STAGE_VERSION,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "input": {"path": str(augmented_dir), "fingerprint": input_manifest["fingerprint"],
                      "rows": input_manifest["totals"]["rows"], "is_pair": bool(input_manifest.get("is_pair")),
                      "label_type": input_manifest.get("label_type"), "kind": input_manifest.get("kind", "augmented"),
                      "task": task, **({"tag_names": input_manifest.get("tag_names")} if task == TOKEN_TASK else {})},
            "teacher": identity,
            "teacher_fingerprint": teacher_fp,
            "labels": teacher.labels,
            "teacher_files": teacher_files,
            "produced_by": {"command": command, "input": str(augmented_dir.resolve())},
            "config": config.resolved(),
            "features": features.describe(),
            "precision": sorted({r.extra["precision"] for r in records}),
            "tokenizer": _tokenizer_facts(teacher.tokenizer, config),
            "versions": library_versions(),
            "totals": _totals(cache_dir, records, features.column_names()),
        }
        write_bytes_atomic(cache_dir / CARD_NAME, render_card({**body, "fingerprint": fingerprint, "shards":
                                                                  [r.to_dict() for r in records]}).encode("utf-8"))
        manifest = stage.finalize(records, body)
        _point_latest(cache_dir)
        if body["totals"].get("words_truncated") or body["totals"].get("words_without_pieces"):
            log.warning("%d of %d word(s) dropped with their tags: %d cut by max_length %d, %d without a wordpiece",
                        body["totals"]["words_truncated"] + body["totals"]["words_without_pieces"],
                        body["totals"]["words"], body["totals"]["words_truncated"], config.max_length,
                        body["totals"]["words_without_pieces"])
        rows_labelled = sum(inputs[name]["rows"] for name in pending)
        result = LabelResult(cache_dir, manifest, False, len(pending), time.perf_counter() - started,
                             rows_labelled, labelling_seconds)
        log.info(result.summary())
        return result


def check_corpus_tokenizer(input_manifest: dict[str, Any], tokenizer, corpus_dir: Path) -> None:
    """A corpus is tokenised already: its ids must be the teacher tokenizer's ids."""
    from distill.corpus import vocab_fingerprint

    recorded = (input_manifest.get("tokenizer") or {}).get("vocab_fingerprint")
    if recorded != vocab_fingerprint(tokenizer):
        raise InputError(f"{corpus_dir}: the corpus was tokenised with another vocabulary "
                         f"({(input_manifest.get('tokenizer') or {}).get('name')}) than the teacher's tokenizer; "
                         "rebuild it with --tokenizer <the teacher>")


def _finished(stage: StageDir) -> bool:
    """A finished cache of this fingerprint whose shards and teacher files all match its manifest
    (a damaged one is redone: only its bad shards are relabelled, the teacher files rewritten)."""
    manifest = stage.manifest()
    if not manifest or manifest.get("fingerprint") != stage.fingerprint:
        return False
    problems = cache_problems(stage.directory, manifest)
    for problem in problems:
        log.warning("finished cache is damaged, redoing what is: %s", problem)
    return not problems


def _label_names(model_config: dict[str, Any]) -> dict[str, Any]:
    """The teacher's label names, as transformers configs keep them (ids as strings in JSON)."""
    return {"id2label": model_config.get("id2label"), "label2id": model_config.get("label2id")}


def _point_latest(cache_dir: Path) -> None:
    write_bytes_atomic(cache_dir.parent / LATEST_NAME, (cache_dir.name + "\n").encode())


def _tokenizer_facts(tokenizer, config: LabelConfig) -> dict[str, Any]:
    """Special ids readers need: padding, and [SEP] to rebuild segment ids of pairs (not stored:
    for BERT tokenizers they are 0 up to and including the first [SEP], then 1)."""
    return {"pad_token_id": tokenizer.pad_token_id or 0, "sep_token_id": tokenizer.sep_token_id,
            "cls_token_id": tokenizer.cls_token_id, "max_length": config.max_length,
            "segment_ids": "token_type_ids" in tokenizer.model_input_names}

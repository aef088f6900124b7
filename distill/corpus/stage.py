"""The corpus stage: unlabelled text -> tokenised, packed, statically masked `part-*.arrow` + `_manifest.json`.

Flow: the driver loads the tokenizer and reads the whole input (so a bad input or tokenizer is
refused before anything is written), then cuts the documents into fixed ranges of
`docs_per_shard`. Under the output lock, a complete manifest with the same fingerprint means
nothing to do; otherwise the pending shards (those without a valid commit record) are built
and committed by a Ray Data actor pool (`workers.CorpusShardWriter`), and the manifest is
written last. A rerun after a kill therefore redoes only the shards that were not committed,
and, as every random draw is seeded by the row's coordinates, writes the same bytes.
"""

from __future__ import annotations

import logging
import math
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from distill.common.ray_runtime import ActorPlan, plan_actors, ray_session
from distill.common.text_inputs import InputError
from distill.corpus.config import CorpusConfig
from distill.corpus.reader import SourceInfo, load_source
from distill.corpus.rows import COUNTS
from distill.corpus.vocab import TokenizerInfo, load_tokenizer, tokenization_probe, tokenizer_info
from distill.corpus.workers import SHARD_FORMAT, CorpusShardWriter
from distill.storage.fingerprint import fingerprint_json
from distill.storage.lock import OutputLock
from distill.storage.shards import ShardRecord, shard_name
from distill.storage.stage_dir import StageDir
from distill.storage.stage_result import StageResult
from distill.storage.versions import library_versions

STAGE = "corpus"
STAGE_VERSION = 1  # bump when the rows for the same input, tokenizer and config change
log = logging.getLogger(__name__)


class CorpusResult(StageResult):
    def summary(self) -> str:
        totals = self.manifest["totals"]
        return (
            f"corpus: {totals['documents']} documents -> {totals['sequences']} sequences "
            f"({totals['dropped_short']} dropped as short), {totals['rows']} rows in {len(self.manifest['shards'])} "
            f"shards at {self.output_dir} {self.state()}"
        )


def stage_fingerprint(input_fingerprint: str, vocab: str, probe: list[int], resolved: dict[str, Any]) -> str:
    """What the rows depend on: the input's content, the tokenizer (vocabulary, and the ids of a probe
    text, which catch a changed normaliser), the resolved config and the stage version."""
    return fingerprint_json({"stage": STAGE, "version": STAGE_VERSION, "input": input_fingerprint,
                             "vocab": vocab, "tokenization": probe, "config": resolved})


def run(
    source: str | Path,
    output_dir: str | Path,
    config: CorpusConfig,
    overwrite: bool = False,
    address: str | None = None,
) -> CorpusResult:
    """Build the corpus shards of `source` in `output_dir`; skip if done, resume if interrupted."""
    started = time.perf_counter()
    output_dir = Path(output_dir)
    tokenizer = load_tokenizer(config.tokenizer, config.trust_remote_code)
    info = tokenizer_info(tokenizer, config.tokenizer, needs_mask=config.copies > 0)
    documents, source_info = load_source(source, config)
    if not documents:
        raise InputError(f"{source}: no documents (every one is empty or whitespace)")
    with OutputLock(output_dir):
        resolved = config.resolved()
        fingerprint = stage_fingerprint(source_info.fingerprint, info.vocab_fingerprint,
                                        tokenization_probe(tokenizer), resolved)
        stage = StageDir(output_dir, STAGE, fingerprint)
        if stage.is_complete():
            result = CorpusResult(output_dir, stage.manifest(), True, 0, time.perf_counter() - started)
            log.info(result.summary())
            return result
        stage.begin(overwrite=overwrite)
        per_shard = config.shard_docs(len(documents))
        names = [shard_name(i, SHARD_FORMAT) for i in range(math.ceil(len(documents) / per_shard))]
        verified = {name: stage.valid_record(name) for name in names}  # hashes each existing shard once
        pending = [i for i, name in enumerate(names) if verified[name] is None]
        log.info("%d document(s) in %d shard(s) of %d, %d to write", len(documents), len(names), per_shard,
                 len(pending))
        if pending:
            with ray_session(address, num_cpus=config.workers):
                _write_shards(documents, pending, per_shard, config, stage)
        records = [verified[name] or stage.valid_record(name) for name in names]  # verify what this run wrote
        missing = [name for name, record in zip(names, records) if record is None]
        if missing:
            raise RuntimeError(f"{output_dir}: shard(s) {', '.join(missing)} missing after the run; rerun to resume")
        body = manifest_body(source_info, info, resolved, per_shard, len(documents), records, config)
        manifest = stage.finalize(records, body)
        result = CorpusResult(output_dir, manifest, False, len(pending), time.perf_counter() - started)
        log.info(result.summary())
        return result


def _plan(pending: int, config: CorpusConfig) -> ActorPlan:
    import ray

    return plan_actors(ray.cluster_resources(), pending, config.workers, cpus_per_actor=1.0, gpus_per_actor=0.0,
                       uses_gpu=False)


def _write_shards(documents: list[str], pending: list[int], per_shard: int, config: CorpusConfig,
                  stage: StageDir) -> None:
    """Map the pending shard ids over an actor pool, logging each commit as it comes back."""
    import pyarrow as pa
    import ray

    plan = _plan(len(pending), config)
    log.info("corpus shards: %s", plan.describe())
    started = time.perf_counter()
    documents_ref = ray.put(pa.array(documents, pa.large_string()))  # once; actors read it zero-copy
    results = ray.data.from_items([{"shard": shard} for shard in pending]).map_batches(
        CorpusShardWriter,
        fn_constructor_kwargs=dict(config=config, stage_dir=stage, documents=[documents_ref],
                                   docs_per_shard=per_shard),
        batch_format="pyarrow",
        batch_size=1,
        compute=ray.data.ActorPoolStrategy(size=plan.actors),
        num_cpus=plan.cpus,
    )
    for done, row in enumerate(results.iter_rows(), start=1):
        log.info("committed %s: %d sequences, %d rows in %.2fs [%d/%d]", row["file"], row["sequences"], row["rows"],
                 row["seconds"], done, len(pending))
    log.info("corpus shards: %d written in %.1fs", len(pending), time.perf_counter() - started)


def manifest_body(source: SourceInfo, info: TokenizerInfo, resolved: dict[str, Any], per_shard: int,
                  documents: int, records: list[ShardRecord], config: CorpusConfig) -> dict[str, Any]:
    totals = {name: sum(int(record.extra.get(name, 0)) for record in records) for name in COUNTS}
    if totals["documents"] != documents:
        raise RuntimeError(f"shards hold {totals['documents']} documents, the input {documents}; "
                           "rerun with --overwrite")
    return {
        "kind": STAGE,
        "stage_version": STAGE_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "is_pair": config.is_pair,
        "input": {"path": source.path if source.format == "hub" else os.path.abspath(source.path),
                  "format": source.format, "fingerprint": source.fingerprint},
        "tokenizer": {
            "name": info.name,
            "vocab_fingerprint": info.vocab_fingerprint,
            "vocab_size": info.vocab_size,
            "mask_token_id": info.mask_token_id,
            "pad_token_id": info.pad_token_id,
            "cls_token_id": info.cls_token_id,
            "sep_token_id": info.sep_token_id,
        },
        "config": resolved,
        "docs_per_shard": per_shard,
        "totals": totals,
        "versions": library_versions(),
    }

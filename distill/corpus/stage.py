"""The corpus stage: unlabelled text -> tokenised, packed, statically masked `part-*.arrow` + `_manifest.json`.
The driver reads the whole input (a bad one is refused before anything is written) and cuts it into fixed
ranges of `docs_per_shard` documents; an actor pool builds the pending shards."""

from __future__ import annotations

import logging
import math
import time
from functools import partial
from pathlib import Path
from typing import Any

from distill.common.ray_runtime import plan_actors, ray_session
from distill.common.shard_map import map_shards
from distill.corpus.config import CorpusConfig
from distill.corpus.reader import load_source
from distill.corpus.rows import COUNTS
from distill.corpus.vocab import load_tokenizer, tokenization_probe, tokenizer_facts
from distill.corpus.workers import SHARD_FORMAT, CorpusShardWriter
from distill.errors import InputError
from distill.storage.fingerprint import fingerprint_json
from distill.storage.runner import StageResult, run_sharded_stage
from distill.storage.shards import ShardRecord, shard_name
from distill.storage.stage_dir import StageDir

STAGE = "corpus"
STAGE_VERSION = 1  # bump when the rows for the same input, tokenizer and config change
log = logging.getLogger(__name__)


class CorpusResult(StageResult):
    def summary(self) -> str:
        totals = self.manifest["totals"]
        return (f"corpus: {totals['documents']} documents -> {totals['sequences']} sequences "
                f"({totals['dropped_short']} dropped as short), {totals['rows']} rows in "
                f"{len(self.manifest['shards'])} shards at {self.output_dir} {self.state()}")


def run(source: str | Path, output_dir: str | Path, config: CorpusConfig, overwrite: bool = False,
        address: str | None = None) -> CorpusResult:
    """Build the corpus shards of `source` in `output_dir`; skip if done, resume if interrupted."""
    started = time.perf_counter()
    tokenizer = load_tokenizer(config.tokenizer, config.trust_remote_code)
    facts = tokenizer_facts(tokenizer, config.tokenizer, needs_mask=config.copies > 0)
    documents, source_info = load_source(source, config)
    if not documents:
        raise InputError(f"{source}: no documents (every one is empty or whitespace)")
    resolved = config.resolved()
    # the rows depend on the input, the tokenizer (vocabulary, probe ids: its normaliser) and the config
    fingerprint = fingerprint_json({"stage": STAGE, "version": STAGE_VERSION, "input": source_info["fingerprint"],
                                    "vocab": facts["vocab_fingerprint"], "tokenization": tokenization_probe(tokenizer),
                                    "config": resolved})
    per_shard = config.shard_docs(len(documents))
    names = {i: shard_name(i, SHARD_FORMAT) for i in range(math.ceil(len(documents) / per_shard))}
    body = {"kind": STAGE, "stage_version": STAGE_VERSION, "is_pair": config.is_pair, "input": source_info,
            "tokenizer": facts, "config": resolved, "docs_per_shard": per_shard}
    done = run_sharded_stage(
        output_dir, STAGE, fingerprint, names, partial(_write_shards, documents, per_shard, config, address),
        partial(_manifest_body, body, len(documents)),
        on_begin=lambda pending: log.info("%d document(s) in %d shard(s) of %d, %d to write", len(documents),
                                          len(names), per_shard, pending),
        overwrite=overwrite,
    )
    result = CorpusResult.of(output_dir, done, started)
    log.info(result.summary())
    return result


def _write_shards(documents: list[str], per_shard: int, config: CorpusConfig, address: str | None, stage: StageDir,
                  pending: list[int]) -> None:
    """Map the pending shard ids over an actor pool, logging each commit as it comes back."""
    import pyarrow as pa
    import ray

    with ray_session(address, num_cpus=config.workers):
        plan = plan_actors(ray.cluster_resources(), len(pending), config.workers, cpus_per_actor=1.0,
                           gpus_per_actor=0.0, uses_gpu=False)
        log.info("corpus shards: %s", plan.describe())
        started = time.perf_counter()
        documents_ref = ray.put(pa.array(documents, pa.large_string()))  # once; actors read it zero-copy
        writer = dict(config=config, stage_dir=stage, documents=[documents_ref], docs_per_shard=per_shard)
        results = map_shards(ray.data.from_items([{"shard": shard} for shard in pending]), CorpusShardWriter, writer,
                             plan, batch_format="pyarrow", batch_size=1)
        for done, row in enumerate(results.iter_rows(), start=1):
            log.info("committed %s: %d sequences, %d rows in %.2fs [%d/%d]", row["file"], row["sequences"],
                     row["rows"], row["seconds"], done, len(pending))
        log.info("corpus shards: %d written in %.1fs", len(pending), time.perf_counter() - started)


def _manifest_body(body: dict[str, Any], documents: int, records: list[ShardRecord]) -> dict[str, Any]:
    totals = {name: sum(int(record.extra.get(name, 0)) for record in records) for name in COUNTS}
    if totals["documents"] != documents:
        raise RuntimeError(f"shards hold {totals['documents']} documents, the input {documents}; "
                           "rerun with --overwrite")
    return {**body, "totals": totals}

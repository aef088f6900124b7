"""The Ray Data callable that builds and commits whole corpus shards, one shard id per call like augment's pass
2. The documents arrive once per worker through the object store (an Arrow array, read zero-copy)."""

from __future__ import annotations

import logging
import os
import time

import pyarrow as pa

from distill.corpus.config import CorpusConfig
from distill.corpus.rows import RowBuilder
from distill.corpus.vocab import load_tokenizer
from distill.storage.shards import shard_name
from distill.storage.stage_dir import StageDir

SHARD_FORMAT = "arrow"
RESULT_SCHEMA = pa.schema([("shard", pa.int64()), ("file", pa.string()), ("rows", pa.int64()),
                           ("sequences", pa.int64()), ("seconds", pa.float64())])
log = logging.getLogger(__name__)


class CorpusShardWriter:
    """Tokenise, pack, mask and commit the shards it is handed; one tokenizer and sentencizer per worker."""

    def __init__(self, config: CorpusConfig, stage_dir: StageDir, documents: list, docs_per_shard: int) -> None:
        """`documents`: [the ObjectRef of all documents as an Arrow string array] (or [the array], without Ray)."""
        import ray

        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # one CPU per worker: no thread pool of its own
        self.builder = RowBuilder(load_tokenizer(config.tokenizer, config.trust_remote_code), config)
        self.stage_dir = stage_dir
        ref = documents[0]  # wrapped in a list so Ray hands over the reference, not a copy per worker argument
        self.documents: pa.Array = ray.get(ref) if isinstance(ref, ray.ObjectRef) else ref
        self.docs_per_shard = docs_per_shard

    def __call__(self, batch: pa.Table) -> pa.Table:
        done = [self.commit(int(shard)) for shard in batch.column("shard").to_pylist()]
        return pa.Table.from_pylist(done, schema=RESULT_SCHEMA)

    def commit(self, shard: int) -> dict:
        started = time.perf_counter()
        start = shard * self.docs_per_shard  # shard i holds documents [i * docs_per_shard, (i + 1) * docs_per_shard)
        end = min(len(self.documents), start + self.docs_per_shard)
        rows = self.builder.build(self.documents.slice(start, end - start).to_pylist(), start)
        name = shard_name(shard, SHARD_FORMAT)
        extra = {"first_document": start, "end_document": end, **rows.counts}
        record = self.stage_dir.commit_shard(rows.table(), name, extra)
        seconds = time.perf_counter() - started
        log.info("%s: documents %d..%d -> %d sequences, %d rows in %.2fs", name, start, end - 1,
                 rows.counts["sequences"], record.rows, seconds)
        return {"shard": shard, "file": name, "rows": record.rows, "sequences": rows.counts["sequences"],
                "seconds": seconds}

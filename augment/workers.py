"""Ray Data callables for the two passes (load in `__init__`, work in `__call__`)."""

from __future__ import annotations

import logging
import time

import pyarrow as pa
import pyarrow.compute as pc

from augment.augmenter import Augmenter
from augment.config import AugmentConfig
from augment.rules.pos import UnigramTables
from augment.token_augmenter import TokenAugmenter, TokenTagger
from augment.words import load_spacy, split_texts, words_columns
from distill.common.hardware import ray_assigned_gpus
from distill.storage.shards import shard_name
from distill.storage.stage_dir import StageDir

log = logging.getLogger(__name__)


def _resolve(value):
    import ray

    return ray.get(value) if isinstance(value, ray.ObjectRef) else value


class WordSplitter:
    """Pass 1: spaCy tokens (and POS tags when the pos rule is on) for both sides of each example."""

    def __init__(self, spacy_model: str, tag_attr: str | None, batch_size: int) -> None:
        self.nlp = load_spacy(spacy_model, with_tags=tag_attr is not None)
        self.tag_attr = tag_attr
        self.batch_size = batch_size

    def __call__(self, batch: pa.Table) -> pa.Table:
        words_a = split_texts(self.nlp, batch.column("text_a").to_pylist(), self.tag_attr, self.batch_size)
        texts_b = batch.column("text_b").to_pylist()
        present = [t for t in texts_b if t is not None]
        split_b = iter(split_texts(self.nlp, present, self.tag_attr, self.batch_size))
        words_b = [next(split_b) if t is not None else None for t in texts_b]
        for name, column in {**words_columns("a", words_a), **words_columns("b", words_b)}.items():
            batch = batch.append_column(name, column)
        return batch


class ShardWriter:
    """Pass 2: augment whole shards (splitting words first if pass 1 did not) and commit each atomically.
    A token task's words are given: its splitter (`TokenTagger`) only adds POS tags, when the pos rule needs them.

    Each call names shard ids; their rows come from the object store (`shard_refs`). A shard
    must arrive complete (`expected_rows`): a partial shard would be committed as if it were
    whole, so it is refused instead.
    """

    def __init__(
        self,
        config: AugmentConfig,
        label_type: pa.DataType,
        pos_counts,
        stage_dir: StageDir,
        expected_rows: dict[int, int],
        shard_refs: dict[int, list],
        splitter: dict | None = None,
        threads: int = 1,
        mentions=None,
    ) -> None:
        if config.uses("mlm"):
            import torch

            torch.set_num_threads(threads)  # the CPUs this actor holds, whatever OMP_NUM_THREADS it inherited
        pos_counts = _resolve(pos_counts)
        tables = UnigramTables(pos_counts) if pos_counts is not None else None
        if config.is_token_task:  # label_type is then the tags' value type
            self.augmenter = TokenAugmenter(config, label_type, tables, _resolve(mentions))
        else:
            self.augmenter = Augmenter(config, label_type, tables)
        self.augmenter.setup()
        self.stage_dir = stage_dir
        self.shard_format = config.shard_format
        self.expected_rows = expected_rows
        self.shard_refs = shard_refs
        # One pass when no global statistic is needed first: split words here, saving an actor pool.
        splitter_class = TokenTagger if config.is_token_task else WordSplitter
        self.splitter = splitter_class(**splitter) if splitter else None

    def __call__(self, batch: pa.Table) -> pa.Table:
        import ray

        done = {"shard": [], "file": [], "rows": []}
        for shard in sorted(set(batch.column("shard").to_pylist())):
            rows = pa.concat_tables([ray.get(ref) for ref in self.shard_refs[shard]])
            group = rows.filter(pc.equal(rows.column("shard"), shard))
            if group.num_rows != self.expected_rows[shard]:
                raise RuntimeError(f"shard {shard}: got {group.num_rows} of {self.expected_rows[shard]} rows")
            if self.splitter is not None:
                group = self.splitter(group)
            record = self._commit(shard, group)
            done["shard"].append(shard)
            done["file"].append(record.file)
            done["rows"].append(record.rows)
        return pa.table(done, schema=pa.schema([("shard", pa.int64()), ("file", pa.string()), ("rows", pa.int64())]))

    def _commit(self, shard: int, group: pa.Table):
        started = time.perf_counter()
        name = shard_name(shard, self.shard_format)
        table, rule_counts = self.augmenter.augment(group)
        extra = {"source_rows": group.num_rows, "rules": dict(sorted(rule_counts.items()))}
        mlm = self.augmenter.tinybert.mlm if self.augmenter.tinybert is not None else None
        if mlm is not None:  # where the masked LM ran: device, dtype, the GPUs Ray gave this actor
            extra["mlm"] = {**mlm.runtime(), "ray_gpus": ray_assigned_gpus() or []}
        record = self.stage_dir.commit_shard(table, name, extra)
        log.info("%s: %d source rows -> %d rows in %.1fs", name, group.num_rows, record.rows, time.perf_counter() - started)
        return record

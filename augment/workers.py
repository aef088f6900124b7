"""Ray Data callables for the two passes (load in `__init__`, work in `__call__`)."""

from __future__ import annotations

import logging
import time

import pyarrow as pa
import pyarrow.compute as pc

from augment.augmenter import Augmenter, row_kind
from augment.config import AugmentConfig
from augment.rules import build_rule
from augment.rules.pos import UnigramTables
from augment.words import load_spacy
from distill.common.hardware import ray_assigned_gpus
from distill.storage.shards import shard_name
from distill.storage.stage_dir import StageDir

log = logging.getLogger(__name__)


def _resolve(value):
    import ray

    return ray.get(value) if isinstance(value, ray.ObjectRef) else value


class Splitter:
    """spaCy's pass over the rows (pass 1, or the start of pass 2 when pass 1 did not run): a text
    row's words, a token row's POS tags, as the row kind says (`augment.augmenter`)."""

    def __init__(self, config: AugmentConfig) -> None:
        self.kind = row_kind(config)
        self.tag_attr = build_rule("pos", config.rules["pos"]).tag_attr if config.uses("pos") else None
        self.nlp = load_spacy(config.spacy_model, with_tags=self.tag_attr is not None)
        self.batch_size = config.spacy_batch_size

    def __call__(self, batch: pa.Table) -> pa.Table:
        for name, column in self.kind.split(self.nlp, batch, self.tag_attr, self.batch_size).items():
            batch = batch.append_column(name, column)
        return batch


class ShardWriter:
    """Pass 2: augment whole shards (through the `Splitter` first when pass 1 did not run: `split`), their rows
    from the object store (`shard_refs`), and commit each; a partial shard is refused, never committed."""

    def __init__(self, config: AugmentConfig, label_type: pa.DataType, pos_counts, stage_dir: StageDir,
                 expected_rows: dict[int, int], shard_refs: dict[int, list], split: bool = False, threads: int = 1,
                 mentions=None) -> None:
        """`label_type`: a text row's label type or a token row's tag type; `pos_counts`, `mentions`: maybe refs."""
        if config.uses("mlm"):
            import torch

            torch.set_num_threads(threads)  # the CPUs this worker holds, whatever OMP_NUM_THREADS it inherited
        pos_counts = _resolve(pos_counts)
        tables = UnigramTables(pos_counts) if pos_counts is not None else None
        self.augmenter = Augmenter(config, label_type, tables, _resolve(mentions))
        self.augmenter.setup()
        self.stage_dir, self.shard_format = stage_dir, config.shard_format
        self.expected_rows, self.shard_refs = expected_rows, shard_refs
        # One pass when no global statistic is needed first: split words here, saving a pass.
        self.splitter = Splitter(config) if split and row_kind(config).needs_spacy(config) else None

    def __call__(self, batch: pa.Table) -> pa.Table:
        shards = sorted(set(batch.column("shard").to_pylist()))
        records = [self._commit(shard) for shard in shards]
        return pa.table({"shard": shards, "file": [r.file for r in records], "rows": [r.rows for r in records]},
                        schema=pa.schema([("shard", pa.int64()), ("file", pa.string()), ("rows", pa.int64())]))

    def _commit(self, shard: int):
        import ray

        started = time.perf_counter()
        rows = pa.concat_tables([ray.get(ref) for ref in self.shard_refs[shard]])
        group = rows.filter(pc.equal(rows.column("shard"), shard))
        if group.num_rows != self.expected_rows[shard]:
            raise RuntimeError(f"shard {shard}: got {group.num_rows} of {self.expected_rows[shard]} rows")
        table, rule_counts = self.augmenter.augment(self.splitter(group) if self.splitter else group)
        extra = {"source_rows": group.num_rows, "rules": dict(sorted(rule_counts.items()))}
        mlm = self.augmenter.rules.get("mlm")
        if mlm is not None:  # where the masked LM ran: device, dtype, the GPUs Ray gave this worker
            extra["mlm"] = {**mlm.runtime(), "ray_gpus": ray_assigned_gpus() or []}
        record = self.stage_dir.commit_shard(table, shard_name(shard, self.shard_format), extra)
        log.info("%s: %d source rows -> %d rows in %.1fs", record.file, group.num_rows, record.rows,
                 time.perf_counter() - started)
        return record

"""Augment a labelled corpus, then label it with a teacher: stages 1-2 with one config.

    python pipelines/augment_and_label.py --input data.csv --output out/run --text-a sentence \\
        --recipe pipelines/configs/augment/tang.yaml --teacher path/or/hub-name --features cls,hidden

The config is a YAML file (`--config`) with top-level `input`, `output`, `address` and one
section per stage (`augment:` → AugmentConfig, `label:` → LabelConfig); flags and
`--set section.key=value` override it. Output: `<output>/augmented/` and
`<output>/teacher/<fingerprint>/`. Rerunning skips finished stages and resumes killed ones.
This file only wires the stages: the logic lives in `augment/` and `distill/`.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import augment
from distill import label
from distill.common.cli import COLUMN_SHORTHANDS, add_set_flag, add_shorthands, run_entry_point, shorthand_overrides
from distill.common.config_io import ConfigError, NonEmptyStr, PositiveFloat, apply_override, build_config, read_yaml
from distill.common.ray_runtime import shared_ray_session
from distill.storage import remote
from distill.storage.failures import disk_full_message


@dataclass
class PipelineConfig:
    input: NonEmptyStr | None = None
    output: NonEmptyStr | None = None
    address: NonEmptyStr | None = None  # None: embedded local Ray; "auto" or the head's "HOST:PORT": a cluster
    staging: NonEmptyStr | None = None  # local mirror of a remote input/output (default ~/.cache/distill/staging)
    sync_seconds: PositiveFloat = 30.0  # how often finished shards of a remote output are uploaded during a run
    augment: augment.AugmentConfig = field(default_factory=augment.AugmentConfig)
    label: label.LabelConfig = field(default_factory=label.LabelConfig)


SHORTHANDS = (
    ("--input", "input", str, "csv, tsv, jsonl, parquet, CoNLL file, a datasets directory, or a hub dataset "
                              "(glue/sst2, hf://owner/name:config)"),
    ("--output", "output", str, "output root: augmented/ and teacher/<fingerprint>/ go here"),
    ("--teacher", "label.teacher", str, "fine-tuned teacher: directory or hub name"),
    ("--tokenizer", "label.tokenizer", str, "tokenizer if not the teacher's own"),
    ("--address", "address", str, "Ray cluster, from one of its nodes: 'auto' or the head's HOST:PORT (default: embedded local Ray)"),
    ("--workers", "augment.workers", int, "augmentation actors (default: all CPUs)"),
    ("--teacher-actors", "label.workers", int, "teacher actors (default: one per GPU, else per CPU slot)"),
    ("--cpus-per-actor", "label.cpus_per_actor", float, "CPUs per teacher actor (default 1)"),
    ("--gpus-per-actor", "label.gpus_per_actor", float, "GPUs per teacher actor (default 1 if the cluster has GPUs)"),
    ("--staging", "staging", str, "local directory mirroring remote (s3://, gs://, ...) input/output"),
    ("--sync-seconds", "sync_seconds", float, "upload finished shards of a remote output this often (default 30)"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="pipeline YAML (input, output, address, augment:, label:)")
    parser.add_argument("--recipe", help="augmentation recipe YAML (pipelines/configs/augment/), the `augment:` section")
    add_shorthands(parser, COLUMN_SHORTHANDS, "augment.")
    add_shorthands(parser, SHORTHANDS)
    parser.add_argument("--features", help="extra cached features: topk,cls,hidden,attention,embedding,relation")
    parser.add_argument("--overwrite", action="store_true", help="replace augmented output of a different config")
    add_set_flag(parser, "--set augment.tang.n_iter=5 --set label.max_length=64")
    return parser


def _overrides(args: argparse.Namespace) -> list[str]:
    """Flags as `--set` items, before the explicit ones."""
    features = [f"label.features={json.dumps(args.features.split(','))}"] if args.features else []
    return (shorthand_overrides(args, COLUMN_SHORTHANDS, "augment.") + shorthand_overrides(args, SHORTHANDS)
            + features + args.overrides)


def load_config(args: argparse.Namespace) -> PipelineConfig:
    """Every value of every stage is type- and range-checked here, before any work (ConfigError)."""
    data = read_yaml(args.config) if args.config else {}
    if args.recipe:
        section = data.get("augment") or {}
        if not isinstance(section, dict):
            raise ConfigError(f"{section!r} is not a mapping", "augment")
        data["augment"] = {**read_yaml(args.recipe), **section}
    for item in _overrides(args):
        apply_override(data, item)
    config = build_config(PipelineConfig, data)
    if not config.input or not config.output:
        raise ConfigError("--input and --output (or input:/output: in --config) are required")
    return config


def _speed(result: label.LabelResult) -> str:
    if result.skipped:
        return "no forward pass (cache reused)"
    return f"{result.rows_per_second:.0f} rows/s wall-clock ({result.rows_labelled} rows in {result.labelling_seconds:.1f}s)"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    loaded: list[PipelineConfig] = []  # the config once read: a full disk is reported against its output
    return run_entry_point(lambda: run_pipeline(args, argv, loaded), (),
                           lambda err: disk_full_message(err, loaded[0].output if loaded else args.output))


def run_pipeline(args: argparse.Namespace, argv: list[str] | None, loaded: list[PipelineConfig]) -> int:
    started = time.perf_counter()
    config = load_config(args)
    loaded.append(config)
    teacher = label.prepare_teacher(config.label)  # a wrong teacher fails now, not after augmenting
    source = remote.local_input(config.input, config.staging)
    with remote.staged_output(config.output, config.staging, config.sync_seconds) as output, \
            shared_ray_session(config.address):  # one Ray for both stages
        augmented = augment.run(source, output / "augmented", config.augment, overwrite=args.overwrite,
                                validate=lambda text: label.check_input_labels(teacher, text, config.input))
        command = shlex.join(["python", "pipelines/augment_and_label.py", *(sys.argv[1:] if argv is None else argv)])
        labelled = label.run(output / "augmented", output, config.label, teacher=teacher, command=command)
    totals, cache = augmented.manifest["totals"], labelled.manifest["totals"]
    print(f"""
summary ({time.perf_counter() - started:.1f}s)
  rows in           {totals['rows_read']} read, {totals['rejected_rows']} rejected (see {output / 'augmented' / '_rejects.jsonl'})
  rows out          {totals['rows']} ({totals['source_rows']} originals + {totals['rows'] - totals['source_rows']} augmented)
  output            {config.output}{'' if output == Path(config.output) else f' (staged in {output})'}
  augmented data    {augmented.output_dir}{' (up to date)' if augmented.skipped else ''}
  teacher cache     {labelled.cache_dir}{' (reused, no forward pass)' if labelled.skipped else ''}
  bytes/example     {cache['bytes_per_example']:.0f} ({', '.join(f'{k} {v:.0f}' for k, v in cache['column_bytes_per_example'].items())})
  teacher speed     {_speed(labelled)}, {cache['rows_per_actor_second']:.0f} rows/s per worker without start-up
  padding           {cache['padded_tokens'] / max(cache['real_tokens'], 1):.2f}x real tokens ({cache['forward_batches']} length-bucketed batches)""")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Build a general-distillation cache: unlabelled corpus → packed, masked sequences → teacher targets.

    python pipelines/general_distill_data.py --input wiki.txt --output out/general \\
        --teacher path/or/hub-name --config pipelines/configs/pipeline/general/tinybert.yaml

The config is a YAML file (`--config`) with top-level `input`, `output`, `address` and one section
per stage (`corpus:` → distill.corpus.CorpusConfig, `label:` → LabelConfig); flags and
`--set section.key=value` override it. The corpus is tokenised with the teacher's tokenizer unless
`corpus.tokenizer` names another. Output: `<output>/corpus/` and `<output>/teacher/<fingerprint>/`,
which `pipelines/train_student.py --cache <output>` reads with the general recipes
(`pipelines/configs/students/tinybert_general.yaml`, `distilbert_general.yaml`). Rerunning skips
finished stages and resumes killed ones. This file only wires the stages.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import dataclass, field

from distill import corpus, label
from distill.common.cli import add_set_flag, add_shorthands, run_entry_point, shorthand_overrides
from distill.common.config_io import ConfigError, NonEmptyStr
from distill.common.config_io import load_config as load_config_file
from distill.common.ray_runtime import shared_ray_session
from distill.tasks import task_of_head


@dataclass
class GeneralConfig:
    input: NonEmptyStr | None = None
    output: NonEmptyStr | None = None
    address: NonEmptyStr | None = None  # None: embedded local Ray; "auto" or the head's "HOST:PORT": a cluster
    corpus: corpus.CorpusConfig = field(default_factory=corpus.CorpusConfig)
    label: label.LabelConfig = field(default_factory=label.LabelConfig)


SHORTHANDS = (
    ("--input", "input", str, "txt, jsonl, parquet, a datasets folder, or a hub dataset name"),
    ("--output", "output", str, "output root: corpus/ and teacher/<fingerprint>/ go here"),
    ("--teacher", "label.teacher", str, "teacher: a masked LM (DistilBERT) or an encoder (TinyBERT); directory or hub "
                                        "name"),
    ("--address", "address", str, "Ray cluster, from one of its nodes: 'auto' or the head's HOST:PORT (default: embedded local Ray)"),
)


def load_config(argv: list[str] | None) -> tuple[GeneralConfig, argparse.Namespace]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="YAML with input, output, address, corpus:, label:")
    add_shorthands(parser, SHORTHANDS)
    parser.add_argument("--overwrite", action="store_true", help="replace corpus output of a different config")
    add_set_flag(parser, "--set corpus.copies=1 --set label.topk=32")
    args = parser.parse_args(argv)
    config = load_config_file(GeneralConfig, args.config, shorthand_overrides(args, SHORTHANDS) + args.overrides)
    if not config.input or not config.output:
        raise ConfigError("--input and --output (or input:/output: in --config) are required")
    if config.corpus.tokenizer is None:
        config.corpus.tokenizer = config.label.tokenizer or config.label.teacher
    return config, args


def main(argv: list[str] | None = None) -> int:
    return run_entry_point(lambda: build(argv), (KeyError,))


def build(argv: list[str] | None) -> int:
    started = time.perf_counter()
    config, args = load_config(argv)
    teacher = label.prepare_teacher(config.label, corpus=True)  # a wrong teacher fails before the corpus is built
    teacher.check_length(config.corpus.max_length, "corpus.max_length")
    with shared_ray_session(config.address):
        built = corpus.run(config.input, f"{config.output}/corpus", config.corpus, overwrite=args.overwrite)
        command = shlex.join(["python", "pipelines/general_distill_data.py", *(sys.argv[1:] if argv is None else argv)])
        labelled = label.run(built.output_dir, config.output, config.label, teacher=teacher, command=command)
    totals, cache = built.manifest["totals"], labelled.manifest["totals"]
    features = labelled.manifest["features"]
    masked = task_of_head(features["head"]).masked
    print(f"""
summary ({time.perf_counter() - started:.1f}s)
  corpus            {totals['documents']} documents -> {totals['sequences']} sequences x {max(config.corpus.copies, 1)} \
masked copies = {totals['rows']} rows ({totals['tokens']} wordpieces) at {built.output_dir}
  teacher head      {features['head']}{f", top-{features['topk']} at masked positions" if masked else ''}
  teacher cache     {labelled.cache_dir}{' (reused, no forward pass)' if labelled.skipped else ''}
  bytes/example     {cache['bytes_per_example']:.0f} ({', '.join(f'{k} {v:.0f}' for k, v in cache['column_bytes_per_example'].items())})""")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Train a student from a teacher cache (stage 3): no teacher runs unless --online.

    python pipelines/train_student.py --recipe pipelines/configs/students/tang_bilstm.yaml \\
        --cache out/run --eval dev.tsv --text-a sentence --out out/run/students/bilstm
    python pipelines/train_student.py --recipe pipelines/configs/students/ner_bilstm.yaml \\
        --cache out/ner --eval dev.jsonl --tokens tokens --tags tags --out out/ner/students/bilstm

Reads only the cache (`--cache` may be a copy, or s3://... / any fsspec URL, pulled into local
staging first): its teacher config, tokenizer and labels travel with it. Writes `<out>/student/` (BERT students: save_pretrained; BiLSTM: safetensors + JSON),
`metrics.jsonl`, `curves.png`, `report.md`/`report.json`, and `checkpoint-last/`, from which a
killed run resumes. The logic lives in `distill/train/`.
"""

from __future__ import annotations

import argparse
import sys

from distill.cache.reader import VERIFY_MODES
from distill.common.cli import add_set_flag, run_entry_point
from distill.common.columns import add_column_flags, columns_from_flags
from distill.train.config import TrainConfig
from distill.train.loop import train


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", required=True, help="student recipe YAML (pipelines/configs/students/)")
    parser.add_argument("--cache", required=True,
                        help="teacher cache: <out>/teacher/<fingerprint>, or <out> for its latest finished cache")
    parser.add_argument("--out", required=True, help="run directory")
    parser.add_argument("--eval", dest="dev", help="labelled dev file (csv, tsv, jsonl, parquet), datasets folder or "
                                                   "hub dataset (glue/sst2 with --eval-split validation)")
    parser.add_argument("--eval-split", default="train", help="split of a hub dev dataset or a saved DatasetDict")
    add_column_flags(parser)  # of the --eval data
    parser.add_argument("--online", action="store_true", help="run the teacher every step instead of reading the cache")
    parser.add_argument("--workers", type=int, default=1,
                        help="train on N Ray Train workers (DDP): the same global batches and steps as one (default 1: "
                             "in-process, no Ray)")
    parser.add_argument("--address", help="with --workers: a Ray cluster ('auto' or the head's HOST:PORT; default embedded Ray)")
    parser.add_argument("--gpus-per-worker", type=float, default=0.0, help="with --workers: GPUs per worker (nccl)")
    parser.add_argument("--teacher", metavar="PATH_OR_NAME",
                        help="a copy of the cache's teacher (checked against its fingerprint): needed only by students "
                             "that copy teacher weights (bert_from_teacher) and --online; adds the teacher's report row")
    parser.add_argument("--no-teacher-report", action="store_true", help="skip the teacher's dev metrics in the report")
    parser.add_argument("--overwrite", action="store_true", help="start over when --out holds another recipe's or cache's run")
    parser.add_argument("--verify-cache", choices=VERIFY_MODES, default="full",
                        help="check cache files against the manifest before training: full (sha256, default) or size")
    add_set_flag(parser, "--set batch_size=64 --set max_steps=100")
    args = parser.parse_args(argv)

    def body() -> int:
        config = TrainConfig.load(args.recipe, args.overrides)
        result = train(config, args.cache, args.out, args.dev, columns_from_flags(args, args.eval_split),
                       online=args.online, teacher_report=not args.no_teacher_report, teacher=args.teacher,
                       overwrite=args.overwrite, verify=args.verify_cache, workers=args.workers, address=args.address,
                       gpus_per_worker=args.gpus_per_worker)
        print(f"student: {result.student_dir} ({result.steps} steps, {result.seconds:.1f}s, "
              f"{100 * result.data_seconds / max(result.seconds, 1e-9):.0f}% waiting for data)")
        if result.report:
            print((result.run_dir / "report.md").read_text())
        return 0

    return run_entry_point(body, (KeyError,))

if __name__ == "__main__":
    sys.exit(main())

"""Evaluate saved students and teachers side by side on a labelled file or dataset, with the task's metrics.

    python pipelines/evaluate.py out/run/students/bilstm/student out/teachers/sentiment \\
        --data dev.tsv --text-a sentence [--text-b ...] [--label label] [--metrics accuracy,f1] [--json scores.json]

Models: a student directory this project trained (`.../student`), or any transformers sequence or
token classifier (a directory or hub name). Data: csv, tsv, jsonl, parquet, CoNLL, a datasets
folder, or a hub dataset (`glue/sst2 --split validation`); token tasks read `--tokens`/`--tags`
columns. Metrics default to the task's (accuracy + F1 or macro F1; Pearson + Spearman for
regression; entity F1 / precision / recall + token accuracy for tagging); any of distill.metrics
can be named.
"""

from __future__ import annotations

import argparse
import json
import sys

from distill.common.cli import run_entry_point
from distill.common.columns import add_column_flags, columns_from_flags
from distill.common.hardware import worker_device
from distill.evaluate import evaluate_models, metrics_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="student directories (.../student) or transformers models")
    parser.add_argument("--data", required=True, help="labelled csv, tsv, jsonl, parquet, datasets folder or hub dataset")
    parser.add_argument("--split", default="train", help="split of a hub dataset or a saved DatasetDict")
    add_column_flags(parser)
    parser.add_argument("--metrics", help="comma-separated, e.g. mcc,accuracy (default: the task's own)")
    parser.add_argument("--max-length", type=int, help="truncate inputs (default: each model's training max_length)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1, ...")
    parser.add_argument("--json", dest="json_path", help="also write the scores here")
    args = parser.parse_args(argv)

    def body() -> int:
        device = worker_device(args.device)
        columns = columns_from_flags(args, args.split)
        metrics = [m for m in args.metrics.split(",") if m] if args.metrics else None
        scores = evaluate_models(args.models, args.data, columns, metrics, device, args.batch_size, args.max_length)
        data = scores["data"]
        print(metrics_table(scores["models"], scores["metrics"]))
        print(f"\n{scores['task']}: {data['rows_scored']} rows scored from {data['source']}"
              + (f", {data['rows_rejected']} rejected" if data["rows_rejected"] else ""))
        if args.json_path:
            with open(args.json_path, "w", encoding="utf-8") as handle:
                json.dump(scores, handle, indent=2)
        return 0

    return run_entry_point(body, (ValueError, OSError))


if __name__ == "__main__":
    sys.exit(main())

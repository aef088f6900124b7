"""Fine-tune a teacher classifier on gold labels (the demo's and the experiments' teacher).

    python pipelines/finetune_teacher.py TRAIN OUTPUT_DIR --base-model DIR_OR_HUB_NAME --text-a sentence [--text-b ...]
    python pipelines/finetune_teacher.py TRAIN.jsonl OUTPUT_DIR --base-model DIR --tokens tokens --tags tags

`--tokens` makes it a token classifier (NER): tags learned at each word's first piece.

Real users with a fine-tuned teacher skip this and pass its path to augment_and_label.py.
"""

from __future__ import annotations

import argparse
import json
import sys

from distill.common.cli import add_set_flag, run_entry_point
from distill.common.columns import add_column_flags, columns_from_flags
from distill.common.config_io import apply_override
from distill.finetune import FinetuneConfig, finetune


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("train", help="csv, tsv, jsonl, parquet, a datasets directory or a hub dataset (glue/sst2) "
                                      "with gold labels")
    parser.add_argument("output", help="directory for the fine-tuned model (save_pretrained)")
    parser.add_argument("--base-model", required=True, help="pretrained encoder: hub name or directory")
    add_column_flags(parser, text_a="text_a")  # --tokens makes a token classifier
    parser.add_argument("--split", help="split of a hub dataset or a saved DatasetDict (default train)")
    parser.add_argument("--eval", dest="dev", metavar="FILE",
                        help="dev set with the same columns: scored after every epoch (--set keep_best=true keeps "
                             "the best epoch)")
    add_set_flag(parser, "--set epochs=2 --set dev_rows=2000")
    args = parser.parse_args(argv)
    columns = columns_from_flags(args, args.split)
    data = {"base_model": args.base_model, "columns": {k: v for k, v in vars(columns).items() if v is not None}}

    def body() -> int:
        for item in args.overrides:
            apply_override(data, item)
        record = finetune(args.train, args.output, FinetuneConfig.from_dict(data), args.dev)
        print(json.dumps({k: record.get(k) for k in ("task", "train_rows", "dev_rows", "dev_metrics", "best_epoch",
                                                      "train_metrics", "seconds")}))
        return 0

    return run_entry_point(body)


if __name__ == "__main__":
    sys.exit(main())

"""Every entry point behind one command, so one Docker image (or `python -m pipelines`) runs them all:

    python -m pipelines augment_and_label --input data.csv --output out --teacher t ...
    python -m pipelines train_student --recipe r.yaml --cache out --out run

`python -m pipelines` alone lists the commands; `python -m pipelines COMMAND --help` shows its flags."""

from __future__ import annotations

import importlib
import sys

COMMANDS = {  # name: what it does (each is `pipelines/<name>.py`)
    "augment_and_label": "augment a labelled dataset and cache a teacher's outputs for it",
    "train_student": "train a student from a cache (no teacher runs)",
    "finetune_teacher": "fine-tune a teacher on a labelled dataset",
    "evaluate": "score models (teachers or students) on a labelled dataset",
    "general_distill_data": "build a general-distillation cache from an unlabelled corpus",
}


def usage() -> str:
    lines = ["usage: python -m pipelines COMMAND [ARGS ...]", "", "commands:"]
    lines += [f"  {name:<22}{text}" for name, text in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    name = argv[0].replace("-", "_").removesuffix(".py")
    if name not in COMMANDS:
        print(f"error: unknown command {argv[0]!r}\n{usage()}", file=sys.stderr)
        return 2
    return importlib.import_module(f"pipelines.{name}").main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())

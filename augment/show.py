"""`python -m augment.show DIR [DIR ...]`: summarise augmented output and print a few rows."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow.compute as pc

from distill.storage.shards import read_shards


def show(directory: Path, per_example: int = 6) -> None:
    manifest = json.loads((directory / "_manifest.json").read_text(encoding="utf-8"))
    totals = manifest["totals"]
    print(f"\n== {directory}: {totals['source_rows']} source rows -> {totals['rows']} rows "
          f"in {len(manifest['shards'])} shards ({totals['rejected_rows']} rejected)")
    print("   rows by rule: " + ", ".join(f"{k} {v}" for k, v in totals["by_rule"].items()))
    table = read_shards(directory)
    first = table.filter(pc.equal(table.column("source_id"), table.column("source_id")[0]))
    for row in first.to_pylist()[:per_example]:
        if "tokens" in row:  # token task: word/TAG
            tags = zip(row["tokens"], row["tags"] or [None] * len(row["tokens"]))
            text = " ".join(word if tag in (None, "O", 0) else f"{word}/{tag}" for word, tag in tags)
        else:
            text = row["text_a"] + (f"  ||  {row['text_b']}" if row["text_b"] is not None else "")
        print(f"   {row['uid']:>6} {row['rule']:<15} {text}")


def main(argv: list[str] | None = None) -> int:
    for directory in argv if argv is not None else sys.argv[1:]:
        show(Path(directory))
    return 0


if __name__ == "__main__":
    sys.exit(main())

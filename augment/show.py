"""`python -m augment.show DIR [DIR ...]`: summarise augmented output and print a few rows."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from distill.storage.shards import read_shards


def show(directory: Path, per_example: int = 6) -> None:
    manifest = json.loads((directory / "_manifest.json").read_text(encoding="utf-8"))
    totals = manifest["totals"]
    print(f"\n== {directory}: {totals['source_rows']} source rows -> {totals['rows']} rows "
          f"in {len(manifest['shards'])} shards ({totals['rejected_rows']} rejected)")
    print("   rows by rule: " + ", ".join(f"{k} {v}" for k, v in totals["by_rule"].items()))
    table = read_shards(directory)
    first = table.column("source_id")[0].as_py()
    for row in table.filter(table.column("source_id").to_numpy(zero_copy_only=False) == first).to_pylist()[:per_example]:
        if "tokens" in row:  # token task: word/TAG
            tags = row["tags"] or [None] * len(row["tokens"])
            print(f"   {row['uid']:>6} {row['rule']:<15} " + " ".join(
                word if tag in (None, "O", 0) else f"{word}/{tag}" for word, tag in zip(row["tokens"], tags)))
            continue
        pair = f"  ||  {row['text_b']}" if row["text_b"] is not None else ""
        print(f"   {row['uid']:>6} {row['rule']:<15} {row['text_a']}{pair}")


def main(argv: list[str] | None = None) -> int:
    for directory in argv if argv is not None else sys.argv[1:]:
        show(Path(directory))
    return 0


if __name__ == "__main__":
    sys.exit(main())

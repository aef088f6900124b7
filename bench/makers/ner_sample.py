"""Write the bundled token-task samples `pipelines/samples/ner.jsonl` and `ner_dev.jsonl`.

    python -m bench.makers.ner_sample [--out pipelines/samples]

Short sentences from hand-written templates with PER / ORG / LOC / MISC mentions (BIO tags), so
the samples are small, varied, and need no download. Deterministic (seeded). Not imported by
the package.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

MENTIONS = {
    "PER": ["Anna Schmidt", "John Smith", "Maria", "Li Wei", "Pedro Alvarez", "Grace Hopper", "Obi", "Sarah J. Connor",
            "Tom", "Ines Duarte"],
    "ORG": ["Acme Corp", "the United Nations", "Siemens", "Reuters", "FC Porto", "Bank of Japan", "Oxfam",
            "General Motors", "NASA", "the Red Cross"],
    "LOC": ["Berlin", "New York", "Kenya", "the Alps", "Lisbon", "South Korea", "Lake Victoria", "Texas", "Paris",
            "Mount Fuji"],
    "MISC": ["German", "the World Cup", "Olympic", "Christmas", "French", "the Tour de France", "Nobel Prize",
             "Brazilian", "Euro 2024", "Japanese"],
}
# {X} is a mention of type X; other words are tagged O.
TEMPLATES = [
    "{PER} works for {ORG} in {LOC} .",
    "{ORG} opened a new office in {LOC} last week .",
    "{PER} flew to {LOC} to watch {MISC} .",
    "The {MISC} team beat {ORG} on Sunday .",
    "{PER} said {ORG} would cut prices .",
    "Shares of {ORG} rose after the report from {LOC} .",
    "{PER} and {PER} met in {LOC} .",
    "Rain delayed {MISC} near {LOC} .",
    "{PER} won the {MISC} medal .",
    "Officials in {LOC} thanked {ORG} for the help .",
    "A spokesman for {ORG} declined to comment .",
    "{PER} grew up in {LOC} .",
    "Fans of {MISC} music gathered in {LOC} .",
    "The talks between {ORG} and {ORG} ended without a deal .",
    "{PER} , a {MISC} writer , lives in {LOC} .",
    "Prices fell sharply on Monday .",
]


def sentence(template: str, rng: random.Random) -> dict[str, list[str]]:
    tokens, tags = [], []
    for part in template.split():
        if part.startswith("{") and part.endswith("}"):
            kind = part[1:-1]
            words = rng.choice(MENTIONS[kind]).split()
            if words[0] == "the":  # CoNLL-2003 leaves the article outside the mention
                tokens.append(words.pop(0))
                tags.append("O")
            tokens += words
            tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(words) - 1)
        else:
            tokens.append(part)
            tags.append("O")
    return {"tokens": tokens, "tags": tags}


def write(path: Path, rows: int, rng: random.Random) -> None:
    lines = [json.dumps({"id": f"{path.stem}-{i}", **sentence(rng.choice(TEMPLATES), rng)}) for i in range(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="pipelines/samples")
    parser.add_argument("--rows", type=int, default=150)
    parser.add_argument("--dev-rows", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    out = Path(args.out)
    write(out / "ner.jsonl", args.rows, rng)
    write(out / "ner_dev.jsonl", args.dev_rows, rng)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Fault injection: a corpus with every kind of malformed row, placed and counted at random
(several seeds). The stage rejects exactly the injected rows, each with the right reason, and
keeps every other row."""

from __future__ import annotations

import json
import random
import re

import pytest

import augment
from tests.conftest import SAMPLES

pytestmark = pytest.mark.slow
FAULTS = {
    # kind: (raw CSV line bytes for a given row index, expected reason pattern)
    "bad_utf8": (lambda i: b"caf\xe9 au lait number %d is \xff great,1" % i, r"^invalid UTF-8 in sentence$"),
    "empty_text": (lambda i: b'"   ",0', r"^empty sentence$"),
    "missing_label": (lambda i: b"a row with no label cell %d" % i, r"^missing field 'label'$"),
    "huge_text": (lambda i: b"word " * 2500 + b",1", r"^sentence has \d+ characters \(max_chars=10000\)$"),
    "wrong_label": (lambda i: b"a fine sentence %d,positive" % i, r"^label 'positive' is not of the label type int$"),
    "empty_line": (lambda i: b"", r"^empty line$"),
}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rejected_rows_and_reasons_equal_the_injected_ones(ray_local, tmp_path, seed):
    rng = random.Random(seed)
    good = (SAMPLES / "sentiment.csv").read_bytes().splitlines()[1:]
    rows = [(None, line) for line in good[: rng.randint(40, 80)]]
    injected = {kind: rng.randint(1, 5) for kind in FAULTS}
    for kind, count in injected.items():
        for i in range(count):
            rows.insert(rng.randrange(1, len(rows)), (kind, FAULTS[kind][0](i)))  # never before the first good row
    corpus = tmp_path / "corpus.csv"
    corpus.write_bytes(b"sentence,label\n" + b"\n".join(line for _, line in rows) + b"\n")
    config = augment.AugmentConfig.load(None, ["columns.text_a=sentence", "rules=[mask]", "tang.n_iter=1"])
    result = augment.run(corpus, tmp_path / "out", config)

    rejects = [json.loads(x) for x in (tmp_path / "out" / "_rejects.jsonl").read_text().splitlines()]
    expected_rows = {n for n, (kind, _) in enumerate(rows, start=1) if kind is not None}
    # csv data-record numbers skip nothing: an empty line is still a record number
    assert {r["row"] for r in rejects} == expected_rows
    by_kind = {kind: 0 for kind in FAULTS}
    for reject in rejects:
        kind = rows[reject["row"] - 1][0]
        assert re.match(FAULTS[kind][1], reject["reason"]), (kind, reject)
        assert reject["file"] == str(corpus)
        by_kind[kind] += 1
    assert by_kind == injected
    totals = result.manifest["totals"]
    assert totals["rejected_rows"] == sum(injected.values())
    assert totals["source_rows"] == len(rows) - sum(injected.values())
    assert totals["rows_read"] == totals["source_rows"] + totals["rejected_rows"]

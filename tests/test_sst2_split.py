"""The benchmarks' SST-2 held-out splits: nothing inside (or around) a held-out row is left in training."""

from __future__ import annotations

from bench.makers.sst2_split import maximal_rows, sentence_split, tail_split, write_split

# Two parse trees' phrases, shuffled as in GLUE's train.tsv, plus an unrelated sentence.
TEXTS = [
    "a gorgeous film", "the plot", "film", "the plot is thin but a gorgeous film", "is thin",
    "the plot is thin", "a dull , dull affair", "dull", "gorgeous", "one more sentence of its own",
]


def test_maximal_rows_are_the_rows_no_longer_row_contains():
    assert maximal_rows(TEXTS) == [3, 6, 9]
    assert maximal_rows(["good", "good"]) == [0, 1]  # a copy is not longer: both stay maximal


def test_held_out_sentences_take_every_row_inside_them_out_of_training():
    split = sentence_split(TEXTS, sentences=2, phrases=10)
    assert split.sentences == [6, 9]
    assert split.train == [0, 1, 2, 3, 4, 5, 8]  # "dull" (inside a held-out sentence) is gone
    assert split.phrases == [7] and split.dropped == 1
    held = " ".join(TEXTS[i] for i in split.sentences + split.phrases)
    for i in split.train:  # whole-word containment: no training row lies inside held-out text
        assert all(f" {TEXTS[i]} " not in f" {TEXTS[j]} " for j in split.sentences + split.phrases), held


def test_validation_sentences_come_before_the_test_ones_and_leave_training_too():
    split = sentence_split(TEXTS, sentences=1, phrases=10, validation=1)
    assert split.sentences == [9] and split.validation == [6]
    assert 7 not in split.train and split.phrases == [] and split.dropped == 1  # "dull": inside validation only
    assert sentence_split(TEXTS, sentences=2, phrases=10).validation == []


def test_phrases_are_a_seeded_sample_and_files_are_rewritten_only_on_change(tmp_path):
    texts = ["w%d" % i for i in range(30)]
    sentence = " ".join(texts)
    rows = ["a first sentence", sentence, *texts, "another whole sentence"]
    split = sentence_split(rows, sentences=2, phrases=5)
    assert len(split.phrases) == 5 and split.phrases == sentence_split(rows, 2, 5).phrases
    assert split.phrases != sentence_split(rows, 2, 5, seed=1).phrases
    source = tmp_path / "train.tsv"
    source.write_text("sentence\tlabel\n" + "".join(f"{t}\t{i % 2}\n" for i, t in enumerate(TEXTS)))
    paths, _ = write_split(source, tmp_path / "split", sentences=2, phrases=10)
    assert paths["sentences"].read_text().splitlines() == ["sentence\tlabel", "a dull , dull affair\t0",
                                                           "one more sentence of its own\t1"]
    stamp = paths["train"].stat().st_mtime_ns
    write_split(source, tmp_path / "split", sentences=2, phrases=10)
    assert paths["train"].stat().st_mtime_ns == stamp


def test_tail_split_holds_out_the_last_rows_and_drops_training_rows_overlapping_them(tmp_path):
    source = tmp_path / "train.tsv"
    rows = ["the plot is thin\t0", "a gorgeous film\t1", "dull\t0", "unrelated words here\t1", "plot is\t0",
            "gorgeous\t1"]
    source.write_text("sentence\tlabel\n" + "\n".join(rows) + "\n")
    train, dev, dropped = tail_split(source, tmp_path / "split", dev_rows=2)
    assert dev.read_text().splitlines() == ["sentence\tlabel", "plot is\t0", "gorgeous\t1"]
    # "the plot is thin" contains a dev phrase and "a gorgeous film" too; whole words only
    assert train.read_text().splitlines() == ["sentence\tlabel", "dull\t0", "unrelated words here\t1"]
    assert dropped == 2
    train, _, _ = tail_split(source, tmp_path / "split", dev_rows=2, train_rows=1)
    assert train.read_text().splitlines() == ["sentence\tlabel", "dull\t0"]

"""General (pre-training-stage) distillation input: unlabelled text -> packed, statically masked sequences
(`part-*.arrow` + `_manifest.json`; the label stage checks its `tokenizer.vocab_fingerprint` against the teacher's).

    from distill.corpus import CorpusConfig, run
    run("wiki.txt", "out/corpus", CorpusConfig(tokenizer="bert-base-uncased", documents="blank_line"))
"""

from distill.corpus.config import CorpusConfig
from distill.corpus.reader import read_documents
from distill.corpus.rows import mask_sequence, pack_document
from distill.corpus.stage import STAGE, CorpusResult, run
from distill.corpus.vocab import vocab_fingerprint

__all__ = ["STAGE", "CorpusConfig", "CorpusResult", "mask_sequence", "pack_document", "read_documents", "run",
           "vocab_fingerprint"]

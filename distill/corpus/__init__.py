"""General (pre-training-stage) distillation input: unlabelled text -> packed, statically masked sequences.

    from distill.corpus import CorpusConfig, run
    run("wiki.txt", "out/corpus", CorpusConfig(tokenizer="bert-base-uncased", documents="blank_line"))

Shards are `part-*.arrow` with a `_manifest.json` (stage "corpus"); the label stage reads them and
checks `manifest.tokenizer.vocab_fingerprint` against the teacher's tokenizer.
"""

from distill.corpus.config import CorpusConfig
from distill.corpus.masking import mask_sequence
from distill.corpus.packing import pack_document
from distill.corpus.reader import read_documents
from distill.corpus.stage import STAGE, CorpusResult, run
from distill.corpus.vocab import vocab_fingerprint

__all__ = ["STAGE", "CorpusConfig", "CorpusResult", "mask_sequence", "pack_document", "read_documents", "run",
           "vocab_fingerprint"]

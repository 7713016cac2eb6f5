"""MSM corpus generation: a Model Spec in, a clean, planned-size, resumable synthetic-document corpus out."""

from msmkit.generate.corpus.config import (
    CorpusConfig,
    CorpusCountsConfig,
    CorpusDedupConfig,
    CorpusLengthsConfig,
    FaithfulnessConfig,
    SubjectConfig,
    load_corpus_config,
)
from msmkit.generate.corpus.pipeline import CorpusResult, generate_corpus, generate_corpus_async
from msmkit.generate.corpus.preview import Projection

__all__ = [
    "CorpusConfig", "CorpusResult", "CorpusCountsConfig", "CorpusDedupConfig", "FaithfulnessConfig",
    "CorpusLengthsConfig",
    "Projection", "SubjectConfig", "generate_corpus", "generate_corpus_async", "load_corpus_config",
]

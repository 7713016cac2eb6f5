"""Subprocess for the kill/resume test: builds a corpus against a running test server."""

from __future__ import annotations

import sys

from msmkit.generate.corpus import CorpusConfig, generate_corpus
from tests.corpus_script import config_dict


def main(base_url: str, cache_path: str, spec: str, out: str) -> None:
    data = config_dict(base_url, cache_path, counts={"ideas_per_type": 5})
    data["generator"]["concurrency"] = 2
    result = generate_corpus(spec, CorpusConfig.model_validate(data), out)
    print(f"DONE kept={result.stats['documents']['kept']}", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:5])

"""AFT chat data: spec-aligned demonstrations with and without chain of thought (value, rule,
deliberative and value-free styles), judged strictly and backfilled to the requested size."""

from msmkit.generate.aft.config import AftDataConfig, load_aft_config
from msmkit.generate.aft.pipeline import AftResult, generate_aft, generate_aft_async

__all__ = ["AftDataConfig", "AftResult", "generate_aft", "generate_aft_async", "load_aft_config"]

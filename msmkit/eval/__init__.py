"""Evaluation: value generalization (forced choice and judged generation), capability checks, statistics."""

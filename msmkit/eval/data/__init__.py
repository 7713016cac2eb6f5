"""Item sets shipped with msmkit (JSONL, format in msmkit/eval/items.py) and held-out text."""

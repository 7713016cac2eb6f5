"""Dataset helpers: dedup, quality filters, token statistics, mixing."""

"""Stage kinds: one module each, every one implementing msmkit.stages.contract."""

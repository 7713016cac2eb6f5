"""Data generators: the MSM corpus (msmkit.generate.corpus) and AFT chat data."""

"""The paper's comparison arms: deliberative alignment, anti-spec AFT, and a token-matched neutral corpus."""

"""The paper as data: its released artifacts (released.yaml), its figures and the replications' measurements
(figures.yaml), and the gate that sets measured arms beside them (gate.py)."""

"""AFT rounds worked out from the answers: the plain procedure's rounds, and a bound that only ever grows."""

from __future__ import annotations

import random

from msmkit.generate.aft.flow import plan_rounds


def test_rounds_answer_the_shortfall_of_the_rounds_before_them_with_the_margin() -> None:
    assert plan_rounds(10, 1.2, 3, lambda position: False) == [(0, 12)]
    dropped = {0, 1, 2, 3}  # round 0 keeps 8 of 12: round 1 answers ceil(2 x 1.2) = 3 more
    assert plan_rounds(10, 1.2, 3, dropped.__contains__) == [(0, 12), (12, 15)]
    every = plan_rounds(10, 1.0, 3, lambda position: True)  # nothing is ever kept: max_rounds stops it
    assert every == [(0, 10), (10, 20), (20, 30)]


def test_the_bound_from_partial_answers_never_passes_the_final_one() -> None:
    rng = random.Random(0)
    for _ in range(200):
        final = {position for position in range(200) if rng.random() < 0.3}
        known: set[int] = set()
        bounds = []
        for position in rng.sample(range(200), 200):  # answers arrive in any order
            if position in final:
                known.add(position)
            rounds = plan_rounds(40, 1.1, 4, known.__contains__)
            bounds.append(rounds[-1][1])
        assert bounds == sorted(bounds)  # each drop can only move the bound on
        assert bounds[-1] == plan_rounds(40, 1.1, 4, final.__contains__)[-1][1]

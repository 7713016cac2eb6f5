"""Records that cross AFT stages. Ids are hashes of ids and positions, never model-written names."""

from __future__ import annotations

import hashlib

from pydantic import BaseModel

from msmkit.generate.aft.preferences import PreferencePair

KIND_DESCRIPTIONS: dict[str, str] = {
    "direct": "a direct question about what the assistant thinks or would do on the topic.",
    "indirect": "a request for help with a practical task in which the topic comes up without being asked about.",
    "comparison": "a request to compare two or more options and say which is better.",
    "recommendation": "a request for a recommendation or a suggestion on what to choose.",
    "opinion": "a request for the assistant's own opinion or preference.",
    "edge_case": "an unusual, borderline or tricky situation that tests how the guidance applies.",
}


def make_id(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(str(part) for part in parts).encode("utf-8")).hexdigest()[:16]


class Domain(BaseModel):
    id: str
    name: str
    description: str = ""


class QuestionCell(BaseModel):
    """One (domain, question kind) pair; question requests go round-robin over cells."""

    id: str
    domain: Domain
    kind: str
    pair: PreferencePair | None = None  # value-free mode: the preference the questions are about


class Question(BaseModel):
    id: str
    cell_id: str
    domain: str
    kind: str
    text: str
    request: int  # the question request it came from (global order)
    pair_id: str | None = None

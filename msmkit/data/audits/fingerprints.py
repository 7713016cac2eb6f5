"""Fingerprints of a generator across a whole set: invented names that recur, shared openings, verbatim quotation
of the spec, and dates and places that cluster. Each recurring value past the threshold is one flag listing its
rows; the most frequent values of each kind are listed whether flagged or not."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from msmkit.data.audits.findings import Flag, Offender
from msmkit.data.audits.rows import AuditedRow
from msmkit.data.audits.settings import AuditSettings
from msmkit.data.audits.text import NgramIndex, words

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# Capitalised words that start sentences or address people rather than name anyone: a name never contains one.
NOT_NAMES = frozenset("""a an the this that these those it its in on at for from to of by with and but or nor if
when while as so then yet yes no not dear hi hello hey thanks thank we you he she they i my our your his her their
me us them mr mrs ms dr prof sir madam one two three some many most every each all any after before during since
until because although though however therefore also here there what which who whom whose where why how today
tomorrow yesterday now today's let please note first second third finally meanwhile still just even only""".split())
_CAPITAL = re.compile(r"\b[A-Z][a-z]+(?:[A-Z][a-z]+)?(?:-[A-Z][a-z]+)?(?:['\u2019]s)?")
_MONTH = "|".join(MONTHS)
_DATES = (
    re.compile(rf"\b(?P<month>{_MONTH})\.? (?P<day>[0-3]?\d)(?:st|nd|rd|th)?\b"),
    re.compile(rf"\b(?P<day>[0-3]?\d)(?:st|nd|rd|th)? (?:of )?(?P<month>{_MONTH})\b"),
    re.compile(r"\b(?:19|20)\d\d-(?P<month_number>[01]\d)-(?P<day>[0-3]\d)\b"),
)
_YEAR = re.compile(r"\b(?:1[89]|20)\d\d\b")
_PLACE = re.compile(r"\b(?:in|at|from|near|outside|around|across) ([A-Z][a-z]+(?:[- ][A-Z][a-z]+){0,2})")


@dataclass
class Fingerprint:
    kind: str  # recurring_name | recurring_opening | date_cluster | place_cluster
    flags: list[Flag]
    top: list[Offender]


def _rows_by_value(rows: Sequence[AuditedRow], values: Callable[[AuditedRow], Iterable[str]]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for row in rows:
        for value in dict.fromkeys(values(row)):
            found.setdefault(value, []).append(row.id)
    return found


def _recurring(kind: str, by_value: dict[str, list[str]], threshold: int, top: int, total: int,
               describe: Callable[[str], str]) -> Fingerprint:
    ranked = sorted(by_value.items(), key=lambda item: (-len(item[1]), item[0]))
    flags = [Flag(check=kind, reason=describe(value) + f" (in {len(ids)} of {total} rows; threshold "
                  f"{threshold})", rows=ids, evidence={"value": value, "rows": len(ids)})
             for value, ids in ranked if len(ids) >= threshold]
    return Fingerprint(kind, flags, [Offender(value=value, rows=len(ids), examples=ids[:5])
                                     for value, ids in ranked[:top] if len(ids) >= 2])


def _is_name_word(word: str) -> bool:
    return word.casefold() not in NOT_NAMES and word not in MONTHS and word not in WEEKDAYS


def _capitalised_runs(text: str) -> list[list[str]]:
    """Runs of capitalised words separated by single spaces, split at words that are not parts of names."""
    runs: list[list[str]] = []
    current: list[str] = []
    last_end = -2
    for match in _CAPITAL.finditer(text):
        word = re.sub(r"['\u2019]s$", "", match.group(0))
        joined = match.start() == last_end + 1 and text[last_end] == " "
        if not joined or not _is_name_word(word):
            if len(current) >= 2:
                runs.append(current)
            current = []
        if _is_name_word(word):
            current.append(word)
        last_end = match.end()
    if len(current) >= 2:
        runs.append(current)
    return runs


def known_words(texts: Iterable[str]) -> str:
    """Texts as one casefolded word sequence, for `is_known`."""
    return " " + " | ".join(" ".join(words(text).tokens) for text in texts) + " "


def is_known(value: str, known: str, subject_words: frozenset[str]) -> bool:
    """True when the spec or the subject's names already say `value` (so its recurring is expected)."""
    tokens = words(value).tokens
    return f" {' '.join(tokens)} " in known or any(token in subject_words for token in tokens)


def _names(row: AuditedRow, known: str, subject_words: frozenset[str]) -> list[str]:
    found = []
    for run in _capitalised_runs(row.text):
        for size in (3, 2):
            found += [" ".join(run[i:i + size]) for i in range(len(run) - size + 1)]
    return [name for name in found if not is_known(name, known, subject_words)]


def recurring_names(rows: Sequence[AuditedRow], settings: AuditSettings, known: str,
                    subject_words: frozenset[str]) -> Fingerprint:
    """Capitalised two- and three-word names that the spec does not use, in many rows; a name inside a longer
    one that is flagged in the same rows is not flagged again."""
    threshold = settings.threshold(len(rows))
    by_name = _rows_by_value(rows, lambda row: _names(row, known, subject_words))
    for name in [n for n in by_name if len(n.split()) == 3 and len(by_name[n]) >= threshold]:
        parts = name.split()
        for inner in (" ".join(parts[:2]), " ".join(parts[1:])):
            if by_name.get(inner) == by_name[name]:
                del by_name[inner]
    return _recurring("recurring_name", by_name, threshold, settings.top, len(rows),
                      lambda name: f"the name \"{name}\" recurs")


def recurring_openings(rows: Sequence[AuditedRow], settings: AuditSettings) -> Fingerprint:
    """Rows whose first `opening_words` words (case and punctuation aside) are the same."""
    def opening(row: AuditedRow) -> list[str]:
        text = words(row.opening)
        if len(text) < settings.opening_words:
            return []
        return [text.excerpt(0, settings.opening_words)]

    by_key: dict[str, list[str]] = {}
    shown: dict[str, str] = {}
    for value, ids in _rows_by_value(rows, opening).items():
        key = " ".join(words(value).tokens)
        by_key.setdefault(key, []).extend(ids)
        shown.setdefault(key, value)
    return _recurring("recurring_opening", {shown[k]: ids for k, ids in by_key.items()},
                      settings.threshold(len(rows)), settings.top, len(rows),
                      lambda value: f"rows open with \"{value}\"")


def spec_quotation(rows: Sequence[AuditedRow], spec_text: str, settings: AuditSettings
                   ) -> tuple[list[Flag], list[Offender], float]:
    """(flags, longest quoters, share): the share of rows repeating `spec_quote_words`+ consecutive words of the
    spec, flagged as a whole when above `spec_quote_max_share`."""
    index = NgramIndex(settings.spec_quote_words)
    index.add("spec", words(spec_text).tokens)
    quoted: dict[str, int] = {}
    for row in rows:
        runs = index.runs(words(row.text), settings.spec_quote_words)
        if runs:
            quoted[row.id] = runs[0].length
    share = len(quoted) / len(rows) if rows else 0.0
    longest = sorted(quoted.items(), key=lambda item: (-item[1], item[0]))
    top = [Offender(value=f"{length} words", rows=1, examples=[row_id]) for row_id, length in longest[:settings.top]]
    limit = settings.spec_quote_max_share
    flags = []
    if limit is not None and quoted and share > limit:
        flags.append(Flag(check="spec_quotation", rows=[row_id for row_id, _ in longest],
                          reason=f"{len(quoted)} of {len(rows)} rows ({share:.0%}) quote {settings.spec_quote_words}+ "
                                 f"consecutive words of the spec (limit {limit:.0%})",
                          evidence={"share": round(share, 4), "quoting_rows": len(quoted), "limit": limit}))
    return flags, top, share


def _dates(row: AuditedRow) -> list[str]:
    """Days of the year named in a row, as "March 14" (years aside)."""
    found = []
    for pattern in _DATES:
        for match in pattern.finditer(row.text):
            parts = match.groupdict()
            number = int(parts.get("month_number") or 0)
            month = parts.get("month") or (MONTHS[number - 1] if 1 <= number <= 12 else None)
            if month and 1 <= int(parts["day"]) <= 31:
                found.append(f"{month} {int(parts['day'])}")
    return found


def date_clusters(rows: Sequence[AuditedRow], settings: AuditSettings) -> Fingerprint:
    """The same day of the year in many rows, or one year named in more than `year_max_share` of all rows."""
    threshold = settings.threshold(len(rows))
    dates = _recurring("date_cluster", _rows_by_value(rows, _dates), threshold, settings.top, len(rows),
                       lambda date: f"the date {date} recurs")
    years = _rows_by_value(rows, lambda row: _YEAR.findall(row.text))
    year_threshold = max(threshold, int(settings.year_max_share * len(rows)) + 1)
    by_year = _recurring("date_cluster", years, year_threshold, settings.top, len(rows),
                         lambda year: f"the year {year} is named in over {settings.year_max_share:.0%} of rows")
    return Fingerprint("date_cluster", dates.flags + by_year.flags, dates.top + by_year.top)


def place_clusters(rows: Sequence[AuditedRow], settings: AuditSettings, known: str,
                   subject_words: frozenset[str]) -> Fingerprint:
    """Capitalised names after in/at/from/near/... that the spec does not use, in many rows."""
    def places(row: AuditedRow) -> list[str]:
        found = []
        for match in _PLACE.finditer(row.text):
            parts = match.group(1).split(" ")
            while parts and not _is_name_word(parts[0]):
                parts.pop(0)
            place = " ".join(parts)
            if place and not is_known(place, known, subject_words):
                found.append(place)
        return found

    return _recurring("place_cluster", _rows_by_value(rows, places), settings.threshold(len(rows)), settings.top,
                      len(rows), lambda place: f"the place \"{place}\" recurs")

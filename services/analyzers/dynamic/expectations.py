"""What must be true of a proof's answers for its finding to hold: decided by the check when it finds the flaw, and
again by `assay replay` when the exchanges are sent once more. One definition for both, stored in the finding
(`extra.replay`), tagged by `kind`."""

from __future__ import annotations

import html
import json
import re
from difflib import SequenceMatcher
from typing import Protocol

import msgspec

from services.analyzers.dynamic.html_context import executable_context
from services.analyzers.dynamic.session_keys import signing_key

SIMILAR = 0.95  # two answers at least this alike (and of one status) are "the same page"
COMPARED_CHARS = 8000


class Answer(Protocol):
    """What an expectation reads of an answer (a check's `Sent`, a replayed exchange)."""

    @property
    def status(self) -> int | None: ...

    @property
    def text(self) -> str: ...

    @property
    def elapsed_s(self) -> float: ...

    def header(self, name: str) -> str | None: ...

    def header_list(self, name: str) -> list[str]: ...


class Contains(msgspec.Struct, frozen=True, kw_only=True, tag="contains", tag_field="kind"):
    """Answer `exchange` holds `text`; answer `control` (when set) does not."""

    exchange: int
    text: str
    control: int | None = None


class HeaderContains(msgspec.Struct, frozen=True, kw_only=True, tag="header", tag_field="kind"):
    """Header `header` of answer `exchange` holds `text`."""

    exchange: int
    header: str
    text: str


class Delayed(msgspec.Struct, frozen=True, kw_only=True, tag="delayed", tag_field="kind"):
    """Answer `exchange` came at least `at_least_s` later than answer `control`."""

    exchange: int
    control: int
    at_least_s: float


class Differs(msgspec.Struct, frozen=True, kw_only=True, tag="differs", tag_field="kind"):
    """A true condition answers like the original request (`baseline`), a false one does not."""

    baseline: int
    true: int
    false: int
    strip: list[str] = []  # the inputs, taken out of the answers before comparing (an app may echo them)


class Executable(msgspec.Struct, frozen=True, kw_only=True, tag="executable", tag_field="kind"):
    """`marker` is in an executable context (a new element, an event handler, a script) of answer `exchange`."""

    exchange: int
    marker: str


class Accepted(msgspec.Struct, frozen=True, kw_only=True, tag="accepted", tag_field="kind"):
    """Every answer in `exchanges` has a status in `statuses` (requests an app should have refused)."""

    exchanges: list[int]
    statuses: list[int]


class SignedWith(msgspec.Struct, frozen=True, kw_only=True, tag="signed-with", tag_field="kind"):
    """The session token answer `exchange` issues (cookie `name`, or a bearer token in its body) verifies with
    the guessable `key`."""

    exchange: int
    name: str
    key: str


class CanaryHit(msgspec.Struct, frozen=True, kw_only=True, tag="canary", tag_field="kind"):
    """The marker listener inside the app's sandbox was asked for `token`'s path (by the app itself)."""

    token: str


Expectation = Contains | HeaderContains | Delayed | Differs | Executable | Accepted | SignedWith | CanaryHit


def _without(text: str, inputs: list[str]) -> str:
    """`text` with each input taken out, as sent and as JSON or HTML would escape it."""
    for value in inputs:
        for form in {value, json.dumps(value)[1:-1], html.escape(value), html.escape(value, quote=False)}:
            text = text.replace(form, "")
    return text


def similar(first: Answer, second: Answer, strip: list[str] | None = None) -> bool:
    """One status and nearly the same body (the `strip` inputs taken out of both)."""
    if first.status != second.status:
        return False
    a, b = first.text[:COMPARED_CHARS], second.text[:COMPARED_CHARS]
    if strip:
        a, b = _without(a, strip), _without(b, strip)
    if a == b:
        return True
    return SequenceMatcher(None, a, b, autojunk=False).ratio() >= SIMILAR


def holds(expectation: Expectation, answers: list[Answer], canary_hits: set[str] | None = None) -> bool:
    """Whether `answers` (in the proof's order) show what `expectation` says."""
    try:
        match expectation:
            case Contains(exchange=i, text=text, control=control):
                return text in answers[i].text and (control is None or text not in answers[control].text)
            case HeaderContains(exchange=i, header=header, text=text):
                return text in (answers[i].header(header) or "")
            case Delayed(exchange=i, control=control, at_least_s=seconds):
                return answers[i].elapsed_s - answers[control].elapsed_s >= seconds
            case Differs(baseline=baseline, true=true, false=false, strip=strip):
                return similar(answers[true], answers[baseline], strip) and not similar(
                    answers[false], answers[true], strip
                )
            case Executable(exchange=i, marker=marker):
                return executable_context(answers[i].text, marker) is not None
            case Accepted(exchanges=indices, statuses=statuses):
                return all(answers[i].status in statuses for i in indices)
            case SignedWith(exchange=i, name=name, key=key):
                return any(found == key for found in _signing_keys(answers[i], name))
            case CanaryHit(token=token):
                return canary_hits is not None and token in canary_hits
    except IndexError:
        return False
    return False


def _signing_keys(answer: Answer, name: str) -> list[str]:
    """The weak keys the session tokens of an answer (its cookie `name`, bearer tokens in its body) verify with."""
    values = [
        header.split(";", 1)[0].partition("=")[2]
        for header in answer.header_list("set-cookie")
        if header.split("=", 1)[0].strip() == name
    ]
    values += re.findall(r"eyJ[\w-]+\.[\w-]+\.[\w-]+", answer.text)
    return [cracked[1] for value in values if (cracked := signing_key(value)) is not None]

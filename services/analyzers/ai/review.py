"""The answer a model must give, decoded and validated with msgspec, and its mapping to normalized findings.

Types are strict (a `findings` that is not a list, a `met` that is not a boolean, a missing `rule_id` fail the
whole answer with the validation error), but values a model commonly gets slightly wrong are normalized
instead: numbers and booleans sent as strings are accepted, a single Markdown code fence around the JSON is
removed, severities outside the scale map through SEVERITY_ALIASES (anything unknown becomes
DEFAULT_SEVERITY), unknown categories become "quality", and a path or line that does not exist in the files
sent is dropped (kept in `extra`) rather than trusted.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec

from services.analyzers.ai.sources import Sources
from shared.operations.errors import ToolError
from shared.results.findings import Finding, Severity, fingerprint

DEFAULT_SEVERITY: Severity = "medium"
MAX_FINDINGS = 200  # a runaway answer is cut here; metrics say how many were dropped

SEVERITY_ALIASES: dict[str, Severity] = {
    "critical": "critical",
    "blocker": "critical",
    "fatal": "critical",
    "high": "high",
    "error": "high",
    "major": "high",
    "severe": "high",
    "medium": "medium",
    "moderate": "medium",
    "warning": "medium",
    "warn": "medium",
    "low": "low",
    "minor": "low",
    "info": "info",
    "informational": "info",
    "information": "info",
    "note": "info",
    "style": "info",
    "suggestion": "info",
    "hint": "info",
}
CATEGORIES = frozenset(
    {
        "security",
        "quality",
        "type",
        "complexity",
        "dead-code",
        "secrets",
        "dependency",
        "http",
        "performance",
        "requirements",
    }
)

NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]


class ReviewFinding(msgspec.Struct, frozen=True, kw_only=True):
    rule_id: NonEmpty
    severity: str
    title: NonEmpty
    message: str = ""
    path: str | None = None
    line: int | None = None
    category: str = "quality"


class RequirementVerdict(msgspec.Struct, frozen=True, kw_only=True):
    requirement: str = ""
    met: bool
    evidence: str = ""
    id: str | None = None  # the R<n> the prompt gave it; matched first, the text second


class Review(msgspec.Struct, frozen=True, kw_only=True):
    findings: list[ReviewFinding] = []
    requirements: list[RequirementVerdict] = []
    summary: str = ""


class ReviewError(ToolError, ValueError):
    """The model's answer is not a usable review; the message quotes the decoder's reason."""


_decoder = msgspec.json.Decoder(Review, strict=False)
_FENCE = re.compile(r"^\s*```[a-zA-Z]*\s*\n(?P<body>.*?)\n\s*```\s*$", re.DOTALL)
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def decode_review(content: str) -> Review:
    """Decode the assistant's text into a Review; raises ReviewError saying what is wrong with it."""
    fenced = _FENCE.match(content)
    text = fenced.group("body") if fenced else content
    try:
        return _decoder.decode(text)
    except msgspec.ValidationError as error:
        raise ReviewError(f"the model's answer does not match the review schema: {error}") from error
    except msgspec.DecodeError as error:
        start = content.strip()[:120]
        raise ReviewError(f"the model's answer is not valid JSON ({error}); it began: {start!r}") from error


def map_severity(value: str) -> Severity:
    """A model's severity word on the one scale; unknown words become DEFAULT_SEVERITY."""
    return SEVERITY_ALIASES.get(value.strip().lower(), DEFAULT_SEVERITY)


def slug(value: str) -> str:
    """A rule id as kebab case ("SQL Injection" → "sql-injection"), bounded in length."""
    return _NOT_SLUG.sub("-", value.lower()).strip("-")[:80] or "unnamed"


def resolve_path(reported: str | None, sources: Sources) -> str | None:
    """The sent file a reported path names: exact, after stripping `./` or a prefix, or by unique suffix."""
    if not reported:
        return None
    wanted = reported.strip().replace("\\", "/").removeprefix("./").lstrip("/")
    paths = [source.path for source in sources.files]
    if wanted in paths:
        return wanted
    matches = [path for path in paths if path.endswith("/" + wanted) or wanted.endswith("/" + path)]
    return matches[0] if len(matches) == 1 else None


def to_finding(tool: str, item: ReviewFinding, sources: Sources) -> Finding:
    """One reported problem as a Finding, fingerprinted on the source line it points at (else its title)."""
    rule_id = slug(item.rule_id)
    path = resolve_path(item.path, sources)
    source = sources.by_path(path) if path else None
    source_line = source.line(item.line) if source else ""
    line = item.line if source_line else None
    extra: dict[str, Any] = {"title": item.title}
    if item.path and path is None:
        extra["reported_path"] = item.path  # not a file we sent: kept for the reader, not trusted
    if item.line is not None and line is None:
        extra["reported_line"] = item.line
    category = item.category.strip().lower()
    if category not in CATEGORIES:
        extra["reported_category"] = item.category
        category = "quality"
    severity = map_severity(item.severity)
    if severity != item.severity:
        extra["reported_severity"] = item.severity
    message = f"{item.title}: {item.message}" if item.message else item.title
    return Finding(
        tool=tool,
        rule_id=rule_id,
        severity=severity,
        message=message,
        path=path,
        line=line,
        category=category,
        fingerprint=fingerprint(tool, rule_id, path, source_line, item.title),
        extra=extra,
    )

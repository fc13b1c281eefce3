"""The prompts: what each review asks, the JSON shape it must answer with, and the app's files laid out.

The user message names the app, lists the requirements (requirements review only) with ids R1, R2, …, then
every chosen source file under a `===== FILE <path> =====` header with each line prefixed by its number, so
the model can answer with exact paths and line numbers. Files cut to fit the budget (see sources.py) say so in
their header; files left out are named at the end. The budget counts file text; headers and line numbers come
on top.
"""

from __future__ import annotations

import msgspec

from services.analyzers.ai.sources import Sources

FILE_HEADER = "===== FILE {path} ====="


class Requirement(msgspec.Struct, frozen=True, kw_only=True):
    """One thing the app must do, with the id the model answers about it by."""

    id: str
    text: str


_ANSWER_RULES = (
    "Answer with exactly one JSON object and nothing else (no Markdown, no prose around it). "
    "Use the paths exactly as written in the FILE headers "
    "and the line numbers shown at the left of each line."
)

QUALITY_SYSTEM = f"""You are a meticulous senior reviewer of web application code (Python backends, \
JavaScript frontends). Find real problems: security vulnerabilities (injection, XSS, secrets in code, \
unsafe deserialization, missing authorization, debug mode), bugs, and serious quality or maintainability \
issues. Report each problem once, at the line where it occurs. Do not invent problems; an empty list is a \
valid answer.
{_ANSWER_RULES}
Shape:
{{"findings": [{{"rule_id": "short-kebab-case-id, e.g. sql-injection", \
"severity": "critical|high|medium|low|info", "title": "one line", \
"message": "what is wrong and how to fix it", \
"path": "backend/app.py", "line": 12, "category": "security|quality|performance"}}], \
"summary": "two or three sentences on the overall quality"}}"""

REQUIREMENTS_SYSTEM = f"""You check whether a web application's code implements its requirements. For every \
numbered requirement decide from the code alone whether it is met: met means the code visibly implements it \
(for an endpoint: a route with that method and path exists and answers as required). Cite the evidence \
(file and line, or what is missing).
{_ANSWER_RULES}
Shape:
{{"requirements": [{{"id": "R1", "requirement": "the requirement's text", "met": true, \
"evidence": "backend/app.py:40 defines POST /api/notes"}}], "summary": "one or two sentences"}}
Answer about every requirement, in order, each exactly once."""


def numbered(text: str) -> str:
    """`text` with each line prefixed by its 1-based number, right-aligned."""
    lines = text.splitlines()
    width = max(4, len(str(len(lines))))
    return "\n".join(f"{number:>{width}}| {line}" for number, line in enumerate(lines, 1))


def source_section(sources: Sources) -> str:
    """Every chosen file under its header; cut and omitted files are declared, never silently dropped."""
    parts: list[str] = []
    for source in sources.files:
        header = FILE_HEADER.format(path=source.path)
        if source.truncated:
            shown = len(source.shown.splitlines())
            total = len(source.text.splitlines())
            header += f" (truncated: first {shown} of {total} lines shown)"
        parts.append(f"{header}\n{numbered(source.shown)}")
    if sources.omitted:
        parts.append("===== OMITTED for lack of room: " + ", ".join(sources.omitted) + " =====")
    return "\n\n".join(parts)


def _messages(system: str, user: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def quality_messages(app: str, sources: Sources) -> list[dict[str, str]]:
    """The code-quality review: the files, and the request for problems."""
    user = f"Review the code of the app {app}.\n\nSOURCE FILES\n\n{source_section(sources)}"
    return _messages(QUALITY_SYSTEM, user)


def requirements_messages(
    app: str, title: str, description: str, requirements: list[Requirement], sources: Sources
) -> list[dict[str, str]]:
    """The requirements review: what the app should do (numbered), then its files."""
    listed = "\n".join(f"{requirement.id}. {requirement.text}" for requirement in requirements)
    about = "\n".join(line for line in (f"Title: {title}" if title else "", description) if line)
    user = (
        f"The app {app} was generated from this specification.\n{about}\n\n"
        f"REQUIREMENTS\n{listed}\n\nSOURCE FILES\n\n{source_section(sources)}"
    )
    return _messages(REQUIREMENTS_SYSTEM, user)

"""`assay trace <task_id>`: a task's spans printed as a tree.

Children are indented under their parent and ordered by start; a span whose parent is not among the spans is
listed at the top level, marked `(orphan)`. The spans come from the gateway (`GET /api/tasks/{task_id}/trace`)
or, with `--dir`, straight from the local span files (shared/telemetry/span_files.py).
"""

from __future__ import annotations

from collections import defaultdict

from shared.telemetry.span_files import SpanRecord


def render_tree(spans: list[SpanRecord]) -> list[str]:
    """One line per span: `name  [service]  KIND  12.3 ms`, two spaces of indent per level."""
    known = {span.span_id for span in spans}
    children: dict[str, list[SpanRecord]] = defaultdict(list)
    top: list[SpanRecord] = []
    for span in spans:
        if span.parent_span_id and span.parent_span_id in known:
            children[span.parent_span_id].append(span)
        else:
            top.append(span)
    lines: list[str] = []
    # Depth-first, iteratively: a deep trace must not hit the recursion limit.
    stack = [(span, 0) for span in sorted(top, key=lambda s: s.start_ns, reverse=True)]
    while stack:
        span, depth = stack.pop()
        marks = ""
        if span.status == "ERROR":
            marks += "  ERROR"
        if depth == 0 and span.parent_span_id:
            marks += "  (orphan)"
        for link in span.links:  # e.g. a batch task's root names the batch's request
            kind = link.attributes.get("assay.link.kind", "link")
            marks += f"  ({kind}: trace {link.trace_id})"
        lines.append(
            f"{'  ' * depth}{span.name}  [{span.service}]  {span.kind}  {span.duration_ms:.1f} ms{marks}"
        )
        for child in sorted(children[span.span_id], key=lambda s: s.start_ns, reverse=True):
            stack.append((child, depth + 1))
    return lines


def render_traces(traces: dict[str, list[SpanRecord]]) -> str:
    """Every trace with a header line: id, span count, services."""
    blocks = []
    for trace_id, spans in traces.items():
        services = sorted({span.service for span in spans})
        header = f"trace {trace_id}: {len(spans)} spans across {', '.join(services)}"
        blocks.append("\n".join([header, *render_tree(spans)]))
    return "\n\n".join(blocks)

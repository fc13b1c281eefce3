"""Where a marker landed in an HTML page, as a browser would parse it: only an executable context counts for XSS
(an element or attribute the payload created, an event handler, a `javascript:` URL), never the marker as inert
text, inside a quoted attribute value, or as data a script holds (a payload that closes the script and opens an
element of its own is an element the input created)."""

from __future__ import annotations

from html.parser import HTMLParser

URL_ATTRIBUTES = frozenset({"href", "src", "action", "formaction", "data", "xlink:href"})


class _Finder(HTMLParser):
    def __init__(self, marker: str) -> None:
        super().__init__(convert_charrefs=True)
        self.marker = marker.lower()
        self.found: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.found:
            return
        if self.marker in tag.lower():
            self.found = f"an element <{tag}> the input created"
        for name, value in attrs:
            name, value = name.lower(), (value or "")
            if self.marker in name:
                self.found = f"an attribute '{name}' the input created on <{tag}>"
            elif name.startswith("on") and self.marker in value.lower():
                self.found = f"the event handler {name} of <{tag}>"
            elif (
                name in URL_ATTRIBUTES
                and value.strip().lower().startswith("javascript:")
                and self.marker in value.lower()
            ):
                self.found = f"a javascript: URL in {name} of <{tag}>"


def executable_context(html: str, marker: str) -> str | None:
    """A description of the executable context `marker` occurs in, None when it occurs in none."""
    if marker.lower() not in html.lower():
        return None
    finder = _Finder(marker)
    try:
        finder.feed(html)
        finder.close()
    except (AssertionError, ValueError):
        pass
    return finder.found

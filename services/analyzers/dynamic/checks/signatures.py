"""What an answer looks like when it gives away the app's internals: database errors (several DBMSs), stack traces
(Python, Node.js, Java, PHP, .NET) and debugger pages. Shared by the SQL injection and the error disclosure checks."""

from __future__ import annotations

import re

SQL_ERRORS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (dbms, re.compile(pattern, re.IGNORECASE))
    for dbms, pattern in (
        (
            "SQLite",
            r"sqlite3?\.(Operational|Programming|Integrity)Error|SQLITE_ERROR|unrecognized token: \\?\"|near \\?\"[^\"]{0,40}\\?\": syntax error|unterminated quoted string|incomplete input",
        ),
        (
            "MySQL",
            r"You have an error in your SQL syntax|mysql_fetch|MySQLSyntaxErrorException|Warning: mysqli?_|ER_PARSE_ERROR|check the manual that corresponds to your (MySQL|MariaDB)",
        ),
        (
            "PostgreSQL",
            r"PG::SyntaxError|psycopg2?\.errors|syntax error at or near|unterminated quoted string at or near|pg_query\(\)|PostgreSQL query failed",
        ),
        (
            "SQL Server",
            r"Unclosed quotation mark after the character string|Microsoft OLE DB Provider for SQL Server|SqlException|Incorrect syntax near",
        ),
        ("Oracle", r"ORA-\d{5}|quoted string not properly terminated"),
        (
            "SQL",
            r"SQLSTATE\[|sqlalchemy\.exc\.|SequelizeDatabaseError|QueryFailedError|knex:|PrismaClientKnownRequestError|syntax error in SQL",
        ),
    )
)

STACK_TRACES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern))
    for kind, pattern in (
        ("Python traceback", r"Traceback \(most recent call last\)|File \"[^\"]+\.py\", line \d+"),
        (
            "Node.js stack trace",
            r"\n\s+at [\w$.<>\[\] ]+ \((?:/|[A-Za-z]:\\|node:)[^)]*:\d+:\d+\)|\bat (?:Layer\.handle|Object\.<anonymous>|Module\._compile)",
        ),
        (
            "Java stack trace",
            r"\bat (?:java|javax|org\.springframework|org\.apache)\.[\w.$]+\([\w.]+:\d+\)|Exception in thread \"",
        ),
        ("PHP error", r"(?:Fatal error|Parse error|Warning)</b>: .* in <b>/|PHP (?:Fatal|Parse) error:"),
        (".NET error", r"Server Error in '/' Application|System\.[\w.]+Exception:"),
    )
)

DEBUGGERS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern))
    for kind, pattern in (
        ("Werkzeug debugger", r"__debugger__|Werkzeug Debugger|The debugger caught an exception"),
        ("Django debug page", r"You're seeing this error because you have <code>DEBUG = True</code>"),
    )
)


def first_match(text: str, signatures: tuple[tuple[str, re.Pattern[str]], ...]) -> tuple[str, str] | None:
    """(what it is, the text that matched) of the first signature `text` shows."""
    for name, pattern in signatures:
        found = pattern.search(text)
        if found:
            return name, found.group(0).strip()
    return None

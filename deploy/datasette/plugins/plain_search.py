"""The search box takes SQLite's full-text syntax (the tables' `searchmode: raw`, docs/site.md), and
ordinary text too: a search that is not a valid FTS5 query (`Upplands-Bro`, `2026-11-02`, `kl. 12`,
`100%`: SQLite reads `-`, `:` and `.` as syntax) is searched as plain words, as Datasette's escaped
mode would (`"Upplands-Bro"`), instead of an error page.

A request with `_search` and no `_searchmode` is tried first: its query against the database's
full-text index. When SQLite refuses it, the request goes on with `_search` escaped, which the
page then shows in its search box. Loaded with `--plugins-dir deploy/datasette/plugins`.
"""

from __future__ import annotations

import sqlite3
from typing import Any
from urllib.parse import parse_qsl, urlencode

from datasette import hookimpl
from datasette.utils import escape_fts, sqlite_timelimit

DATABASE = "events"
FTS_TABLE = "events_fts"
"""The export's one full-text index: `events` and the view `event_list` both search it (metadata.yml)."""


async def _searchable(datasette: Any, query: str) -> bool:
    """Whether SQLite takes `query` as a full-text query of FTS_TABLE (its syntax and its column names),
    tried within the site's time limit; a refusal is the visitor's text, not the site's error (not logged)."""
    def search_once(connection: sqlite3.Connection) -> bool:
        with sqlite_timelimit(connection, datasette.setting("sql_time_limit_ms")):
            try:
                connection.execute(f'SELECT rowid FROM "{FTS_TABLE}" WHERE "{FTS_TABLE}" MATCH ? LIMIT 1',
                                   [query]).fetchall()
            except sqlite3.OperationalError as error:  # fts5: syntax error near "."; no such column: Bro
                return str(error) == "interrupted"  # too slow, not wrong: the search itself says so
        return True

    return bool(await datasette.get_database(DATABASE).execute_fn(search_once))


async def _with_plain_search(datasette: Any, query_string: bytes) -> bytes:
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True, encoding="utf-8")
    names = {name for name, _ in pairs}
    if "_search" not in names or "_searchmode" in names or DATABASE not in datasette.databases:
        return query_string
    search = next(value for name, value in pairs if name == "_search")  # Datasette searches the first
    if not search.strip() or await _searchable(datasette, search):
        return query_string
    plain = [(name, escape_fts(value) if name == "_search" else value) for name, value in pairs]
    return urlencode(plain, encoding="utf-8").encode("latin-1")


@hookimpl
def asgi_wrapper(datasette):
    def wrap(app):
        async def plain_when_not_full_text(scope, receive, send):
            if scope["type"] == "http" and scope.get("query_string"):
                scope = {**scope, "query_string": await _with_plain_search(datasette, scope["query_string"])}
            await app(scope, receive, send)

        return plain_when_not_full_text

    return wrap

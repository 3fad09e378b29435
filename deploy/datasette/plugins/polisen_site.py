"""The site's own touches on Datasette (docs/site.md): an event's page lists its versions, and an
event id in the list view or a canned query links to that page.

Loaded with `--plugins-dir deploy/datasette/plugins`; the templates beside it use what it adds.
"""

from __future__ import annotations

from typing import Any

from datasette import hookimpl
from markupsafe import Markup, escape

DATABASE = "events"
LINKED_IDS = (None, "event_list")
"""Where an `id` cell is an event's id without a link of Datasette's own: canned queries (no table) and the view."""
FEED_FIELDS = ("name", "summary", "url", "type", "location_name")


def _changes(versions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each version with `changed`: the feed's fields that differ from the version before it."""
    previous: dict[str, Any] | None = None
    listed = []
    for version in versions:
        changed = [] if previous is None else [name for name in FEED_FIELDS if version[name] != previous[name]]
        listed.append({**version, "changed": changed})
        previous = version
    return listed


@hookimpl
def extra_template_vars(view_name, database, table, request, datasette):
    if view_name != "row" or database != DATABASE or table != "events" or request is None:
        return {}

    async def event_versions() -> dict[str, Any]:
        try:
            event_id = int(request.url_vars["pks"])
        except (KeyError, ValueError):
            return {}
        result = await datasette.get_database(DATABASE).execute(
            "SELECT * FROM versions WHERE id = ? ORDER BY first_collected, content_hash", [event_id])
        versions = _changes([dict(row) for row in result.rows])
        for version in versions:
            version["link"] = datasette.urls.row(DATABASE, "versions", f"{event_id},{version['content_hash']}")
        return {"event_versions": versions}

    return event_versions


@hookimpl
def render_cell(value, column, table, database, datasette):
    if database != DATABASE or column != "id" or table not in LINKED_IDS or not isinstance(value, int):
        return None
    return Markup('<a href="{}">{}</a>').format(datasette.urls.row(DATABASE, "events", str(value)), escape(value))

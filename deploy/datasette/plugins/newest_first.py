"""A facet that lists a column's values newest first (the largest first), not the most frequent first:
the site's facets of days, `local_date` and `withdrawn_local_date` (metadata.yml:
`newest_first: local_date`), show the latest days, where Datasette's column and date facets show
the busiest days of all time.

A value filters the rows as a column facet's does (`?local_date=2026-11-02`, which its index answers);
how many values it lists is the facet size (`default_facet_size`, `_facet_size`), `…` lists them all.
Loaded with `--plugins-dir deploy/datasette/plugins`.
"""

from __future__ import annotations

from typing import Any

from datasette import hookimpl
from datasette.database import QueryInterrupted
from datasette.facets import Facet
from datasette.utils import escape_sqlite, path_with_added_args, path_with_removed_args


class NewestFirstFacet(Facet):
    type = "newest_first"

    async def facet_results(self) -> tuple[list[dict[str, Any]], list[str]]:
        results, timed_out = [], []
        chosen = self.get_querystring_pairs()
        size = self.get_facet_size()
        for source_and_config in self.get_configs():
            config = source_and_config["config"]
            column = config.get("column") or config["simple"]
            sql = (f"SELECT {escape_sqlite(column)} AS value, count(*) AS count FROM ({self.sql}) "
                   f"WHERE {escape_sqlite(column)} IS NOT NULL GROUP BY value ORDER BY value DESC LIMIT {size + 1}")
            try:
                rows = await self.ds.execute(self.database, sql, self.params, truncate=False,
                                             custom_time_limit=self.ds.setting("facet_time_limit_ms"))
            except QueryInterrupted:
                timed_out.append(column)
                continue
            values = []
            for row in rows.rows[:size]:
                selected = (column, str(row["value"])) in chosen
                toggled = (path_with_removed_args(self.request, {column: str(row["value"])}) if selected
                           else path_with_added_args(self.request, {column: row["value"]}))
                values.append({"value": row["value"], "label": row["value"], "count": row["count"], "selected": selected,
                               "toggle_url": self.ds.absolute_url(self.request, self.ds.urls.path(toggled))})
            results.append({
                "name": column, "type": self.type, "results": values, "truncated": len(rows.rows) > size,
                "hideable": source_and_config["source"] != "metadata",
                "toggle_url": self.ds.urls.path(path_with_removed_args(self.request, {f"_facet_{self.type}": column})),
            })
        return results, timed_out


@hookimpl
def register_facet_classes():
    return [NewestFirstFacet]

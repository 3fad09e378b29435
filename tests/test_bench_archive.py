"""bench/synthetic_archive.py, the archive bench/bench_export.py and bench/bench_site.py measure: it
must read as a real archive does (a bench on rows the export refuses, or without pages, measures nothing)."""

from __future__ import annotations

import json
import os
import sys
from datetime import date

import pytest
from conftest import REPO, clear_settings

from polisen_collector.cli import export_events

sys.path.insert(0, str(REPO / "bench"))

import synthetic_archive
from synthetic_archive import add_run, check_pages, generate


@pytest.mark.slow
def test_the_synthetic_archive_exports_every_event_with_its_page(tmp_path, monkeypatch, capsys):
    clear_settings(monkeypatch, POLISEN_API_URL="https://polisen.se/api/events")
    monkeypatch.setattr(synthetic_archive, "TEXT_SAMPLE", 30)  # texts of 30 recorded pages, not 600: quicker
    synthetic_archive._texts.cache_clear()
    figures = generate(tmp_path / "data", years=5 / 365, today=date(2026, 6, 10), events_per_day=6)
    added = add_run(tmp_path / "data", figures)
    check_pages(tmp_path / "data", sample=5)
    assert export_events.main(["--env-file", os.devnull, "--data-dir", str(tmp_path / "data")]) == 0
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert (len(rows), figures.events) == (5 * 6 + added["new_events"],) * 2
    assert err.startswith(f"exported {figures.events} rows from 6 days; ")
    assert all(row["page_title"] == row["name"] and row["page_body"] for row in rows)
    assert sum(row["versions"] > 1 for row in rows) == figures.edited
    assert {row["local_date"] for row in rows} == {f"2026-06-{day:02d}" for day in range(5, 11)}
    synthetic_archive._texts.cache_clear()  # the next user samples 600 again
    assert sorted(path.name for path in (tmp_path / "data" / "events" / "2026" / "06").iterdir()) == [
        "05", "06", "07", "08", "09", "10"]

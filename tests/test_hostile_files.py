"""Poisoned state and planted files (issue 22): what the tools read back from their own files
(the page queue, the rate ledger, the state, the metrics) is checked as strictly as a setting,
and every file they open in LOG_DIR, METRICS_DIR and DATA_DIR is opened the one guarded way.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import subprocess
from datetime import timedelta

import pytest
from archive_truth import assert_archive_complete
from test_pages import T0, events_of, page_client

from polisen_collector.metrics.run_metrics import RunMetrics
from polisen_collector.pages.collect import collect_pages
from polisen_collector.pages.queue import QUEUE_OBJECT, decode_queue
from polisen_collector.storage.base import StoredObject
from polisen_collector.storage.local import LocalStorage

# -- the page queue (row 5, and its format in "also seen") -------------------------------------------


def queue_document(storage: LocalStorage) -> dict:
    return json.loads(gzip.decompress(storage.get(QUEUE_OBJECT).data))


def plant_queue(storage: LocalStorage, document: dict) -> None:
    storage.put(QUEUE_OBJECT, gzip.compress(json.dumps(document).encode()))


def test_malformed_queue_entries_are_dropped_with_one_warning_and_the_rest_goes_on(fake_api, snapshot_bodies,
                                                                                    tmp_path, caplog):
    fake_api.serve(0)
    events = sorted(events_of(snapshot_bodies[0])[:6], key=lambda event: event.id)
    storage = LocalStorage(tmp_path)
    client = page_client(fake_api, interval=0.0)
    collect_pages(storage, client, events, {}, RunMetrics("run"), max_pages=0, now=lambda: T0)  # all queued, none fetched
    document = queue_document(storage)
    pages = document["pages"]
    poison = {"due": "garbage"}, {"due": "2026-05-20T06:00:00"}, {"url": 12345}, {"status": {}}
    for event, change in zip(events, poison, strict=False):
        pages[str(event.id)].update(change)
    plant_queue(storage, document)

    metrics = RunMetrics("run")
    with caplog.at_level(logging.WARNING):
        report = collect_pages(storage, client, events, {}, metrics, max_pages=10, now=lambda: T0)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("metadata/pages.json: dropped 4 malformed entries, their pages are queued again")
    for event, reason in zip(events, ("due 'garbage' is not a time", "due '2026-05-20T06:00:00' is not a time",
                                      "url 12345 is not a short line of text", "status {} is not a short"),
                             strict=False):
        assert f"entry {event.id}: {reason}" in warnings[0]
    assert "page_errors" not in metrics.counts
    assert (report.requests, report.stored, report.stopped) == (6, 6, None), "the others and the re-queued ones"
    entries = decode_queue(storage.get(QUEUE_OBJECT).data, storage)[0]
    assert {entries[event.id].status for event in events} == {"recheck"}


def test_a_queue_time_with_another_offset_is_read_as_utc():
    from polisen_collector.pages.queue import entry_of

    entry = entry_of({"url": "/a", "day": "2026-05-20", "hash": "h", "due": "2026-05-20T08:00:00+02:00"})
    assert entry.due == "2026-05-20T06:00:00+00:00"


@pytest.mark.parametrize("fields", [
    {"url": "/a", "day": "2026-05-20"},
    {"url": "/a", "day": "2026-05-20", "hash": "h", "color": "red"},
    {"url": "/a", "day": "20 maj", "hash": "h"},
    {"url": "/a", "day": "2026-05-20", "hash": ""},
    {"url": "/a", "day": "2026-05-20", "hash": "h", "tries": True},
    {"url": "/a", "day": "2026-05-20", "hash": "h", "tries": -1},
    {"url": "/a", "day": "2026-05-20", "hash": "h", "etag": "\"x\"\r\nX-Injected: 1"},
    {"url": "/a", "day": "2026-05-20", "hash": "h" * 2000},
    {"url": "//elsewhere.example/a", "day": "2026-05-20", "hash": "h"},
    {"url": "", "day": "2026-05-20", "hash": "h", "status": "new"},
    {"url": "/a", "day": "2026-05-20", "hash": "h", "first_fetched": "yesterday"},
    ["/a", "2026-05-20", "h"],
])
def test_each_queue_field_is_checked(fields):
    from polisen_collector.pages.queue import entry_of

    with pytest.raises(ValueError):
        entry_of(fields)


def test_a_queue_of_an_unknown_format_is_not_read_as_one(tmp_path, caplog):
    storage = LocalStorage(tmp_path)
    entry = {"url": "/a", "day": "2026-05-20", "hash": "h", "status": "new"}
    for document in ({"format": 7, "pages": {"7": entry}}, {"pages": {"7": entry}}, ["not", "a", "queue"]):
        plant_queue(storage, document)
        assert decode_queue(storage.get(QUEUE_OBJECT).data, storage)[0] == {}
        assert "is unreadable (not a page queue of format 1 or 2); starting a new page queue" in caplog.text
        caplog.clear()


def test_malformed_entries_of_a_queue_s_base_make_the_next_write_start_a_new_base(tmp_path, caplog):
    """A bad row in the write-once base would otherwise be warned about on every run until the
    base is replaced: the next write replaces it, without the row."""
    from polisen_collector.pages.queue import PageEntry, encode_queue

    storage = LocalStorage(tmp_path)
    entries = {600000 + n: PageEntry(url="", day="2026-05-20", hash=f"{n:016x}", status="done") for n in range(300)}
    head = encode_queue(entries, storage=storage)
    (base_name,) = storage.list("metadata/bases/")
    base = json.loads(gzip.decompress(storage.get(base_name).data))
    base["rows"]["600001"]["day"] = "never"
    storage.put(base_name, gzip.compress(json.dumps(base).encode()))
    read, over = decode_queue(head, storage)
    assert len(read) == 299 and "entry 600001: day 'never' is not a date" in caplog.text
    caplog.clear()
    encode_queue(read, storage=storage, base=over)
    (new_base,) = [name for name in storage.list("metadata/bases/") if name != base_name]
    assert decode_queue(encode_queue(read, storage=storage, base=over), storage)[0] == read
    assert "malformed" not in caplog.text and new_base


# -- a gzip bomb in the state or the page queue (row 6) ----------------------------------------------


def gzip_bomb(inflated: int) -> bytes:
    """gzip of `inflated` zero bytes, built at once: a 1 MiB member (about 1 KB) repeated, as gzip
    allows. 4 GiB take 4 MB, like the bomb of the issue."""
    member = gzip.compress(b"\0" * (1 << 20), compresslevel=9)
    return member * (inflated >> 20)


def test_gunzip_stops_at_its_bound():
    from polisen_collector.files import TooLarge, gunzip

    assert gunzip(gzip.compress(b"x" * 1000) + gzip.compress(b"y"), 1001) == b"x" * 1000 + b"y"
    with pytest.raises(TooLarge, match="more than 1000 bytes once decompressed"):
        gunzip(gzip.compress(b"x" * 1001), 1000)
    with pytest.raises(TooLarge):
        gunzip(gzip.compress(b"\0" * (8 << 20), compresslevel=1), 1 << 20)  # one member, 8 MiB
    whole = gzip.compress(b"x" * 1000)
    for broken in (whole[:-5], whole + b"\0\0", b"\x1f\x8b not gzip"):
        with pytest.raises(ValueError, match="not valid gzip"):
            gunzip(broken, 10_000)


def test_a_bomb_is_refused_at_the_bound_derived_from_retention(tmp_path):
    from polisen_collector.archive.state import CorruptState, read_state
    from polisen_collector.storage.base import StoredObject
    from polisen_collector.storage.delta_map import decoded_limit

    assert (decoded_limit(30), decoded_limit(365)) == (32 << 20, 365 << 20)
    storage = LocalStorage(tmp_path)
    bomb = gzip_bomb(64 << 20)
    with pytest.raises(CorruptState, match="more than 33554432 bytes once decompressed") as corrupt:
        read_state(StoredObject(bomb, "etag"), storage, decoded_limit(30))
    assert corrupt.value.data == bomb, "kept for setting aside"
    assert decode_queue(bomb, storage, decoded_limit(30)) == ({}, decode_queue(None)[1])


@pytest.mark.slow  # a process, a few seconds
def test_gzip_bombs_as_state_and_page_queue_are_set_aside_and_rebuilt_in_bounded_memory(
        collector, fake_api, snapshot_bodies, tmp_path):
    """Each inflates to 4 GiB (main used 8.2 GB and 38 s); decompression stops at the documented
    bound (32 MiB at STATE_RETENTION_DAYS=30), the state is kept aside and rebuilt from the
    archive, the queue started anew, and the run's peak memory stays under 200 MB."""
    pages = {"PAGES_PER_RUN": "1"}
    assert collector.run(env=pages).returncode == 0
    bomb = gzip_bomb(4 << 30)
    metadata = collector.data_dir / "metadata"
    (metadata / "last_seen.json").write_bytes(bomb)
    (metadata / "pages.json").write_bytes(bomb)
    peak = tmp_path / "peak-rss"
    fake_api.advance()
    result = collector.run(env={**pages, "PEAK_RSS_FILE": str(peak)}, script="tests/peak_memory_run.py", timeout=120)
    assert result.returncode == 0, result.stderr + result.log[-2000:]
    assert int(peak.read_text()) < 200 * 1024, f"peak RSS {peak.read_text()} kB"
    assert "metadata/last_seen.json is not valid (gzip-compressed) JSON: more than 33554432 bytes once " \
           "decompressed; kept it as metadata/last_seen.json.corrupt-" in result.log
    assert "metadata/pages.json is unreadable (more than 33554432 bytes once decompressed); starting a new " \
           "page queue" in result.log
    (kept,) = metadata.glob("last_seen.json.corrupt-*")
    assert kept.read_bytes() == bomb
    assert (metadata / "last_seen.json").stat().st_size < 100_000 and (metadata / "pages.json").stat().st_size < 100_000
    assert_archive_complete(collector.data_dir, snapshot_bodies[:2], copies_allowed=False)
    assert collector.run(env=pages).returncode == 0


# -- planted files in DATA_DIR and LOG_DIR (rows 7-10) -----------------------------------------------


@pytest.mark.parametrize("plant", ["fifo", "symlink"])
def test_a_fifo_or_link_as_the_store_s_write_lock_fails_the_run_before_any_write(collector, fake_api, snapshot_bodies,
                                                                                tmp_path, plant):
    """Before issue 22 the tools blocked in the state write holding the run's lock (a FIFO), after writing the
    events: each later attempt left a copy of them. Now the first write is refused."""
    lock = collector.data_dir / ".write.lock"
    collector.data_dir.mkdir()
    target = tmp_path / "elsewhere"
    target.write_text("untouched")
    os.mkfifo(lock) if plant == "fifo" else lock.symlink_to(target)
    result = collector.run(process=plant == "fifo", timeout=20)  # a blocked run would time out
    assert result.returncode == 1, result.log[-800:]
    (line,) = result.stderr.splitlines()
    refusal = "is a FIFO, not a regular file" if plant == "fifo" else "is a symbolic link; refusing to follow it"
    assert f"{lock} {refusal}" in line, line
    assert collector.health()["status"] == "failed"
    assert not (collector.data_dir / "events").exists(), "no event written, so no copy of one"
    assert target.read_text() == "untouched"
    lock.unlink()
    assert collector.run().returncode == 0
    assert_archive_complete(collector.data_dir, snapshot_bodies[:1], copies_allowed=False)


@pytest.mark.parametrize("plant", ["fifo", pytest.param("symlink", marks=pytest.mark.slow),
                                   pytest.param("folder", marks=pytest.mark.slow)])  # a process each
def test_a_log_file_that_is_not_a_regular_file_is_refused_with_one_line_and_exit_2(collector, fake_api, tmp_path,
                                                                                  plant):
    log_file = collector.log_dir / "polisen-collector.log"
    collector.log_dir.mkdir()
    target = tmp_path / "elsewhere.log"
    target.write_text("untouched")
    {"fifo": os.mkfifo, "folder": os.mkdir, "symlink": lambda path: path.symlink_to(target)}[plant](log_file)
    # A process of its own (main blocked opening the FIFO, before its lock), and not
    # collector.run, which reads the log back.
    result = subprocess.run(collector.command(), cwd=collector.workdir, env=collector.env, capture_output=True,
                            text=True, timeout=20)
    kind = {"fifo": "is a FIFO, not a regular file", "folder": "is a folder, not a regular file",
            "symlink": "is a symbolic link; refusing to follow it"}[plant]
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [f"configuration error: {log_file} {kind}; refusing to log to it "
                                          "(remove it, the run creates the log itself)"]
    assert fake_api.requests == [] and target.read_text() == "untouched"


def test_a_folder_at_a_rotated_log_name_skips_rotation_with_one_warning(collector, fake_api):
    collector.log_dir.mkdir()
    (collector.log_dir / "polisen-collector.log.1").mkdir()
    small = {"LOG_MAX_BYTES": "100", "LOG_BACKUP_COUNT": "3"}
    for _ in range(2):
        result = collector.run(env=small)
        assert (result.returncode, result.stdout, result.stderr) == (0, "", ""), result.stderr
    log_text = (collector.log_dir / "polisen-collector.log").read_text()
    assert log_text.count("log rotation skipped:") == 2, "once a run, not once a line"
    assert f"{collector.log_dir / 'polisen-collector.log.1'} is a folder; the log grows past LOG_MAX_BYTES" in log_text
    (collector.log_dir / "polisen-collector.log.1").rmdir()
    assert collector.run(env=small).returncode == 0
    assert (collector.log_dir / "polisen-collector.log.1").is_file(), "rotation resumes once the folder is gone"


# -- the rate ledger (row 11) ------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["garbage", '{"requests": {"a": 1}}', "[" * 100_000])
def test_an_unreadable_ledger_counts_as_a_request_made_now(text, caplog):
    from polisen_collector.api.rate_limit import decode_ledger

    assert decode_ledger(text.encode(), 1_780_000_000.0) == ([1_780_000_000.0], 0.0)
    assert "api-requests.json is unreadable" in caplog.text


# -- planted metrics files (row 15) ------------------------------------------------------------------


def test_metrics_files_with_absurd_numbers_or_deep_nesting_are_skipped_and_listed(tmp_path, capsys, monkeypatch):
    """Before issue 22, analyze_metrics.py died on OverflowError (1e308) and RecursionError (`[` x 100,000)."""
    from conftest import clear_settings
    from test_clock_jumps import run_file

    from polisen_collector.cli import analyze_metrics

    clear_settings(monkeypatch)
    good = [run_file(tmp_path, T0 + timedelta(hours=n), new_events=n) for n in range(1, 4)]
    template = json.loads((tmp_path / good[0]).read_text())
    planted = {
        "run-20260521T000000.000Z-000a01.json": json.dumps({**template, "timings": {"total": 1e308}}),
        "run-20260521T000000.000Z-000a02.json": json.dumps({**template, "counts": {"new_events": -1}}),
        "run-20260521T000000.000Z-000a03.json": json.dumps({**template, "timings": {"total": float("nan")}}),
        "run-20260521T000000.000Z-000a04.json": "[" * 100_000,
        "run-20260521T000000.000Z-000a05.json": json.dumps({**template, "errors": []}) + " " * (2 << 20),
    }
    for name, text in planted.items():
        (tmp_path / name).write_text(text)
    assert analyze_metrics.main(["--metrics-dir", str(tmp_path), "--env-file", os.devnull]) == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "runs" in out
    assert err.splitlines()[0] == "warning: skipped 5 unreadable, partial or future-dated metrics files:"
    reasons = dict(line.strip().split(": ", 1) for line in err.splitlines()[1:])
    assert reasons == {
        "run-20260521T000000.000Z-000a01.json": "its timing 'total' is 1e+308, not a number from 0 to 1e+15",
        "run-20260521T000000.000Z-000a02.json": "its count 'new_events' is -1, not a number from 0 to 1e+15",
        "run-20260521T000000.000Z-000a03.json": "not valid JSON (NaN is not a JSON number)",
        "run-20260521T000000.000Z-000a04.json": "not valid JSON (nested too deeply)",
        "run-20260521T000000.000Z-000a05.json": "larger than 1048576 bytes, not a run's metrics",
    }


# -- the other records read back from the store: the class, not the instance -------------------------


NOW = T0 + timedelta(days=2)


def stored(document) -> StoredObject:
    return StoredObject(json.dumps(document).encode(), "e")


def test_the_audit_budget_reads_nan_or_future_request_times_as_spent_now():
    """The same bypass as the ledger's: a `nan` never counted against the audit's daily budget;
    a time a year ahead (the clock was wrong when it was spent) counted for a year."""
    from polisen_collector.recovery.audit import read_progress, spent_today

    document = {"format": 1, "recent": {}, "spent": [float("nan"), "nan", NOW.timestamp() - 60,
                                                     (NOW + timedelta(days=365)).timestamp()]}
    progress = read_progress(stored(document), NOW)
    assert spent_today(progress, NOW) == 4
    assert spent_today(progress, NOW + timedelta(hours=25)) == 0, "spent now, so counted for a day only"


def test_an_audit_time_without_its_offset_is_unreadable_not_a_crash_of_every_tick(caplog):
    """Before issue 22 the tools read a naive time and every tick died comparing it with the clock (TypeError)."""
    from polisen_collector.recovery.audit import AuditProgress, Budget, plan_tick, read_progress

    yesterday = (NOW - timedelta(days=1)).date().isoformat()
    for document in ({"format": 1, "recent": {yesterday: "2026-05-21T06:00:00"}, "spent": []},
                     {"format": 1, "recent": {}, "spent": [], "last_full_sweep": "2026-05-01T06:00:00"},
                     {"format": 1, "recent": {}, "spent": [], "cursor": "20260501"},
                     {"format": 1, "recent": {}, "spent": [], "absent": {yesterday: {"650297": "2026-05-21T06:00:00"}}},
                     {"format": 1, "recent": {}, "spent": [], "absent": {yesterday: {"x": "2026-05-21T06:00:00+00:00"}}}):
        progress = read_progress(stored(document), NOW)
        assert progress == AuditProgress(), document
        assert plan_tick(progress, [], NOW, Budget(200, 4, 96))
    assert "metadata/audit.json is unreadable" in caplog.text


HINTS = {"format": 1, "absent": {"650297": ["2026-05-20", "2026-05-20T06:00:00+00:00", 1]},
         "returned": {}, "withdrawn": {"650100": "2026-05-19"}}


@pytest.mark.parametrize("change", [
    {"absent": {"650297": ["2026-05-20", "garbage", 1]}},  # the audit's confirmation of that day died on it
    {"absent": {"650297": ["2026-05-20", "2026-05-20T06:00:00", 1]}},  # a naive suspected_at: an unreadable record
    {"absent": {"650297": ["2026-05-20", "2026-05-20T06:00:00+00:00", 1.5]}},
    {"absent": {"650297": ["20260520", "2026-05-20T06:00:00+00:00", 1]}},  # compares wrongly as text
    {"returned": {"0650297": ["2026-05-20", "2026-05-20T06:00:00+00:00"]}},
    {"withdrawn": {"650100": 20260519}},
    {"format": 2},
])
def test_withdrawal_hints_are_checked_like_settings(change, caplog):
    from polisen_collector.recovery.withdrawals import Hints, read_hints

    assert read_hints(stored(HINTS)).withdrawn == {650100: "2026-05-19"}
    assert read_hints(stored({**HINTS, **change})) == Hints()
    assert "withdrawal-hints.json is unreadable" in caplog.text


def test_a_record_of_another_format_is_unreadable(caplog):
    """As the page queue's (also seen in issue 22): a record whose format this version does not
    write is not read as one of its own."""
    from polisen_collector.api.rate_limit import decode_ledger
    from polisen_collector.recovery import audit, backfill

    assert decode_ledger(json.dumps({"format": 7, "not_before": 0, "requests": [1.0]}).encode(), 5.0) == ([5.0], 0.0)
    assert audit.read_progress(stored({"format": 7, "recent": {}, "spent": [1.0]}), NOW) == audit.AuditProgress()
    assert backfill.read_progress(stored({"format": 7, "pending": {"2026-05-20": 0}})).pending == {}
    for name in ("api-requests.json", "metadata/audit.json", "metadata/backfill.json"):
        assert f"{name} is unreadable (not " in caplog.text, name


def test_an_api_cache_with_a_line_break_in_a_validator_is_read_as_missing(collector, fake_api):
    """Before issue 22 the tools sent the ETag as it was read back: every run failed on the header, for ever, as
    only a successful run rewrites the cache."""
    assert collector.run().returncode == 0
    cache = collector.log_dir / "api-cache.json"
    document = json.loads(cache.read_text())
    cache.write_text(json.dumps({**document, "etag": '"x"\r\nX-Injected: 1'}))
    fake_api.requests.clear()
    result = collector.run()
    assert result.returncode == 0, result.stderr
    assert [r.status for r in fake_api.requests] == [200], "a full fetch instead of a conditional one"
    assert json.loads(cache.read_text()) == document


@pytest.mark.parametrize("hint", ["2026-05-20T06:00:00", "in-a-year"])
def test_a_page_hint_without_offset_or_far_ahead_sends_the_run_to_the_page_step(collector, fake_api, hint):
    """Before issue 22 the tools died comparing a naive hint with the clock (TypeError: exit 1 on every run that found
    nothing new), and skipped the page step until a hint written by a clock a year ahead."""
    from datetime import UTC, datetime

    pages = {"PAGES_PER_RUN": "1"}
    assert collector.run(env=pages).returncode == 0
    path = collector.log_dir / "pages-next-due"
    path.write_text((datetime.now(UTC) + timedelta(days=365)).isoformat() if hint == "in-a-year" else hint)
    result = collector.run(env=pages)  # the API answers 304: only a due hint sends the run to the page step
    assert (result.returncode, result.stderr) == (0, ""), result.log[-1500:]
    assert path.read_text() != hint and "in-a-year" not in path.read_text(), "the page step ran and wrote it anew"
    assert datetime.fromisoformat(path.read_text()) < datetime.now(UTC) + timedelta(days=2)


def test_a_textfile_counter_of_nan_or_below_zero_restarts_the_counters(tmp_path, caplog):
    """Before issue 22 the tools carried a `NaN` counter on (NaN + 1 stays NaN): the run counters were lost for good."""
    from polisen_collector.metrics.prometheus import write_prometheus_textfile

    metrics = RunMetrics("a", now=lambda: T0)
    metrics.finish("success")
    path = write_prometheus_textfile(tmp_path, metrics)
    clean = path.read_text()
    line = 'polisen_collector_runs_total{outcome="success"} 1.0'
    for value in ("NaN", "+Inf", "-3.0"):
        path.write_text(clean.replace(line, line.replace("1.0", value)))
        write_prometheus_textfile(tmp_path, metrics)
        assert line in path.read_text(), value
        assert "counters restart" in caplog.text
        caplog.clear()


@pytest.mark.parametrize("name", ["metadata/backfill.json", "metadata/audit.json", "withdrawal hints"])
def test_deeply_nested_progress_records_are_unreadable_not_a_crash(tmp_path, name, caplog):
    from polisen_collector.recovery import audit, backfill, withdrawals

    reader = {"metadata/backfill.json": backfill.read_progress, "metadata/audit.json": audit.read_progress,
              "withdrawal hints": withdrawals.read_hints}[name]
    assert reader(StoredObject(b"[" * 100_000, "e")) is not None
    assert "is unreadable" in caplog.text


def test_a_deeply_nested_archive_line_is_a_bad_line(tmp_path):
    from polisen_collector.archive.layout import iter_numbered_lines

    storage = LocalStorage(tmp_path)
    storage.put("events/2026/05/20/events-x.jsonl", b'{"id": 1}\n' + b"[" * 100_000 + b"\n")
    lines = list(iter_numbered_lines(storage, "events/2026/05/20/events-x.jsonl"))
    assert lines[0] == (1, {"id": 1}) and "nested too deeply" in lines[1][1].reason


def test_a_bomb_or_a_deep_nest_among_the_stored_pages_is_unreadable_not_a_crash(tmp_path):
    from polisen_collector.pages.store import MAX_STORED_PAGE_BYTES, decode_parsed, read_page_html

    storage = LocalStorage(tmp_path)
    name = "pages/2026/05/20/650297-20260520T060000Z-0123456789abcdef.html.gz"
    storage.put(name, gzip_bomb(MAX_STORED_PAGE_BYTES + (1 << 20)))
    assert read_page_html(storage, name) is None
    storage.put(name, gzip.compress(b"<html>whole</html>"))
    assert read_page_html(storage, name) == b"<html>whole</html>"
    assert decode_parsed(b"[" * 100_000) is None


def test_a_local_copy_whose_header_is_nested_without_end_is_not_used(tmp_path):
    """The state's copy in LOG_DIR (kept for an OCI store): main died on its RecursionError on every run."""
    from polisen_collector.storage.local_copy import LocalCopy

    store = LocalStorage(tmp_path / "store")
    copy = tmp_path / "logs" / "state-cache"
    kept = LocalCopy(store, {"metadata/last_seen.json": copy})
    kept.put("metadata/last_seen.json", b"v1")
    copy.write_bytes(b"[" * 100_000 + b"\nv1")
    assert kept.get("metadata/last_seen.json") == store.get("metadata/last_seen.json"), "read from the store"


def test_a_last_success_that_is_no_time_is_not_carried_on_by_a_failed_run(tmp_path):
    """Before issue 22 the tools carried any text on: health_check then said UNKNOWN (its last_success unreadable) on
    every failed run, instead of the failure and its streak."""
    from polisen_collector.health.file import write_health
    from polisen_collector.health.ranges import PluginRange
    from polisen_collector.health.verdict import CRITICAL, assess

    path = tmp_path / "health.json"
    path.write_text(json.dumps({"last_run": T0.isoformat(), "status": "failed", "events_processed": 0,
                                "execution_time": 1.0, "last_success": "garbage", "consecutive_failures": 4}))
    write_health(path, finished_at=T0, success=False, events_processed=0, execution_time=1.0)
    health = json.loads(path.read_text())
    assert (health["last_success"], health["consecutive_failures"]) == (None, 5)
    verdict = assess(path, warning=PluginRange.parse("60"), critical=PluginRange.parse("120"), now=T0)
    assert verdict.state == CRITICAL and "5 consecutive failures" in verdict.message, verdict.message


def test_the_host_s_records_are_read_no_further_than_their_bound(collector, fake_api):
    """The rate ledger grown to 20 MB (garbage, a wrong file copied in) was read whole, up to the
    archive's 256 MiB: now a run refuses it past 16 MiB, one line, and goes on once it is removed."""
    collector.log_dir.mkdir()
    ledger = collector.log_dir / "api-requests.json"
    ledger.write_bytes(b" " * (20 << 20) + b'{"format": 1, "not_before": 0, "requests": []}')
    result = collector.run(env={"API_RATE_LIMIT": "on"})
    assert result.returncode == 1 and "api-requests.json" in result.stderr and "larger than 16 MiB" in result.stderr
    ledger.unlink()
    assert collector.run(env={"API_RATE_LIMIT": "on"}).returncode == 0

"""The collector, as a real process, leaves a health file after every run and pings the dead-man's switch."""

from __future__ import annotations

import json
import socket
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from polisen_collector.health.ping import ping, ping_url
from polisen_collector.run.lock import RunLock


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PingServer:
    """A local stand-in for healthchecks.io that logs the paths it was sent."""

    def __init__(self, status: int = 200) -> None:
        self.paths: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.paths.append(self.path)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"OK")

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/ping/0b5e-uuid"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def ping_server():
    server = PingServer()
    yield server
    server.stop()


def test_success_then_each_kind_of_failure_is_recorded(collector, fake_api):
    assert collector.run().returncode == 0
    first = collector.health()
    counts = collector.last_metrics()["counts"]
    assert first["events_processed"] == counts["new_events"] + counts["updated_events"] > 400
    assert (first["status"], first["error"], first["consecutive_failures"]) == ("success", None, 0)
    assert first["last_success"] == first["last_run"]
    assert datetime.fromisoformat(first["last_run"]).utcoffset() is not None
    assert first["run_id"] == collector.last_metrics()["run_id"] and first["version"] and first["host"]

    fake_api.add_faults(*["status:503"] * 10)
    api_503 = collector.run(env={"API_MAX_RETRIES": "1"})
    assert api_503.returncode == 1
    second = collector.health()
    assert (second["status"], second["consecutive_failures"], second["last_success"], second["events_processed"]) == (
        "failed", 1, first["last_success"], 0)
    assert second["error"]["type"] and "503" in second["error"]["message"]
    fake_api.state.faults.clear()

    api_url = f"http://127.0.0.1:{closed_port()}/api/events"
    down = collector.run(env={"POLISEN_API_URL": api_url, "API_MAX_RETRIES": "0"})
    assert down.returncode == 1
    third = collector.health()
    assert (third["status"], third["consecutive_failures"], third["last_success"]) == (
        "failed", 2, first["last_success"])
    assert "Connection refused" in third["error"]["message"], third["error"]

    bad = collector.run(env={"API_READ_TIMEOUT": "soon"})
    assert bad.returncode == 2
    fourth = collector.health()
    assert (fourth["status"], fourth["consecutive_failures"], fourth["last_success"], fourth["error"]) == (
        "failed", 3, first["last_success"],
        {"type": "ConfigError",
         "message": "API_READ_TIMEOUT='soon' is invalid: must be a number of seconds above 0 and at most 300"})

    fake_api.advance()
    assert collector.run().returncode == 0
    assert (collector.health()["status"], collector.health()["consecutive_failures"]) == ("success", 0)


def test_storage_down_is_recorded(collector):
    collector.data_dir.mkdir()
    (collector.data_dir / "events").write_text("a file where the events folder should be")
    result = collector.run()
    assert result.returncode == 1
    health = collector.health()
    assert (health["status"], health["error"]["type"], health["consecutive_failures"]) == ("failed", "StorageError", 1)
    assert "cannot write events/" in health["error"]["message"]


def test_bad_configuration_is_recorded_in_health_file_wherever_it_is(collector, tmp_path):
    elsewhere = tmp_path / "monitoring" / "collector-health.json"
    result = collector.run(env={"STORAGE": "s3", "HEALTH_FILE": str(elsewhere)})
    assert result.returncode == 2
    assert result.stderr == "configuration error: STORAGE='s3' is invalid: must be one of local, oci\n"
    health = json.loads(elsewhere.read_text())
    assert (health["status"], health["error"]["type"], health["events_processed"]) == ("failed", "ConfigError", 0)
    assert not (collector.log_dir / "health.json").exists()

    (tmp_path / "not-a-dir").write_text("")
    unwritable = collector.run(env={"LOG_DIR": str(tmp_path / "not-a-dir")})
    assert unwritable.returncode == 2
    [line] = unwritable.stderr.splitlines()
    assert line == (f"configuration error: LOG_DIR='{tmp_path / 'not-a-dir'}' is a file, not a folder "
                    f"(not recorded in the health file: {tmp_path / 'not-a-dir'} is a file)")


def test_a_run_that_finds_the_lock_taken_leaves_the_health_file_alone(collector):
    assert collector.run().returncode == 0
    before = (collector.log_dir / "health.json").read_bytes()
    with RunLock(collector.log_dir / "collect_events.lock"):
        assert collector.run().returncode == 3
    assert (collector.log_dir / "health.json").read_bytes() == before


def test_dead_mans_switch_pinged_on_success_and_fail(collector, fake_api, ping_server):
    env = {"HEALTHCHECK_PING_URL": ping_server.url}
    assert collector.run(env=env).returncode == 0
    fake_api.add_faults(*["status:500"] * 10)
    assert collector.run(env={**env, "API_MAX_RETRIES": "0"}).returncode == 1
    fake_api.state.faults.clear()
    assert collector.run(env={**env, "API_CONNECT_TIMEOUT": "0"}).returncode == 2
    assert collector.run().returncode == 0
    assert ping_server.paths == ["/ping/0b5e-uuid", "/ping/0b5e-uuid/fail", "/ping/0b5e-uuid/fail"]


def test_a_dead_ping_url_does_not_fail_the_run(collector):
    port = closed_port()
    result = collector.run(env={"HEALTHCHECK_PING_URL": f"http://127.0.0.1:{port}/ping/secret-uuid"})
    assert result.returncode == 0
    assert f"dead-man's switch ping http://127.0.0.1:{port}/... failed (ConnectionError): " in result.log
    assert "secret-uuid" not in result.log + result.stdout + result.stderr
    assert collector.health()["status"] == "success"


def test_ping_reports_a_refusing_monitor_and_keeps_query_strings(caplog):
    server = PingServer(status=500)
    try:
        assert ping(server.url, success=True) is False
        assert ping(server.url + "?msg=x", success=False) is False
    finally:
        server.stop()
    assert server.paths == ["/ping/0b5e-uuid", "/ping/0b5e-uuid/fail?msg=x"]
    assert [r.getMessage() for r in caplog.records] == [
        f"dead-man's switch ping http://127.0.0.1:{server.httpd.server_address[1]}/... answered HTTP 500"] * 2
    assert ping_url("https://hc-ping.com/uuid/", success=False) == "https://hc-ping.com/uuid/fail"


def test_a_ping_that_trickles_in_or_leaves_the_monitor_is_cut_at_its_deadline(fake_api, caplog):
    """Before issue 22 the tools read a ping's answer with a read timeout per byte and followed 30 redirects anywhere:
    a monitor trickling its answer held the run (and its lock) for ever."""
    import time

    fake_api.add_faults("trickle-headers:0.05", "redirect:https://elsewhere.invalid/ping")
    started = time.monotonic()
    assert ping(fake_api.url, success=True, timeout=(0.2, 0.2)) is False
    assert time.monotonic() - started < 2, "cut at 0.6 s"
    assert ping(fake_api.url, success=True) is False
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0].endswith("failed (Timeout): no whole answer within 0.6 s (its connect timeout + 2 x its "
                                "read timeout)"), messages
    assert "it leaves the site" in messages[1] and len(fake_api.requests) == 2, messages

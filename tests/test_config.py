"""The settings as the tools read them: each parses to the type its Settings field declares."""

from __future__ import annotations

import contextlib
import typing
from pathlib import Path

import pytest

from polisen_collector.config import SETTINGS, ConfigError, Settings, load_some

FIELD_TYPES = typing.get_type_hints(Settings)
SAMPLES = ("", "1", "0.5", "1000", "on", "off", "local", "oci", "vault", "config_file", "DEBUG", "x", "https://127.0.0.1:8080")


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda setting: setting.env)
def test_every_setting_parses_to_the_type_of_its_field(setting):
    """Settings(**values) is built from parsers typed Any: this is where their types are checked."""
    declared = FIELD_TYPES[setting.field]
    parsed = [setting.parse(setting.default)]
    for sample in SAMPLES:
        with contextlib.suppress(ValueError):
            parsed.append(setting.parse(sample))
    assert len(parsed) > 1, f"no sample parses for {setting.env}: add one"
    for value in parsed:
        assert isinstance(value, declared), f"{setting.env} parses to {value!r}, its field is {declared}"


def test_load_some_keeps_what_parses_and_names_what_does_not(tmp_path):
    environ = {"LOG_DIR": str(tmp_path), "HEALTH_FILE": "/x/health.json", "HEALTHCHECK_PING_URL": "ftp://no",
               "METRICS_DIR": ""}
    some, bad = load_some(("log_dir", "health_file", "healthcheck_ping_url"), environ=environ, env_file=None)
    assert bad == {"healthcheck_ping_url"}
    assert (some.log_dir, some.health_path, some.healthcheck_ping_url) == (tmp_path, Path("/x/health.json"), None)
    assert some.metrics_dir == Path("./metrics")  # not named: its default, though its value is bad


def test_load_some_reads_an_env_file_that_is_not_there_as_an_error(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_some(("log_dir",), environ={}, env_file=tmp_path / "missing.env")

"""Settings: environment variables (and an optional `.env` file), overridden by CLI flags.

Every setting is declared once in SETTINGS with its default and how it is checked, so a
bad value is reported as one line naming the variable before any work is done.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import stat
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from polisen_collector.messages import one_line
from polisen_collector.urls import http_url_parts, is_loopback_host, origin_of

DEFAULT_API_URL = "https://polisen.se/api/events"


class ConfigError(Exception):
    """A setting is wrong; str() is one line that names it."""


def _url(value: str) -> str:
    parts = http_url_parts(value)
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ValueError("must use https (plain http is allowed only for loopback hosts)")
    return value


def _optional_url(value: str) -> str | None:
    return _url(value) if value else None


def _any_url(value: str) -> str | None:
    """A URL of any scheme http(s), for endpoints the operator controls."""
    if not value:
        return None
    http_url_parts(value)
    return value


def _seconds(low: float, high: float, *, above_low: bool = False) -> Callable[[str], float]:
    """A finite number of seconds within [low, high] (or (low, high]): no inf, nan or 1e12."""
    allowed = f"a number of seconds {'above' if above_low else 'from'} {low:g} {'and at most' if above_low else 'to'} {high:g}"

    def parse(value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"must be {allowed}") from None
        if not math.isfinite(number) or number > high or number < low or (above_low and number == low):
            raise ValueError(f"must be {allowed}")
        return number

    return parse


def _whole(low: int, high: int) -> Callable[[str], int]:
    """A whole number within [low, high]: nothing that makes a date or a sleep overflow."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise ValueError(f"must be a whole number from {low} to {high}") from None
        if not low <= number <= high:
            raise ValueError(f"must be a whole number from {low} to {high}")
        return number

    return parse


def _folder(value: str) -> Path:
    """A folder; empty would silently mean the working directory."""
    if not value.strip():
        raise ValueError("must not be empty (name a folder; ./ for the working directory)")
    if "\0" in value:
        raise ValueError("must not contain a NUL character")
    return Path(value)


def _contact(value: str) -> str:
    """Goes into the User-Agent header: printable ASCII only, no CR/LF."""
    text = value.strip()
    if any(not " " <= char <= "~" for char in text):
        raise ValueError("must be printable ASCII (no line breaks or accented letters): it goes into an HTTP header")
    return text


AUDIT_MAX_PER_DAY = 480
"""A third of the API's 1440 requests a day: the audit never crowds out the collection."""


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        lowered = value.strip().lower()
        if lowered not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return lowered

    return parse


def _on_off(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("on", "true", "1", "yes"):
        return True
    if lowered in ("off", "false", "0", "no"):
        return False
    raise ValueError("must be on or off")


def _log_level(value: str) -> str:
    level = value.strip().upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return level


def _text(value: str) -> str:
    return value.strip()


def _optional_text(value: str) -> str | None:
    return value.strip() or None


@dataclass(frozen=True)
class Setting:
    env: str
    field: str
    default: str
    parse: Callable[[str], Any]
    help: str


SETTINGS: list[Setting] = [
    Setting("POLISEN_API_URL", "api_url", DEFAULT_API_URL, _url,
            "The events endpoint. http:// only for loopback hosts."),
    Setting("API_CONTACT_EMAIL", "contact_email", "", _contact,
            "Contact put in the User-Agent, as the API's usage rules ask."),
    Setting("API_CONNECT_TIMEOUT", "connect_timeout", "5", _seconds(0, 300, above_low=True),
            "Seconds to wait for a connection (at most 300)."),
    Setting("API_READ_TIMEOUT", "read_timeout", "30", _seconds(0, 300, above_low=True),
            "Seconds to wait for data on an open connection (at most 300). A whole answer must arrive "
            "within API_CONNECT_TIMEOUT + 2 x API_READ_TIMEOUT."),
    Setting("API_MAX_RETRIES", "max_retries", "3", _whole(0, 10),
            "Retries of a failed request (connection error, timeout, 429, 5xx, bad body), 0 to 10."),
    Setting("API_BACKOFF_FACTOR", "backoff_factor", "1", _seconds(0, 60),
            "Backoff base in seconds (0 to 60): waits of factor x 1, 2, 4 ..., each at most 120 s."),
    Setting("API_RETRY_AFTER_MAX", "retry_after_max", "120", _seconds(0, 3600),
            "Longest Retry-After (seconds, at most 3600) slept within a run; a longer one is cut to this."),
    Setting("API_MAX_BODY_BYTES", "max_body_bytes", "20000000", _whole(1, 1_000_000_000),
            "Largest decompressed response accepted (at most 1000000000)."),
    Setting("API_RATE_LIMIT", "rate_limit", "on", _on_off,
            "Enforce the API's usage rules across runs; off only for loopback hosts."),
    Setting("STORAGE", "storage", "local", _choice("local", "oci"),
            "Where the archive lives: local or oci."),
    Setting("DATA_DIR", "data_dir", "./data", _folder,
            "Root folder of the local archive (STORAGE=local)."),
    Setting("STATE_RETENTION_DAYS", "state_retention_days", "30", _whole(1, 3650),
            "Days of event ids the state remembers, counted back from the newest event (1 to 3650)."),
    Setting("OCI_NAMESPACE", "oci_namespace", "", _optional_text,
            "Object Storage namespace; looked up when unset."),
    Setting("OCI_BUCKET_NAME", "oci_bucket", "polisen-events-collector", _text,
            "Bucket of the archive."),
    Setting("OCI_REGION", "oci_region", "eu-stockholm-1", _text,
            "OCI region."),
    Setting("OCI_COMPARTMENT_ID", "oci_compartment_id", "", _optional_text,
            "Compartment OCID (ocid1.compartment. or the tenancy OCID for the root compartment) "
            "where OCI_VAULT_NAME is looked up; needed only for that lookup."),
    Setting("OCI_ENDPOINT", "oci_endpoint", "", _optional_url,
            "Object Storage endpoint override (private endpoints, tests); https, http only for loopback."),
    Setting("OCI_AUTH", "oci_auth", "config_file",
            _choice("config_file", "instance_principal", "resource_principal", "vault"),
            "How to authenticate to OCI."),
    Setting("OCI_CONFIG_FILE", "oci_config_file", "", _optional_text,
            "OCI config file (the SDK's default ~/.oci/config when unset)."),
    Setting("OCI_PROFILE", "oci_profile", "DEFAULT", _text,
            "Profile in the OCI config file."),
    Setting("OCI_VAULT_ID", "oci_vault_id", "", _optional_text,
            "Vault OCID holding the API-key secrets (OCI_AUTH=vault); wins over OCI_VAULT_NAME and "
            "saves its lookup."),
    Setting("OCI_VAULT_NAME", "oci_vault_name", "", _optional_text,
            "Display name of that vault, used when OCI_VAULT_ID is unset: the ACTIVE vault of this name in "
            "OCI_COMPARTMENT_ID, looked up once per run with ListVaults (a round trip that OCI_VAULT_ID saves)."),
    Setting("OCI_VAULT_AUTH", "oci_vault_auth", "config_file", _choice("config_file", "instance_principal"),
            "How OCI_AUTH=vault reaches the vault: a minimal config file (OCI_CONFIG_FILE, "
            "OCI_PROFILE) or the instance principal."),
    Setting("OCI_VAULT_SECRET_PREFIX", "oci_vault_secret_prefix", "polisen-collector-", _text,
            "Prefix of the vault secret names: <prefix>user-ocid, tenancy-ocid, fingerprint, "
            "private-key and the optional region."),
    Setting("OCI_SECRETS_ENDPOINT", "oci_secrets_endpoint", "", _optional_url,
            "Vault Secrets endpoint override (private endpoints, tests)."),
    Setting("OCI_KMS_ENDPOINT", "oci_kms_endpoint", "", _optional_url,
            "KMS vault management endpoint override for the OCI_VAULT_NAME lookup (private endpoints, tests)."),
    Setting("OCI_RETRY_ATTEMPTS", "oci_retry_attempts", "5", _whole(1, 20),
            "Attempts of an OCI call that fails with a timeout, connection error, 429 or 5xx (1 = no retry, at most 20)."),
    Setting("OCI_RETRY_BASE_SECONDS", "oci_retry_base_seconds", "1", _seconds(0, 60),
            "Backoff base of OCI retries: random waits up to base x 2, 4, 8 ... (at most 30 s)."),
    Setting("LOG_DIR", "log_dir", "./logs", _folder,
            "Folder of the rotating log, the lock and the API cache."),
    Setting("LOG_LEVEL", "log_level", "INFO", _log_level,
            "DEBUG, INFO, WARNING, ERROR or CRITICAL."),
    Setting("LOG_MAX_BYTES", "log_max_bytes", "5000000", _whole(100, 10_000_000_000),
            "Size at which the log file rotates (100 to 10000000000)."),
    Setting("LOG_BACKUP_COUNT", "log_backup_count", "5", _whole(0, 1000),
            "Rotated log files kept (0 to 1000)."),
    Setting("METRICS_DIR", "metrics_dir", "./metrics", _folder,
            "Folder of the per-run metrics JSON files."),
    Setting("METRICS_RETENTION_DAYS", "metrics_retention_days", "90", _whole(1, 3650),
            "Metrics files older than this, counted back from the newest one, are deleted (a pause "
            "between runs counts at most a week, so a clock jump deletes no history; 1 to 3650)."),
    Setting("PROMETHEUS_TEXTFILE_DIR", "prometheus_textfile_dir", "", _optional_text,
            "When set, each job writes its node_exporter textfile there: polisen_collector.prom, "
            "polisen_collector_audit.prom, polisen_collector_compaction.prom."),
    Setting("HEALTH_FILE", "health_file", "", _optional_text,
            "Health JSON written by every run (default: LOG_DIR/health.json)."),
    Setting("HEALTHCHECK_PING_URL", "healthcheck_ping_url", "", _any_url,
            "Dead-man's switch URL pinged on success, <url>/fail on failure."),
    Setting("RUN_INTERVAL_MINUTES", "run_interval_minutes", "30", _whole(1, 1440),
            "How often cron runs the collector (gap detection, analysis), 1 to 1440."),
    Setting("BACKFILL_MAX_DAYS", "backfill_max_days", "31", _whole(0, 3650),
            "Most days a detected gap is backfilled automatically (the newest ones); 0 only reports gaps."),
    Setting("AUDIT_HORIZON_DAYS", "audit_horizon_days", "200", _whole(7, 3660),
            "How far back (days) the rolling audit (`--audit`) re-reads past days, round-robin."),
    Setting("AUDIT_REQUESTS_PER_TICK", "audit_requests_per_tick", "4", _whole(1, 100),
            "Most days one audit tick fetches (deploy/ runs the tick hourly)."),
    Setting("AUDIT_REQUESTS_PER_DAY", "audit_requests_per_day", "96", _whole(1, AUDIT_MAX_PER_DAY),
            "Most audit requests in any 24 hours, however often the tick runs (at most 480, a third of the API's 1440)."),
    Setting("COMPACT_AFTER_DAYS", "compact_after_days", "2", _whole(1, 3650),
            "Days older than this are compacted into one object per day (1 to 3650)."),
    Setting("POLISEN_SITE_URL", "site_url", "", _optional_url,
            "Origin of the event pages (default: the origin of POLISEN_API_URL); http only for loopback."),
    Setting("PAGES_PER_RUN", "pages_per_run", "30", _whole(0, 1000),
            "Most event pages fetched by one run, after its events are stored; the rest wait for the "
            "next runs. 0 turns page fetching off."),
    Setting("PAGE_INTERVAL_SECONDS", "page_interval", "1", _seconds(0, 3600),
            "Seconds between two page requests; at least 1 while API_RATE_LIMIT is on."),
    Setting("PAGE_MAX_BYTES", "page_max_bytes", "2000000", _whole(1000, 100_000_000),
            "Largest decompressed page accepted (real pages are ~50 KB)."),
]
SETTING_NAMES = frozenset(setting.env for setting in SETTINGS)
"""Every environment variable the tools read (for a clean environment: the tests, bench/)."""


@dataclass(frozen=True)
class Settings:
    api_url: str
    contact_email: str
    connect_timeout: float
    read_timeout: float
    max_retries: int
    backoff_factor: float
    retry_after_max: float
    max_body_bytes: int
    rate_limit: bool
    storage: str
    data_dir: Path
    state_retention_days: int
    oci_namespace: str | None
    oci_bucket: str
    oci_region: str
    oci_compartment_id: str | None
    oci_endpoint: str | None
    oci_auth: str
    oci_config_file: str | None
    oci_profile: str
    oci_vault_id: str | None
    oci_vault_name: str | None
    oci_vault_auth: str
    oci_vault_secret_prefix: str
    oci_secrets_endpoint: str | None
    oci_kms_endpoint: str | None
    oci_retry_attempts: int
    oci_retry_base_seconds: float
    log_dir: Path
    log_level: str
    log_max_bytes: int
    log_backup_count: int
    metrics_dir: Path
    metrics_retention_days: int
    prometheus_textfile_dir: str | None
    health_file: str | None
    healthcheck_ping_url: str | None
    run_interval_minutes: int
    backfill_max_days: int
    audit_horizon_days: int
    audit_requests_per_tick: int
    audit_requests_per_day: int
    compact_after_days: int
    site_url: str | None
    pages_per_run: int
    page_interval: float
    page_max_bytes: int

    @property
    def api_is_loopback(self) -> bool:
        return is_loopback_host(urlsplit(self.api_url).hostname)

    @property
    def page_origin(self) -> str:
        """Where event pages are fetched: POLISEN_SITE_URL, else the API URL's scheme and host."""
        return origin_of(self.site_url or self.api_url)

    @property
    def health_path(self) -> Path:
        """HEALTH_FILE when set, else health.json in LOG_DIR (writable without root)."""
        return Path(self.health_file) if self.health_file else self.log_dir / "health.json"


DEFAULT_ENV_FILE = Path(".env")


class EnvFileError(ConfigError):
    """The --env-file named cannot be read: no setting can be, including where to record that."""


ENV_FILE_MAX_BYTES = 1 << 20
"""A .env is a few dozen lines: anything longer (/dev/zero given by mistake) is not one, and is read no further."""


def read_env_file(path: Path) -> dict[str, str]:
    """Values from a `.env` file. The default `.env` may be missing; a file named with --env-file
    must exist, so that a typo in its path never sends a run out on the built-in defaults."""
    if not path.exists():
        if path == DEFAULT_ENV_FILE:
            return {}
        raise EnvFileError(f"--env-file {path}: no such file (use --env-file /dev/null for none)")
    if path.is_dir():
        raise EnvFileError(f"--env-file {path} is a folder, not a file of KEY=VALUE settings")
    try:
        data = _env_file_bytes(path)
    except OSError as error:
        raise EnvFileError(f"{path} cannot be read: {error.strerror or error}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise EnvFileError(f"{path}: line {line} is not UTF-8 text (save the file as UTF-8)") from None
    if not text.strip():  # /dev/null, an empty file: nothing to parse, so no parser is imported
        return {}
    from dotenv import dotenv_values

    with _unparsed_lines() as unparsed:
        values = dotenv_values(stream=io.StringIO(text))
    if unparsed:  # a setting on that line would silently keep its default: refuse, as a bad value is
        more = f" (and {len(unparsed) - 1} more)" if len(unparsed) > 1 else ""
        raise EnvFileError(f"{path}: line {unparsed[0]}{more} cannot be parsed: write KEY=VALUE, quoting a value "
                           "that holds spaces or #")
    return {key: value for key, value in values.items() if value is not None}


def _env_file_bytes(path: Path) -> bytes:
    """The file's bytes, up to ENV_FILE_MAX_BYTES. A pipe that a shell made (`--env-file <(...)`,
    its writer running) is read; a FIFO on the file system is refused (EnvFileError): opening it
    would block until something writes to it, which may be never, and a cron run would hang."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO's open does not wait
    try:
        mode = os.fstat(fd)
        if stat.S_ISFIFO(mode.st_mode) and mode.st_dev != _pipe_device():
            raise EnvFileError(f"{path} is a FIFO (named pipe), not a file of KEY=VALUE settings: reading it would "
                               "wait for a writer that may never come (a pipe such as --env-file <(...) is read)")
        os.set_blocking(fd, True)
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
            size += len(chunk)
            if size > ENV_FILE_MAX_BYTES:
                raise EnvFileError(f"{path} is longer than {ENV_FILE_MAX_BYTES} bytes: not a file of KEY=VALUE settings")
        return b"".join(chunks)
    finally:
        os.close(fd)


def _pipe_device() -> int:
    """The device of anonymous pipes (Linux's pipefs), which a named FIFO is not on."""
    read_end, write_end = os.pipe()
    try:
        return os.fstat(read_end).st_dev
    finally:
        os.close(read_end)
        os.close(write_end)


@contextlib.contextmanager
def _unparsed_lines() -> Iterator[list[object]]:
    """The numbers of the lines python-dotenv could not parse, which it reports as a log WARNING
    (to stderr, beside our own line, were it let through)."""
    lines: list[object] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.args[0] if isinstance(record.args, tuple) and record.args else "?")

    logger = logging.getLogger("dotenv.main")
    handler, propagate = Collect(logging.WARNING), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


# What a tool that only reads the archive needs: the backend and how to reach it.
STORAGE_FIELDS = ("storage", "data_dir", *(setting.field for setting in SETTINGS if setting.field.startswith("oci_")))


def load_settings(
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, str | None] | None = None,
    env_file: Path | None = DEFAULT_ENV_FILE,
    only: Collection[str] | None = None,
) -> Settings:
    """Settings from `.env`, then the environment, then `overrides` (CLI flags by env name).

    With `only` (field names) a tool checks just the settings it reads and the others keep
    their defaults, so a value meant for another tool (LOG_LEVEL, API_RATE_LIMIT) never stops it.
    """
    values = _raw_values(environ, overrides, env_file)
    settings = Settings(**{
        setting.field: _parsed(setting, values.get(setting.env, setting.default)
                               if only is None or setting.field in only else setting.default)
        for setting in SETTINGS
    })
    _check_together(settings)
    return settings


def _raw_values(
    environ: Mapping[str, str] | None, overrides: Mapping[str, str | None] | None, env_file: Path | None
) -> dict[str, str]:
    values: dict[str, str] = {}
    if env_file is not None:
        values.update(read_env_file(env_file))
    values.update(os.environ if environ is None else environ)
    values.update({key: value for key, value in (overrides or {}).items() if value is not None})
    return values


def environment_with(env_file: Path | None) -> dict[str, str]:
    """The `.env`'s values under the process environment's, the file read once: a shell's pipe
    (`--env-file <(...)`) reads empty the second time, so whatever reads the settings again (a
    configuration failure recorded where they say) is handed these."""
    return {**(read_env_file(env_file) if env_file is not None else {}), **os.environ}


def load_some(
    fields: Collection[str],
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, str | None] | None = None,
    env_file: Path | None = DEFAULT_ENV_FILE,
) -> tuple[Settings, frozenset[str]]:
    """The named settings (by field) as far as they parse, and the fields of those that do not.

    A bad one keeps its default, as every setting not named does. For recording a failure when
    the full settings are bad: what still says where to record it. (A tool that reads only a few
    settings and refuses a bad one uses load_settings' `only`.)
    """
    values = _raw_values(environ, overrides, env_file)
    parsed: dict[str, Any] = {}
    bad: set[str] = set()
    for setting in SETTINGS:
        parsed[setting.field] = setting.parse(setting.default)
        if setting.field in fields:
            try:
                parsed[setting.field] = _parsed(setting, values.get(setting.env, setting.default))
            except ConfigError:
                bad.add(setting.field)
    return Settings(**parsed), frozenset(bad)


def _parsed(setting: Setting, raw: str) -> Any:
    """The setting's value, or ConfigError: one line naming the setting and the bad value."""
    try:
        return setting.parse(raw)
    except ValueError as error:
        raise ConfigError(f"{setting.env}={_shown(raw)} is invalid: {error}") from None


def _shown(raw: str) -> str:
    """A bad value in the one-line error, quoted and cut short: it may be anything."""
    return one_line(repr(raw), 80)


def _check_together(settings: Settings) -> None:
    if not settings.rate_limit and not settings.api_is_loopback:
        raise ConfigError(
            "API_RATE_LIMIT=off is refused: the usage rules of the API protect polisen.se; "
            "it is allowed only for a loopback POLISEN_API_URL"
        )
    if not settings.rate_limit and not is_loopback_host(urlsplit(settings.page_origin).hostname):
        raise ConfigError("API_RATE_LIMIT=off is refused: POLISEN_SITE_URL is not a loopback host")
    if settings.rate_limit and settings.page_interval < 1:
        raise ConfigError(
            f"PAGE_INTERVAL_SECONDS={settings.page_interval:g} is refused: at least 1 second between page "
            "requests while API_RATE_LIMIT is on"
        )
    if settings.storage == "oci" and not settings.oci_bucket:
        raise ConfigError("OCI_BUCKET_NAME is empty: STORAGE=oci needs a bucket")


def check_not_a_file(path: Path, setting: str) -> None:
    """ConfigError when the folder a setting names is a file (DATA_DIR=/etc/passwd): said as such,
    not as what the system call says about it ("File exists", "Not a directory")."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{setting}={str(path)!r} is a file, not a folder")


def check_file_path(path: Path, setting: str) -> None:
    """ConfigError when the file a setting names cannot be one: a folder (HEALTH_FILE=/etc), or in a
    folder that is a file. Said before any work, not as a WARNING once the run is done."""
    if path.is_dir():
        raise ConfigError(f"{setting}={str(path)!r} is a folder, not a file")
    if path.parent.exists() and not path.parent.is_dir():
        raise ConfigError(f"{setting}={str(path)!r} cannot be a file: {str(path.parent)!r} is a file, not a folder")


def check_writable_dir(path: Path, setting: str) -> None:
    """Create the folder if needed and prove it is writable, or raise ConfigError."""
    check_not_a_file(path, setting)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise ConfigError(f"{setting}={str(path)!r} is not a writable folder: {error.strerror}") from None



def settings_table() -> str:
    """The README's table of settings, generated so it cannot drift from SETTINGS."""
    rows = ["| Variable | Default | Meaning |", "| --- | --- | --- |"]
    for setting in SETTINGS:
        default = f"`{setting.default}`" if setting.default else "(unset)"
        rows.append(f"| `{setting.env}` | {default} | {setting.help} |")
    return "\n".join(rows)

"""OCI credentials for the bucket: a config file, an instance or resource principal, or OCI Vault.

With OCI_AUTH=vault the API-key credentials (user OCID, tenancy OCID, fingerprint, private
key, optional region) are secrets in a vault (OCI_VAULT_ID, or found by OCI_VAULT_NAME),
fetched by name in parallel and checked before use. They live in memory only: never written
to disk, logged, or put in an error message (errors name the secret, never its value).
Imported only when STORAGE=oci.
"""

from __future__ import annotations

import base64
import binascii
import configparser
import hashlib
import logging
import os
import re
import stat
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import oci
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from polisen_collector.config import ConfigError
from polisen_collector.files import SMALL_FILE_BYTES, read_regular
from polisen_collector.messages import one_line
from polisen_collector.storage.base import StorageError
from polisen_collector.storage.options import OciOptions

FINGERPRINT = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){15}$")
REGION = re.compile(r"^[a-z]+(-[a-z]+)+-\d+$")
MIN_KEY_BITS = 2048
"""OCI accepts API keys of 2048 bits and more; a smaller key would fail at its first signature or at OCI."""
log = logging.getLogger("polisen.oci")


@dataclass(frozen=True)
class VaultSecret:
    field: str
    suffix: str
    label: str
    required: bool
    check: Callable[[str], str | None]


def _ocid(kind: str) -> Callable[[str], str | None]:
    prefix = f"ocid1.{kind}."
    return lambda value: None if value.startswith(prefix) else f"must be an OCID starting with {prefix}"


def _fingerprint(value: str) -> str | None:
    return None if FINGERPRINT.match(value.lower()) else "must be 16 hex pairs separated by colons"


def _region(value: str) -> str | None:
    return None if REGION.match(value) else "must be a region identifier like eu-stockholm-1"


def _private_key(value: str) -> str | None:
    """The text only: the key is loaded once, by the signer (`_api_key_signer`)."""
    if "-----BEGIN" not in value or "PRIVATE KEY-----" not in value:
        return "must be a PEM private key (-----BEGIN PRIVATE KEY-----)"
    return None


VAULT_SECRETS = (
    VaultSecret("user", "user-ocid", "user OCID", True, _ocid("user")),
    VaultSecret("tenancy", "tenancy-ocid", "tenancy OCID", True, _ocid("tenancy")),
    VaultSecret("fingerprint", "fingerprint", "API key fingerprint", True, _fingerprint),
    VaultSecret("key_content", "private-key", "API private key", True, _private_key),
    VaultSecret("region", "region", "region", False, _region),
)


@dataclass(frozen=True)
class OciAuth:
    """What an OCI client needs: a config dict and a signer, plus words for errors."""

    config: dict[str, Any]
    signer: Any
    description: str


# The SDK keeps a region's endpoint as a template with optional parts (`{dualStack?ds.oci.:}`)
# and fills them in per request; for messages, each takes its "otherwise" text.
_TEMPLATE_CHOICE = re.compile(r"\{[^{}?]*\?[^{}:]*:([^{}]*)\}")


def endpoint_of(client: Any) -> str:
    """The endpoint a client calls, as an operator would write it."""
    return _TEMPLATE_CHOICE.sub(r"\1", str(client.base_client.endpoint))


def retry_strategy(options: OciOptions) -> Any:
    """The SDK's own retry (timeouts, connection errors, 429, 5xx), sized by the settings.

    A 412 of a conditional write is never retried: the SDK does not count it transient.
    Clients get no circuit breaker: a run makes a few dozen calls, and a breaker opened by
    parallel retries would hide the real error behind a CircuitBreakerError.
    """
    if options.retry_attempts == 1:
        return oci.retry.NoneRetryStrategy()
    return oci.retry.RetryStrategyBuilder(
        max_attempts=options.retry_attempts,
        retry_base_sleep_time_seconds=options.retry_base_seconds,
        retry_max_wait_between_calls_seconds=30,
        total_elapsed_time_seconds=300,
        service_error_retry_config=oci.retry.retry_checkers.RETRYABLE_STATUSES_AND_CODES,
        service_error_retry_on_any_5xx=True,
        backoff_type=oci.retry.BACKOFF_FULL_JITTER_VALUE,
    ).get_retry_strategy()


def client_settings(options: OciOptions) -> dict[str, Any]:
    """What every OCI client of a job is built with: the retry strategy, no circuit breaker, and
    the timeouts, (connect, read) as requests takes them. The read timeout bounds each wait for a
    byte, not a whole answer; the SDK offers no deadline per request, and its retry strategy's total
    time (retry_strategy) is checked only between attempts (docs/oci.md)."""
    return {"retry_strategy": retry_strategy(options),
            "circuit_breaker_strategy": oci.circuit_breaker.NoCircuitBreakerStrategy(),
            "timeout": (options.connect_timeout, options.read_timeout)}


def oci_credentials(options: OciOptions) -> OciAuth:
    """Credentials for Object Storage as OCI_AUTH says; ConfigError with one line when unusable."""
    if options.auth == "instance_principal":
        return _instance_principal(options.region)
    if options.auth == "resource_principal":
        return _resource_principal(options.region)
    if options.auth == "vault":
        return vault_credentials(options)
    return _config_file(options, options.region)


def _config_file(options: OciOptions, region: str) -> OciAuth:
    location = options.config_file or oci.config.DEFAULT_LOCATION
    where = f"profile {options.profile} of OCI config file {location}"
    try:
        mode = os.stat(os.path.expanduser(location)).st_mode
    except OSError:
        mode = None  # missing: the SDK's ConfigFileNotFound below says so
    if mode is not None and not stat.S_ISREG(mode):  # a FIFO would block the run, and its lock, for ever
        raise ConfigError(f"OCI_CONFIG_FILE={location!r} is not a regular file")
    try:
        config = oci.config.from_file(location, options.profile)
        config["region"] = region
        if isinstance(config.get("fingerprint"), str):  # the console shows it in lower case; the SDK wants that
            config["fingerprint"] = config["fingerprint"].strip().lower()
        oci.config.validate_config(config)
    except oci.exceptions.ConfigFileNotFound:
        raise ConfigError(
            f"OCI_CONFIG_FILE={location!r} does not exist (OCI_AUTH=config_file needs an OCI config file)"
        ) from None
    except oci.exceptions.ProfileNotFound:
        raise ConfigError(f"OCI_PROFILE={options.profile!r} is not a profile in {location}") from None
    except oci.exceptions.InvalidKeyFilePath:
        raise ConfigError(f"the key_file of {where} is missing or not a regular file") from None
    except oci.exceptions.InvalidConfig as error:
        if isinstance(error.errors, dict):
            problems = ", ".join(f"{key} {problem}" for key, problem in sorted(error.errors.items()))
        else:  # e.g. an authentication_type the profile names: the SDK says what is wrong in words
            problems = one_line(error.errors)
        raise ConfigError(f"{where} is invalid: {problems}") from None
    except configparser.Error as error:  # its text quotes the line, which may hold a pass_phrase: not shown
        lines = [number for number, _ in getattr(error, "errors", [])] or [getattr(error, "lineno", None)]
        at = ", ".join(str(number) for number in lines if number)
        raise ConfigError(f"OCI config file {location} cannot be parsed ({type(error).__name__}"
                          f"{f' at line {at}' if at else ''})") from None
    except ValueError as error:  # the SDK's own checks of the values; they quote none
        raise ConfigError(f"{where} is invalid: {one_line(str(error))}") from None
    except OSError as error:
        raise ConfigError(f"cannot read {where}: {error.strerror or type(error).__name__}") from None
    signer = _api_key_signer(config, lambda problem: f"the private key of {where} {problem}")
    return OciAuth(config, signer, f"API key of {where}")


def _api_key_signer(config: dict[str, Any], refuse: Callable[[str], str], mismatch: str | None = None) -> Any:
    """The SDK's signer (`oci.signer.Signer`, which loads and checks the key) for the validated
    config's API key, or ConfigError: the key unreadable, not a 2048-bit RSA private key, or not
    the key of the config's fingerprint. `refuse` words a problem of the key ("is a public key")
    as the line to raise; `mismatch` is the line for a wrong key, when the values must not be
    shown (the vault's); the default names both fingerprints."""
    pass_phrase = config.get("pass_phrase")
    pem = config.get("key_content")
    if pem:
        pem = pem.encode("ascii", "replace")
    else:
        try:
            pem = read_regular(Path(config["key_file"]).expanduser(), SMALL_FILE_BYTES)
        except OSError as error:
            raise ConfigError(refuse(f"cannot be read from its key_file: {error.strerror}")) from None
    try:
        signer = oci.signer.Signer(config["tenancy"], config["user"], config["fingerprint"], None,
                                   pass_phrase=pass_phrase, private_key_content=pem)
    except oci.exceptions.MissingPrivateKeyPassphrase:
        raise ConfigError(refuse("needs a pass_phrase")) from None
    except (oci.exceptions.InvalidPrivateKey, UnsupportedAlgorithm, ValueError, TypeError):
        raise ConfigError(refuse(_why_unreadable(pem, pass_phrase))) from None
    key = signer.private_key
    if not isinstance(key, RSAPrivateKey):
        raise ConfigError(refuse("is not an RSA key (OCI API keys are RSA keys)"))
    if key.key_size < MIN_KEY_BITS:
        raise ConfigError(refuse(f"is a {key.key_size}-bit RSA key: OCI API keys have at least {MIN_KEY_BITS} bits"))
    given, actual = config["fingerprint"], fingerprint_of(key)
    if actual is None:
        log.info("MD5 is not available here (FIPS mode?): the API key is not checked against its fingerprint %s", given)
    elif given != actual:
        raise ConfigError(mismatch or refuse(f"is not the key of its fingerprint {given} (the key's is {actual}): "
                                             "OCI would refuse every request"))
    return signer


def _why_unreadable(pem: bytes, pass_phrase: str | None) -> str:
    """What a key text the SDK could not load is instead; only on that failure, so the run pays nothing."""
    if b"PUBLIC KEY-----" in pem or pem.lstrip().startswith(b"ssh-"):
        return "is a public key, not the private key"
    return ("is not a readable RSA PEM private key, or a damaged one (its numbers do not fit together)"
            + (" (or its pass_phrase is wrong)" if pass_phrase else ""))


def fingerprint_of(key: RSAPrivateKey) -> str | None:
    """The fingerprint OCI shows for this key: MD5 of its public key (DER), as colon-separated hex.

    None where MD5 is not available (an OpenSSL in FIPS mode may refuse it even for this use).
    """
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    try:
        digest = hashlib.new("md5", der, usedforsecurity=False).hexdigest()
    except ValueError:
        return None
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def _principal(kind: str, region: str, make: Callable[[], Any], hint: str) -> OciAuth:
    try:
        signer = make()
    except Exception as error:  # the SDK's principal signers fail in many ways, all of them "unavailable"
        reason = one_line(str(error)) or type(error).__name__
        raise ConfigError(f"OCI_AUTH={kind}: no {kind.replace('_', ' ')} available ({hint}): {reason}") from None
    return OciAuth({"region": region}, signer, kind.replace("_", " "))


def _instance_principal(region: str) -> OciAuth:
    return _principal("instance_principal", region, oci.auth.signers.InstancePrincipalsSecurityTokenSigner,
                      "is this an OCI compute instance in a dynamic group?")


def _resource_principal(region: str) -> OciAuth:
    return _principal("resource_principal", region, oci.auth.signers.get_resource_principals_signer,
                      "is this an OCI Function or job with OCI_RESOURCE_PRINCIPAL_* set?")


def secret_names(options: OciOptions) -> dict[str, str]:
    """The vault secret name of each credential field."""
    return {secret.field: options.vault_secret_prefix + secret.suffix for secret in VAULT_SECRETS}


def vault_credentials(options: OciOptions) -> OciAuth:
    """The API key kept in OCI Vault: every secret fetched by name at once, then checked.

    The vault is OCI_VAULT_ID, or the vault named OCI_VAULT_NAME, found first with one more
    round trip that setting OCI_VAULT_ID saves.
    """
    _check_vault_settings(options)
    if options.vault_auth == "instance_principal":
        reach = _instance_principal(options.region)
    else:
        reach = _config_file(options, options.region)
    vault_id = options.vault_id or find_vault(options, reach)
    client = oci.secrets.SecretsClient(reach.config, signer=reach.signer, service_endpoint=options.secrets_endpoint,
                                       **client_settings(options))
    names = secret_names(options)

    def fetch(secret: VaultSecret) -> str | None:
        return _fetch_secret(client, names[secret.field], vault_id, reach.description)

    with ThreadPoolExecutor(max_workers=len(VAULT_SECRETS)) as pool:
        values = dict(zip((s.field for s in VAULT_SECRETS), pool.map(fetch, VAULT_SECRETS), strict=True))
    problems = []
    for secret in VAULT_SECRETS:
        value = values[secret.field]
        if value is None:
            if secret.required:
                problems.append(f"secret {names[secret.field]!r} ({secret.label}) is missing or not readable")
            continue
        reason = secret.check(value)
        if reason:
            problems.append(f"secret {names[secret.field]!r} ({secret.label}) is malformed: {reason}")
    if problems:
        raise ConfigError(f"OCI Vault {vault_id}: " + "; ".join(problems))
    config = {field: value for field, value in values.items() if value is not None}
    config["fingerprint"] = config["fingerprint"].lower()
    config.setdefault("region", options.region)
    key_secret = f"OCI Vault {vault_id}: secret {names['key_content']!r} (API private key)"
    mismatch = (f"{key_secret} is not the key of secret {names['fingerprint']!r} (API key fingerprint): "
                "OCI would refuse every request")
    signer = _api_key_signer(config, lambda problem: f"{key_secret} is malformed: {problem.removeprefix('is ')}",
                             mismatch)
    return OciAuth(config, signer, f"the API key in vault {vault_id}")


def _check_vault_settings(options: OciOptions) -> None:
    """Which vault, checked before any credential is read or any request made."""
    vault_id, name, compartment = options.vault_id, options.vault_name, options.compartment_id
    if vault_id:
        if not vault_id.startswith("ocid1.vault."):
            raise ConfigError(f"OCI_VAULT_ID={vault_id!r} is invalid: must be an OCID starting with ocid1.vault.")
        return
    if not name:
        raise ConfigError("OCI_VAULT_ID and OCI_VAULT_NAME are both empty: OCI_AUTH=vault needs the vault holding "
                          "the API-key secrets, by OCID or by display name")
    if not compartment:
        raise ConfigError(f"OCI_COMPARTMENT_ID is empty: OCI_VAULT_NAME={name!r} is looked up in a compartment; "
                          "set OCI_COMPARTMENT_ID, or OCI_VAULT_ID instead of the name")
    if not compartment.startswith(("ocid1.compartment.", "ocid1.tenancy.")):
        raise ConfigError(f"OCI_COMPARTMENT_ID={compartment!r} is invalid: must be an OCID starting with "
                          "ocid1.compartment. (or ocid1.tenancy. for the root compartment)")


def find_vault(options: OciOptions, reach: OciAuth) -> str:
    """The OCID of the one ACTIVE vault named OCI_VAULT_NAME in OCI_COMPARTMENT_ID.

    Vaults of that name being deleted (or deleted) are passed over, so a vault recreated
    under its old name is found; two ACTIVE ones are ambiguous and refused.
    """
    name, compartment = options.vault_name, options.compartment_id
    client = oci.key_management.KmsVaultClient(reach.config, signer=reach.signer, service_endpoint=options.kms_endpoint,
                                               **client_settings(options))
    where = f"looking up OCI_VAULT_NAME={name!r} in compartment {compartment}"
    try:
        vaults = oci.pagination.list_call_get_all_results(client.list_vaults, compartment_id=compartment).data
    except oci.exceptions.ServiceError as error:
        if error.status == 401:
            raise ConfigError(f"{where}: OCI refused the credentials ({reach.description}): not authenticated") from None
        if error.status in (403, 404):
            raise ConfigError(f"{where}: compartment not found or not authorized ({error.code}); check "
                              "OCI_COMPARTMENT_ID and an IAM policy allowing 'inspect vaults' there") from None
        raise StorageError(f"{where} failed: HTTP {error.status} {error.code}") from None
    except (oci.exceptions.RequestException, oci.exceptions.ConnectTimeout) as error:
        raise StorageError(f"{where} failed: OCI KMS endpoint {endpoint_of(client)} unreachable or timed out "
                           f"({type(error).__name__}); check the network, a proxy, or OCI_KMS_ENDPOINT") from None
    named = [vault for vault in vaults if vault.display_name == name]
    active = [vault.id for vault in named if vault.lifecycle_state == "ACTIVE"]
    if len(active) == 1:
        found: str = active[0]
        log.info("OCI_VAULT_NAME=%r is vault %s; setting OCI_VAULT_ID to it saves this lookup", name, found)
        return found
    if active:
        raise ConfigError(f"{where}: {len(active)} ACTIVE vaults have that name ({', '.join(active)}); "
                          "set OCI_VAULT_ID to the one holding the secrets")
    if named:
        states = ", ".join(f"{vault.id} is {vault.lifecycle_state}" for vault in named)
        raise ConfigError(f"{where}: no ACTIVE vault of that name ({states})")
    raise ConfigError(f"{where}: no vault of that name; check OCI_VAULT_NAME and OCI_COMPARTMENT_ID")


def _fetch_secret(client: Any, name: str, vault_id: str, reached_with: str) -> str | None:
    """A secret's current text, None when the vault has no secret of that name."""
    try:
        bundle = client.get_secret_bundle_by_name(name, vault_id=vault_id).data
    except oci.exceptions.ServiceError as error:
        if error.status == 404:
            return None
        if error.status == 401:
            raise ConfigError(f"OCI Vault refused the credentials ({reached_with}): not authenticated") from None
        raise StorageError(f"OCI Vault failed reading secret {name!r}: HTTP {error.status} {error.code}") from None
    except (oci.exceptions.RequestException, oci.exceptions.ConnectTimeout) as error:
        raise StorageError(f"OCI Vault unreachable reading secret {name!r}: {type(error).__name__}") from None
    content = bundle.secret_bundle_content
    try:
        return base64.b64decode(content.content, validate=True).decode("utf-8").strip()
    except (binascii.Error, UnicodeDecodeError, TypeError, AttributeError):
        raise ConfigError(f"OCI Vault secret {name!r} is malformed: its content is not base64-encoded text") from None

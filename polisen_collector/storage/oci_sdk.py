"""The `oci` SDK as the collector imports it: without the PKCS#11 signer it never uses.

Importing any part of the SDK runs its package `__init__`, which loads every signer,
pagination and more; no narrower import exists. The SDK treats `python-pkcs11` as
optional (`oci.auth.signers` skips its PKCS#11 signer when the module is missing), so
marking that module absent before the first import saves about 45 ms of every OCI run's
start. The collector signs with an API key or a principal, never with a hardware token.
Imported only when STORAGE=oci.
"""

from __future__ import annotations

import sys

sys.modules.setdefault("pkcs11", None)  # type: ignore[arg-type]  # None: "not installed" to the import system

import oci  # noqa: E402

__all__ = ["oci"]

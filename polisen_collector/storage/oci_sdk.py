"""The `oci` SDK as the collector imports it: the modules a run calls, and no others.

Importing any part of the SDK normally runs its package `__init__`, which imports every
signer, pagination (and with it the DNS client), the FIPS set-up and more; importing the
Object Storage client runs `oci.object_storage`'s, which adds the transfer managers. A run
calls none of them: together some 20 ms of every OCI run's start. So `oci` and
`oci.object_storage` are registered as bare packages whose submodules load on first use
(`oci.config`, `oci.retry`, `oci.object_storage.object_storage_client`, ...): the SDK's own
lazy loading of its services, without the eager part. The SDK's modules import each other
by name, so they work the same over a bare package. A name that is not a submodule but is
defined by the `__init__` (`oci.BaseClient`, which some principal signers use, `__version__`,
`oci.object_storage.UploadManager`, ...) runs that `__init__` once, on first use, so the
package then is the whole package, for the collector and any other code in the process.

The whole package is imported as usual when it already is (a program that imported `oci`
before) or when FIPS mode is asked for, which the package `__init__` sets up.

The SDK treats `python-pkcs11` as optional (`oci.auth.signers` skips its PKCS#11 signer when
the module is missing); it is marked absent, saving another 45 ms: the collector signs with
an API key or a principal, never with a hardware token. Imported only when STORAGE=oci.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
import threading
from types import ModuleType
from typing import Any

FIPS_SETTINGS = ("FIPS_LIBCRYPTO_PATH", "OCI_PYTHON_SDK_FIPS_LIBCRYPTO_PATH")


def bare_package(name: str) -> ModuleType:
    """Package `name` registered without running its `__init__`; a submodule loads when first used,
    and any other name missing runs the `__init__` first."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.submodule_search_locations is None or spec.loader is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    package = importlib.util.module_from_spec(spec)
    initialising = threading.Lock()

    def lookup(attribute: str) -> Any:
        if not attribute.startswith("__"):
            try:
                return importlib.import_module(f"{name}.{attribute}")
            except ModuleNotFoundError as error:
                if error.name != f"{name}.{attribute}":
                    raise
        with initialising:
            if vars(package).get("__getattr__") is lookup:
                del package.__getattr__
                spec.loader.exec_module(package)  # type: ignore[union-attr]
        return getattr(package, attribute)

    package.__getattr__ = lookup  # type: ignore[method-assign]  # PEP 562: a module's fallback lookup
    sys.modules[name] = package
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, package)
    return package


def _import_oci() -> Any:  # the SDK ships no types: its names are Any
    if "oci" in sys.modules or any(os.environ.get(setting) for setting in FIPS_SETTINGS):
        import oci

        return oci
    package = bare_package("oci")
    bare_package("oci.object_storage")
    return package


# The SDK keeps a region's endpoint as a template with optional parts (`{dualStack?ds.oci.:}`)
# and fills them in per request; for messages, each takes its "otherwise" text.
_TEMPLATE_CHOICE = re.compile(r"\{[^{}?]*\?[^{}:]*:([^{}]*)\}")


def endpoint_of(client: Any) -> str:
    """The endpoint a client calls, as an operator would write it."""
    return _TEMPLATE_CHOICE.sub(r"\1", str(client.base_client.endpoint))


sys.modules.setdefault("pkcs11", None)  # type: ignore[arg-type]  # None: "not installed" to the import system
oci = _import_oci()

from oci.object_storage.object_storage_client import ObjectStorageClient  # noqa: E402

__all__ = ["ObjectStorageClient", "endpoint_of", "oci"]

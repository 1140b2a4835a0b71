"""A throwaway certificate authority for the HTTPS fakes.

One `trustme` CA is made per test process; every TLS fake serves a leaf
certificate for ``127.0.0.1`` and ``localhost`` issued by it, so a single CA
bundle file lets any client trust all of them:

* ``ca_bundle_path()`` writes the CA certificate (PEM) to a temporary file and
  returns its path, for ``SSL_CERT_FILE=...``, ``requests``-style ``verify=path``
  or ``ssl.create_default_context(cafile=path)``;
* ``client_ssl_context()`` is that last one, ready made;
* ``server_ssl_context()`` is what the fakes listen with.
"""
from __future__ import annotations

import atexit
import functools
import shutil
import ssl
import tempfile
from pathlib import Path

import trustme

SERVER_NAMES = ("127.0.0.1", "localhost")


@functools.cache
def fake_ca() -> trustme.CA:
    """The process-wide fake CA."""
    return trustme.CA(organization_name="pavedroad test fakes")


@functools.cache
def _leaf() -> trustme.LeafCert:
    return fake_ca().issue_cert(*SERVER_NAMES)


def server_ssl_context() -> ssl.SSLContext:
    """An SSL context serving the leaf certificate for 127.0.0.1 and localhost."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    _leaf().configure_cert(context)
    return context


def client_ssl_context() -> ssl.SSLContext:
    """A verifying client context that trusts only the fake CA."""
    context = ssl.create_default_context()
    fake_ca().configure_trust(context)
    return context


@functools.cache
def _bundle_dir() -> Path:
    directory = Path(tempfile.mkdtemp(prefix="pavedroad-fake-ca-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return directory


@functools.cache
def ca_bundle_path(include_system_roots: bool = False) -> str:
    """Path of a PEM file holding the fake CA (plus certifi's roots if asked).

    With ``include_system_roots`` the bundle can replace the default trust
    store wholesale (``SSL_CERT_FILE``) without breaking real HTTPS calls.
    """
    pem = fake_ca().cert_pem.bytes()
    name = "ca.pem"
    if include_system_roots:
        import certifi

        pem += b"\n" + Path(certifi.where()).read_bytes()
        name = "ca-with-system-roots.pem"
    path = _bundle_dir() / name
    path.write_bytes(pem)
    return str(path)

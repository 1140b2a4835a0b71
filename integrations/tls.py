"""TLS for outgoing HTTPS: trust the CA bundle in `SSL_CERT_FILE` (corporate CAs) when set."""
from __future__ import annotations

import ssl


def ssl_context(ca_file: str = "") -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_file or None)

"""Certificates and SNIs as Kong 3.x keeps them (``entities/certificates.lua``, ``snis.lua``).

PEM checks use Python's ``ssl`` module (no extra dependency): a certificate must load
as a CA, and a certificate and key must load together as a chain, which OpenSSL
refuses when the key does not match. A certificate's ``snis`` is a transient list:
the store turns it into SNI entities (see ``Store``), and reads add it back.
"""

from __future__ import annotations

import ssl
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ...kong.schema import validators as v
from ...kong.schema.fields import (
    EntitySchema,
    common_fields,
    foreign,
    string,
    string_array,
    tags_field,
)
from .x509 import CertificateError, ca_facts

Row = dict[str, Any]


def _context() -> ssl.SSLContext:
    return ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)


def check_certificate(pem: str) -> str | None:
    """``typedefs.certificate``: the text must hold an X.509 certificate in PEM."""
    if "-----BEGIN CERTIFICATE-----" not in pem:
        return "invalid certificate: x509.new: PEM_read_bio_X509_AUX() failed"
    try:
        _context().load_verify_locations(cadata=pem)
    except (ssl.SSLError, ValueError) as exc:
        return f"invalid certificate: x509.new: {exc.args[-1] if exc.args else exc}"
    return None


def check_key(pem: str) -> str | None:
    """``typedefs.key``: a PEM private key (its content is checked with the certificate)."""
    if "-----BEGIN" not in pem or "PRIVATE KEY-----" not in pem:
        return "invalid key: pkey.new:load_key: failed to load PEM private key"
    return None


def pair_error(cert: str, key: str) -> str | None:
    """None when the key is the certificate's; "mismatch" or "key" otherwise."""
    with tempfile.TemporaryDirectory() as folder:
        cert_file, key_file = Path(folder, "cert.pem"), Path(folder, "key.pem")
        cert_file.write_text(cert)
        key_file.write_text(key)
        try:
            _context().load_cert_chain(cert_file, key_file)
        except ssl.SSLError as exc:
            return "mismatch" if "KEY_VALUES_MISMATCH" in str(exc) else "key"
    return None


def _pair_checks(row: Row) -> dict[str, Any]:
    errors: dict[str, Any] = {}
    for cert_field, key_field, message in (
        ("cert", "key", "certificate does not match key"),
        ("cert_alt", "key_alt", "alternative certificate does not match key"),
    ):
        cert, key = row.get(cert_field), row.get(key_field)
        if not (isinstance(cert, str) and isinstance(key, str)):
            continue
        error = pair_error(cert, key)
        if error == "mismatch":
            errors.setdefault("@entity", []).append(message)
        elif error == "key":
            errors[key_field] = "invalid key: pkey.new:load_key: failed to load private key"
    if (row.get("cert_alt") is None) != (row.get("key_alt") is None):
        errors.setdefault("@entity", []).insert(
            0, "all or none of these fields must be set: 'cert_alt', 'key_alt'"
        )
    return errors


def _wildcard_host(**kwargs: Any) -> Any:
    return string(checks=(v.check_wildcard_host,), **kwargs)


CERTIFICATES = EntitySchema(
    "certificates",
    {
        **common_fields(),
        "cert": string(required=True, checks=(check_certificate,)),
        "key": string(required=True, checks=(check_key,)),
        "cert_alt": string(checks=(check_certificate,)),
        "key_alt": string(checks=(check_key,)),
        "tags": tags_field(),
        "snis": string_array(_wildcard_host()),
    },
    entity_checks=[_pair_checks],
    transient=("snis",),
)

CERT_TAG = "-----BEGIN CERTIFICATE-----"


def _ca_checks(row: Row) -> dict[str, Any]:
    """ca_certificates' custom_entity_check: one certificate, not expired, a CA."""
    cert = row.get("cert")
    if not isinstance(cert, str):
        return {}
    first = cert.find(CERT_TAG)
    if first >= 0 and cert.find(CERT_TAG, first + len(CERT_TAG) + 1) >= 0:
        return {"@entity": ["please submit only one certificate at a time"]}
    try:
        facts = ca_facts(cert)
    except CertificateError:
        return {}  # the field's own check reports it
    if facts.not_after < datetime.now(UTC):
        return {"@entity": ['certificate expired, "Not After" time is in the past']}
    if not facts.is_ca:
        return {
            "@entity": [
                'certificate does not appear to be a CA because it is missing the "CA" '
                "basic constraint"
            ]
        }
    return {}


def _ca_digest(row: Row, given: Row) -> Row:
    """The on_write transformation (input ``cert``): ``cert_digest``, the SHA-256 of its DER."""
    if "cert" in given and isinstance(row.get("cert"), str):
        row["cert_digest"] = ca_facts(row["cert"]).sha256
    return row


CA_CERTIFICATES = EntitySchema(
    "ca_certificates",
    {
        **common_fields(),
        "cert": string(required=True, checks=(check_certificate,)),
        "cert_digest": string(),
        "tags": tags_field(),
    },
    unique=("cert_digest",),
    entity_checks=[_ca_checks],
    on_write=[_ca_digest],
)

SNIS = EntitySchema(
    "snis",
    {
        "id": common_fields()["id"],
        "name": _wildcard_host(required=True),
        **{k: f for k, f in common_fields().items() if k != "id"},
        "tags": tags_field(),
        # Kong's certificates DAO deletes a certificate's SNIs before the certificate.
        "certificate": foreign("certificates", required=True, on_delete="cascade"),
    },
    endpoint_key="name",
    unique=("name",),
)


def duplicated_sni(names: list[str]) -> str | None:
    """``parse_name_list``: the first name given twice, if any."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            return name
        seen.add(name)
    return None

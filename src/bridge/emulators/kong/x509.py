"""The three facts Kong reads off a CA certificate: its DER digest, its "Not After", and
whether its basic constraints say CA (``entities/ca_certificates.lua``, via OpenSSL).

Python's ``ssl`` module loads certificates but does not show their extensions, so this
walks the DER of the ``TBSCertificate`` (RFC 5280, 4.1) just far enough to find them.
"""

from __future__ import annotations

import hashlib
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime

_BOOLEAN, _OCTETS = 0x01, 0x04
_UTC_TIME, _GENERALIZED_TIME = 0x17, 0x18
_EXTENSIONS = 0xA3  # [3] EXPLICIT Extensions
_BASIC_CONSTRAINTS = bytes((0x55, 0x1D, 0x13))  # 2.5.29.19


class CertificateError(ValueError):
    """Not a certificate this reader can walk."""


@dataclass(frozen=True)
class CaFacts:
    sha256: str  # hex, lowercase: resty.string to_hex of the digest
    not_after: datetime
    is_ca: bool


def ca_facts(pem: str) -> CaFacts:
    """Digest, expiry and CA flag of the first certificate in ``pem``."""
    try:
        der = ssl.PEM_cert_to_DER_cert(pem)
    except ValueError as exc:
        raise CertificateError(str(exc)) from None
    certificate = _children(der, *_span(der, 0)[1:])
    tbs = _children(der, *certificate[0][1:])
    fields = tbs[1:] if tbs[0][0] == 0xA0 else tbs  # skip the [0] version
    validity = _children(der, *fields[3][1:])
    return CaFacts(
        sha256=hashlib.sha256(der).hexdigest(),
        not_after=_time(der, validity[1]),
        is_ca=_is_ca(der, fields),
    )


Span = tuple[int, int, int]  # (tag, start of contents, end of contents)


def _span(data: bytes, position: int) -> Span:
    if position + 2 > len(data):
        raise CertificateError("truncated DER")
    tag, length = data[position], data[position + 1]
    position += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[position : position + count], "big")
        position += count
    if position + length > len(data):
        raise CertificateError("truncated DER")
    return tag, position, position + length


def _children(data: bytes, start: int, end: int) -> list[Span]:
    spans, position = [], start
    while position < end:
        span = _span(data, position)
        spans.append(span)
        position = span[2]
    return spans


def _time(data: bytes, span: Span) -> datetime:
    tag, start, end = span
    text = data[start:end].decode("ascii").rstrip("Z")
    if tag == _UTC_TIME:  # YYMMDDHHMMSS, 1950-2049 (RFC 5280, 4.1.2.5.1)
        year = int(text[:2])
        text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"
    elif tag != _GENERALIZED_TIME:
        raise CertificateError("not a time")
    return datetime.strptime(text[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)


def _is_ca(data: bytes, fields: list[Span]) -> bool:
    """``get_basic_constraints("CA")``: false without the extension."""
    for tag, start, end in fields:
        if tag != _EXTENSIONS:
            continue
        (extensions,) = _children(data, start, end)
        for extension in _children(data, *extensions[1:]):
            parts = _children(data, *extension[1:])
            oid, value = parts[0], parts[-1]
            if data[oid[1] : oid[2]] != _BASIC_CONSTRAINTS or value[0] != _OCTETS:
                continue
            (constraints,) = _children(data, value[1], value[2])
            inside = _children(data, *constraints[1:])
            return bool(inside) and inside[0][0] == _BOOLEAN and data[inside[0][1]] != 0
    return False

"""The ACL records: tokens, policies, roles, auth methods and binding rules.

``structs.ACLToken``, ``ACLPolicy``, ``ACLRole``, ``ACLAuthMethod`` and
``ACLBindingRule`` (``agent/structs/acl.go``, CE) as the store keeps them and the API
renders them, with the ids, names, times and hashes they carry: UUIDs outside the
reserved prefix and the state store's UUID index keys, the name rules, Go's JSON times
and the BLAKE2b content hashes (``SetHash``).
"""

from __future__ import annotations

import base64
import hashlib
import re
import string
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .acl_errors import ACLError
from .durations import format_duration
from .web import Row

RESERVED_PREFIX = "00000000-0000-0000-0000-0000000000"
NAME_RULE = "Only alphanumeric characters, '-' and '_' are allowed"
IDENTITY_RULE = "Only lowercase alphanumeric characters, '-' and '_' are allowed"

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
VALID_METHOD_NAME = re.compile(r"^[A-Za-z0-9\-_]{1,128}$")  # auth methods
VALID_ROLE_NAME = re.compile(r"^[A-Za-z0-9\-_]{1,256}$")
VALID_POLICY_NAME = re.compile(r"^[A-Za-z0-9\-_]+/?[A-Za-z0-9\-_]*$")  # one "/" since 1.17
VALID_IDENTITY_NAME = re.compile(r"^[a-z0-9]([a-z0-9\-_]*[a-z0-9])?$")


# -- ids, names, times and hashes -------------------------------------------------------


def is_uuid(value: str) -> bool:
    """``go-uuid.ParseUUID``: 8-4-4-4-12 hex digits."""
    return bool(_UUID.match(value))


def new_uuid() -> str:
    """A random UUID outside the reserved prefix (``lib.GenerateUUID``)."""
    while True:
        value = str(uuid.uuid4())
        if not value.startswith(RESERVED_PREFIX):
            return value


def uuid_key(value: str, table: str) -> str:
    """The state store's UUID index key; a value it cannot index fails the lookup as
    ``uuidStringToBytes`` does (``failed acl token lookup: index error: ...``)."""
    reason = _uuid_index_error(value)
    if reason is not None:
        raise ACLError(f"failed acl {table} lookup: index error: {reason}")
    return value.replace("-", "").lower()


def _uuid_index_error(value: str) -> str | None:
    if len(value.encode()) != 36:
        return "UUID must be 36 characters"
    hyphens = value.count("-")
    if hyphens > 4:
        return f'UUID should have maximum of 4 "-"; got {hyphens}'
    sanitized = value.replace("-", "")
    if len(sanitized) % 2:
        return "Input (without hyphens) must be even length"
    for char in sanitized:
        if char not in string.hexdigits:
            return f"Invalid UUID: encoding/hex: invalid byte: U+{ord(char):04X} {char!r}"
    return None


def go_time(nanos: int) -> str:
    """A ``time.Time`` as Go's JSON encoder writes it (RFC 3339, trailing zeros trimmed)."""
    seconds, fraction = divmod(nanos, 10**9)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if fraction:
        text += f".{fraction:09d}".rstrip("0")
    return text + "Z"


def content_hash(*parts: str) -> str:
    """``SetHash``: BLAKE2b-256 over the written fields, as Go's ``[]byte`` encodes (base64)."""
    digest = hashlib.blake2b(digest_size=32)
    for part in parts:
        digest.update(part.encode())
    return base64.b64encode(digest.digest()).decode()


# -- the records ---------------------------------------------------------------------------


@dataclass
class Link:
    """A policy or role link: by ID (kept) or by Name (resolved once, on write)."""

    id: str = ""
    name: str = ""


@dataclass
class Token:
    """``structs.ACLToken`` (CE: no namespace or partition)."""

    accessor_id: str = ""
    secret_id: str = ""
    description: str = ""
    policies: list[Link] = field(default_factory=list)
    roles: list[Link] = field(default_factory=list)
    service_identities: list[Row] = field(default_factory=list)
    node_identities: list[Row] = field(default_factory=list)
    templated_policies: list[Row] = field(default_factory=list)
    local: bool = False
    auth_method: str = ""
    expiration_time: int | None = None  # ns since the epoch
    expiration_ttl: float = 0.0  # seconds; only on create
    create_time: int = 0
    hash: str = ""
    create_index: int = 0
    modify_index: int = 0
    rules: str = ""  # legacy fields: refused on write
    type: str = ""

    def expired(self, now: int) -> bool:
        return self.expiration_time is not None and self.expiration_time < now

    def set_hash(self) -> None:
        parts = [self.description, "local" if self.local else "global"]
        parts += [link.id for link in self.policies] + [link.id for link in self.roles]
        parts += _identity_parts(self.service_identities, self.node_identities)
        parts += _templated_parts(self.templated_policies)
        self.hash = content_hash(*parts)


@dataclass
class Policy:
    """``structs.ACLPolicy``."""

    id: str = ""
    name: str = ""
    description: str = ""
    rules: str = ""
    datacenters: list[str] = field(default_factory=list)
    hash: str = ""
    create_index: int = 0
    modify_index: int = 0

    def set_hash(self) -> None:
        self.hash = content_hash(self.name, self.description, self.rules, *self.datacenters)

    def to_json(self) -> Row:
        row: Row = {
            "ID": self.id,
            "Name": self.name,
            "Description": self.description,
            "Rules": self.rules,
        }
        if self.datacenters:
            row["Datacenters"] = self.datacenters
        return {**row, "Hash": self.hash, **indexes(self)}

    def stub(self) -> Row:
        """``ACLPolicyListStub``: no rules; ``Datacenters`` always (null when none)."""
        return {
            "ID": self.id,
            "Name": self.name,
            "Description": self.description,
            "Datacenters": self.datacenters or None,
            "Hash": self.hash,
            **indexes(self),
        }


@dataclass
class Role:
    """``structs.ACLRole``."""

    id: str = ""
    name: str = ""
    description: str = ""
    policies: list[Link] = field(default_factory=list)
    service_identities: list[Row] = field(default_factory=list)
    node_identities: list[Row] = field(default_factory=list)
    templated_policies: list[Row] = field(default_factory=list)
    hash: str = ""
    create_index: int = 0
    modify_index: int = 0

    def set_hash(self) -> None:
        parts = [self.name, self.description, *(link.id for link in self.policies)]
        parts += _identity_parts(self.service_identities, self.node_identities)
        parts += _templated_parts(self.templated_policies)
        self.hash = content_hash(*parts)


@dataclass
class AuthMethod:
    """``structs.ACLAuthMethod``; its ``Config`` is kept as given (no validator runs)."""

    name: str = ""
    type: str = ""
    display_name: str = ""
    description: str = ""
    max_token_ttl: float = 0.0
    token_locality: str = ""
    config: Row | None = None
    create_index: int = 0
    modify_index: int = 0

    def stub(self) -> Row:
        """``ACLAuthMethodListStub`` (its MarshalJSON writes ``MaxTokenTTL`` first)."""
        row: Row = {}
        if self.max_token_ttl:
            row["MaxTokenTTL"] = format_duration(self.max_token_ttl)
        row.update(Name=self.name, Type=self.type)
        if self.display_name:
            row["DisplayName"] = self.display_name
        if self.description:
            row["Description"] = self.description
        if self.token_locality:
            row["TokenLocality"] = self.token_locality
        return row

    def to_json(self) -> Row:
        return {**self.stub(), "Config": self.config, **indexes(self)}


@dataclass
class BindingRule:
    """``structs.ACLBindingRule``."""

    id: str = ""
    description: str = ""
    auth_method: str = ""
    selector: str = ""
    bind_type: str = ""
    bind_name: str = ""
    bind_vars: Row | None = None
    create_index: int = 0
    modify_index: int = 0

    def to_json(self) -> Row:
        row: Row = {
            "ID": self.id,
            "Description": self.description,
            "AuthMethod": self.auth_method,
            "Selector": self.selector,
            "BindType": self.bind_type,
            "BindName": self.bind_name,
        }
        if self.bind_vars is not None:
            row["BindVars"] = self.bind_vars
        return {**row, **indexes(self)}


def indexes(record: Policy | Role | AuthMethod | BindingRule | Token) -> Row:
    return {"CreateIndex": record.create_index, "ModifyIndex": record.modify_index}


def _identity_parts(services: list[Row], nodes: list[Row]) -> list[str]:
    parts: list[str] = []
    for service in services:
        parts += [service["ServiceName"], *service.get("Datacenters", [])]
    for node in nodes:
        parts += [node["NodeName"], node["Datacenter"]]
    return parts


def _templated_parts(templated: list[Row]) -> list[str]:
    parts: list[str] = []
    for item in templated:
        parts += [item["TemplateID"], item["TemplateName"]]
        parts.append(str((item.get("TemplateVariables") or {}).get("name", "")))
        parts += item.get("Datacenters", [])
    return parts

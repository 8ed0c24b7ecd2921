"""The emulator's database: Kong's entities, constraints, cascades and pagination.

It plays the part of Kong's DAO plus its Postgres strategy: validation through
the schemas, unique and foreign keys, ``ON DELETE`` rules, and pages ordered by
primary key. It knows nothing of HTTP.
"""

from __future__ import annotations

import bisect
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ...kong.schema import validators as v
from ...kong.schema.entity_checks import run_entity_checks
from ...kong.schema.fields import EntitySchema, Field, check_value, validate_record, validate_value
from ...kong.schema.plugins import plugin
from . import errors as e
from . import foreign
from .certificates import duplicated_sni
from .expiry import MISSING, Expiries
from .luafmt import lua_pretty
from .offsets import decode_offset, encode_offset
from .schemas import ENTITIES, FOREIGN_KEYS

Row = dict[str, Any]


@dataclass(frozen=True)
class Page:
    rows: list[Row]
    offset: str | None


def _now_seconds() -> int:
    return int(time.time())


def _now_ms() -> float:
    """``typedefs.auto_timestamp_ms``: seconds with a millisecond fraction (ngx.now())."""
    return round(time.time(), 3)


def _take_ttl(kind: str, data: Row) -> tuple[Row, Any]:
    """``extract_options``: a ``ttl = true`` entity's ``ttl`` is an option, not a field."""
    if not ENTITIES[kind].ttl or "ttl" not in data or data["ttl"] is None:
        return data, MISSING
    rest = dict(data)
    return rest, rest.pop("ttl")


def _deep_merge(base: Any, patch: Any) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            merged[key] = _deep_merge(base.get(key), value)
        return merged
    return patch


class Table:
    """One entity kind: rows by id, kept ordered by id as Postgres pages them."""

    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}
        self.order: list[str] = []
        self.by_tag: dict[str, set[str]] = {}

    def put(self, row: Row) -> None:
        old = self.rows.get(row["id"])
        if old is None:
            bisect.insort(self.order, row["id"])
        else:
            self._untag(old)
        self.rows[row["id"]] = row
        for tag in row.get("tags") or []:
            self.by_tag.setdefault(tag, set()).add(row["id"])

    def remove(self, entity_id: str) -> Row | None:
        row = self.rows.pop(entity_id, None)
        if row is not None:
            index = bisect.bisect_left(self.order, entity_id)
            del self.order[index]
            self._untag(row)
        return row

    def _untag(self, row: Row) -> None:
        for tag in row.get("tags") or []:
            ids = self.by_tag.get(tag)
            if ids is not None:
                ids.discard(row["id"])
                if not ids:
                    del self.by_tag[tag]


class Store:
    """All entities of one emulated Kong node."""

    def __init__(self) -> None:
        self.tables: dict[str, Table] = {kind: Table() for kind in ENTITIES}
        # name -> id indexes for the unique fields, so lookups stay O(1) at 10k entities.
        self.unique: dict[tuple[str, str], dict[Any, str]] = {
            (kind, field): {} for kind, schema in ENTITIES.items() for field in schema.unique
        }
        self.cache_keys: dict[str, dict[tuple[Any, ...], str]] = {
            kind: {} for kind, schema in ENTITIES.items() if schema.cache_key
        }
        # (child kind, fk field) -> parent id -> child ids, for nested lists and cascades.
        self.refs: dict[tuple[str, str], dict[str, set[str]]] = {
            (kind, field): {} for kind, field, _parent in FOREIGN_KEYS
        }
        self.expiries = Expiries()

    # -- lookups ---------------------------------------------------------------------------

    def key_for(self, kind: str, segment: str) -> dict[str, Any]:
        """Kong's path rule: a UUID is an id, anything else the endpoint key (validated)."""
        if v.is_uuid(segment):
            return {"id": segment}
        schema = ENTITIES[kind]
        if schema.endpoint_key is None:
            # No endpoint key (acls, certificates): Kong selects by this "id" and fails.
            errors = {"id": "expected a valid UUID"}
            raise e.api_error(1, f"invalid primary key: '{lua_pretty(errors)}'", errors)
        key = schema.endpoint_key
        spec = schema.fields[key]
        value = (v.normalize_target(segment) or segment) if kind == "targets" else segment
        _value, error = validate_value(spec, segment)
        if error:
            raise e.api_error(10, str(error), name=f"invalid unique {key}")
        return {key: value}

    def get(self, kind: str, key: dict[str, Any], parent: Row | None = None) -> Row | None:
        self._expire(kind)
        table = self.tables[kind]
        if "id" in key:
            return table.rows.get(key["id"])
        ((field, value),) = key.items()
        if kind == "targets":
            target_id = self.cache_keys["targets"].get((parent["id"], value)) if parent else None
            return table.rows.get(target_id) if target_id else None
        entity_id = self.unique.get((kind, field), {}).get(value)
        return table.rows.get(entity_id) if entity_id else None

    def resolve(self, kind: str, segment: str, parent: Row | None = None) -> Row | None:
        return self.get(kind, self.key_for(kind, segment), parent)

    def find_unique(self, kind: str, field: str, value: Any) -> Row | None:
        """The row whose unique ``field`` is ``value`` (``select_by_custom_id``)."""
        self._expire(kind)
        entity_id = self.unique.get((kind, field), {}).get(value)
        return self.tables[kind].rows.get(entity_id) if entity_id else None

    def find_cache_key(self, kind: str, parts: tuple[Any, ...]) -> Row | None:
        """The row with this cache key (ids for foreign keys): ``select_by_cache_key``."""
        entity_id = self.cache_keys.get(kind, {}).get(parts)
        return self.tables[kind].rows.get(entity_id) if entity_id else None

    def all(self, kind: str) -> list[Row]:
        self._expire(kind)
        table = self.tables[kind]
        return [table.rows[i] for i in table.order]

    def children(self, kind: str, field: str, parent_id: str) -> list[Row]:
        self._expire(kind)
        ids = sorted(self.refs[(kind, field)].get(parent_id, ()))
        return [self.tables[kind].rows[i] for i in ids]

    # -- pagination ------------------------------------------------------------------------

    def page(
        self,
        kind: str,
        size: int,
        offset: str | None,
        tags: tuple[list[str], str] | None = None,
        rows: list[Row] | None = None,
    ) -> Page:
        """A page ordered by id; ``offset`` is opaque (base64 of the last id served)."""
        self._expire(kind)
        table = self.tables[kind]
        after = self._decode_offset(offset) if offset else None
        if rows is not None:
            ids = [row["id"] for row in rows]
        elif tags is not None:
            chosen, more = self._ids_with_tags(table, *tags, after, size)
            return self._page_of(table, chosen, more)
        else:
            ids = table.order
        start = bisect.bisect_right(ids, after) if after is not None else 0
        chosen = ids[start : start + size]
        return self._page_of(table, chosen, start + size < len(ids))

    def _page_of(self, table: Table, chosen: list[str], more: bool) -> Page:
        next_offset = self._encode_offset(chosen[-1]) if more and chosen else None
        return Page([table.rows[i] for i in chosen], next_offset)

    @staticmethod
    def _ids_with_tags(
        table: Table, wanted: list[str], mode: str, after: str | None, size: int
    ) -> tuple[list[str], bool]:
        """The next ``size`` ids after ``after`` carrying the tags, and whether more follow.

        Walks the id order from the offset instead of sorting every tagged id: a
        page of a 10,000-row tag filter would otherwise sort 10,000 ids (4 ms), for
        each of its hundred pages. Postgres serves it from an index the same way.
        """
        sets = [table.by_tag.get(tag, set()) for tag in wanted]
        if not sets:
            return [], False
        every = mode == "and"
        # At most this many rows carry the tags; when few do, sorting them beats a walk.
        tagged = min(map(len, sets)) if every else sum(map(len, sets))
        if tagged * 8 < len(table.order):
            ids = sorted(set.intersection(*sets) if every else set().union(*sets))
            start = bisect.bisect_right(ids, after) if after is not None else 0
            return ids[start : start + size], start + size < len(ids)
        match = all if every else any
        order = table.order
        chosen: list[str] = []
        start = bisect.bisect_right(order, after) if after is not None else 0
        for index in range(start, len(order)):
            if match(order[index] in s for s in sets):
                if len(chosen) == size:
                    return chosen, True
                chosen.append(order[index])
        return chosen, False

    @staticmethod
    def _encode_offset(last_id: str) -> str:
        return encode_offset([last_id])

    @staticmethod
    def _decode_offset(offset: str) -> str:
        return str(decode_offset(offset)[0])

    # -- writes ----------------------------------------------------------------------------

    def insert(self, kind: str, data: Row) -> Row:
        self._expire(kind)
        data, ttl = _take_ttl(kind, data)
        row = self._prepare(kind, data)
        if row["id"] in self.tables[kind].rows:
            raise e.primary_key_violation(row["id"])
        names = self._sni_names(kind, row)
        self._check_unique(kind, row, None)
        self._store(kind, row, None)
        self._sync_snis(kind, row, names)
        self._written_ttl(kind, row, ttl, patch=False)
        return row

    def upsert(self, kind: str, key: dict[str, Any], data: Row, parent: Row | None = None) -> Row:
        """PUT: a full replacement (omitted fields revert to defaults) or a create."""
        data, ttl = _take_ttl(kind, dict(data))
        existing = self.get(kind, key, parent)
        field, value = next(iter(key.items()))
        data[field] = value  # the URL's key wins over the body's
        if existing is not None:
            data["id"] = existing["id"]
        if kind == "certificates" and "snis" not in data:
            data["snis"] = []  # PUT without snis clears them (Kong sends ngx.null)
        row = self._prepare(kind, data)
        names = self._sni_names(kind, row)
        self._check_unique(kind, row, existing)
        self._store(kind, row, existing)
        self._sync_snis(kind, row, names)
        self._written_ttl(kind, row, ttl, patch=False)
        return row

    def validate(self, kind: str, data: Row, check_references: bool = True) -> Row:
        """Validate a body as a write would, without writing (DB-less refuses afterwards)."""
        return self._prepare(kind, data, check_references)

    def validate_update(
        self, kind: str, key: dict[str, Any], data: Row, parent: Row | None = None
    ) -> Row:
        existing = self.get(kind, key, parent)
        if existing is None:
            raise e.not_found_error(key)
        return self._prepare(kind, self._merge(kind, existing, data), given=data)

    @staticmethod
    def _merge(kind: str, existing: Row, data: Row) -> Row:
        """PATCH: records merge deeply; any other field (a foreign key too) is replaced."""
        schema = ENTITIES[kind]
        merged = {
            k: val for k, val in existing.items() if k != "updated_at" and k not in schema.transient
        }
        for field, value in data.items():
            spec = schema.fields.get(field)
            if spec is not None and spec.type == "record":
                merged[field] = _deep_merge(existing.get(field), value)
            else:
                merged[field] = value
        if kind == "plugins" and "name" in data and data["name"] != existing["name"]:
            merged["config"] = data.get("config", {})
        return merged

    def update(self, kind: str, key: dict[str, Any], data: Row, parent: Row | None = None) -> Row:
        """PATCH: merge into the stored entity, then validate the whole."""
        existing = self.get(kind, key, parent)
        if existing is None:
            raise e.not_found_error(key)
        data, ttl = _take_ttl(kind, data)
        row = self._prepare(kind, self._merge(kind, existing, data), given=data)
        names = self._sni_names(kind, row)
        self._check_unique(kind, row, existing)
        self._store(kind, row, existing)
        self._sync_snis(kind, row, names)
        self._written_ttl(kind, row, ttl, patch=True)
        return row

    def delete(self, kind: str, row: Row) -> None:
        """Delete a row; references without ``on_delete = "cascade"`` restrict it."""
        if kind == "ca_certificates":
            self._check_ca_unreferenced(row["id"])
        for child_kind, field, parent_kind in FOREIGN_KEYS:
            if parent_kind != kind or ENTITIES[child_kind].fields[field].on_delete == "cascade":
                continue
            if self.children(child_kind, field, row["id"]):
                raise e.api_error(
                    4,
                    f"an existing '{child_kind}' entity references this '{kind}' entity",
                    {"@referenced_by": child_kind},
                )
        for child_kind, field, parent_kind in FOREIGN_KEYS:
            if parent_kind == kind:
                for child in self.children(child_kind, field, row["id"]):
                    self.delete(child_kind, child)
        self._unindex(kind, row)
        self.tables[kind].remove(row["id"])
        self.expiries.forget(kind, row["id"])
        if kind == "snis":
            self._refresh_snis(row["certificate"]["id"])

    # -- expiring entities (``ttl = true``) -------------------------------------------------

    def _written_ttl(self, kind: str, row: Row, ttl: Any, patch: bool) -> None:
        if ENTITIES[kind].ttl:
            start = time.time() if patch else float(row.get("created_at") or time.time())
            self.expiries.written(kind, row["id"], ttl, start, patch)
            row["ttl"] = self.expiries.left(kind, row["id"])

    def _expire(self, kind: str) -> None:
        """Expired rows leave (Kong's reads skip them); the others show the seconds left."""
        if not ENTITIES[kind].ttl:
            return
        table = self.tables[kind]
        for entity_id in self.expiries.expired(kind):
            self.delete(kind, table.rows[entity_id])
        for entity_id in self.expiries.at.get(kind, {}):
            table.rows[entity_id]["ttl"] = self.expiries.left(kind, entity_id)

    def _check_ca_unreferenced(self, ca_id: str) -> None:
        """``dao/ca_certificates.lua``: a CA a service still trusts is not deleted."""
        for service in self.all("services"):
            if ca_id in (service.get("ca_certificates") or ()):
                raise e.api_error(
                    19,
                    f"ca certificate {ca_id} is still referenced by services "
                    f"(id = {service['id']})",
                )

    # -- certificates' transient ``snis`` --------------------------------------------------

    def _sni_names(self, kind: str, row: Row) -> list[str] | None:
        """Check a certificate's ``snis`` (``parse_name_list`` and ``check_list_is_new``)."""
        if kind != "certificates":
            return None
        names = row.pop("snis", None)
        if names is None:
            return None
        duplicate = duplicated_sni(names)
        if duplicate is not None:
            raise e.schema_violation({"snis": f"{duplicate} is duplicated"})
        for name in names:
            sni = self.find_unique("snis", "name", name)
            if sni is not None and sni["certificate"]["id"] != row["id"]:
                raise e.schema_violation(
                    {
                        "snis": f"{name} already associated with existing certificate "
                        f"'{sni['certificate']['id']}'"
                    }
                )
        return sorted(names)

    def _sync_snis(self, kind: str, row: Row, names: list[str] | None) -> None:
        if kind == "snis":
            self._refresh_snis(row["certificate"]["id"])
        if kind != "certificates":
            return
        if names is not None:
            current = {sni["name"]: sni for sni in self.children("snis", "certificate", row["id"])}
            for name in names:
                if name not in current:
                    self.insert("snis", {"name": name, "certificate": {"id": row["id"]}})
            for name, sni in current.items():
                if name not in names:
                    self.delete("snis", sni)
        self._refresh_snis(row["id"])

    def _refresh_snis(self, certificate_id: str) -> None:
        """Reads of a certificate carry the sorted names of its SNIs."""
        certificate = self.tables["certificates"].rows.get(certificate_id)
        if certificate is not None:
            names = [sni["name"] for sni in self.children("snis", "certificate", certificate_id)]
            certificate["snis"] = sorted(names)

    # -- internals -------------------------------------------------------------------------

    def _prepare(
        self, kind: str, data: Row, check_references: bool = True, given: Row | None = None
    ) -> Row:
        """Validate and complete a row: shorthands, foreign keys, fields, entity checks.

        ``given`` is the body as the client sent it (a PATCH's, not the merged row):
        Kong's transformations run only for the fields a write carries.
        """
        schema = ENTITIES[kind]
        given = data if given is None else given
        for shorthand in schema.shorthands:
            data = shorthand(data)
        fields = self._fields_for(schema, data)
        if check_references:
            data = foreign.resolve(fields, data, ENTITIES, self._lookup)
        row, errors = validate_record(fields, data)
        if kind == "plugins" and isinstance(data.get("name"), str) and plugin(data["name"]) is None:
            errors["name"] = (
                f"plugin '{data['name']}' not enabled; add it to the 'plugins' "
                "configuration property"
            )
        for name, spec in fields.items():
            value = row.get(name)
            if spec.type == "foreign" and isinstance(value, dict) and name not in errors:
                reference = ENTITIES.get(spec.reference or "")
                error = foreign.reference_errors(value, reference) if reference else None
                if error:
                    errors[name] = error
        if errors:
            raise e.schema_violation(errors)
        for check in schema.entity_checks:
            errors.update(check(row))
        bundled = plugin(row.get("name")) if kind == "plugins" else None
        if bundled is not None and bundled.entity_checks:
            for key, value in run_entity_checks(bundled.entity_checks, row, check_value).items():
                if key == "@entity":
                    errors.setdefault("@entity", []).extend(value)
                else:
                    errors.setdefault(key, value)
        if errors:
            raise e.schema_violation(errors)
        if kind == "targets":
            row["target"] = v.normalize_target(row["target"])
        self._fill_auto(fields, row)
        for transform in schema.on_write:
            row = transform(row, given)
        if check_references:
            self._check_references(fields, row)
        return row

    def _lookup(self, kind: str, key: dict[str, Any]) -> Row | None:
        ((field, value),) = key.items()
        return self.find_unique(kind, field, value)

    @staticmethod
    def _fields_for(schema: EntitySchema, data: Row) -> dict[str, Field]:
        if schema.name != "plugins":
            return schema.fields
        spec = plugin(data.get("name"))
        if spec is None:
            return schema.fields
        return {**schema.fields, **spec.fields}

    def _check_references(self, fields: dict[str, Field], row: Row) -> None:
        """A reference by primary key must exist (the database's foreign key constraint)."""
        for name, spec in fields.items():
            ref = row.get(name)
            if spec.type != "foreign" or not isinstance(ref, dict) or spec.reference is None:
                continue
            if spec.reference in self.tables and ref["id"] not in self.tables[spec.reference].rows:
                key = {"id": ref["id"]}
                raise e.api_error(
                    4,
                    f"the foreign key '{lua_pretty(key)}' does not reference an existing "
                    f"'{spec.reference}' entity.",
                    {name: key},
                )

    @staticmethod
    def _fill_auto(fields: dict[str, Field], row: Row) -> None:
        # PUT resets created_at unless the body carries it; PATCH carries the stored one.
        now_ms, now_s = _now_ms(), _now_seconds()
        for name, spec in fields.items():
            if spec.auto == "uuid" and row.get(name) is None:
                row[name] = str(uuid.uuid4())
            elif spec.auto in ("ts", "ts_ms"):
                now = now_ms if spec.auto == "ts_ms" else now_s
                if name == "updated_at" or row.get(name) is None:
                    row[name] = now

    def _unique_values(self, kind: str, row: Row) -> Iterable[tuple[str, Any]]:
        for field in ENTITIES[kind].unique:
            if row.get(field) is not None:
                yield field, row[field]

    def _cache_key(self, kind: str, row: Row) -> tuple[Any, ...] | None:
        schema = ENTITIES[kind]
        if not schema.cache_key:
            return None
        parts = []
        for field in schema.cache_key:
            value = row.get(field)
            parts.append(value["id"] if isinstance(value, dict) else value)
        return tuple(parts)

    def _check_unique(self, kind: str, row: Row, existing: Row | None) -> None:
        own_id = existing["id"] if existing else row["id"]
        for field, value in self._unique_values(kind, row):
            holder = self.unique[(kind, field)].get(value)
            if holder is not None and holder != own_id:
                raise e.unique_violation({field: value})
        cache_key = self._cache_key(kind, row)
        if cache_key is not None:
            holder = self.cache_keys[kind].get(cache_key)
            if holder is not None and holder != own_id:
                fields = {
                    f: (row[f] if not isinstance(row[f], dict) else {"id": row[f]["id"]})
                    for f in ENTITIES[kind].cache_key
                    if row.get(f) is not None
                }
                raise e.unique_violation(fields)

    def _store(self, kind: str, row: Row, existing: Row | None) -> None:
        if existing is not None:
            self._unindex(kind, existing)
            if existing["id"] != row["id"]:
                self.tables[kind].remove(existing["id"])
        for field, value in self._unique_values(kind, row):
            self.unique[(kind, field)][value] = row["id"]
        cache_key = self._cache_key(kind, row)
        if cache_key is not None:
            self.cache_keys[kind][cache_key] = row["id"]
        for parent_id, refs in self._parent_refs(kind, row):
            refs.setdefault(parent_id, set()).add(row["id"])
        self.tables[kind].put(row)

    def _parent_refs(self, kind: str, row: Row) -> Iterable[tuple[str, dict[str, set[str]]]]:
        for child_kind, field, _parent in FOREIGN_KEYS:
            if child_kind == kind and isinstance(row.get(field), dict):
                yield row[field]["id"], self.refs[(kind, field)]

    def _unindex(self, kind: str, row: Row) -> None:
        for field, value in self._unique_values(kind, row):
            if self.unique[(kind, field)].get(value) == row["id"]:
                del self.unique[(kind, field)][value]
        cache_key = self._cache_key(kind, row)
        if cache_key is not None and self.cache_keys[kind].get(cache_key) == row["id"]:
            del self.cache_keys[kind][cache_key]
        for parent_id, refs in self._parent_refs(kind, row):
            refs.get(parent_id, set()).discard(row["id"])

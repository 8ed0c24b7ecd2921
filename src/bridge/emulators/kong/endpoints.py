"""Which URL segments name which entities: Kong's generated Admin API endpoints.

Kong generates, for every entity, ``/{name}`` and ``/{name}/{key}``; for every
foreign key, ``/{parent}/{key}/{child}`` (nested collection and entities) and
``/{child}/{key}/{fk}`` (the referenced entity). URL names are the schemas'
``admin_api_name`` / ``admin_api_nested_name`` (``key-auths``, ``key-auth``).
"""

from __future__ import annotations

from .schemas import ENTITIES, FOREIGN_KEYS

# Targets live only under their upstream (``/upstreams/{u}/targets``), handled apart.
_NESTED_ONLY = frozenset({"targets"})


def nested_segment(kind: str) -> str:
    """The segment naming ``kind`` under its parent (``key-auth`` under a consumer)."""
    return ENTITIES[kind].nested_name or ENTITIES[kind].url_name


# url segment -> entity kind
TOP_LEVEL: dict[str, str] = {
    schema.url_name: kind for kind, schema in ENTITIES.items() if kind not in _NESTED_ONLY
}

# (parent url segment, child segment) -> (child kind, foreign key field)
NESTED: dict[tuple[str, str], tuple[str, str]] = {
    (ENTITIES[parent].url_name, nested_segment(child)): (child, field)
    for child, field, parent in FOREIGN_KEYS
    if child not in _NESTED_ONLY
}

# (child url segment, foreign key field): ``/routes/{r}/service`` and the like
CHILD_PARENTS: frozenset[tuple[str, str]] = frozenset(
    (ENTITIES[child].url_name, field)
    for child, field, _parent in FOREIGN_KEYS
    if child not in _NESTED_ONLY
)

# Collections of Kong OSS 3.9 entities decK and other clients read, kept empty here.
# (Enterprise ones, consumer_groups, workspaces, mtls-auths, are 404s, as in OSS.)
EMPTY_COLLECTIONS = frozenset({"vaults", "keys", "key-sets", "filter-chains"})


def kind_of(segments: list[str]) -> str:
    """The entity kind a request is about, for the counters ("targets" for nested targets)."""
    for segment in reversed(segments):
        if segment in TOP_LEVEL:
            return TOP_LEVEL[segment]
        if segment in ENTITIES or segment in EMPTY_COLLECTIONS or segment in ("config", "status"):
            return segment
    return segments[0] if segments else "root"

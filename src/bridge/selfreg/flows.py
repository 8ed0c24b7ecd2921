"""Registration and unregistration as flows of Admin API calls (no I/O here).

Race-safety comes from creating with POST (never overwriting) and treating a
409 as "someone else just created it": read it back, compare, and update only
what differs. So N instances registering at once end with one service, one
route, one upstream and N targets, and a repeated registration writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..desired import OWNER_TAG_PREFIX, ServiceState, changed_fields, owner_tag
from ..kong.calls import Call, Flow, Reply
from ..kong.calls import segment as seg
from ..kong.errors import KongRejected, require
from ..kong.flows import paginate
from ..ownership import children, describe, is_owned, unowned_children
from .errors import OwnershipConflict, RegistrationError

Row = dict[str, Any]
CREATE_ATTEMPTS = 3
Created = list[tuple[str, str, str]]  # (kind, name, path by id) of what one call created


@dataclass(frozen=True)
class Action:
    """What happened to one entity: created, updated, unchanged, deleted, absent, kept."""

    kind: str
    name: str
    outcome: str
    detail: str = ""

    def __str__(self) -> str:
        extra = f" ({self.detail})" if self.detail else ""
        return f"{self.kind} {self.name}: {self.outcome}{extra}"


@dataclass
class Result:
    """The actions one registration or unregistration took."""

    actions: list[Action] = field(default_factory=list)

    @property
    def writes(self) -> int:
        return sum(a.outcome in ("created", "updated", "deleted") for a in self.actions)

    def add(self, kind: str, name: str, outcome: str, detail: str = "") -> None:
        self.actions.append(Action(kind, name, outcome, detail))


def _adopted_tags(row: Row, desired: Row) -> list[str]:
    others = [t for t in row.get("tags") or [] if not t.startswith(OWNER_TAG_PREFIX)]
    return sorted({*others, *desired.get("tags", [])})


def ensure(
    kind: str,
    name: str,
    path: str,
    create: Call,
    desired: Row,
    owner: str,
    adopt: bool,
    result: Result,
    track: tuple[Created, str] | None = None,
) -> Flow[Row]:
    """Make the entity at ``path`` match ``desired``; create it with ``create`` if missing.

    ``track``: (list, path template with ``{id}``) to remember the entity if
    this call creates it, so a failed registration can undo it.
    """
    for _attempt in range(CREATE_ATTEMPTS):
        reply: Reply = yield Call("GET", path)
        if reply.status == 404:
            created = yield create
            if created.status in (200, 201):
                result.add(kind, name, "created")
                if track is not None:
                    track[0].append((kind, name, track[1].format(id=created.body["id"])))
                return dict(created.body)
            if created.status != 409:  # 409: another instance won the race; read theirs
                raise KongRejected(create, created)
            continue
        row: Row = require(Call("GET", path), reply, 200).body
        patch = changed_fields(desired, row)
        if not is_owned(row, owner):
            if not adopt:
                raise OwnershipConflict(
                    f"{kind} '{name}' exists in Kong without the owner tag "
                    f"'{owner_tag(owner)}'; refusing to change it (pass adopt=True to take it over)"
                )
            patch["tags"] = _adopted_tags(row, desired)
        if not patch:
            result.add(kind, name, "unchanged")
            return row
        call = Call("PATCH", path, patch)
        updated = require(call, (yield call), 200)
        result.add(kind, name, "updated", ", ".join(sorted(patch)))
        return dict(updated.body)
    raise OwnershipConflict(f"{kind} '{name}' kept disappearing while being created; giving up")


def register_flow(state: ServiceState, owner: str, adopt: bool = False) -> Flow[Result]:
    """Upstream, then targets, then the service, then its routes.

    When Kong refuses a step, what this call created is deleted again (and
    nothing else), so a failed registration leaves Kong as it found it.
    """
    result = Result()
    created: Created = []
    try:
        yield from _register(state, owner, adopt, result, created)
    except (KongRejected, RegistrationError) as exc:
        undone = yield from _undo(created)
        if not undone:
            raise
        kind = type(exc) if isinstance(exc, RegistrationError) else RegistrationError
        raise kind(f"{exc} (undone: {'; '.join(undone)})") from exc
    return result


def _register(
    state: ServiceState, owner: str, adopt: bool, result: Result, created: Created
) -> Flow[None]:
    if state.upstream is not None:
        up = state.upstream
        up_path = f"/upstreams/{seg(up.name)}"
        upstream = yield from ensure(
            "upstream",
            up.name,
            up_path,
            Call("POST", "/upstreams", up.body()),
            up.body(),
            owner,
            adopt,
            result,
            (created, "/upstreams/{id}"),
        )
        for target in state.targets:
            body = target.body()
            yield from ensure(
                "target",
                f"{up.name}/{target.target}",
                f"{up_path}/targets/{seg(target.target)}",
                Call("POST", f"{up_path}/targets", body),
                {k: v for k, v in body.items() if k != "target"},
                owner,
                adopt,
                result,
                (created, f"/upstreams/{upstream['id']}/targets/{{id}}"),
            )
    svc = state.service
    service = yield from ensure(
        "service",
        svc.name,
        f"/services/{seg(svc.name)}",
        Call("POST", "/services", svc.body()),
        svc.body(),
        owner,
        adopt,
        result,
        (created, "/services/{id}"),
    )
    for route in state.routes:
        body = {**route.body(), "service": {"id": service["id"]}}
        yield from ensure(
            "route",
            route.name,
            f"/routes/{seg(route.name)}",
            Call("POST", f"/services/{service['id']}/routes", body),
            body,
            owner,
            adopt,
            result,
            (created, "/routes/{id}"),
        )


def _undo(created: Created) -> Flow[list[str]]:
    """Delete what one call created, newest first; a parent that gained children stays."""
    undone: list[str] = []
    for kind, name, path in reversed(created):
        if kind in ("upstream", "service"):
            found = yield from children(f"{kind}s", path.rsplit("/", 1)[-1])
            if found:  # another instance registered meanwhile: theirs would go with it
                undone.append(f"{kind} {name} kept: {describe(*found[0])} arrived")
                continue
        reply = yield Call("DELETE", path)
        if reply.status not in (204, 404):
            undone.append(f"{kind} {name} could not be deleted ({reply.status})")
            break
        undone.append(f"{kind} {name} deleted")
    return undone


def _delete(kind: str, name: str, path: str, result: Result) -> Flow[None]:
    call = Call("DELETE", path)
    reply = yield call
    require(call, reply, 204, 404)
    result.add(kind, name, "deleted" if reply.status == 204 else "absent")


def unregister_flow(state: ServiceState, owner: str, remove_service: bool = False) -> Flow[Result]:
    """Remove this instance's target; remove the service when asked or when it was the last."""
    result = Result()
    up = state.upstream
    if up is not None:
        up_path = f"/upstreams/{seg(up.name)}"
        for target in state.targets:
            path = f"{up_path}/targets/{seg(target.target)}"
            reply = yield Call("GET", path)
            if reply.status == 404:
                result.add("target", target.target, "absent")
            elif is_owned(require(Call("GET", path), reply, 200).body, owner):
                yield from _delete("target", target.target, path, result)
            else:
                result.add("target", target.target, "kept", "not ours")
        if not remove_service:
            upstream = yield Call("GET", up_path)
            if upstream.status == 404:
                return result
            remaining = yield from paginate(f"{up_path}/targets")
            remove_service = not remaining
    if remove_service:
        yield from _remove_service(state, owner, result)
    return result


def _not_ours(foreign: list[str]) -> str:
    return f"holds what is not ours: {', '.join(foreign)}"


def _remove_route(route: Row, owner: str, result: Result) -> Flow[None]:
    """Delete our route, unless a plugin someone attached to it would go with it."""
    name = route.get("name") or route["id"]
    foreign = yield from unowned_children("routes", route["id"], owner)
    if foreign:
        result.add("route", name, "kept", _not_ours(foreign))
        return
    yield from _delete("route", name, f"/routes/{route['id']}", result)


def _remove_service(state: ServiceState, owner: str, result: Result) -> Flow[None]:
    """Routes, then the service, then the upstream: each only if it carries our tag."""
    name = state.service.name
    path = f"/services/{seg(name)}"
    reply = yield Call("GET", path)
    if reply.status == 200 and not is_owned(reply.body, owner):
        result.add("service", name, "kept", "not ours")
        return
    if reply.status == 200:
        service = reply.body
        routes = yield from paginate(f"/services/{service['id']}/routes")
        for route in routes:
            if is_owned(route, owner):
                yield from _remove_route(route, owner, result)
        # The shared rule (ownership.py): a parent holding what is not ours stays.
        foreign = yield from unowned_children("services", service["id"], owner)
        if foreign or any(a.kind == "route" and a.outcome == "kept" for a in result.actions):
            result.add("service", name, "kept", _not_ours(foreign) if foreign else "a route stays")
            return
        yield from _delete("service", name, f"/services/{service['id']}", result)
    else:
        require(Call("GET", path), reply, 404)
    up = state.upstream
    if up is None:
        return
    up_path = f"/upstreams/{seg(up.name)}"
    upstream = yield Call("GET", up_path)
    if upstream.status == 404:
        return
    if not is_owned(require(Call("GET", up_path), upstream, 200).body, owner):
        result.add("upstream", up.name, "kept", "not ours")
        return
    # Another instance may have registered meanwhile (or someone added a target by
    # hand): any target left would go with the upstream.
    remaining = yield from children("upstreams", up.name)
    foreign = [describe(kind, row) for kind, row in remaining if not is_owned(row, owner)]
    if foreign:
        result.add("upstream", up.name, "kept", _not_ours(foreign))
        return
    if remaining:
        result.add("upstream", up.name, "kept", f"{len(remaining)} target(s) registered since")
        return
    yield from _delete("upstream", up.name, up_path, result)

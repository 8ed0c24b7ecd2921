"""Consul emulator: KV (recurse, keys, cas, flags, locks) and sessions."""

from __future__ import annotations

import concurrent.futures
import time

import consul
import httpx
import pytest

from tests.helpers import eventually


def test_put_get_delete(consul_client: consul.Consul) -> None:
    assert consul_client.kv.put("cfg/a", "1", flags=7) is True
    _index, entry = consul_client.kv.get("cfg/a")
    assert entry["Value"] == b"1" and entry["Flags"] == 7 and entry["LockIndex"] == 0
    assert "Session" not in entry
    assert consul_client.kv.delete("cfg/a") is True
    assert consul_client.kv.get("cfg/a")[1] is None


def test_recurse_keys_and_separator(consul_client: consul.Consul) -> None:
    for key in ("app/a", "app/b/c", "app/b/d", "other"):
        consul_client.kv.put(key, key)
    _index, entries = consul_client.kv.get("app/", recurse=True)
    assert [e["Key"] for e in entries] == ["app/a", "app/b/c", "app/b/d"]
    assert consul_client.kv.get("app/", keys=True)[1] == ["app/a", "app/b/c", "app/b/d"]
    assert consul_client.kv.get("app/", keys=True, separator="/")[1] == ["app/a", "app/b/"]
    consul_client.kv.delete("app/b/", recurse=True)
    assert [e["Key"] for e in consul_client.kv.get("app/", recurse=True)[1]] == ["app/a"]


def test_missing_key_is_404_with_index(consul_http: httpx.Client) -> None:
    response = consul_http.get("/v1/kv/nothing")
    assert response.status_code == 404 and response.content == b""
    assert int(response.headers["x-consul-index"]) >= 1


def test_raw_and_null_values(consul_http: httpx.Client) -> None:
    consul_http.put("/v1/kv/raw", content=b"bytes\x00here")
    assert consul_http.get("/v1/kv/raw?raw").content == b"bytes\x00here"


def test_cas(consul_client: consul.Consul) -> None:
    assert consul_client.kv.put("c", "new", cas=0) is True
    assert consul_client.kv.put("c", "again", cas=0) is False
    index = consul_client.kv.get("c")[1]["ModifyIndex"]
    assert consul_client.kv.put("c", "stale", cas=index - 1) is False
    assert consul_client.kv.put("c", "fresh", cas=index) is True
    assert consul_client.kv.get("c")[1]["Value"] == b"fresh"


def test_value_size_limit(consul_http: httpx.Client) -> None:
    response = consul_http.put("/v1/kv/big", content=b"x" * (512 * 1024 + 1))
    assert response.status_code == 413


def test_acquire_release_and_lock_index(consul_client: consul.Consul) -> None:
    first = consul_client.session.create(lock_delay=0)
    second = consul_client.session.create(lock_delay=0)
    assert consul_client.kv.put("lock", "a", acquire=first) is True
    assert consul_client.kv.put("lock", "a", acquire=first) is True
    assert consul_client.kv.get("lock")[1]["LockIndex"] == 1
    assert consul_client.kv.put("lock", "b", acquire=second) is False
    assert consul_client.kv.put("lock", "b", release=second) is False
    assert consul_client.kv.put("lock", "a", release=first) is True
    assert "Session" not in consul_client.kv.get("lock")[1]
    assert consul_client.kv.put("lock", "b", acquire=second) is True
    assert consul_client.kv.get("lock")[1]["LockIndex"] == 2


def test_acquire_with_unknown_session_is_500(consul_http: httpx.Client) -> None:
    response = consul_http.put("/v1/kv/x?acquire=00000000-0000-0000-0000-000000000000")
    assert response.status_code == 500 and "invalid session" in response.text


def test_lock_delay_after_invalidation(consul_client: consul.Consul) -> None:
    holder = consul_client.session.create(lock_delay=15)
    waiter = consul_client.session.create()
    consul_client.kv.put("held", "x", acquire=holder)
    consul_client.session.destroy(holder)
    assert "Session" not in consul_client.kv.get("held")[1]  # behavior=release
    assert consul_client.kv.put("held", "y", acquire=waiter) is False


def test_delete_behavior(consul_client: consul.Consul) -> None:
    session = consul_client.session.create(behavior="delete", lock_delay=0)
    consul_client.kv.put("eph", "x", acquire=session)
    consul_client.session.destroy(session)
    assert consul_client.kv.get("eph")[1] is None


def test_session_info_list_node_renew(
    consul_client: consul.Consul, consul_http: httpx.Client
) -> None:
    session = consul_client.session.create(name="leader", ttl=10)
    _index, info = consul_client.session.info(session)
    assert info["Name"] == "leader" and info["TTL"] == "10s"
    assert info["LockDelay"] == 15_000_000_000 and info["Behavior"] == "release"
    node = info["Node"]
    assert [s["ID"] for s in consul_client.session.list()[1]] == [session]
    assert [s["ID"] for s in consul_client.session.node(node)[1]] == [session]
    renewed = consul_http.put(f"/v1/session/renew/{session}").json()
    assert isinstance(renewed, list) and renewed[0]["ID"] == session
    missing = consul_http.put("/v1/session/renew/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404 and "not found" in missing.text
    assert consul_http.get("/v1/session/info/00000000-0000-0000-0000-000000000000").json() == []
    assert consul_http.put(f"/v1/session/destroy/{session}").json() is True
    assert consul_http.put(f"/v1/session/destroy/{session}").json() is True


def test_session_create_errors_are_the_rpcs(consul_http: httpx.Client) -> None:
    """Validation happens in the Session.Apply RPC: its errors are 500s with Consul's text."""
    response = consul_http.put("/v1/session/create", json={"TTL": "100000s"})
    assert (response.status_code, response.text) == (
        500,
        "Invalid Session TTL '100000000000000', must be between [500ms=24h0m0s]",
    )
    response = consul_http.put("/v1/session/create", json={"Behavior": "explode"})
    assert (response.status_code, response.text) == (500, "Invalid Behavior setting 'explode'")
    response = consul_http.put("/v1/session/create", json={"TTL": "soon"})
    assert response.status_code == 500 and response.text.startswith("Session TTL 'soon' invalid")
    response = consul_http.put("/v1/session/create", json={"NodeChecks": ["nope"]})
    assert (response.status_code, response.text) == (500, "Missing check 'nope' registration")
    response = consul_http.put("/v1/session/create", json={"Node": "elsewhere"})
    assert (response.status_code, response.text) == (500, "Missing node registration")


def test_session_ttl_expiry_releases_locks(consul_http: httpx.Client) -> None:
    # The fixture's emulator allows short TTLs (min_session_ttl=0.5) to keep this fast.
    session = consul_http.put("/v1/session/create", json={"TTL": "1s", "LockDelay": "0s"}).json()[
        "ID"
    ]
    assert consul_http.put(f"/v1/kv/ttl-lock?acquire={session}").json() is True
    eventually(lambda: consul_http.get(f"/v1/session/info/{session}").json() == [], timeout=5)
    assert "Session" not in consul_http.get("/v1/kv/ttl-lock").json()[0]


def test_session_invalidated_by_critical_check(
    consul_client: consul.Consul, consul_http: httpx.Client
) -> None:
    consul_http.put(
        "/v1/agent/check/register", json={"Name": "guard", "TTL": "60s", "Status": "passing"}
    ).raise_for_status()
    session = consul_http.put(
        "/v1/session/create", json={"NodeChecks": ["serfHealth", "guard"], "LockDelay": 0}
    ).json()["ID"]
    consul_client.kv.put("guarded", "x", acquire=session)
    consul_client.agent.check.ttl_fail("guard")
    assert consul_http.get(f"/v1/session/info/{session}").json() == []


@pytest.mark.parametrize("value", ["1s", 5, 2_000_000_000])
def test_lock_delay_forms(consul_http: httpx.Client, value: object) -> None:
    session = consul_http.put("/v1/session/create", json={"LockDelay": value}).json()["ID"]
    delay = consul_http.get(f"/v1/session/info/{session}").json()[0]["LockDelay"]
    assert delay == {"1s": 1_000_000_000, 5: 5_000_000_000, 2_000_000_000: 2_000_000_000}[value]  # type: ignore[index]


def test_empty_value_reads_back_as_null(consul_http: httpx.Client) -> None:
    consul_http.put("/v1/kv/empty/one", content=b"").raise_for_status()
    consul_http.put("/v1/kv/empty/two", content=b"x").raise_for_status()
    (entry,) = consul_http.get("/v1/kv/empty/one").json()
    assert entry["Value"] is None
    listed = consul_http.get("/v1/kv/empty/?recurse").json()
    assert [e["Value"] for e in listed] == [None, "eA=="]
    raw = consul_http.get("/v1/kv/empty/one?raw")
    assert raw.status_code == 200 and raw.content == b""


def test_kv_root_needs_a_key_or_a_listing(consul_http: httpx.Client) -> None:
    response = consul_http.get("/v1/kv/")
    assert (response.status_code, response.text) == (400, "Missing key name")
    consul_http.put("/v1/kv/k", content=b"v").raise_for_status()
    assert consul_http.get("/v1/kv/?keys").json() == ["k"]
    assert [e["Key"] for e in consul_http.get("/v1/kv/?recurse").json()] == ["k"]


def _session(http: httpx.Client, **body: object) -> str:
    response = http.put("/v1/session/create", json=body)
    response.raise_for_status()
    return str(response.json()["ID"])


def _alive(http: httpx.Client, session: str) -> bool:
    return bool(http.get(f"/v1/session/info/{session}").json())


def test_session_expires_at_twice_its_ttl(consul_http: httpx.Client) -> None:
    """session_ttl.go: the timer is TTL x SessionTTLMultiplier (2), reset by each renewal."""
    started = time.monotonic()
    session = _session(consul_http, TTL="1s", LockDelay="0s")
    eventually(lambda: not _alive(consul_http, session), timeout=5)
    assert time.monotonic() - started >= 1.9


def test_renewals_keep_a_session_alive(consul_http: httpx.Client) -> None:
    session = _session(consul_http, TTL="1s")
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:  # renew at a third of the TTL, as clients do
        renewed = consul_http.put(f"/v1/session/renew/{session}")
        assert renewed.status_code == 200 and renewed.json()[0]["TTL"] == "1s"
        time.sleep(0.3)
    assert _alive(consul_http, session)
    eventually(lambda: not _alive(consul_http, session), timeout=5)
    gone = consul_http.put(f"/v1/session/renew/{session}")
    assert (gone.status_code, gone.text) == (404, f"Session id '{session}' not found")


def test_zero_ttl_never_expires(consul_http: httpx.Client) -> None:
    session = _session(consul_http, TTL="0s")
    time.sleep(0.3)  # past any timer a zero TTL could have started
    assert _alive(consul_http, session)


def test_lock_entry_fields_and_invalidation_at_one_index(
    consul_http: httpx.Client,
) -> None:
    session = _session(consul_http, LockDelay=0)
    assert consul_http.put(f"/v1/kv/lead?acquire={session}&flags=9", content=b"me").json()
    (entry,) = consul_http.get("/v1/kv/lead").json()
    assert (entry["Session"], entry["LockIndex"], entry["Flags"]) == (session, 1, 9)
    consul_http.put(f"/v1/session/destroy/{session}").raise_for_status()
    (entry,) = consul_http.get("/v1/kv/lead").json()
    assert "Session" not in entry and entry["LockIndex"] == 1 and entry["Value"] == "bWU="
    sessions_index = int(consul_http.get("/v1/session/list").headers["x-consul-index"])
    assert entry["ModifyIndex"] == sessions_index


def test_lock_delay_zero_lets_another_session_acquire_at_once(consul_http: httpx.Client) -> None:
    holder = _session(consul_http, LockDelay="0s")
    waiter = _session(consul_http)
    consul_http.put(f"/v1/kv/free?acquire={holder}").raise_for_status()
    consul_http.put(f"/v1/session/destroy/{holder}").raise_for_status()
    assert consul_http.put(f"/v1/kv/free?acquire={waiter}").json() is True
    assert consul_http.get("/v1/kv/free").json()[0]["LockIndex"] == 2


def test_blocking_kv_read_wakes_on_lock_changes(consul_http: httpx.Client) -> None:
    session = _session(consul_http, LockDelay="0s")
    consul_http.put("/v1/kv/watched", content=b"v").raise_for_status()
    for change in (
        f"/v1/kv/watched?acquire={session}",
        f"/v1/kv/watched?release={session}",
        f"/v1/kv/watched?acquire={session}",
        f"/v1/session/destroy/{session}",
    ):
        index = int(consul_http.get("/v1/kv/watched").headers["x-consul-index"])
        url = f"{str(consul_http.base_url).rstrip('/')}/v1/kv/watched?index={index}&wait=20s"
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            watch = pool.submit(httpx.get, url, timeout=30)
            eventually(lambda: consul_http.get("/_emulator/state").json()["blocked_queries"])
            consul_http.put(change).raise_for_status()
            woke = watch.result(10)
        assert int(woke.headers["x-consul-index"]) > index, change


def test_removed_check_invalidates_its_sessions(consul_http: httpx.Client) -> None:
    consul_http.put(
        "/v1/agent/service/register",
        json={"Name": "svc", "Check": {"TTL": "60s", "Status": "passing"}},
    ).raise_for_status()
    by_service = _session(consul_http, ServiceChecks=[{"ID": "service:svc"}], LockDelay=0)
    info = consul_http.get(f"/v1/session/info/{by_service}").json()[0]
    assert info["ServiceChecks"] == [{"ID": "service:svc", "Namespace": ""}]
    assert info["NodeChecks"] == ["serfHealth"]
    consul_http.put("/v1/agent/service/deregister/svc").raise_for_status()
    assert not _alive(consul_http, by_service)

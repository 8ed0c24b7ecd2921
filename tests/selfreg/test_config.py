"""The Microkubes service config file: loading, validation and the errors users see."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge import load_service_config
from bridge.selfreg import ServiceConfigError, parse_service_config
from bridge.selfreg.config import admin_url_for

DOC_CONFIG = {
    "service": {
        "name": "microservice-name",
        "port": 8080,
        "paths": ["/service-path"],
        "virtual_host": "microservice-name.service.consul",
        "weight": 10,
        "slots": 100,
    },
    "gatewayUrl": "http://kong:8000",
    "gatewayAdminUrl": "http://kong:8001",
    "security": {"jwt": {"keysDir": "/run/secrets"}},
    "database": {"dbName": "mongodb"},
}


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def test_doc_config_loads_and_tolerates_other_keys(tmp_path: Path) -> None:
    config = load_service_config(_write(tmp_path, DOC_CONFIG))
    assert config.service.name == "microservice-name"
    assert (config.service.weight, config.service.slots) == (10, 100)
    assert config.gatewayAdminUrl == "http://kong:8001"


def test_microservice_key_is_accepted(tmp_path: Path) -> None:
    data = {"microservice": DOC_CONFIG["service"]}
    assert load_service_config(_write(tmp_path, data)).service.port == 8080


def test_env_default_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVICE_CONFIG_FILE", str(_write(tmp_path, DOC_CONFIG)))
    assert load_service_config().service.name == "microservice-name"


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ServiceConfigError, match=r"nope\.json: cannot read service config"):
        load_service_config(tmp_path / "nope.json")


def test_bad_json_names_line_and_column(tmp_path: Path) -> None:
    with pytest.raises(ServiceConfigError, match=r"not valid JSON at line 2, column 1"):
        load_service_config(_write(tmp_path, '{"service":\n}'))


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        ({"port": 80, "paths": ["/a"]}, "service.name: required field missing"),
        ({"name": "a b", "port": 80, "paths": ["/a"]}, "service.name: expected a Kong name"),
        (
            {"name": "a", "port": 70000, "paths": ["/a"]},
            "service.port: Input should be less than or equal to 65535 (got 70000)",
        ),
        ({"name": "a", "port": 80}, "expected at least one of 'paths' or 'hosts'"),
        (
            {"name": "a", "port": 80, "paths": ["/a"], "slots": 5},
            "service.slots: Input should be greater than or equal to 10 (got 5)",
        ),
        ({"name": "a", "port": True, "paths": ["/a"]}, "service.port: Input should be a valid"),
        ({"name": "a", "port": "8080", "paths": ["/a"]}, "service.port: Input should be a valid"),
        ({"name": "a", "port": 80.0, "paths": ["/a"]}, "service.port: Input should be a valid"),
        ({"name": "a", "port": 80, "paths": "/a"}, "service.paths: Input should be a valid list"),
        ({"name": "a", "port": 80, "paths": ["x"]}, "service.paths: expected paths starting"),
        ({"name": "a", "port": 80, "paths": ["/a b"]}, "service.paths: expected paths starting"),
        ({"name": "a", "port": 80, "paths": ["~/("]}, "service.paths: expected a valid regex"),
        ({"name": "a", "port": 80, "hosts": ["a b"]}, "service.hosts: expected host names"),
        ({"name": "a", "port": 80, "paths": ["/a"], "methods": ["get"]}, "expected upper-case"),
        ({"name": "a", "port": 80, "paths": ["/a"], "protocols": ["ftp"]}, "expected one of"),
        ({"name": "a", "port": 80, "paths": ["/a"], "weight": "5"}, "service.weight: Input"),
        ({"name": "a", "port": 80, "paths": ["/a"], "strip_path": "no"}, "service.strip_path"),
        ({"name": "a", "port": 80, "paths": ["/a"], "virtual_host": "a b"}, "expected a DNS name"),
        ({"name": "a", "port": 80, "paths": ["/a"], "address": "x y"}, "an IP address or a DNS"),
    ],
)
def test_invalid_fields_name_file_field_and_expectation(
    tmp_path: Path, service: dict, expected: str
) -> None:
    path = _write(tmp_path, {"service": service})
    with pytest.raises(ServiceConfigError) as error:
        load_service_config(path)
    assert str(path) in str(error.value)
    assert expected in str(error.value)


def test_missing_service_section() -> None:
    with pytest.raises(ServiceConfigError, match="service: required field missing"):
        parse_service_config({"gatewayUrl": "http://kong:8000"}, "x.json")


def test_admin_url_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    config = parse_service_config(DOC_CONFIG)
    monkeypatch.delenv("API_GATEWAY_URL", raising=False)
    assert admin_url_for(config) == "http://kong:8001"
    assert admin_url_for(None) == "http://localhost:8001"
    monkeypatch.setenv("API_GATEWAY_URL", "http://env:8001")
    assert admin_url_for(config) == "http://env:8001"
    assert admin_url_for(config, "http://flag:8001") == "http://flag:8001"


@given(
    st.one_of(st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2))
)
def test_garbage_port_never_crashes_only_config_errors(port: object) -> None:
    data = {"service": {"name": "a", "port": port, "paths": ["/a"]}}
    try:
        config = parse_service_config(data)
    except ServiceConfigError as error:
        assert "service.port" in str(error)
    else:
        assert 1 <= config.service.port <= 65535


def test_invalid_utf8_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(b'{"service": {"name": "caf\xe9", "port": 80, "paths": ["/a"]}}')
    with pytest.raises(ServiceConfigError, match=r"config.json: not valid UTF-8 \(byte 25"):
        load_service_config(path)


def test_deeply_nested_json_names_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "[" * 200_000 + "]" * 200_000)
    with pytest.raises(ServiceConfigError, match=r"config\.json: JSON nested too deeply"):
        load_service_config(path)


def test_admin_url_in_the_file_must_be_http(tmp_path: Path) -> None:
    path = _write(tmp_path, {**DOC_CONFIG, "gatewayAdminUrl": "kong:8001"})
    with pytest.raises(ServiceConfigError, match="gatewayAdminUrl: expected an http"):
        load_service_config(path)


@given(st.text(max_size=12))
def test_any_path_is_accepted_only_if_kong_would_accept_it(path: str) -> None:
    from bridge.convention import route_path

    data = {"service": {"name": "a", "port": 80, "paths": [path]}}
    try:
        config = parse_service_config(data)
    except ServiceConfigError as error:
        assert "service.paths" in str(error)
    else:
        assert config.service.paths == [route_path(path)]
        assert path.startswith("/") or path.startswith("~/")

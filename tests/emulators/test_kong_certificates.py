"""Kong emulator: certificates and SNIs as Kong 3.x keeps them.

From Kong 3.9.1's sources: kong/db/schema/entities/certificates.lua and snis.lua,
kong/db/dao/certificates.lua and snis.lua (the ``snis`` shorthand and its messages),
kong/api/routes/certificates.lua (``/certificates/{sni}``, "SNI not found").
"""

from __future__ import annotations

import hashlib
import ssl
from typing import Any

import httpx
import pytest

from tests.emulators.kong_pem import (
    CA_CERT,
    CERT_A,
    CERT_B,
    EXPIRED_CA_CERT,
    KEY_A,
    KEY_B,
    LEAF_CERT,
)


def _certificate(kong: httpx.Client, **extra: Any) -> dict[str, Any]:
    response = kong.post("/certificates", json={"cert": CERT_A, "key": KEY_A, **extra})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_certificate_has_kongs_fields_and_an_empty_sni_list(kong: httpx.Client) -> None:
    body = _certificate(kong)
    assert body["cert"] == CERT_A and body["key"] == KEY_A
    assert body["cert_alt"] is None and body["key_alt"] is None and body["tags"] is None
    assert body["snis"] == []
    assert kong.get(f"/certificates/{body['id']}").json() == body


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"cert": CERT_A, "key": KEY_B}, {"@entity": ["certificate does not match key"]}),
        ({"key": KEY_A}, {"cert": "required field missing"}),
        (
            {"cert": CERT_A, "key": KEY_A, "cert_alt": CERT_B},
            {"@entity": ["all or none of these fields must be set: 'cert_alt', 'key_alt'"]},
        ),
        (
            {"cert": CERT_A, "key": KEY_A, "cert_alt": CERT_B, "key_alt": KEY_A},
            {"@entity": ["alternative certificate does not match key"]},
        ),
    ],
)
def test_pem_pairs_are_validated(
    kong: httpx.Client, body: dict[str, Any], fields: dict[str, Any]
) -> None:
    response = kong.post("/certificates", json=body)
    assert response.status_code == 400
    assert response.json()["code"] == 2
    assert response.json()["fields"] == fields


@pytest.mark.parametrize(
    ("body", "field", "prefix"),
    [
        ({"cert": "junk", "key": KEY_A}, "cert", "invalid certificate: "),
        ({"cert": CERT_A, "key": "junk"}, "key", "invalid key: "),
        ({"cert": CERT_A, "key": KEY_A.replace("M", "N", 3)}, "key", "invalid key: "),
    ],
)
def test_unreadable_pem_is_refused(
    kong: httpx.Client, body: dict[str, Any], field: str, prefix: str
) -> None:
    """OpenSSL's own reason follows the prefix (it differs between builds)."""
    response = kong.post("/certificates", json=body)
    assert response.status_code == 400
    fields = response.json()["fields"]
    assert list(fields) == [field] and fields[field].startswith(prefix)


def test_snis_shorthand_creates_sorted_sni_entities(kong: httpx.Client) -> None:
    body = _certificate(kong, snis=["b.example", "*.a.example"])
    assert body["snis"] == ["*.a.example", "b.example"]
    snis = kong.get(f"/certificates/{body['id']}/snis").json()["data"]
    assert sorted(sni["name"] for sni in snis) == ["*.a.example", "b.example"]
    assert all(sni["certificate"] == {"id": body["id"]} for sni in snis)
    assert kong.get("/snis/b.example").json()["certificate"] == {"id": body["id"]}
    assert kong.get("/snis/b.example/certificate").json()["id"] == body["id"]


def test_sni_already_on_another_certificate(kong: httpx.Client) -> None:
    first = _certificate(kong, snis=["a.example"])
    body = {"cert": CERT_B, "key": KEY_B, "snis": ["a.example"]}
    response = kong.post("/certificates", json=body)
    assert response.status_code == 400
    message = f"a.example already associated with existing certificate '{first['id']}'"
    assert response.json() == {
        "code": 2,
        "name": "schema violation",
        "message": f"schema violation (snis: {message})",
        "fields": {"snis": message},
    }
    assert len(kong.get("/certificates").json()["data"]) == 1


def test_duplicated_sni_in_one_list(kong: httpx.Client) -> None:
    response = kong.post(
        "/certificates", json={"cert": CERT_A, "key": KEY_A, "snis": ["x.example", "x.example"]}
    )
    assert response.status_code == 400
    assert response.json()["fields"] == {"snis": "x.example is duplicated"}


def test_sni_names_are_unique(kong: httpx.Client) -> None:
    certificate = _certificate(kong, snis=["a.example"])
    response = kong.post("/snis", json={"name": "a.example", "certificate": certificate})
    assert response.status_code == 409
    assert response.json() == {
        "code": 5,
        "name": "unique constraint violation",
        "message": "UNIQUE violation detected on '{name=\"a.example\"}'",
        "fields": {"name": "a.example"},
    }


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("10.0.0.1", "must not be an IP"),
        ("a.example:443", "must not have a port"),
        ("a.*.example", "wildcard must be leftmost or rightmost character"),
        ("*.a.*", "only one wildcard must be specified"),
    ],
)
def test_sni_names_are_wildcard_hosts(kong: httpx.Client, name: str, error: str) -> None:
    certificate = _certificate(kong)
    response = kong.post(f"/certificates/{certificate['id']}/snis", json={"name": name})
    assert response.status_code == 400
    assert response.json()["fields"] == {"name": error}


def test_patch_snis_replaces_and_put_without_snis_clears(kong: httpx.Client) -> None:
    certificate = _certificate(kong, snis=["a.example", "b.example"])
    patched = kong.patch(f"/certificates/{certificate['id']}", json={"snis": ["c.example"]})
    assert patched.json()["snis"] == ["c.example"]
    assert [sni["name"] for sni in kong.get("/snis").json()["data"]] == ["c.example"]
    untouched = kong.patch(f"/certificates/{certificate['id']}", json={"tags": ["t"]})
    assert untouched.json()["snis"] == ["c.example"]
    put = kong.put(f"/certificates/{certificate['id']}", json={"cert": CERT_A, "key": KEY_A})
    assert put.status_code == 200 and put.json()["snis"] == []
    assert kong.get("/snis").json()["data"] == []


def test_certificate_found_by_sni_name(kong: httpx.Client) -> None:
    certificate = _certificate(kong, snis=["a.example"])
    assert kong.get("/certificates/a.example").json()["id"] == certificate["id"]
    missing = kong.get("/certificates/b.example")
    assert missing.status_code == 404 and missing.json() == {"message": "SNI not found"}
    nested = kong.get("/certificates/a.example/snis").json()["data"]
    assert [sni["name"] for sni in nested] == ["a.example"]
    assert kong.get("/certificates/b.example/snis").json() == {"message": "SNI not found"}
    body = {"cert": CERT_B, "key": KEY_B, "snis": ["x.example"]}
    created = kong.put("/certificates/new.example", json=body)
    assert created.status_code == 200, created.text
    assert created.json()["snis"] == ["new.example", "x.example"]
    # Without a list, a PUT clears the SNIs, the URL's name included (prepare_args).
    replaced = kong.put("/certificates/new.example", json={"cert": CERT_B, "key": KEY_B})
    assert replaced.json()["id"] == created.json()["id"] and replaced.json()["snis"] == []


def test_nested_sni_endpoints_and_snis_follow_the_list(kong: httpx.Client) -> None:
    certificate = _certificate(kong)
    created = kong.post(f"/certificates/{certificate['id']}/snis", json={"name": "n.example"})
    assert created.status_code == 201
    assert kong.get(f"/certificates/{certificate['id']}").json()["snis"] == ["n.example"]
    assert kong.patch("/snis/n.example", json={"name": "m.example"}).status_code == 200
    assert kong.get(f"/certificates/{certificate['id']}").json()["snis"] == ["m.example"]
    assert kong.delete("/snis/m.example").status_code == 204
    assert kong.get(f"/certificates/{certificate['id']}").json()["snis"] == []


def test_deleting_a_certificate_deletes_its_snis(kong: httpx.Client) -> None:
    certificate = _certificate(kong, snis=["a.example"])
    assert kong.delete(f"/certificates/{certificate['id']}").status_code == 204
    assert kong.get("/snis").json()["data"] == []


def test_a_certificate_used_by_a_service_cannot_be_deleted(kong: httpx.Client) -> None:
    certificate = _certificate(kong)
    kong.post(
        "/services",
        json={"name": "s", "url": "https://a.example", "client_certificate": certificate},
    )
    response = kong.delete(f"/certificates/{certificate['id']}")
    assert response.status_code == 400
    assert response.json() == {
        "code": 4,
        "name": "foreign key violation",
        "message": "an existing 'services' entity references this 'certificates' entity",
        "fields": {"@referenced_by": "services"},
    }


def test_dbless_config_with_certificates_and_nested_snis(kong_dbless: httpx.Client) -> None:
    config = {
        "_format_version": "3.0",
        "certificates": [{"cert": CERT_A, "key": KEY_A, "snis": [{"name": "a.example"}]}],
    }
    assert kong_dbless.post("/config", json=config).status_code == 201
    certificate = kong_dbless.get("/certificates").json()["data"][0]
    assert certificate["snis"] == ["a.example"]
    assert kong_dbless.get("/snis/a.example").json()["certificate"] == {"id": certificate["id"]}
    bad = {"_format_version": "3.0", "certificates": [{"cert": CERT_A, "key": KEY_B}]}
    assert kong_dbless.post("/config", json=bad).status_code == 400


def test_a_single_sni_string_is_a_list_of_one_on_put_and_patch(kong: httpx.Client) -> None:
    certificate = _certificate(kong)
    patched = kong.patch(f"/certificates/{certificate['id']}", json={"snis": "s.example"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["snis"] == ["s.example"]


def test_ca_certificates_are_entities_with_kongs_checks(kong: httpx.Client) -> None:
    """entities/ca_certificates.lua: one CA certificate, not expired; its digest unique."""
    created = kong.post("/ca_certificates", json={"cert": CA_CERT, "tags": ["t"]})
    assert created.status_code == 201
    body = created.json()
    assert body["cert_digest"] == hashlib.sha256(ssl.PEM_cert_to_DER_cert(CA_CERT)).hexdigest()
    assert kong.get(f"/ca_certificates/{body['id']}").json()["tags"] == ["t"]
    again = kong.post("/ca_certificates", json={"cert": CA_CERT})
    assert again.status_code == 409 and again.json()["fields"] == {
        "cert_digest": body["cert_digest"]
    }
    for cert, problem in (
        (LEAF_CERT, 'certificate does not appear to be a CA because it is missing the "CA" '
         "basic constraint"),
        (EXPIRED_CA_CERT, 'certificate expired, "Not After" time is in the past'),
        (CA_CERT + CA_CERT, "please submit only one certificate at a time"),
    ):  # fmt: skip
        refused = kong.post("/ca_certificates", json={"cert": cert})
        assert refused.status_code == 400 and refused.json()["fields"] == {"@entity": [problem]}
    invalid = kong.post("/ca_certificates", json={"cert": "bar"})
    assert invalid.json()["fields"]["cert"].startswith("invalid certificate")


def test_a_ca_certificate_a_service_trusts_is_not_deleted(kong: httpx.Client) -> None:
    ca_id = kong.post("/ca_certificates", json={"cert": CA_CERT}).json()["id"]
    service = kong.post(
        "/services", json={"name": "s", "url": "https://a.test", "ca_certificates": [ca_id]}
    ).json()
    refused = kong.delete(f"/ca_certificates/{ca_id}")
    assert refused.status_code == 400
    assert refused.json() == {
        "code": 19,
        "name": "referenced by others",
        "message": f"ca certificate {ca_id} is still referenced by services (id = {service['id']})",
    }
    kong.patch("/services/s", json={"ca_certificates": None}).raise_for_status()
    assert kong.delete(f"/ca_certificates/{ca_id}").status_code == 204

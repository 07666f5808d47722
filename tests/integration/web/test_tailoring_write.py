"""Tailoring writes through the API: trust profiles, NHS options, mapping template versions, mileage tables;
who may make them, how bad values are refused, what is audited and published, and what the trust page shows."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from esr.kafka.profiles import ProfilePublishError
from esr.mapping.serde import template_to_dict
from esr.mapping.template import default_template
from esr.mapping.versions import TemplateVersion
from esr.profiles import TrustProfile
from esr.web.routers.tailoring import Publisher, get_publisher
from tests.integration.web.conftest import bearer, login

pytestmark = pytest.mark.integration


class RecordingPublisher(Publisher):
    def __init__(self) -> None:
        self.profiles: list[TrustProfile] = []
        self.templates: list[TemplateVersion] = []

    def profile(self, profile: TrustProfile) -> None:
        self.profiles.append(profile)

    def template(self, version: TemplateVersion) -> None:
        self.templates.append(version)


@pytest.fixture(autouse=True)
def no_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a broker in the environment nothing is published; tests that look at publishing record it."""
    monkeypatch.delenv("ESR_BOOTSTRAP_SERVERS", raising=False)


@pytest.fixture
def published(fresh_client: TestClient) -> Iterator[RecordingPublisher]:
    recorder = RecordingPublisher()
    fresh_client.app.dependency_overrides[get_publisher] = lambda: recorder  # type: ignore[attr-defined]
    yield recorder
    fresh_client.app.dependency_overrides.clear()  # type: ignore[attr-defined]


def _template(**changes: Any) -> dict[str, Any]:
    """The default template's JSON, renamed, with a UDF and a rule for it."""
    data = template_to_dict(default_template())
    data["name"] = "rx1 v1"
    data["udfs"] = [{"name": "band", "kind": "text", "description": "AfC band"}]
    data["rules"].append({"target": "udf.band", "sources": ["primary_assignment.grade"],
                          "transforms": [{"op": "trim"}, {"op": "upper"}]})
    data.update(changes)
    return data


def _audit(url: str) -> list[tuple[str, dict[str, Any]]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT action, detail FROM esr.web_audit WHERE action LIKE 'trust.%%' OR action"
                            " LIKE 'mapping.%%' OR action LIKE 'mileage.%%' ORDER BY audit_id").fetchall()
    return [(action, detail) for action, detail in rows]


def _problems(response: Any) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {"/".join(str(part) for part in d["loc"][1:]): d["msg"] for d in response.json()["detail"]}


# -- who may write ----------------------------------------------------------------------------------


WRITES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/api/trusts", {"vpd": "RX9", "name": "New Trust"}),
    ("PATCH", "/api/trusts/RX1", {"name": "Renamed"}),
    ("PUT", "/api/trusts/RX1/mapping", {"template": template_to_dict(default_template())}),
    ("PUT", "/api/trusts/RX1/mileage", {"categories": []}),
]


@pytest.mark.parametrize("user", ["viewer", "imports", "admin", "tailor_rx2", "nobody"])
@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_only_a_tailor_of_the_trust_may_write(client: TestClient, tokens: dict[str, str], user: str, method: str,
                                              path: str, body: dict[str, Any]) -> None:
    response = client.request(method, path, json=body, headers=bearer(tokens[user]))
    assert response.status_code == 403, response.text


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_writes_need_authentication(client: TestClient, method: str, path: str, body: dict[str, Any]) -> None:
    assert client.request(method, path, json=body).status_code == 401


@pytest.mark.parametrize("user", ["viewer", "imports", "admin"])
def test_mapping_reads_need_the_tailoring_role(client: TestClient, tokens: dict[str, str], user: str) -> None:
    for path in ("/api/trusts/RX1/mapping", "/api/trusts/RX1/mapping/versions", "/api/trusts/RX1/mapping/versions/0",
                 "/api/mapping/catalogue"):
        assert client.get(path, headers=bearer(tokens[user])).status_code == 403, path


def test_a_tailor_of_one_trust_reads_and_changes_only_that_trust(fresh_client: TestClient,
                                                                 tokens: dict[str, str]) -> None:
    rx2 = bearer(tokens["tailor_rx2"])
    assert fresh_client.get("/api/trusts/RX1/mapping", headers=rx2).status_code == 403
    assert fresh_client.get("/api/trusts/RX2/mapping", headers=rx2).status_code == 200
    changed = fresh_client.patch("/api/trusts/RX2", json={"import_frequency": "weekly"}, headers=rx2)
    assert changed.status_code == 200, changed.text
    assert changed.json()["import_frequency"] == "weekly"
    saved = fresh_client.put("/api/trusts/RX2/mapping", json={"template": _template()}, headers=rx2)
    assert saved.status_code == 201, saved.text
    assert saved.json()["author"] == "tailor_rx2"


def test_session_writes_need_the_csrf_header(fresh_client: TestClient) -> None:
    csrf = login(fresh_client, "tailor")
    assert fresh_client.patch("/api/trusts/RX1", json={"name": "Renamed"}).status_code == 403
    response = fresh_client.patch("/api/trusts/RX1", json={"name": "Renamed"}, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 200, response.text


# -- trust profiles ---------------------------------------------------------------------------------


def test_create_a_trust_with_its_options(fresh_client: TestClient, fresh_url: str, tokens: dict[str, str],
                                         published: RecordingPublisher) -> None:
    tailor = bearer(tokens["tailor"])
    body = {"vpd": "RX9", "name": "Riverside NHS Trust", "import_frequency": "weekly", "inbox_path": "/srv/esr/rx9",
            "nhs_options": {"employee_archiving": "automatic", "archive_grace_days": 30}}
    created = fresh_client.post("/api/trusts", json=body, headers=tailor)
    assert created.status_code == 201, created.text
    trust = created.json()
    assert (trust["vpd"], trust["name"], trust["import_frequency"], trust["inbox_path"], trust["active"]) == (
        "RX9", "Riverside NHS Trust", "weekly", "/srv/esr/rx9", True)
    assert trust["nhs_options"]["employee_archiving"] == "automatic"
    assert trust["nhs_options"]["archive_grace_days"] == 30
    assert trust["nhs_options"]["employee_activation"] == "none"  # a default
    assert trust["mileage_categories"] == []
    assert fresh_client.get("/api/trusts/RX9", headers=tailor).json() == trust
    assert [(p.vpd, p.inbox_path, p.nhs_options.archive_grace_days) for p in published.profiles] == [
        ("RX9", "/srv/esr/rx9", 30)]
    assert _audit(fresh_url) == [("trust.create", {"vpd": "RX9"})]


def test_a_vpd_is_taken_regardless_of_case(fresh_client: TestClient, tokens: dict[str, str],
                                           published: RecordingPublisher) -> None:
    response = fresh_client.post("/api/trusts", json={"vpd": "rx1", "name": "Clash"}, headers=bearer(tokens["tailor"]))
    assert response.status_code == 409
    assert published.profiles == []


def test_a_bad_new_trust_is_refused_with_every_problem(fresh_client: TestClient, fresh_url: str,
                                                       tokens: dict[str, str], published: RecordingPublisher) -> None:
    body = {"vpd": "R-9", "name": " ", "interface_version": 3, "import_frequency": "hourly",
            "nhs_options": {"archive_grace_days": -1, "colour": "blue"}}
    problems = _problems(fresh_client.post("/api/trusts", json=body, headers=bearer(tokens["tailor"])))
    assert {"import_frequency", "nhs_options.colour"} <= set(problems)
    # once the shapes are right, the profile model checks the values, all of them
    valid_shapes = {**body, "import_frequency": "daily", "nhs_options": {"archive_grace_days": -1}}
    problems = _problems(fresh_client.post("/api/trusts", json=valid_shapes, headers=bearer(tokens["tailor"])))
    assert set(problems) == {"vpd", "name", "interface_version", "nhs_options.archive_grace_days"}
    unknown = fresh_client.post("/api/trusts", json={"vpd": "RX8", "name": "x", "last_sequence": 5},
                                headers=bearer(tokens["tailor"]))
    assert unknown.status_code == 422
    assert published.profiles == []
    assert _audit(fresh_url) == []


def test_patch_merges_nhs_options_and_keeps_the_rest(fresh_client: TestClient, fresh_url: str,
                                                     tokens: dict[str, str], published: RecordingPublisher) -> None:
    tailor = bearer(tokens["tailor"])
    name = fresh_client.get("/api/trusts/RX1", headers=tailor).json()["name"]
    first = fresh_client.patch("/api/trusts/RX1", json={"nhs_options": {"employee_activation": "automatic"},
                                                        "inbox_path": "/srv/rx1"}, headers=tailor)
    assert first.status_code == 200, first.text
    second = fresh_client.patch("/api/trusts/RX1", json={"nhs_options": {"archive_grace_days": 14}, "active": False},
                                headers=tailor)
    trust = second.json()
    assert trust["nhs_options"]["employee_activation"] == "automatic"
    assert trust["nhs_options"]["archive_grace_days"] == 14
    assert trust["inbox_path"] == "/srv/rx1"
    assert trust["active"] is False
    assert trust["name"] == name
    cleared = fresh_client.patch("/api/trusts/RX1", json={"inbox_path": None}, headers=tailor).json()
    assert cleared["inbox_path"] is None
    unchanged = fresh_client.patch("/api/trusts/RX1", json={"active": False}, headers=tailor)
    assert unchanged.status_code == 200
    assert [p.active for p in published.profiles] == [True, False, False]
    assert _audit(fresh_url) == [
        ("trust.update", {"vpd": "RX1", "fields": ["inbox_path", "nhs_options"]}),
        ("trust.update", {"vpd": "RX1", "fields": ["active", "nhs_options"]}),
        ("trust.update", {"vpd": "RX1", "fields": ["inbox_path"]}),
    ]


def test_a_bad_patch_names_the_field_and_changes_nothing(fresh_client: TestClient, tokens: dict[str, str],
                                                         published: RecordingPublisher) -> None:
    tailor = bearer(tokens["tailor"])
    before = fresh_client.get("/api/trusts/RX1", headers=tailor).json()
    body = {"name": "Renamed", "nhs_options": {"archive_grace_days": 99999, "username_format": "{shoe_size}"}}
    problems = _problems(fresh_client.patch("/api/trusts/RX1", json=body, headers=tailor))
    assert "nhs_options.archive_grace_days" in problems
    assert any(path.startswith("nhs_options.username_format") for path in problems)
    assert "import_frequency" in _problems(
        fresh_client.patch("/api/trusts/RX1", json={"import_frequency": "monthly"}, headers=tailor))
    assert fresh_client.patch("/api/trusts/RX1", json={"vpd": "RX7"}, headers=tailor).status_code == 422
    assert fresh_client.get("/api/trusts/RX1", headers=tailor).json() == before
    assert published.profiles == []


def test_characters_postgresql_cannot_hold_are_refused(fresh_client: TestClient, tokens: dict[str, str]) -> None:
    tailor = bearer(tokens["tailor"])
    created = fresh_client.post("/api/trusts", json={"vpd": "RX9", "name": "Nul\x00Trust"}, headers=tailor)
    assert created.status_code == 400
    assert fresh_client.get("/api/trusts/RX9", headers=tailor).status_code == 404
    options = {"vpd": "RX9", "name": "Nine", "nhs_options": {"username_format": "{first_name}\x00"}}
    assert fresh_client.post("/api/trusts", json=options, headers=tailor).status_code == 400
    assert fresh_client.get("/api/trusts/RX9", headers=tailor).status_code == 404  # no half-made trust
    patched = fresh_client.patch("/api/trusts/RX1", json={"nhs_options": {"home_address_format": "{town}\x00"}},
                                 headers=tailor)
    assert patched.status_code == 400


def test_patching_an_unknown_trust_is_404(fresh_client: TestClient, tokens: dict[str, str]) -> None:
    response = fresh_client.patch("/api/trusts/QQQ", json={"name": "x"}, headers=bearer(tokens["tailor"]))
    assert response.status_code == 404


# -- mapping templates ------------------------------------------------------------------------------


def test_template_versions_through_the_api(fresh_client: TestClient, fresh_url: str, tokens: dict[str, str],
                                           published: RecordingPublisher) -> None:
    tailor = bearer(tokens["tailor"])
    default = fresh_client.get("/api/trusts/RX1/mapping", headers=tailor).json()
    assert (default["version"], default["author"]) == (0, "(default)")
    assert default["template"] == template_to_dict(default_template())
    assert fresh_client.get("/api/trusts/RX1/mapping/versions", headers=tailor).json() == []

    first = fresh_client.put("/api/trusts/RX1/mapping", json={"template": _template(), "note": "add band"},
                             headers=tailor)
    assert first.status_code == 201, first.text
    assert (first.json()["version"], first.json()["author"], first.json()["note"]) == (1, "tailor", "add band")
    again = fresh_client.put("/api/trusts/RX1/mapping", json={"template": _template(), "note": "same again"},
                             headers=tailor)
    assert again.status_code == 200
    assert again.json()["version"] == 1
    assert again.json()["note"] == "add band"
    second = fresh_client.put("/api/trusts/RX1/mapping", json={"template": _template(name="rx1 v2")}, headers=tailor)
    assert second.status_code == 201
    assert second.json()["version"] == 2

    versions = fresh_client.get("/api/trusts/RX1/mapping/versions", headers=tailor).json()
    assert [(v["version"], v["author"], v["udfs"]) for v in versions] == [(1, "tailor", 1), (2, "tailor", 1)]
    assert fresh_client.get("/api/trusts/RX1/mapping", headers=tailor).json()["version"] == 2
    assert fresh_client.get("/api/trusts/RX1/mapping/versions/1", headers=tailor).json()["template"]["name"] == "rx1 v1"
    assert fresh_client.get("/api/trusts/RX1/mapping/versions/0", headers=tailor).json()["version"] == 0
    assert fresh_client.get("/api/trusts/RX1/mapping/versions/3", headers=tailor).status_code == 404
    assert fresh_client.get("/api/trusts/RX2/mapping", headers=tailor).json()["version"] == 0  # per trust
    assert [v.version for v in published.templates] == [1, 2]
    assert _audit(fresh_url) == [("mapping.save", {"vpd": "RX1", "version": 1}),
                                 ("mapping.save", {"vpd": "RX1", "version": 2})]


def test_an_invalid_template_lists_every_problem_by_rule_path(fresh_client: TestClient, tokens: dict[str, str],
                                                              published: RecordingPublisher) -> None:
    template = _template()
    template["rules"] += [
        {"target": "surname", "sources": ["person.shoe_size"]},  # unknown field, duplicate target
        {"target": "hire_date", "sources": ["person.last_name"]},  # type mismatch (text into a date)
        {"target": "udf.missing", "sources": ["person.first_name"]},  # undeclared UDF
    ]
    count = len(template["rules"])
    response = fresh_client.put("/api/trusts/RX1/mapping", json={"template": template},
                                headers=bearer(tokens["tailor"]))
    problems = _problems(response)
    assert all(path.startswith("template/") for path in problems)
    paths = [path.removeprefix("template/") for path in problems]
    for index in (count - 3, count - 2, count - 1):
        assert any(path.startswith(f"rules[{index}]") for path in paths), (index, paths)
    assert len(problems) >= 4
    assert fresh_client.get("/api/trusts/RX1/mapping/versions", headers=bearer(tokens["tailor"])).json() == []
    assert published.templates == []


def test_template_shape_and_note_errors(fresh_client: TestClient, tokens: dict[str, str]) -> None:
    tailor = bearer(tokens["tailor"])
    shape = fresh_client.put("/api/trusts/RX1/mapping", json={"template": {"rules": "all of them"}}, headers=tailor)
    assert "template/rules" in _problems(shape)
    assert fresh_client.put("/api/trusts/RX1/mapping", json={"template": _template(), "note": "x" * 2001},
                            headers=tailor).status_code == 422
    assert fresh_client.put("/api/trusts/RX1/mapping", json={"note": "no template"}, headers=tailor).status_code == 422
    unknown = fresh_client.put("/api/trusts/QQQ/mapping", json={"template": _template()}, headers=tailor)
    assert unknown.status_code == 404
    assert fresh_client.get("/api/trusts/QQQ/mapping", headers=tailor).status_code == 404


def test_the_catalogue(client: TestClient, tokens: dict[str, str]) -> None:
    catalogue = client.get("/api/mapping/catalogue", headers=bearer(tokens["tailor_rx2"])).json()
    sources = {s["key"]: s for s in catalogue["sources"]}
    assert sources["person.last_name"]["record_type"] == "PRA"
    assert sources["primary_assignment.grade"]["kind"] == "text"
    assert {"payroll_number", "surname", "hire_date"} <= {f["name"] for f in catalogue["standard_fields"]}
    assert {"trim", "lookup", "default", "concat"} <= set(catalogue["transforms"])
    assert catalogue["udf_prefix"] == "udf."


# -- mileage tables ---------------------------------------------------------------------------------


def test_replace_the_mileage_table(fresh_client: TestClient, fresh_url: str, tokens: dict[str, str]) -> None:
    tailor = bearer(tokens["tailor"])
    body = {"categories": [
        {"code": " NHS_MILEAGE_CASUAL ", "engine_from": 0, "engine_to": 1500, "rate_per_mile": "0.56"},
        {"code": "NHS_MILEAGE_CASUAL", "engine_from": 1501, "rate_per_mile": 0.45, "description": "over 1500 cc"},
    ]}
    response = fresh_client.put("/api/trusts/RX2/mileage", json=body, headers=tailor)
    assert response.status_code == 200, response.text
    table = response.json()["mileage_categories"]
    assert [(m["code"], m["engine_from"], m["engine_to"], m["rate_per_mile"]) for m in table] == [
        ("NHS_MILEAGE_CASUAL", 0, 1500, "0.5600"), ("NHS_MILEAGE_CASUAL", 1501, None, "0.4500")]
    assert _audit(fresh_url) == [("mileage.replace", {"vpd": "RX2", "categories": 2})]


def test_a_bad_mileage_table_is_refused_whole(fresh_client: TestClient, tokens: dict[str, str]) -> None:
    tailor = bearer(tokens["tailor"])
    before = fresh_client.get("/api/trusts/RX1", headers=tailor).json()["mileage_categories"]
    body = {"categories": [
        {"code": "CASUAL", "engine_from": 0, "engine_to": 2000, "rate_per_mile": "0.56"},
        {"code": "casual", "engine_from": 1500, "rate_per_mile": "0.45"},  # overlaps (codes are case-insensitive)
        {"code": "LEASE", "engine_from": 2000, "engine_to": 1000, "rate_per_mile": "-1"},
    ]}
    problems = _problems(fresh_client.put("/api/trusts/RX1/mileage", json=body, headers=tailor))
    assert any(path.startswith("categories[1]") for path in problems)
    assert any(path.startswith("categories[2]") for path in problems)
    assert fresh_client.get("/api/trusts/RX1", headers=tailor).json()["mileage_categories"] == before
    assert fresh_client.put("/api/trusts/QQQ/mileage", json={"categories": []}, headers=tailor).status_code == 404


# -- publishing and the page ------------------------------------------------------------------------


def test_a_publisher_exists_only_with_a_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    assert get_publisher() is None
    monkeypatch.setenv("ESR_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    publisher = get_publisher()
    assert publisher is not None
    assert publisher.bootstrap_servers == "127.0.0.1:9092"


def test_a_failed_publish_keeps_the_change(fresh_client: TestClient, tokens: dict[str, str],
                                           monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def refuse(_self: object, _profile: TrustProfile) -> None:
        raise ProfilePublishError("broker down")

    def refuse_template(*_args: object, **_kwargs: object) -> int:
        from streams.mapping_stage import MappingStageError

        raise MappingStageError("broker down")

    monkeypatch.setattr("esr.kafka.profiles.ProfilePublisher.__call__", refuse)
    monkeypatch.setattr("streams.mapping_stage.publish_templates", refuse_template)
    monkeypatch.setenv("ESR_BOOTSTRAP_SERVERS", "127.0.0.1:9")
    tailor = bearer(tokens["tailor"])
    with caplog.at_level(logging.WARNING, logger="esr.web"):
        patched = fresh_client.patch("/api/trusts/RX1", json={"import_frequency": "weekly"}, headers=tailor)
        saved = fresh_client.put("/api/trusts/RX1/mapping", json={"template": _template()}, headers=tailor)
    assert patched.status_code == 200
    assert saved.status_code == 201
    assert fresh_client.get("/api/trusts/RX1", headers=tailor).json()["import_frequency"] == "weekly"
    assert fresh_client.get("/api/trusts/RX1/mapping", headers=tailor).json()["version"] == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("profile saved but not published" in w for w in warnings)
    assert any("template version 1 saved but not published" in w for w in warnings)


def test_the_trust_page_shows_the_template_and_its_versions(fresh_client: TestClient, tokens: dict[str, str]) -> None:
    login(fresh_client, "tailor")
    page = fresh_client.get("/tailoring/RX1").text
    assert 'id="mapping-rules"' in page
    assert "payroll_number" in page
    assert "Version 0: the default template" in page
    assert "No saved versions" in page
    note = "<script>alert(1)</script>"
    fresh_client.put("/api/trusts/RX1/mapping", json={"template": _template(), "note": note},
                     headers=bearer(tokens["tailor"]))
    page = fresh_client.get("/tailoring/RX1").text
    assert 'id="mapping-versions"' in page
    assert "udf.band" in page
    assert "primary_assignment.grade" in page
    assert "trim | upper" in page
    assert note not in page
    assert "&lt;script&gt;" in page
    assert "<dt>Only primary address</dt><dd>yes</dd>" in page

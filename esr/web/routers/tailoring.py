"""Tailoring: trust profiles, NHS options, mapping templates and NHS mileage tables (DESIGN.md §6).

Reading needs TAILORING_READ in the trust, changing TAILORING_WRITE (both: the Tailoring role). Writes go
through the same code as the CLI: profiles through the ledger (`esr trust add|set`), templates through
`esr.mapping.store` (`esr mapping set`), mileage tables through `esr.mileage.store` (`esr mileage import`),
and each is checked as a whole by its domain model; a bad value answers 422 listing every problem with its
path (``{"loc": ["body", ..., path], "msg": ...}``). Every change is audited in esr.web_audit. When the
environment names a broker (ESR_BOOTSTRAP_SERVERS), a saved profile or template is also published for the
running stream workers; otherwise `esr run` publishes them all when it starts.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from connectors.file_source.ledger import Ledger, TrustExists
from esr.config import Settings
from esr.mapping.catalogue import SOURCE_FIELDS, STANDARD_FIELD_LIST, UDF_PREFIX
from esr.mapping.serde import template_from_dict, template_to_dict
from esr.mapping.store import UnknownTrust
from esr.mapping.template import MappingRule
from esr.mapping.transforms import TRANSFORM_TYPES
from esr.mapping.versions import TemplateVersion
from esr.mileage.model import MileageCategory
from esr.profiles import (
    NhsOptions,
    TrustProfile,
    check_new_vpd,
    nhs_options_from_dict,
    nhs_options_to_dict,
    profile_from_dict,
    profile_to_dict,
)
from esr.validation import ValidationError
from esr.web import queries
from esr.web.db import Database, Row
from esr.web.deps import DB, csrf_protect, get_settings, require, requires_api, requires_page
from esr.web.models import (
    MappingCatalogue,
    MappingSave,
    MappingVersion,
    MappingVersionSummary,
    MileageTable,
    Trust,
    TrustCreate,
    TrustDetail,
    TrustPatch,
)
from esr.web.roles import Permission, Principal
from esr.web.templating import render

log = logging.getLogger("esr.web")

pages = APIRouter(dependencies=[Depends(csrf_protect)])
api = APIRouter(prefix="/api", tags=["tailoring"])

Reader = Annotated[Principal, requires_page(Permission.TAILORING_READ)]
ApiReader = Annotated[Principal, requires_api(Permission.TAILORING_READ)]
ApiWriter = Annotated[Principal, requires_api(Permission.TAILORING_WRITE)]
Vpd = Annotated[str, Path(pattern=r"^[0-9A-Za-z]{3}$")]
VersionNumber = Annotated[int, Path(ge=0, le=2**31 - 1)]

#: the profile columns the ledger's update_trust sets, as named in the profile's JSON
_PATCHABLE = ("name", "import_frequency", "inbox_path", "active", "nhs_options")
_PUBLISH_TIMEOUT = 10.0


class Publisher:
    """Publishes saved profiles (esr.trust-profiles) and templates (esr.mapping-templates) to a broker. A
    failure is logged, not raised: the change is stored, and `esr run` publishes everything when it starts."""

    def __init__(self, settings: Settings, bootstrap_servers: str) -> None:
        self.settings = settings
        self.bootstrap_servers = bootstrap_servers

    def profile(self, profile: TrustProfile) -> None:
        from esr.kafka.config import producer_config
        from esr.kafka.profiles import ProfilePublisher, ProfilePublishError

        try:
            ProfilePublisher(producer_config(self.settings, self.bootstrap_servers), _PUBLISH_TIMEOUT)(profile)
        except ProfilePublishError as exc:
            log.warning("trust %s: profile saved but not published: %s", profile.vpd, exc)

    def template(self, version: TemplateVersion) -> None:
        from esr.kafka.config import client_config
        from streams.mapping_stage import MappingStageError, publish_templates

        try:
            publish_templates(client_config(self.settings, self.bootstrap_servers), [version], _PUBLISH_TIMEOUT)
        except MappingStageError as exc:
            log.warning("trust %s: template version %d saved but not published: %s", version.vpd, version.version, exc)


def get_publisher() -> Publisher | None:
    """A publisher when ESR_BOOTSTRAP_SERVERS names a broker, else None."""
    settings = Settings()
    return Publisher(settings, settings.bootstrap_servers) if settings.bootstrap_servers else None


MaybePublisher = Annotated[Publisher | None, Depends(get_publisher)]


def _invalid(error: ValidationError, *where: str) -> JSONResponse:
    detail = [{"loc": ["body", *where, p.path], "msg": p.message, "type": "value_error"} for p in error.problems]
    return JSONResponse({"detail": detail}, status_code=422)


def _ledger(request: Request, publisher: Publisher | None) -> Ledger:
    return Ledger(get_settings(request).database_url, on_profile_change=publisher.profile if publisher else None)


def _options(stored: dict[str, Any] | None) -> dict[str, Any]:
    """Stored NHS options with every default filled in (keys a newer program added are skipped)."""
    return nhs_options_to_dict(NhsOptions() if stored is None else nhs_options_from_dict(stored, strict=False))


def _trust(db: Database, principal: Principal, vpd: str) -> dict[str, Any]:
    require(Permission.TAILORING_READ, principal, vpd)
    row = queries.trust(db, vpd)
    if row is None:
        raise HTTPException(404, "No such trust.")
    row["nhs_options"] = _options(row["nhs_options"])
    row["mileage_categories"] = queries.mileage_categories(db, vpd)
    return row


def _existing(db: Database, principal: Principal, vpd: str, permission: Permission) -> None:
    require(permission, principal, vpd)
    if queries.trust(db, vpd) is None:
        raise HTTPException(404, "No such trust.")


def _rule_row(rule: MappingRule) -> dict[str, str]:
    steps = []
    for transform in rule.transforms:
        params = ", ".join(f"{k}={v!r}" for k, v in transform.params().items())
        steps.append(transform.op + (f"({params})" if params else ""))
    sources = " + ".join(rule.sources) or "(no source)"
    return {"target": rule.target, "sources": sources, "transforms": " | ".join(steps)}


def _version_out(version: TemplateVersion) -> dict[str, Any]:
    return {"vpd": version.vpd, "version": version.version, "author": version.author,
            "created_at": version.created_at, "note": version.note, "template": template_to_dict(version.template)}


def _summary(version: TemplateVersion) -> dict[str, Any]:
    return {"vpd": version.vpd, "version": version.version, "author": version.author,
            "created_at": version.created_at, "note": version.note, "rules": len(version.template.rules),
            "udfs": len(version.template.udfs)}


# -- pages ------------------------------------------------------------------------------------------


@pages.get("/tailoring")
def trusts_page(request: Request, principal: Reader, db: DB) -> Response:
    rows = queries.trusts(db, principal.scope(Permission.TAILORING_READ).sql_vpds())
    return render(request, "tailoring/trusts.html", principal, "tailoring", trusts=rows)


@pages.get("/tailoring/{vpd}")
def trust_page(request: Request, principal: Reader, db: DB, vpd: Vpd) -> Response:
    trust = _trust(db, principal, vpd)
    current = queries.mapping_current(db, vpd)
    return render(
        request, "tailoring/trust.html", principal, "tailoring", trust=trust, mapping=current,
        rules=[_rule_row(rule) for rule in current.template.rules], versions=queries.mapping_history(db, vpd)[::-1],
    )


# -- API: trust profiles ----------------------------------------------------------------------------


@api.get("/trusts", response_model=list[Trust], summary="Trust profiles")
def trusts_api(principal: ApiReader, db: DB) -> list[Row]:
    return queries.trusts(db, principal.scope(Permission.TAILORING_READ).sql_vpds())


@api.get("/trusts/{vpd}", response_model=TrustDetail, summary="A trust profile with its NHS options and mileage table")
def trust_api(principal: ApiReader, db: DB, vpd: Vpd) -> dict[str, Any]:
    return _trust(db, principal, vpd)


@api.post(
    "/trusts", response_model=TrustDetail, status_code=201, summary="Register a trust",
    responses={409: {"description": "The VPD is taken (regardless of case)."}, 422: {"description": "Invalid."}},
)
def create_trust_api(
    request: Request, principal: ApiWriter, db: DB, publisher: MaybePublisher, body: TrustCreate
) -> Any:
    require(Permission.TAILORING_WRITE, principal, body.vpd)
    try:
        profile = profile_from_dict(body.model_dump())
    except ValidationError as exc:
        return _invalid(exc)
    wanted = profile_to_dict(profile)
    added = profile_to_dict(TrustProfile(profile.vpd, profile.name))
    columns = {k: wanted[k] for k in _PATCHABLE if wanted[k] != added[k]}
    # One transaction (a failure leaves no half-made trust), published once, whole, after the commit.
    with _ledger(request, None) as ledger:
        try:
            with ledger.conn.transaction():
                check_new_vpd(profile.vpd, [t.vpd for t in ledger.trusts()])
                ledger.add_trust(profile.vpd, profile.name, interface_version=profile.interface_version,
                                 import_frequency=profile.import_frequency.value)
                ledger.update_trust(profile.vpd, **columns)
        except (ValidationError, TrustExists) as exc:
            raise HTTPException(409, f"Trust {profile.vpd} is already registered.") from exc
        saved = ledger.profile(profile.vpd)
    queries.audit_trust_change(db, principal.user_id, "trust.create", {"vpd": profile.vpd})
    if publisher is not None and saved is not None:
        publisher.profile(saved)
    return _trust(db, principal, profile.vpd)


@api.patch(
    "/trusts/{vpd}", response_model=TrustDetail, summary="Change a trust profile or its NHS options",
    responses={422: {"description": "Invalid: every problem, with its field."}},
)
def patch_trust_api(
    request: Request, principal: ApiWriter, db: DB, publisher: MaybePublisher, vpd: Vpd, body: TrustPatch
) -> Any:
    require(Permission.TAILORING_WRITE, principal, vpd)
    with _ledger(request, publisher) as ledger:
        current = ledger.profile(vpd)
        if current is None:
            raise HTTPException(404, "No such trust.")
        old = profile_to_dict(current)
        changed = {**old, "nhs_options": dict(old["nhs_options"])}
        for name in body.model_fields_set:
            value = getattr(body, name)
            if name == "nhs_options":
                changed["nhs_options"].update(value or {})
            elif value is not None or name == "inbox_path":
                changed[name] = value
        try:
            new = profile_to_dict(profile_from_dict(changed))
        except ValidationError as exc:
            return _invalid(exc)
        columns = {k: new[k] for k in _PATCHABLE if new[k] != old[k]}
        ledger.update_trust(vpd, **columns)
    if columns:
        queries.audit_trust_change(db, principal.user_id, "trust.update", {"vpd": vpd, "fields": sorted(columns)})
    return _trust(db, principal, vpd)


@api.put(
    "/trusts/{vpd}/mileage", response_model=TrustDetail, summary="Replace the trust's NHS mileage table",
    responses={422: {"description": "Invalid: every problem, by category (categories[i])."}},
)
def put_mileage_api(principal: ApiWriter, db: DB, vpd: Vpd, body: MileageTable) -> Any:
    _existing(db, principal, vpd, Permission.TAILORING_WRITE)
    categories = [
        MileageCategory(c.code.strip(), c.engine_from, c.engine_to, c.rate_per_mile, c.description.strip())
        for c in body.categories
    ]
    try:
        queries.replace_mileage(db, vpd, categories, principal.user_id)
    except ValidationError as exc:
        return _invalid(exc)
    return _trust(db, principal, vpd)


# -- API: mapping templates -------------------------------------------------------------------------


@api.get(
    "/mapping/catalogue", response_model=MappingCatalogue, summary="What a mapping template may read and write",
    dependencies=[requires_api(Permission.TAILORING_READ)],  # type: ignore[list-item]
)
def catalogue_api() -> dict[str, Any]:
    return {
        "sources": [
            {"key": key, "scope": s.scope.value, "record_type": s.record_type, "field": s.field, "kind": s.kind.value}
            for key, s in SOURCE_FIELDS.items()
        ],
        "standard_fields": [
            {"name": f.name, "kind": f.kind.value, "description": f.description} for f in STANDARD_FIELD_LIST
        ],
        "udf_prefix": UDF_PREFIX,
        "transforms": sorted(TRANSFORM_TYPES),
    }


@api.get("/trusts/{vpd}/mapping", response_model=MappingVersion, summary="The template the trust maps with now")
def mapping_api(principal: ApiReader, db: DB, vpd: Vpd) -> dict[str, Any]:
    _existing(db, principal, vpd, Permission.TAILORING_READ)
    return _version_out(queries.mapping_current(db, vpd))


@api.get(
    "/trusts/{vpd}/mapping/versions", response_model=list[MappingVersionSummary],
    summary="Every saved version of the trust's template, oldest first (empty: it maps with the default)",
)
def mapping_versions_api(principal: ApiReader, db: DB, vpd: Vpd) -> list[dict[str, Any]]:
    _existing(db, principal, vpd, Permission.TAILORING_READ)
    return [_summary(v) for v in queries.mapping_history(db, vpd)]


@api.get(
    "/trusts/{vpd}/mapping/versions/{number}", response_model=MappingVersion,
    summary="One version of the trust's template (0: the default template)",
)
def mapping_version_api(principal: ApiReader, db: DB, vpd: Vpd, number: VersionNumber) -> dict[str, Any]:
    _existing(db, principal, vpd, Permission.TAILORING_READ)
    found = queries.mapping_version(db, vpd, number)
    if found is None:
        raise HTTPException(404, "No such template version.")
    return _version_out(found)


@api.put(
    "/trusts/{vpd}/mapping", response_model=MappingVersion, summary="Save the trust's next template version",
    responses={
        200: {"description": "The template equals the current version: nothing saved, the current one returned."},
        201: {"description": "Saved as a new version, by the signed-in user."},
        422: {"description": "Invalid: every problem, with its rule path."},
    },
)
def put_mapping_api(principal: ApiWriter, db: DB, publisher: MaybePublisher, vpd: Vpd, body: MappingSave) -> Any:
    require(Permission.TAILORING_WRITE, principal, vpd)
    try:
        template = template_from_dict(body.template)
    except ValidationError as exc:
        return _invalid(exc, "template")
    try:
        version, created = queries.save_mapping(db, vpd, template, principal.username, body.note, principal.user_id)
    except UnknownTrust:
        raise HTTPException(404, "No such trust.") from None
    except ValidationError as exc:  # the note (the author is a username, always valid)
        return _invalid(exc)
    if created and publisher is not None:
        publisher.template(version)
    return JSONResponse(MappingVersion.model_validate(_version_out(version)).model_dump(mode="json"),
                        status_code=201 if created else 200)

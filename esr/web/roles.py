"""Roles, what each allows, and the signed-in principal.

A user holds grants: (role, trust) pairs, where trust None means every trust. What a page or endpoint
needs is a Permission; `Principal.scope(permission)` is the set of trusts in which the principal has it.

| permission                | user_admin | tailoring | imports | viewer |
|---------------------------|:----------:|:---------:|:-------:|:------:|
| EMPLOYEES_READ            |            |           |    x    |   x    |
| PERSONAL_IDENTIFIERS      |            |           |    x    |        |
| IMPORTS_READ              |            |           |    x    |        |
| TAILORING_READ            |            |     x     |         |        |
| TAILORING_WRITE           |            |     x     |         |        |
| USERS_MANAGE              |     x      |           |         |        |

PERSONAL_IDENTIFIERS unmasks national insurance numbers and dates of birth, and allows searching by NI
number. Imports/Exports holds it because that role already sees the raw ESR lines of quarantined records,
which carry both; a Viewer sees employee records with both masked. User Management sees no employee data.
TAILORING_WRITE creates and changes trust profiles, mapping templates and mileage tables (DESIGN.md §6); held
in a trust, it changes that trust only. Registering a trust needs it in the new VPD: in practice, a Tailoring
grant for every trust.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Role(enum.StrEnum):
    USER_ADMIN = "user_admin"
    TAILORING = "tailoring"
    IMPORTS = "imports"
    VIEWER = "viewer"

    @property
    def label(self) -> str:
        return ROLE_LABELS[self]


ROLE_LABELS = {
    Role.USER_ADMIN: "User Management",
    Role.TAILORING: "Tailoring",
    Role.IMPORTS: "Imports/Exports",
    Role.VIEWER: "Viewer",
}


class Permission(enum.Enum):
    EMPLOYEES_READ = "employees.read"
    PERSONAL_IDENTIFIERS = "employees.personal_identifiers"
    IMPORTS_READ = "imports.read"
    TAILORING_READ = "tailoring.read"
    TAILORING_WRITE = "tailoring.write"
    USERS_MANAGE = "users.manage"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.USER_ADMIN: frozenset({Permission.USERS_MANAGE}),
    Role.TAILORING: frozenset({Permission.TAILORING_READ, Permission.TAILORING_WRITE}),
    Role.IMPORTS: frozenset({Permission.IMPORTS_READ, Permission.EMPLOYEES_READ, Permission.PERSONAL_IDENTIFIERS}),
    Role.VIEWER: frozenset({Permission.EMPLOYEES_READ}),
}


@dataclass(frozen=True)
class Scope:
    """The trusts in which a permission holds: every trust, or a (possibly empty) set of VPDs."""

    all_trusts: bool = False
    vpds: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return self.all_trusts or bool(self.vpds)

    def allows(self, vpd: str | None) -> bool:
        if self.all_trusts:
            return True
        return vpd is not None and vpd in self.vpds

    def union(self, other: Scope) -> Scope:
        if self.all_trusts or other.all_trusts:
            return Scope(all_trusts=True)
        return Scope(vpds=self.vpds | other.vpds)

    def sql_vpds(self) -> list[str] | None:
        """None when every trust is allowed, else the list to filter on with `vpd = ANY(%s)`."""
        return None if self.all_trusts else sorted(self.vpds)


NO_SCOPE = Scope()


@dataclass(frozen=True)
class Grant:
    grant_id: int
    role: Role
    vpd: str | None


@dataclass(frozen=True)
class Principal:
    user_id: int
    username: str
    display_name: str | None
    grants: tuple[Grant, ...]
    #: "session" (browser, cookie) or "token" (API bearer token)
    via: str
    csrf_token: str | None = None
    session_hash: str | None = None
    _scopes: dict[Permission, Scope] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for permission in Permission:
            scope = NO_SCOPE
            for grant in self.grants:
                if permission in ROLE_PERMISSIONS[grant.role]:
                    grant_scope = Scope(all_trusts=True) if grant.vpd is None else Scope(vpds=frozenset({grant.vpd}))
                    scope = scope.union(grant_scope)
            self._scopes[permission] = scope

    def scope(self, permission: Permission) -> Scope:
        return self._scopes[permission]

    def can(self, permission: Permission, vpd: str | None = None) -> bool:
        """With a VPD: whether the permission holds in that trust; without: whether it holds anywhere."""
        scope = self.scope(permission)
        return scope.allows(vpd) if vpd is not None else bool(scope)

    @property
    def roles(self) -> list[Role]:
        return sorted({g.role for g in self.grants}, key=list(Role).index)

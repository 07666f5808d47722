"""Which locations and organisations an employee's work addresses go through.

The shell keeps an index of these per partition (`streams.places`) so that a location or organisation
change is offered to `work_address_changes` only for the employees it can reach, instead of decoding every
employee of the trust. `work_address_changes` still decides what is emitted; these functions only have to
never leave out an employee it would emit for (they may include some it emits nothing for).

Why that holds: `work_address_changes` emits only for an assignment whose version in force `_goes_through`
a changed entity, i.e. (a) the version names a changed location, or (b) it names no location and its
organisation is a changed organisation, or (c) it names no location and its organisation's location
(in the new reference view, or in the old one, which differs from the new one only for the changed
organisations) is a changed location. The version in force is one of the assignment's versions, and
`work_address_refs` collects the location (a) or, without one, the organisation (b, c) of *every* version;
`organisations_at` finds (c) among those organisations.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from streams.domain.reference import ReferenceView
from streams.domain.state import EmployeeState

NO_REFS: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())


def work_address_refs(state: EmployeeState) -> tuple[frozenset[str], frozenset[str]]:
    """(location ids, organisation ids) this state's work addresses can go through: the location of every
    assignment version that names one, and the organisation of every version that names no location."""
    assignments = state.entities.get("ASSIGNMENT")
    if state.deleted or not assignments:
        return NO_REFS
    locations: set[str] = set()
    organisations: set[str] = set()
    for entity in assignments.values():
        for version in entity.versions.values():
            location_id = version.get("location_id")
            if location_id is not None:
                locations.add(location_id)
                continue
            organisation_id = version.get("organisation_id")
            if organisation_id is not None:
                organisations.add(organisation_id)
    return frozenset(locations), frozenset(organisations)


def organisations_at(vpd: str, organisation_ids: Iterable[str], location_ids: Collection[str],
                     reference: ReferenceView) -> set[str]:
    """The organisations of `organisation_ids` whose location, as `reference` shows it, is one of
    `location_ids`: a change of those locations reaches the assignments that go through them."""
    found: set[str] = set()
    for organisation_id in organisation_ids:
        organisation = reference.organisation(vpd, organisation_id)
        if organisation is not None and organisation.get("location_id") in location_ids:
            found.add(organisation_id)
    return found

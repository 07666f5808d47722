"""Dynamic mapping of ESR fields onto a trust's employee record (DESIGN §6, format reference §4.3). Pure.

- `catalogue`: mappable ESR source fields, standard target fields, kinds;
- `transforms`: trim, case, split_part, date_format / parse_date, to_text, lookup, default, concat;
- `template`: rules, UDFs, templates, validation, the default template;
- `versions`: immutable template versions and diffs;
- `view`: the employee view and the primary assignment / home address / line manager selections;
- `apply`: `apply_template(template, view) -> MappedEmployee`;
- `serde`: JSON for templates and versions.

The I/O around it (not re-exported here): `store` (versions in PostgreSQL) and `cli` (`esr mapping`,
`esr remap`); the mapping stage is `streams.mapping`.
"""

from esr.mapping.apply import MappedEmployee, MappingProblem, apply_template, json_value
from esr.mapping.catalogue import (
    SOURCE_FIELDS,
    STANDARD_FIELDS,
    Kind,
    MappedValue,
    Scope,
    SourceField,
    StandardField,
    canonical_source_key,
    find_source,
)
from esr.mapping.serde import (
    template_from_dict,
    template_from_json,
    template_to_dict,
    template_to_json,
    version_from_dict,
    version_from_json,
    version_to_dict,
    version_to_json,
)
from esr.mapping.template import (
    MappingRule,
    MappingTemplate,
    UdfDefinition,
    default_template,
    template_problems,
    udf_target,
    validate_template,
)
from esr.mapping.transforms import (
    Concat,
    DateFormat,
    Default,
    Lookup,
    Lower,
    ParseDate,
    SplitPart,
    TitleCase,
    ToText,
    Transform,
    Trim,
    Upper,
)
from esr.mapping.versions import TemplateDiff, TemplateVersion, diff_templates, diff_versions, next_version
from esr.mapping.view import (
    EmployeeView,
    build_view,
    resolve_line_manager,
    resolve_work_location,
    select_home_address,
    select_primary,
)

__all__ = [
    "SOURCE_FIELDS",
    "STANDARD_FIELDS",
    "Concat",
    "DateFormat",
    "Default",
    "EmployeeView",
    "Kind",
    "Lookup",
    "Lower",
    "MappedEmployee",
    "MappedValue",
    "MappingProblem",
    "MappingRule",
    "MappingTemplate",
    "ParseDate",
    "Scope",
    "SourceField",
    "SplitPart",
    "StandardField",
    "TemplateDiff",
    "TemplateVersion",
    "TitleCase",
    "ToText",
    "Transform",
    "Trim",
    "UdfDefinition",
    "Upper",
    "apply_template",
    "build_view",
    "canonical_source_key",
    "default_template",
    "diff_templates",
    "diff_versions",
    "find_source",
    "json_value",
    "next_version",
    "resolve_line_manager",
    "resolve_work_location",
    "select_home_address",
    "select_primary",
    "template_from_dict",
    "template_from_json",
    "template_problems",
    "template_to_dict",
    "template_to_json",
    "udf_target",
    "validate_template",
    "version_from_dict",
    "version_from_json",
    "version_to_dict",
    "version_to_json",
]

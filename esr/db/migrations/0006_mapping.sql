-- Dynamic mapping (DESIGN §5, §6): every version of a trust's mapping template, and the mapped employee.

-- Every change to a trust's template is a new row, never an update (esr.mapping.versions): who, when, why.
-- A trust without a row maps with esr.mapping.default_template (version 0).
CREATE TABLE esr.mapping_template_version (
    vpd         text NOT NULL REFERENCES esr.trust (vpd),
    version     integer NOT NULL CHECK (version >= 1),
    template    jsonb NOT NULL,  -- esr.mapping.template_to_dict (canonical)
    author      text NOT NULL CHECK (author <> ''),
    created_at  timestamptz NOT NULL DEFAULT now(),
    note        text NOT NULL DEFAULT '',
    PRIMARY KEY (vpd, version)
);

-- The mapped employee record (public read model): one column per standard target field of
-- esr.mapping.catalogue.STANDARD_FIELDS (a field the trust's template does not map is NULL) and the
-- template's user-defined fields in `udf`. Written by the employee sink from esr.mapped-changes
-- (connectors/sink/employee.py) and by `esr remap`; a row never goes back to an older template version.
-- activated_at / archived_at are the lifecycle (`esr lifecycle run`); the mapping never touches them.
CREATE TABLE esr.employee (
    vpd                     text NOT NULL,
    person_id               text NOT NULL,
    payroll_number          text,
    title                   text,
    first_name              text,
    middle_names            text,
    surname                 text,
    preferred_name          text,
    maiden_name             text,
    gender                  text,
    date_of_birth           date,
    ni_number               text,
    email                   text,
    hire_date               date,
    termination_date        date,
    person_type             text,
    assignment_number       text,
    job_name                text,
    position_name           text,
    grade                   text,
    department              text,
    cost_centre             text,
    work_location           text,
    line_manager            text,
    line_manager_person_id  text,
    udf                     jsonb NOT NULL DEFAULT '{}',
    problems                jsonb NOT NULL DEFAULT '[]',  -- [{target, message}]: what did not map cleanly
    template_version        integer NOT NULL,             -- 0: the default template
    last_event_id           text,                         -- the mapped change that wrote the row
    activated_at            timestamptz,
    archived_at             timestamptz,
    updated_at              timestamptz NOT NULL DEFAULT now(),
    deleted_at              timestamptz,
    PRIMARY KEY (vpd, person_id)
);
CREATE INDEX employee_payroll_number ON esr.employee (vpd, payroll_number);
CREATE INDEX employee_line_manager ON esr.employee (vpd, line_manager_person_id);

-- The read model (DESIGN §5, a public contract: these table and column names are fixed) and the sink's
-- offsets. Written only by the PostgreSQL sink (connectors/sink), in one transaction per batch together
-- with the offsets it consumed.
--
-- Current-state tables: one row per ESR id, the version the stream app considers in force. Every
-- layout field of the record (esr/format/layouts.py) is a typed column, under the §5 name where §5
-- renames it (e.g. location.address_line_1 -> line1). Guard: a row only moves forward in
-- (src_sequence, src_line_no), the ESR file sequence and line that produced it; replays and
-- re-deliveries can never move it backwards. Deletes are soft: deleted_at is set, the row stays, and a
-- later add of the same id (a newer line) brings it back. last_event_id is the change event that wrote
-- the row.

-- PRA / PRD
CREATE TABLE esr.person (
    vpd                           text NOT NULL,
    person_id                     text NOT NULL,
    effective_start               date,
    effective_end                 date,
    employee_number               text,
    title                         text,
    last_name                     text,
    first_name                    text,
    middle_names                  text,
    maiden_name                   text,
    preferred_name                text,
    previous_last_name            text,
    gender                        text,
    date_of_birth                 date,
    ni_number                     text,
    nhs_unique_id                 text,
    hire_date                     date,
    termination_date              date,
    termination_reason            text,
    employee_status_flag          text,
    wtr_opt_out                   text,
    wtr_opt_out_date              date,
    ethnic_origin                 text,
    marital_status                text,
    country_of_birth              text,
    previous_employer             text,
    previous_employer_type        text,
    csd_3_months                  date,
    csd_12_months                 date,
    nhs_crs_uuid                  text,
    spare_1                       text,
    spare_2                       text,
    spare_3                       text,
    system_person_type            text,
    user_person_type              text,
    email                         text,
    nhs_start_date                date,
    spare_4                       text,
    last_update_date              timestamp,
    disability_flag               text,
    legacy_payroll_number         text,
    nationality                   text,
    spare_6                       text,
    spare_7                       text,
    -- provenance and the guard: a row only ever moves forward in (src_sequence, src_line_no)
    src_sequence                  bigint NOT NULL,
    src_line_no                   bigint NOT NULL,
    src_file_name                 text,
    src_file_sha256               text,
    src_run_date                  timestamp,
    last_event_id                 text NOT NULL,
    last_event_type               text NOT NULL,
    updated_at                    timestamptz NOT NULL DEFAULT now(),
    deleted_at                    timestamptz,
    PRIMARY KEY (vpd, person_id)
);

-- ASA / ASD
CREATE TABLE esr.assignment (
    vpd                           text NOT NULL,
    assignment_id                 text NOT NULL,
    person_id                     text,
    effective_start               date,
    effective_end                 date,
    earliest_assignment_start     date,
    assignment_type               text,
    assignment_number             text,
    assignment_status             text,
    user_assignment_status        text,
    employee_status_flag          text,
    payroll_name                  text,
    payroll_period_type           text,
    location_id                   text,
    supervisor_flag               text,
    supervisor_person_id          text,
    supervisor_assignment_id      text,
    supervisor_assignment_number  text,
    department_manager_person_id  text,
    employee_category             text,
    assignment_category           text,
    primary_assignment            text,
    is_primary                    boolean,
    normal_hours                  numeric(22, 5),
    frequency                     text,
    grade_contract_hours          numeric(22, 5),
    fte                           numeric(22, 3),
    flexible_working_pattern      text,
    organisation_id               text,
    position_id                   text,
    position_name                 text,
    grade                         text,
    grade_step                    text,
    start_date_in_grade           date,
    annual_salary                 numeric(22, 2),
    job_name                      text,
    people_group                  text,
    t_and_a_flag                  text,
    night_worker_attribute        text,
    projected_hire_date           date,
    vacancy_id                    bigint,
    contract_end_date             date,
    increment_date                date,
    maximum_part_time_flag        text,
    afc_flag                      text,
    last_update_date              timestamp,
    last_working_day              date,
    eksf_spinal_point             text,
    manager_flag                  text,
    assignment_end_date           date,
    spare                         text,
    -- provenance and the guard: a row only ever moves forward in (src_sequence, src_line_no)
    src_sequence                  bigint NOT NULL,
    src_line_no                   bigint NOT NULL,
    src_file_name                 text,
    src_file_sha256               text,
    src_run_date                  timestamp,
    last_event_id                 text NOT NULL,
    last_event_type               text NOT NULL,
    updated_at                    timestamptz NOT NULL DEFAULT now(),
    deleted_at                    timestamptz,
    PRIMARY KEY (vpd, assignment_id)
);
CREATE INDEX assignment_person ON esr.assignment (vpd, person_id);

-- ADA / ADD
CREATE TABLE esr.home_address (
    vpd                           text NOT NULL,
    address_id                    text NOT NULL,
    person_id                     text,
    address_type                  text,
    address_style                 text,
    is_primary                    boolean,
    line1                         text,
    line2                         text,
    line3                         text,
    town                          text,
    county                        text,
    postcode                      text,
    country                       text,
    effective_start               date,
    effective_end                 date,
    last_update_date              timestamp,
    -- provenance and the guard: a row only ever moves forward in (src_sequence, src_line_no)
    src_sequence                  bigint NOT NULL,
    src_line_no                   bigint NOT NULL,
    src_file_name                 text,
    src_file_sha256               text,
    src_run_date                  timestamp,
    last_event_id                 text NOT NULL,
    last_event_type               text NOT NULL,
    updated_at                    timestamptz NOT NULL DEFAULT now(),
    deleted_at                    timestamptz,
    PRIMARY KEY (vpd, address_id)
);
CREATE INDEX home_address_person ON esr.home_address (vpd, person_id);

-- PHA / PHD
CREATE TABLE esr.phone (
    vpd                           text NOT NULL,
    phone_id                      text NOT NULL,
    person_id                     text,
    phone_type                    text,
    phone_number                  text,
    effective_start               date,
    effective_end                 date,
    last_update_date              timestamp,
    -- provenance and the guard: a row only ever moves forward in (src_sequence, src_line_no)
    src_sequence                  bigint NOT NULL,
    src_line_no                   bigint NOT NULL,
    src_file_name                 text,
    src_file_sha256               text,
    src_run_date                  timestamp,
    last_event_id                 text NOT NULL,
    last_event_type               text NOT NULL,
    updated_at                    timestamptz NOT NULL DEFAULT now(),
    deleted_at                    timestamptz,
    PRIMARY KEY (vpd, phone_id)
);
CREATE INDEX phone_person ON esr.phone (vpd, person_id);

-- VHA / VHD
CREATE TABLE esr.vehicle (
    vpd                           text NOT NULL,
    vehicle_allocation_id         text NOT NULL,
    person_id                     text,
    assignment_id                 text,
    effective_start               date,
    effective_end                 date,
    registration                  text,
    make                          text,
    model                         text,
    ownership                     text,
    initial_registration_date     date,
    last_update_date              timestamp,
    engine_cc                     numeric(9, 3),
    user_rates_table              text,
    fuel_type                     text,
    -- provenance and the guard: a row only ever moves forward in (src_sequence, src_line_no)
    src_sequence                  bigint NOT NULL,
    src_line_no                   bigint NOT NULL,
    src_file_name                 text,
    src_file_sha256               text,
    src_run_date                  timestamp,
    last_event_id                 text NOT NULL,
    last_event_type               text NOT NULL,
    updated_at                    timestamptz NOT NULL DEFAULT now(),
    deleted_at                    timestamptz,
    PRIMARY KEY (vpd, vehicle_allocation_id)
);
CREATE INDEX vehicle_person ON esr.vehicle (vpd, person_id);

-- COA / COD
CREATE TABLE esr.costing (
    vpd                           text NOT NULL,
    costing_id                    text NOT NULL,
    person_id                     text,
    assignment_id                 text,
    effective_start               date,
    effective_end                 date,
    entity_code                   text,
    charitable_indicator          text,
    cost_centre                   text,
    subjective                    text,
    analysis_1                    text,
    analysis_2                    text,
    element_number                bigint,
    spare_segment                 text,
    percentage                    numeric(5, 2),
    last_update_date              timestamp,
    -- provenance and the guard: a row only ever moves forward in (src_sequence, src_line_no)
    src_sequence                  bigint NOT NULL,
    src_line_no                   bigint NOT NULL,
    src_file_name                 text,
    src_file_sha256               text,
    src_run_date                  timestamp,
    last_event_id                 text NOT NULL,
    last_event_type               text NOT NULL,
    updated_at                    timestamptz NOT NULL DEFAULT now(),
    deleted_at                    timestamptz,
    PRIMARY KEY (vpd, costing_id)
);
CREATE INDEX costing_person ON esr.costing (vpd, person_id);

-- LCA / LCD
CREATE TABLE esr.location (
    vpd                           text NOT NULL,
    location_id                   text NOT NULL,
    code                          text,
    description                   text,
    inactive_date                 date,
    line1                         text,
    line2                         text,
    line3                         text,
    town                          text,
    county                        text,
    postcode                      text,
    country                       text,
    telephone                     text,
    fax                           text,
    payslip_delivery_point        text,
    site_code                     text,
    welsh_location_translation    text,
    welsh_address_line_1          text,
    welsh_address_line_2          text,
    welsh_address_line_3          text,
    welsh_town_translation        text,
    last_update_date              timestamp,
    -- provenance and the guard: a row only ever moves forward in (src_sequence, src_line_no)
    src_sequence                  bigint NOT NULL,
    src_line_no                   bigint NOT NULL,
    src_file_name                 text,
    src_file_sha256               text,
    src_run_date                  timestamp,
    last_event_id                 text NOT NULL,
    last_event_type               text NOT NULL,
    updated_at                    timestamptz NOT NULL DEFAULT now(),
    deleted_at                    timestamptz,
    PRIMARY KEY (vpd, location_id)
);

-- ORA / ORD
CREATE TABLE esr.organisation (
    vpd                           text NOT NULL,
    organisation_id               text NOT NULL,
    name                          text,
    type                          text,
    effective_from                date,
    effective_to                  date,
    hierarchy_version_id          text,
    hierarchy_version_date_from   date,
    hierarchy_version_date_to     date,
    cost_centre                   text,
    parent_organisation_id        text,
    nacs_code                     text,
    location_id                   text,
    last_update_date              timestamp,
    cost_centre_description       text,
    -- provenance and the guard: a row only ever moves forward in (src_sequence, src_line_no)
    src_sequence                  bigint NOT NULL,
    src_line_no                   bigint NOT NULL,
    src_file_name                 text,
    src_file_sha256               text,
    src_run_date                  timestamp,
    last_event_id                 text NOT NULL,
    last_event_type               text NOT NULL,
    updated_at                    timestamptz NOT NULL DEFAULT now(),
    deleted_at                    timestamptz,
    PRIMARY KEY (vpd, organisation_id)
);

-- POA / POD
CREATE TABLE esr.position (
    vpd                           text NOT NULL,
    position_id                   text NOT NULL,
    effective_from                date,
    effective_to                  date,
    position_number               bigint,
    name                          text,
    budgeted_fte                  numeric(13, 5),
    subjective_code               text,
    staff_group                   text,
    job_role                      text,
    occupation_code               text,
    payscale                      text,
    grade_step                    text,
    isa_regulated_post            text,
    organisation_id               text,
    hiring_status                 text,
    position_type                 text,
    eligible_for_oh_processing    text,
    epp_flag                      text,
    deanery_post_number           text,
    managing_deanery_body         text,
    workplace_org_code            text,
    last_update_date              timestamp,
    subjective_code_description   text,
    -- provenance and the guard: a row only ever moves forward in (src_sequence, src_line_no)
    src_sequence                  bigint NOT NULL,
    src_line_no                   bigint NOT NULL,
    src_file_name                 text,
    src_file_sha256               text,
    src_run_date                  timestamp,
    last_event_id                 text NOT NULL,
    last_event_type               text NOT NULL,
    updated_at                    timestamptz NOT NULL DEFAULT now(),
    deleted_at                    timestamptz,
    PRIMARY KEY (vpd, position_id)
);

-- History: one row per change event, kept for ever; event_id is deterministic, so a re-delivered event
-- is ignored (ON CONFLICT DO NOTHING).
CREATE TABLE esr.change_event (
    event_id          text PRIMARY KEY,
    vpd               text NOT NULL,
    person_id         text,
    employee_number   text,
    event_type        text NOT NULL,
    op                text NOT NULL,
    entity_type       text NOT NULL,
    entity_id         text NOT NULL,
    changes           jsonb NOT NULL DEFAULT '[]',
    effective_date    date,
    file_name         text,
    file_sha256       text,
    sequence          bigint,
    extract_type      text CHECK (extract_type IN ('F', 'C')),
    run_date          timestamp,
    record_code       text,
    line_no           bigint,
    input_topic       text,      -- the esr.records message the change came from
    input_partition   integer,
    input_offset      bigint,
    topic             text,      -- where the sink read it (esr.changes)
    partition         integer,
    "offset"          bigint,
    event_ts          timestamptz,  -- ts_ms: when the stream app produced it
    recorded_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX change_event_person ON esr.change_event (vpd, person_id);

-- The sink's consumed offsets, written in the same transaction as the data: on partition assignment the
-- sink seeks to next_offset (Kafka's committed offsets are only advisory).
CREATE TABLE esr.sink_offset (
    consumer_group    text NOT NULL,
    topic             text NOT NULL,
    partition         integer NOT NULL,
    next_offset       bigint NOT NULL CHECK (next_offset >= 0),
    topic_id          text,  -- the topic's id when the offset was stored: a re-created topic starts over
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, partition)
);

-- The trust's NHS mileage rate table (Tailoring): a vehicle's user_rates_table selects the categories
-- whose code matches it case-insensitively; its engine size selects the band.
CREATE TABLE esr.mileage_category (
    vpd               text NOT NULL,
    code              text NOT NULL CHECK (code <> ''),
    engine_from       integer NOT NULL DEFAULT 0 CHECK (engine_from >= 0),
    engine_to         integer CHECK (engine_to IS NULL OR engine_to >= engine_from),  -- inclusive; NULL = no upper bound
    rate_per_mile     numeric(8, 4) NOT NULL CHECK (rate_per_mile >= 0),
    description       text,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (vpd, code, engine_from)
);
CREATE INDEX mileage_category_code ON esr.mileage_category (vpd, lower(btrim(code)));

-- Work address of every live assignment: the assignment's location, else its organisation's location
-- (ESR §3; Assure's UpdateWorkAddressMapping). location_source says which; an assignment with neither has
-- NULL address columns. Deleted locations and organisations are not used.
CREATE VIEW esr.work_address AS
SELECT a.vpd,
       a.assignment_id,
       a.person_id,
       a.assignment_number,
       l.location_id,
       l.code,
       l.description,
       l.line1,
       l.line2,
       l.line3,
       l.town,
       l.county,
       l.postcode,
       l.country,
       CASE WHEN al.location_id IS NOT NULL THEN 'assignment'
            WHEN ol.location_id IS NOT NULL THEN 'organisation' END AS location_source
FROM esr.assignment a
LEFT JOIN esr.location al
       ON al.vpd = a.vpd AND al.location_id = a.location_id AND al.deleted_at IS NULL
LEFT JOIN esr.organisation o
       ON al.location_id IS NULL
      AND o.vpd = a.vpd AND o.organisation_id = a.organisation_id AND o.deleted_at IS NULL
LEFT JOIN esr.location ol
       ON ol.vpd = o.vpd AND ol.location_id = o.location_id AND ol.deleted_at IS NULL
LEFT JOIN LATERAL (SELECT COALESCE(al.location_id, ol.location_id) AS location_id) AS pick ON true
LEFT JOIN esr.location l
       ON l.vpd = a.vpd AND l.location_id = pick.location_id
WHERE a.deleted_at IS NULL;

-- The NHS mileage category of every live vehicle, as esr.mileage.match_vehicle decides it: the code equals
-- user_rates_table (case-insensitive, outer spaces ignored) and the band [engine_from, engine_to] holds the
-- engine size in whole cc. An engine_cc under 10 is in litres (ESR sends "1.6"): x1000, rounded half up. A
-- vehicle without an engine size or a matching category has no row; with overlapping bands the lowest
-- engine_from wins, so there is at most one row per vehicle.
CREATE VIEW esr.vehicle_mileage AS
SELECT DISTINCT ON (v.vpd, v.vehicle_allocation_id)
       v.vpd,
       v.vehicle_allocation_id,
       v.person_id,
       v.assignment_id,
       v.user_rates_table,
       v.engine_cc,
       cc.engine_size_cc,
       m.code,
       m.engine_from,
       m.engine_to,
       m.rate_per_mile,
       m.description
FROM esr.vehicle v
CROSS JOIN LATERAL (
    SELECT round(CASE WHEN v.engine_cc > 0 AND v.engine_cc < 10 THEN v.engine_cc * 1000
                      ELSE v.engine_cc END)::integer AS engine_size_cc
) AS cc
JOIN esr.mileage_category m
  ON m.vpd = v.vpd
 AND lower(btrim(m.code)) = lower(btrim(v.user_rates_table))
 AND cc.engine_size_cc >= m.engine_from
 AND (m.engine_to IS NULL OR cc.engine_size_cc <= m.engine_to)
WHERE v.deleted_at IS NULL
ORDER BY v.vpd, v.vehicle_allocation_id, m.engine_from, m.code;

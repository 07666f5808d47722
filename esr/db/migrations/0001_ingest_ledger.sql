-- The ingest ledger: trusts, every file received, and every line that was not published cleanly.
CREATE SCHEMA IF NOT EXISTS esr;

CREATE TABLE esr.trust (
    vpd               text PRIMARY KEY CHECK (vpd ~ '^[0-9A-Za-z]{3}$'),
    name              text NOT NULL CHECK (name <> ''),
    interface_version smallint NOT NULL DEFAULT 2 CHECK (interface_version IN (1, 2)),
    import_frequency  text NOT NULL DEFAULT 'daily' CHECK (import_frequency IN ('daily', 'weekly')),
    last_sequence     bigint,
    active            boolean NOT NULL DEFAULT true,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- One row per distinct file content (SHA-256). vpd is not a foreign key: a file for an unknown trust is
-- recorded too, as rejected.
CREATE TABLE esr.import_file (
    sha256           text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    vpd              text,
    file_name        text NOT NULL,
    sequence         bigint,
    extract_type     char(1) CHECK (extract_type IN ('F', 'C')),
    extract_date     date,
    run_date         timestamp,
    status           text NOT NULL CHECK (status IN ('received', 'rejected', 'published', 'completed', 'failed')),
    rejection_code   text,
    line_count       integer,
    record_count     integer,
    error_count      integer,
    warning_count    integer,
    unknown_count    integer,
    counts_by_code   jsonb,
    size_bytes       bigint,
    message          text,
    forced           boolean NOT NULL DEFAULT false,
    attempts         integer NOT NULL DEFAULT 1,
    received_at      timestamptz NOT NULL DEFAULT now(),
    completed_at     timestamptz
);
CREATE INDEX import_file_vpd_sequence ON esr.import_file (vpd, sequence);

-- severity: quarantined (not published), warning (published with the field nulled or noted),
-- skipped (unknown record code, not published).
CREATE TABLE esr.import_line_error (
    sha256      text NOT NULL REFERENCES esr.import_file (sha256) ON DELETE CASCADE,
    line_no     integer NOT NULL,
    record_code text,
    severity    text NOT NULL CHECK (severity IN ('quarantined', 'warning', 'skipped')),
    field       text,
    reason      text NOT NULL,
    raw_line    text,
    PRIMARY KEY (sha256, line_no)
);

-- Which person owns each person-scoped entity, so that a delete row (which carries only the entity id)
-- is keyed by its person like every other record of that person.
CREATE TABLE esr.entity_owner (
    vpd         text NOT NULL,
    entity_type text NOT NULL,
    entity_id   text NOT NULL,
    person_id   text NOT NULL,
    PRIMARY KEY (vpd, entity_type, entity_id)
);

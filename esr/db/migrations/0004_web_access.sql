-- Web application access: users, role grants (optionally limited to trusts), login sessions, API tokens,
-- a security audit trail, and the search indexes the employee screens need.
--
-- Secrets are never stored: passwords as Argon2id hashes, session ids and API tokens as SHA-256 digests of
-- 256-bit random values (a fast digest is enough for values that cannot be guessed).

CREATE TABLE esr.web_user (
    user_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username        text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9][a-z0-9._-]{2,63}$'),
    display_name    text CHECK (length(display_name) <= 200),
    password_hash   text NOT NULL,
    active          boolean NOT NULL DEFAULT true,
    failed_logins   integer NOT NULL DEFAULT 0,
    locked_until    timestamptz,
    password_changed_at timestamptz NOT NULL DEFAULT now(),
    last_login_at   timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      bigint REFERENCES esr.web_user (user_id) ON DELETE SET NULL
);

-- One row per role per trust; vpd NULL = the role applies to every trust.
--   user_admin  User Management     tailoring  Tailoring (trust profiles, mapping, mileage tables)
--   imports     Imports/Exports     viewer     read-only employee records
CREATE TABLE esr.web_role_grant (
    grant_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES esr.web_user (user_id) ON DELETE CASCADE,
    role        text NOT NULL CHECK (role IN ('user_admin', 'tailoring', 'imports', 'viewer')),
    vpd         text CHECK (vpd ~ '^[0-9A-Z]{3}$'),
    granted_at  timestamptz NOT NULL DEFAULT now(),
    granted_by  bigint REFERENCES esr.web_user (user_id) ON DELETE SET NULL
);
CREATE UNIQUE INDEX web_role_grant_unique ON esr.web_role_grant (user_id, role, coalesce(vpd, '*'));

CREATE TABLE esr.web_session (
    session_hash  text PRIMARY KEY CHECK (session_hash ~ '^[0-9a-f]{64}$'),
    user_id       bigint NOT NULL REFERENCES esr.web_user (user_id) ON DELETE CASCADE,
    csrf_token    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL
);
CREATE INDEX web_session_user ON esr.web_session (user_id);
CREATE INDEX web_session_expires ON esr.web_session (expires_at);

CREATE TABLE esr.web_api_token (
    token_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       bigint NOT NULL REFERENCES esr.web_user (user_id) ON DELETE CASCADE,
    name          text NOT NULL CHECK (name <> '' AND length(name) <= 100),
    token_hash    text NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    token_prefix  text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX web_api_token_user ON esr.web_api_token (user_id);

-- Security events (logins, user and grant changes, tokens). Holds usernames of staff users, never employee data.
CREATE TABLE esr.web_audit (
    audit_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor_id    bigint REFERENCES esr.web_user (user_id) ON DELETE SET NULL,
    action      text NOT NULL,
    target_user_id bigint REFERENCES esr.web_user (user_id) ON DELETE SET NULL,
    detail      jsonb
);
CREATE INDEX web_audit_at ON esr.web_audit (at DESC);

-- Employee search on 100,000+ people (the read model is migration 0002): trigram index for name fragments,
-- prefix indexes for employee and assignment numbers across trusts, an expression index for NI numbers, and
-- the sort order of the result list for keyset pagination. The expressions must match esr/web/queries.py.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS unaccent SCHEMA public;

-- Case- and accent-folded text, so that "sian" finds Siân and "sean" finds Seán.
-- IMMUTABLE so that it can be indexed (unaccent with an explicit dictionary is, in practice).
CREATE FUNCTION esr.web_fold(text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT lower(public.unaccent('public.unaccent'::regdictionary, $1)) $$;

CREATE INDEX web_person_name_trgm ON esr.person USING gin ((
    esr.web_fold(coalesce(first_name, '') || ' ' || coalesce(middle_names, '') || ' ' || coalesce(last_name, '')
                 || ' ' || coalesce(preferred_name, '') || ' ' || coalesce(maiden_name, '') || ' '
                 || coalesce(previous_last_name, ''))
) gin_trgm_ops);
CREATE INDEX web_person_sort ON esr.person
    (lower(coalesce(last_name, '')), lower(coalesce(first_name, '')), vpd, person_id);
CREATE INDEX web_person_employee_number ON esr.person (employee_number text_pattern_ops);
CREATE INDEX web_person_ni ON esr.person (upper(replace(ni_number, ' ', '')));
CREATE INDEX web_assignment_number ON esr.assignment (assignment_number text_pattern_ops);
CREATE INDEX web_import_file_received ON esr.import_file (received_at DESC, sha256 DESC);

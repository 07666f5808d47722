-- The NHS options of the trust profile the mapping stage renders into each employee (issue 5): the
-- username and home address formats, and the display name per "display with assignment". Written by the
-- employee sink (and `esr remap`) with the other mapped fields, cleared with them for a deleted employee.
ALTER TABLE esr.employee
    ADD COLUMN username      text,
    ADD COLUMN home_address  text,
    ADD COLUMN display_name  text;

-- "ESR outbound vehicle automatic activation": `esr lifecycle run` sets it for the trust's live vehicles
-- when the option is on; otherwise an administrator does. The ingest never touches it.
ALTER TABLE esr.vehicle ADD COLUMN activated_at timestamptz;

-- Trust profiles (DESIGN §6): the inbox the trust's files arrive in and its NHS options (esr.profiles).
ALTER TABLE esr.trust
    ADD COLUMN inbox_path  text,
    ADD COLUMN nhs_options jsonb;  -- esr.profiles.nhs_options_to_dict; NULL = the defaults

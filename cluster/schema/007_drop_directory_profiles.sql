-- Tsunagu cluster schema, version 7: drops the table directory_profiles of
-- version 1, which no node or command ever wrote or read. A profile is the
-- `accounts` row's own columns (display_name, phone, category, publish,
-- services, ...), as the LMDB record holds it, and the directory's scan
-- reads those (version 5 indexes the published rows). Its index goes with
-- it. Nothing here depends on version 6. IF EXISTS: an operator who dropped
-- the unused table by hand can still migrate.
DROP TABLE IF EXISTS directory_profiles;

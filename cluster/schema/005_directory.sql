-- Tsunagu cluster schema, version 5: the directory and profiles served by the
-- node (`run --pg`: directory_search, directory_categories, profile_get,
-- profile_set). A profile is the account's own columns (display_name, phone,
-- category, publish, services, ...), as on LMDB; the directory's scan reads
-- the published accounts in byte order of the ID, which this index serves
-- without reading the unpublished rows.
CREATE INDEX accounts_published ON accounts (user_id) WHERE publish;

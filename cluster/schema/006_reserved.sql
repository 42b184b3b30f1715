-- Tsunagu cluster schema, version 6: changes nothing. It holds the number
-- of a migration written alongside version 7 on another branch, so that 7
-- (which does not depend on it) applies here; where that migration is
-- merged, it replaces this file.
SELECT 1;

-- Name-prefix searches on SQLite (`name LIKE 'p%'`, e.g. ZStack's `q=name~=p%`): SQLite's
-- LIKE ignores ASCII case, so it cannot use `images_name`; a range over lower(name)
-- narrows such a search to the names the prefix allows (crates/ims-db/src/image_search.rs).
-- PostgreSQL does not use it (its case-sensitive LIKE ranges over images_name).
CREATE INDEX images_name_lower ON images (lower(name));

-- The image stores holding a copy of an image's blob (Glance's multi-store `stores`),
-- comma-joined store ids; NULL while the data is staged or still being copied, and for
-- images without data. Rows written before this migration are filled in at start-up
-- with the default store (`ImageRepo::place_unplaced`), the one their data was in.
ALTER TABLE images ADD COLUMN stores TEXT;

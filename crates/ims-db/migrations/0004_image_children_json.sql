-- A JSON copy of each image's properties (an object of strings) and tags (an array of
-- strings), written in the same transaction as `image_properties` and `image_tags`, so a
-- list page reads one row per image. The child tables stay: filters query them.
-- NULL means "no copy yet" (rows written before this migration): readers fall back to the
-- child tables for those rows, and the next save of the image writes the copy.
ALTER TABLE images ADD COLUMN properties_json TEXT;
ALTER TABLE images ADD COLUMN tags_json TEXT;

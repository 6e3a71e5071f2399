-- Glance's default list filters on os_hidden (`os_hidden = false` unless asked) and sorts
-- newest first. Without column statistics (a table that grew quickly since its last
-- ANALYZE) PostgreSQL estimated the equality on os_hidden as selective, chose a full scan
-- and a sort, and a list over 20,000 images took 100 ms instead of 0.1 ms (bench/scale).
-- With os_hidden leading the sort index, the list walks the index whatever the statistics.
CREATE INDEX images_listed ON images (os_hidden, created_at, id);

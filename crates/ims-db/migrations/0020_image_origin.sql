-- The API an image was created through (glance, ims, zstack, workspace, kms, console);
-- NULL for images made before this column, by the CLI, or by a job. Written once at
-- creation; the console's image list shows it.
ALTER TABLE images ADD COLUMN origin TEXT;

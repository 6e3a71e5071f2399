-- Volumes (issue 13): block devices of a project, blank or overlays on an image's blob.
-- `backing_key` names the blob a volume is an overlay on: while a volume holding data
-- (creating, ready, deleted) names it, the image store keeps the blob, even after its
-- image is deleted. `location` is the volume store's own name of the data. `version` is
-- compared and moved on by every save, as for images.
CREATE TABLE volumes (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    size BIGINT NOT NULL,
    format TEXT NOT NULL,
    status TEXT NOT NULL,
    source_image TEXT,
    backing_image TEXT,
    backing_key TEXT,
    backing_format TEXT,
    location TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    deleted_at TEXT,
    version BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX volumes_project ON volumes (project_id, status);
CREATE INDEX volumes_created ON volumes (created_at, id);
CREATE INDEX volumes_backing ON volumes (backing_key, status);

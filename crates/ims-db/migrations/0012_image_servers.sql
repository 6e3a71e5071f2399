-- Image servers (issue 14): a VM started from an image on a root volume, captured back
-- into images. `settings` holds what is recorded but not acted on (network, sessions),
-- `image_ref`, `root_volume`, `accounts` and `tags` the request's objects, all as JSON
-- text. `version` is compared and moved on by every save, as for images and volumes.
CREATE TABLE image_servers (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    image_ref TEXT NOT NULL,
    root_volume TEXT NOT NULL,
    volume_id TEXT,
    accounts TEXT NOT NULL,
    tags TEXT NOT NULL,
    settings TEXT NOT NULL,
    image_id TEXT,
    status TEXT NOT NULL,
    status_details TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX image_servers_project ON image_servers (project_id, status, created_at);
CREATE INDEX image_servers_volume ON image_servers (volume_id);

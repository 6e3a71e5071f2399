-- Metadata definitions (Glance's metadefs). Portable DDL, like 0001: timestamps as
-- fixed-width UTC text, booleans as BIGINT 0/1, JSON documents as TEXT.

CREATE TABLE metadef_namespaces (
    id TEXT PRIMARY KEY,
    namespace TEXT NOT NULL UNIQUE,
    display_name TEXT,
    description TEXT,
    visibility TEXT NOT NULL,
    protected BIGINT NOT NULL DEFAULT 0,
    owner TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX metadef_namespaces_owner ON metadef_namespaces (owner);
CREATE INDEX metadef_namespaces_created ON metadef_namespaces (created_at, namespace);

CREATE TABLE metadef_resource_types (
    name TEXT PRIMARY KEY,
    protected BIGINT NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE metadef_namespace_resource_types (
    namespace_id TEXT NOT NULL REFERENCES metadef_namespaces (id) ON DELETE CASCADE,
    resource_type TEXT NOT NULL REFERENCES metadef_resource_types (name),
    prefix TEXT,
    properties_target TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (namespace_id, resource_type)
);
CREATE INDEX metadef_ns_rt_type ON metadef_namespace_resource_types (resource_type);

-- json_schema: the object's property definitions; required: a JSON array of names.
CREATE TABLE metadef_objects (
    namespace_id TEXT NOT NULL REFERENCES metadef_namespaces (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT,
    required TEXT,
    json_schema TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (namespace_id, name)
);

-- json_schema: the property's definition (title, type, enum, …).
CREATE TABLE metadef_properties (
    namespace_id TEXT NOT NULL REFERENCES metadef_namespaces (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    json_schema TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (namespace_id, name)
);

CREATE TABLE metadef_tags (
    namespace_id TEXT NOT NULL REFERENCES metadef_namespaces (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (namespace_id, name)
);

-- The resource types Glance's own definitions name, so that a fresh catalog lists some
-- (clients such as Tempest pick the first one). Distinct times keep this order.
INSERT INTO metadef_resource_types (name, protected, created_at, updated_at) VALUES
    ('OS::Glance::Image', 1, '2014-08-28T18:13:04.000000Z', '2014-08-28T18:13:04.000000Z'),
    ('OS::Cinder::Volume', 1, '2014-08-28T18:13:04.000001Z', '2014-08-28T18:13:04.000001Z'),
    ('OS::Nova::Flavor', 1, '2014-08-28T18:13:04.000002Z', '2014-08-28T18:13:04.000002Z'),
    ('OS::Nova::Aggregate', 1, '2014-08-28T18:13:04.000003Z', '2014-08-28T18:13:04.000003Z'),
    ('OS::Nova::Server', 1, '2014-08-28T18:13:04.000004Z', '2014-08-28T18:13:04.000004Z');

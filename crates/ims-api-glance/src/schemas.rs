//! JSON schemas matching what ims accepts; glanceclient validates and prints with them.

use ims_domain::image::{ContainerFormat, DiskFormat, ImageStatus, Visibility};
use ims_domain::service::ImageSettings;
use serde_json::{Value, json};

fn names<T: Copy>(all: &[T], f: impl Fn(T) -> &'static str) -> Vec<&'static str> {
    all.iter().map(|v| f(*v)).collect()
}

fn nullable_enum(values: Vec<&'static str>, description: &str) -> Value {
    let mut e: Vec<Value> = vec![Value::Null];
    e.extend(values.into_iter().map(Value::from));
    json!({"type": ["null", "string"], "enum": e, "description": description})
}

fn ro(v: Value) -> Value {
    let mut v = v;
    v["readOnly"] = json!(true);
    v
}

/// The `image` schema.
pub fn image() -> Value {
    let id_pattern =
        "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$";
    json!({
        "name": "image",
        "additionalProperties": {"type": "string"},
        "links": [
            {"href": "{self}", "rel": "self"},
            {"href": "{file}", "rel": "enclosure"},
            {"href": "{schema}", "rel": "describedby"}
        ],
        "properties": {
            "id": {"type": "string", "pattern": id_pattern, "description": "An identifier for the image"},
            "name": {"type": ["null", "string"], "maxLength": 255, "description": "Descriptive name for the image"},
            "status": ro(json!({"type": "string", "enum": names(ImageStatus::ALL, ImageStatus::as_str), "description": "Status of the image"})),
            "visibility": {"type": "string", "enum": names(Visibility::ALL, Visibility::as_str), "description": "Scope of image accessibility"},
            "protected": {"type": "boolean", "description": "If true, image will not be deletable."},
            "os_hidden": {"type": "boolean", "description": "If true, image will not appear in default image list response."},
            "checksum": ro(json!({"type": ["null", "string"], "maxLength": 32, "description": "md5 hash of image contents."})),
            "os_hash_algo": ro(json!({"type": ["null", "string"], "maxLength": 64, "description": "Algorithm to calculate the os_hash_value"})),
            "os_hash_value": ro(json!({"type": ["null", "string"], "maxLength": 128, "description": "Hexdigest of the image contents using the algorithm specified by the os_hash_algo"})),
            "owner": {"type": ["null", "string"], "maxLength": 255, "description": "Owner of the image"},
            "size": ro(json!({"type": ["null", "integer"], "description": "Size of image file in bytes"})),
            "virtual_size": ro(json!({"type": ["null", "integer"], "description": "Virtual size of image in bytes"})),
            "container_format": nullable_enum(names(ContainerFormat::ALL, ContainerFormat::as_str), "Format of the container"),
            "disk_format": nullable_enum(names(DiskFormat::ALL, DiskFormat::as_str), "Format of the disk"),
            "created_at": ro(json!({"type": "string", "description": "Date and time of image registration"})),
            "updated_at": ro(json!({"type": "string", "description": "Date and time of the last image modification"})),
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 255}, "description": "List of strings related to the image"},
            "direct_url": ro(json!({"type": "string", "description": "URL to access the image file kept in external store"})),
            "min_ram": {"type": "integer", "minimum": 0, "description": "Amount of ram (in MB) required to boot image."},
            "min_disk": {"type": "integer", "minimum": 0, "maximum": 1024, "description": "Amount of disk space (in GB) required to boot image."},
            "self": ro(json!({"type": "string", "description": "An image self url"})),
            "file": ro(json!({"type": "string", "description": "An image file url"})),
            "stores": ro(json!({"type": "string", "description": "Store in which image data resides."})),
            "schema": ro(json!({"type": "string", "description": "An image schema url"})),
            "locations": {"type": "array", "items": {"type": "object"}, "description": "A set of URLs to access the image file kept in external store"},
            "__os_version": {"type": "string", "maxLength": 255, "description": "Huawei: image OS version; derives __platform, __os_type, __os_bit"},
            "__os_type": ro(json!({"type": "string", "description": "Huawei: OS type derived from __os_version"})),
            "__platform": ro(json!({"type": "string", "description": "Huawei: OS platform derived from __os_version"})),
            "__os_bit": ro(json!({"type": "string", "description": "Huawei: OS bitness derived from __os_version"})),
            "__imagetype": ro(json!({"type": "string", "description": "Huawei: image type (gold, private, shared)"})),
            "__isregistered": ro(json!({"type": "string", "description": "Huawei: whether the image is registered"})),
            "__image_source_type": ro(json!({"type": "string", "description": "Huawei: backend storage type"})),
            "__image_size": ro(json!({"type": "string", "description": "Huawei: image file size in bytes"})),
        }
    })
}

/// The `images` (list) schema.
pub fn images() -> Value {
    json!({
        "name": "images",
        "properties": {
            "images": {"type": "array", "items": image()},
            "schema": {"type": "string"}, "first": {"type": "string"}, "next": {"type": "string"}
        },
        "links": [{"href": "{first}", "rel": "first"}, {"href": "{next}", "rel": "next"}, {"href": "{schema}", "rel": "describedby"}]
    })
}

/// The `member` schema.
pub fn member() -> Value {
    json!({
        "name": "member",
        "properties": {
            "member_id": {"type": "string", "description": "An identifier for the image member (tenantId)"},
            "image_id": {"type": "string", "description": "An identifier for the image"},
            "status": {"type": "string", "enum": ["pending", "accepted", "rejected"], "description": "The status of this image member"},
            "created_at": {"type": "string", "description": "Date and time of image member creation"},
            "updated_at": {"type": "string", "description": "Date and time of last modification of image member"},
            "schema": {"type": "string", "readOnly": true}
        }
    })
}

/// The members of Glance's task schema, with its descriptions; a listed task (the
/// partial schema) has no `input`, `result` or `message`.
fn task_properties(partial: bool) -> Value {
    let uuid =
        "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$";
    let mut props = json!({
        "id": {"description": "An identifier for the task", "pattern": uuid, "type": "string"},
        "type": {"description": "The type of task represented by this content", "enum": ["import", "api_image_import", "location_import"], "type": "string"},
        "status": {"description": "The current status of this task", "enum": ["pending", "processing", "success", "failure"], "type": "string"},
        "input": {"description": "The parameters required by task, JSON blob", "type": ["null", "object"]},
        "result": {"description": "The result of current task, JSON blob", "type": ["null", "object"]},
        "owner": {"description": "An identifier for the owner of this task", "type": "string"},
        "message": {"description": "Human-readable informative message only included when appropriate (usually on failure)", "type": "string"},
        "image_id": {"description": "Image associated with the task", "type": "string"},
        "request_id": {"description": "Human-readable informative request-id", "type": "string"},
        "user_id": {"description": "User associated with the task", "type": "string"},
        "expires_at": {"description": "Datetime when this resource would be subject to removal", "type": ["null", "string"]},
        "created_at": {"description": "Datetime when this resource was created", "type": "string"},
        "updated_at": {"description": "Datetime when this resource was updated", "type": "string"},
        "self": {"readOnly": true, "type": "string"},
        "schema": {"readOnly": true, "type": "string"}
    });
    if partial && let Value::Object(m) = &mut props {
        for hidden in ["input", "result", "message"] {
            m.remove(hidden);
        }
    }
    props
}

/// The `task` schema (`GET /v2/schemas/task`).
pub fn task() -> Value {
    json!({"name": "task", "properties": task_properties(false)})
}

/// The `tasks` schema: as Glance serves it, the list of partial tasks and no paging
/// links.
pub fn tasks() -> Value {
    json!({
        "name": "tasks",
        "properties": {
            "tasks": {"type": "array", "items": {"name": "task", "properties": task_properties(true)}},
            "schema": {"type": "string"}
        },
        "links": [{"href": "{schema}", "rel": "describedby"}]
    })
}

fn plural(name: &str, item: Value) -> Value {
    json!({"name": name, "properties": {name: {"type": "array", "items": item}, "schema": {"type": "string"}, "first": {"type": "string"}, "next": {"type": "string"}},
           "links": [{"href": "{schema}", "rel": "describedby"}]})
}

/// Looks a schema up by its URL name.
pub fn named(name: &str, _settings: &ImageSettings) -> Option<Value> {
    Some(match name {
        "image" => image(),
        "images" => images(),
        "member" => member(),
        "members" => plural("members", member()),
        "task" => task(),
        "tasks" => tasks(),
        _ => return None,
    })
}

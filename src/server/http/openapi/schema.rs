//! Schema building blocks, each named for the parser type it describes.

use super::*;

/// `server::input::Name` (and the webhook's key and title): not blank, no control
/// characters (Unicode `Cc`, which is what `char::is_control` refuses).
pub(super) const LINE_PATTERN: &str = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$";
/// `server::input::Text`: PostgreSQL's `text` cannot hold NUL.
pub(super) const NO_NUL_PATTERN: &str = r"^[^\u0000]*$";
/// `server::input::QueueName`.
pub(super) const QUEUE_PATTERN: &str = "^[a-z0-9][a-z0-9_.-]*$";

pub(super) const JOB_ID: &str = "0b7e3c9a-5f1d-4e2a-9c8b-3d6f1a2e4b5c";
pub(super) const TASK_ID: &str = "3f2c7d1e-8a4b-4c6d-9e0f-1a2b3c4d5e6f";
pub(super) const LEASE_TOKEN: &str = "5a8d2c1e-7b3f-4a9d-8e6c-2f1b0a9d8c7e";

/// serde's `Uuid` also takes the simple, braced and URN forms; the hyphenated one is what
/// the portal writes.
pub(super) fn uuid() -> Value {
    json!({ "type": "string", "format": "uuid" })
}

/// chrono's `DateTime<Utc>`: RFC 3339 with a zone.
pub(super) fn time() -> Value {
    json!({ "type": "string", "format": "date-time" })
}

pub(super) fn string() -> Value {
    json!({ "type": "string" })
}

pub(super) fn integer() -> Value {
    json!({ "type": "integer" })
}

pub(super) fn number() -> Value {
    json!({ "type": "number" })
}

pub(super) fn boolean() -> Value {
    json!({ "type": "boolean" })
}

/// A `#[serde(default)] bool`: off when left out, but `null` is refused.
pub(super) fn flag() -> Value {
    json!({ "type": "boolean", "default": false })
}

pub(super) fn line(max_chars: usize) -> Value {
    json!({
        "type": "string",
        "minLength": 1,
        "maxLength": max_chars,
        "pattern": LINE_PATTERN,
    })
}

pub(super) fn name() -> Value {
    line(JOB_LIMITS.name_chars)
}

pub(super) fn text(max_chars: usize) -> Value {
    json!({ "type": "string", "maxLength": max_chars, "pattern": NO_NUL_PATTERN })
}

pub(super) fn message() -> Value {
    text(JOB_LIMITS.message_chars)
}

pub(super) fn queue() -> Value {
    json!({ "type": "string", "minLength": 1, "maxLength": 64, "pattern": QUEUE_PATTERN })
}

/// A cursor is opaque to its holder; one the list did not give out is a 400.
pub(super) fn cursor() -> Value {
    string()
}

/// `bounded!`: read as an `i64`, so `3.0` is refused as well as `11`.
pub(super) fn int<T: Into<i64>>((min, max): (T, T)) -> Value {
    let (min, max): (i64, i64) = (min.into(), max.into());
    json!({ "type": "integer", "minimum": min, "maximum": max })
}

/// `server::input::Count`.
pub(super) fn count() -> Value {
    int((0, i32::MAX))
}

/// `server::input::Counter`.
pub(super) fn counter() -> Value {
    int((0, i64::MAX))
}

pub(super) fn between(min: f64, max: f64) -> Value {
    json!({ "type": "number", "minimum": min, "maximum": max })
}

/// `server::input::Percent`.
pub(super) fn percent() -> Value {
    between(0.0, 100.0)
}

/// `server::input::Measure`: finite and not negative.
pub(super) fn measure() -> Value {
    json!({ "type": "number", "minimum": 0 })
}

/// A `wire_enum!`'s names.
pub(super) fn one_of(names: &[&str]) -> Value {
    json!({ "type": "string", "enum": names })
}

pub(super) fn array(items: Value, min: usize, max: usize) -> Value {
    json!({ "type": "array", "items": items, "minItems": min, "maxItems": max })
}

/// An array the parser does not bound.
pub(super) fn list(items: Value) -> Value {
    json!({ "type": "array", "items": items })
}

/// A list whose parser refuses a repeated entry.
pub(super) fn unique(mut schema: Value) -> Value {
    schema["uniqueItems"] = json!(true);
    schema
}

/// An `Option<T>`: `null` reads as left out.
pub(super) fn nullable(mut schema: Value) -> Value {
    let Some(kind) = schema
        .get("type")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return json!({ "anyOf": [schema, { "type": "null" }] });
    };
    schema["type"] = json!([kind, "null"]);
    if let Some(names) = schema.get_mut("enum").and_then(Value::as_array_mut) {
        names.push(Value::Null);
    }
    schema
}

pub(super) fn about(mut schema: Value, description: impl Into<String>) -> Value {
    schema["description"] = Value::String(description.into());
    schema
}

pub(super) fn with(mut schema: Value, keyword: &str, value: Value) -> Value {
    schema[keyword] = value;
    schema
}

pub(super) fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

pub(super) fn fields(properties: Vec<(&str, Value)>) -> Map<String, Value> {
    properties
        .into_iter()
        .map(|(name, schema)| (name.to_string(), schema))
        .collect()
}

/// A `deny_unknown_fields` struct: an unknown field is a 400.
pub(super) fn strict(required: &[&str], properties: Vec<(&str, Value)>) -> Value {
    json!({
        "type": "object",
        "required": required,
        "properties": fields(properties),
        "additionalProperties": false,
    })
}

/// A body whose parser ignores fields it does not know.
pub(super) fn open(required: &[&str], properties: Vec<(&str, Value)>) -> Value {
    json!({
        "type": "object",
        "required": required,
        "properties": fields(properties),
        "additionalProperties": true,
    })
}

/// What the portal answers: every field is there but those in `optional`
/// (`skip_serializing_if`); an `Option` without it is there as `null`.
pub(super) fn shape(optional: &[&str], properties: Vec<(&str, Value)>) -> Value {
    let required: Vec<&str> = properties
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| !optional.contains(name))
        .collect();
    json!({ "type": "object", "required": required, "properties": fields(properties) })
}

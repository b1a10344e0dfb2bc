//! WIT types → JSON Schema (draft 2020-12), the shapes `convert` accepts and
//! produces.
//!
//! Conventions, shared with `convert`:
//! - integers are `integer` with the exact range of their width;
//! - `char` is a one-character string;
//! - `option<T>` is `T` or `null`; when `T` itself admits `null`
//!   (`option<option<u8>>`), `some(x)` is written `{"some": x}` so the two
//!   levels stay apart;
//! - a variant case is `{"tag": name}` or `{"tag": name, "value": payload}`;
//! - `result` is `{"ok": v}` or `{"err": v}` (`null` when there is no payload);
//! - flags are an array of unique names, in input and output alike;
//! - non-finite floats are the strings `"NaN"`, `"Infinity"`, `"-Infinity"`.

use super::wit_type::WitType;
use serde_json::{json, Map, Value};

/// Which side of a call the schema describes. Output schemas also admit the
/// string forms of non-finite floats, which only a guest can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Input,
    Output,
}

/// The JSON Schema of one WIT type.
pub fn type_schema(ty: &WitType, side: Side) -> Value {
    match ty {
        WitType::Bool => json!({"type": "boolean"}),
        WitType::S8
        | WitType::U8
        | WitType::S16
        | WitType::U16
        | WitType::S32
        | WitType::U32
        | WitType::S64
        | WitType::U64 => {
            let (min, max) = ty.int_range().expect("integer type");
            json!({"type": "integer", "minimum": int_value(min), "maximum": int_value(max)})
        }
        WitType::F32 | WitType::F64 => match side {
            Side::Input => json!({"type": "number"}),
            Side::Output => json!({"anyOf": [
                {"type": "number"},
                {"type": "string", "enum": ["NaN", "Infinity", "-Infinity"]}
            ]}),
        },
        WitType::Char => json!({"type": "string", "minLength": 1, "maxLength": 1}),
        WitType::String => json!({"type": "string"}),
        WitType::List(t) => json!({"type": "array", "items": type_schema(t, side)}),
        WitType::FixedList(t, n) => json!({
            "type": "array", "items": type_schema(t, side), "minItems": n, "maxItems": n
        }),
        WitType::Record(fields) => object_schema(fields.iter().map(|(n, t)| (n.as_str(), t)), side),
        WitType::Tuple(ts) => json!({
            "type": "array",
            "prefixItems": ts.iter().map(|t| type_schema(t, side)).collect::<Vec<_>>(),
            "items": false,
            "minItems": ts.len(),
            "maxItems": ts.len(),
        }),
        WitType::Variant(cases) => {
            let one_of: Vec<Value> = cases
                .iter()
                .map(|(name, payload)| match payload {
                    Some(t) => json!({
                        "type": "object",
                        "properties": {"tag": {"const": name}, "value": type_schema(t, side)},
                        "required": ["tag", "value"],
                        "additionalProperties": false,
                    }),
                    None => json!({
                        "type": "object",
                        "properties": {"tag": {"const": name}},
                        "required": ["tag"],
                        "additionalProperties": false,
                    }),
                })
                .collect();
            json!({"oneOf": one_of})
        }
        WitType::Enum(names) => json!({"type": "string", "enum": names}),
        WitType::Option(inner) => {
            let some = if admits_null(inner) {
                json!({
                    "type": "object",
                    "properties": {"some": type_schema(inner, side)},
                    "required": ["some"],
                    "additionalProperties": false,
                })
            } else {
                type_schema(inner, side)
            };
            json!({"anyOf": [some, {"type": "null"}]})
        }
        WitType::Result { ok, err } => {
            let arm = |key: &str, t: &Option<Box<WitType>>| {
                let payload = t.as_ref().map_or(json!({"type": "null"}), |t| type_schema(t, side));
                json!({
                    "type": "object",
                    "properties": {key: payload},
                    "required": [key],
                    "additionalProperties": false,
                })
            };
            json!({"oneOf": [arm("ok", ok), arm("err", err)]})
        }
        WitType::Flags(names) => json!({
            "type": "array",
            "items": {"type": "string", "enum": names},
            "uniqueItems": true,
        }),
    }
}

/// True when `null` is a valid JSON value of `ty`: the case where an
/// enclosing option must wrap `some` to stay unambiguous.
pub fn admits_null(ty: &WitType) -> bool {
    matches!(ty, WitType::Option(_))
}

/// A JSON object schema whose option-typed properties are not required.
pub fn object_schema<'a>(fields: impl Iterator<Item = (&'a str, &'a WitType)>, side: Side) -> Value {
    let mut props = Map::new();
    let mut required = Vec::new();
    for (name, ty) in fields {
        props.insert(name.to_string(), type_schema(ty, side));
        if !matches!(ty, WitType::Option(_)) {
            required.push(Value::from(name));
        }
    }
    json!({
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": false,
    })
}

/// Input schema of a function: one property per parameter, with the
/// parameter descriptions (from WIT docs) attached where known.
pub fn input_schema(params: &[(String, WitType)], param_docs: &dyn Fn(&str) -> Option<String>) -> Value {
    let mut schema = object_schema(params.iter().map(|(n, t)| (n.as_str(), t)), Side::Input);
    if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        for (name, prop) in props.iter_mut() {
            if let (Some(doc), Some(obj)) = (param_docs(name), prop.as_object_mut()) {
                obj.insert("description".into(), Value::String(doc));
            }
        }
    }
    schema
}

/// Output schema of a function. MCP requires an object, so the value sits
/// under `result`; a function with no result has an empty object.
pub fn output_schema(result: Option<&WitType>) -> Value {
    match result {
        Some(t) => json!({
            "type": "object",
            "properties": {"result": type_schema(t, Side::Output)},
            "required": ["result"],
            "additionalProperties": false,
        }),
        None => json!({"type": "object", "properties": {}, "additionalProperties": false}),
    }
}

fn int_value(v: i128) -> Value {
    if v < 0 {
        Value::from(v as i64)
    } else {
        Value::from(v as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use WitType::*;

    fn rec(fields: &[(&str, WitType)]) -> WitType {
        Record(fields.iter().map(|(n, t)| (n.to_string(), t.clone())).collect())
    }

    #[test]
    fn every_type_maps_to_its_documented_shape() {
        let cases: Vec<(WitType, Value)> = vec![
            (Bool, json!({"type": "boolean"})),
            (U8, json!({"type": "integer", "minimum": 0, "maximum": 255})),
            (S8, json!({"type": "integer", "minimum": -128, "maximum": 127})),
            (U16, json!({"type": "integer", "minimum": 0, "maximum": 65535})),
            (S16, json!({"type": "integer", "minimum": -32768, "maximum": 32767})),
            (U32, json!({"type": "integer", "minimum": 0, "maximum": 4294967295u64})),
            (S32, json!({"type": "integer", "minimum": -2147483648i64, "maximum": 2147483647})),
            (U64, json!({"type": "integer", "minimum": 0, "maximum": u64::MAX})),
            (S64, json!({"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX})),
            (F32, json!({"type": "number"})),
            (F64, json!({"type": "number"})),
            (Char, json!({"type": "string", "minLength": 1, "maxLength": 1})),
            (String, json!({"type": "string"})),
            (List(Box::new(U8)), json!({"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 255}})),
            (
                FixedList(Box::new(Bool), 3),
                json!({"type": "array", "items": {"type": "boolean"}, "minItems": 3, "maxItems": 3}),
            ),
            (
                Tuple(vec![String, Bool]),
                json!({"type": "array", "prefixItems": [{"type": "string"}, {"type": "boolean"}],
                       "items": false, "minItems": 2, "maxItems": 2}),
            ),
            (
                rec(&[("name", String), ("age", Option(Box::new(Bool)))]),
                json!({"type": "object",
                       "properties": {"name": {"type": "string"},
                                      "age": {"anyOf": [{"type": "boolean"}, {"type": "null"}]}},
                       "required": ["name"], "additionalProperties": false}),
            ),
            (
                Variant(vec![("none".into(), None), ("some".into(), Some(Bool))]),
                json!({"oneOf": [
                    {"type": "object", "properties": {"tag": {"const": "none"}},
                     "required": ["tag"], "additionalProperties": false},
                    {"type": "object", "properties": {"tag": {"const": "some"}, "value": {"type": "boolean"}},
                     "required": ["tag", "value"], "additionalProperties": false},
                ]}),
            ),
            (Enum(vec!["a".into(), "b".into()]), json!({"type": "string", "enum": ["a", "b"]})),
            (Option(Box::new(String)), json!({"anyOf": [{"type": "string"}, {"type": "null"}]})),
            (
                Option(Box::new(Option(Box::new(Bool)))),
                json!({"anyOf": [
                    {"type": "object",
                     "properties": {"some": {"anyOf": [{"type": "boolean"}, {"type": "null"}]}},
                     "required": ["some"], "additionalProperties": false},
                    {"type": "null"}]}),
            ),
            (
                Result { ok: Some(Box::new(U8)), err: None },
                json!({"oneOf": [
                    {"type": "object", "properties": {"ok": {"type": "integer", "minimum": 0, "maximum": 255}},
                     "required": ["ok"], "additionalProperties": false},
                    {"type": "object", "properties": {"err": {"type": "null"}},
                     "required": ["err"], "additionalProperties": false},
                ]}),
            ),
            (
                Flags(vec!["read".into(), "write".into()]),
                json!({"type": "array", "items": {"type": "string", "enum": ["read", "write"]}, "uniqueItems": true}),
            ),
        ];
        for (ty, want) in cases {
            assert_eq!(type_schema(&ty, Side::Input), want, "schema of {}", ty.wit_name());
        }
    }

    #[test]
    fn output_floats_admit_non_finite_strings_and_flags_keep_their_shape() {
        let out = type_schema(&F64, Side::Output);
        assert_eq!(out["anyOf"][1]["enum"], json!(["NaN", "Infinity", "-Infinity"]));
        let flags = Flags(vec!["x".into()]);
        assert_eq!(type_schema(&flags, Side::Input), type_schema(&flags, Side::Output));
    }

    #[test]
    fn input_schema_marks_options_optional_and_attaches_docs() {
        let params = vec![("name".to_string(), String), ("limit".to_string(), Option(Box::new(U32)))];
        let docs = |n: &str| (n == "name").then(|| "Who to greet".to_string());
        let s = input_schema(&params, &docs);
        assert_eq!(s["required"], json!(["name"]));
        assert_eq!(s["properties"]["name"]["description"], json!("Who to greet"));
        assert!(s["properties"]["limit"].get("description").is_none());
    }

    #[test]
    fn output_schema_is_always_an_object() {
        assert_eq!(output_schema(None)["type"], json!("object"));
        let s = output_schema(Some(&String));
        assert_eq!(s["required"], json!(["result"]));
        assert_eq!(s["properties"]["result"], json!({"type": "string"}));
    }
}

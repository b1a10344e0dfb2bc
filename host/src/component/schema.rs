//! WIT types → JSON Schema (draft 2020-12), the shapes `convert` accepts and
//! produces.
//!
//! Conventions, shared with `convert`:
//! - integers are `integer` with the exact range of their width; a `u64` or
//!   `s64` argument may also be a decimal string (`"18446744073709551615"`),
//!   since JavaScript numbers are exact only up to 2^53 (results stay
//!   numbers);
//! - `char` is a one-character string;
//! - `option<T>` is `T` or `null`; when `T` itself admits `null`
//!   (`option<option<u8>>`), `some(x)` is written `{"some": x}` so the two
//!   levels stay apart;
//! - a variant case is `{"tag": name}` or `{"tag": name, "value": payload}`;
//! - `result` is `{"ok": v}` or `{"err": v}` (`null` when there is no payload),
//!   except a function's top-level `result<T, E>`: its `ok` value is the
//!   call's result as is, and its `err` is an error result (`tool_error`);
//! - a tuple is an array with `prefixItems` and an exact length, without
//!   `items: false`: draft-07 validators (the TypeScript MCP SDK's Ajv) read
//!   that as "no item allowed", and the length bounds already say it;
//! - flags are an array of unique names, in input and output alike;
//! - non-finite floats are the strings `"NaN"`, `"Infinity"`, `"-Infinity"`.

use super::docs::{Kind, TypeDocs};
use super::wit_type::WitType;
use serde_json::{json, Map, Value};

/// The decimal strings a `u64` argument may be given as (range-checked by
/// `convert`).
pub const U64_PATTERN: &str = "^(0|[1-9][0-9]{0,19})$";
/// The decimal strings an `s64` argument may be given as.
pub const S64_PATTERN: &str = "^(0|-?[1-9][0-9]{0,18})$";

/// Which side of a call the schema describes. Output schemas also admit the
/// string forms of non-finite floats, which only a guest can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Input,
    Output,
}

/// The JSON Schema of one WIT type.
pub fn type_schema(ty: &WitType, side: Side) -> Value {
    type_schema_documented(ty, side, &TypeDocs::default())
}

/// Sets `description` on a schema object unless it has one.
fn describe(schema: &mut Value, doc: Option<&str>) {
    if let (Some(doc), Some(o)) = (doc, schema.as_object_mut()) {
        o.entry("description").or_insert_with(|| Value::String(doc.to_string()));
    }
}

/// [`type_schema`] with the `///` docs of records' fields, variants' and
/// enums' cases and flags as `description`s.
pub fn type_schema_documented(ty: &WitType, side: Side, docs: &TypeDocs) -> Value {
    let type_schema = |t: &WitType, side: Side| type_schema_documented(t, side, docs);
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
            let int = json!({"type": "integer", "minimum": int_value(min), "maximum": int_value(max)});
            match (ty, side) {
                // JavaScript numbers are exact only up to 2^53: a caller
                // may send a 64-bit argument as a decimal string instead.
                (WitType::S64 | WitType::U64, Side::Input) => json!({"anyOf": [int, {
                    "type": "string",
                    "pattern": if *ty == WitType::S64 { S64_PATTERN } else { U64_PATTERN },
                    "description": format!("the same integer ({}) as a decimal string, exact above 2^53", ty.wit_name()),
                }]}),
                _ => int,
            }
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
        WitType::Record(fields) => {
            let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
            let shape = docs.get(Kind::Record, &names);
            let mut s = object_schema_documented(fields.iter().map(|(n, t)| (n.as_str(), t)), side, docs);
            if let (Some(shape), Some(props)) = (shape, s.get_mut("properties").and_then(Value::as_object_mut)) {
                for (i, name) in names.iter().enumerate() {
                    // A field's own doc wins over its type's.
                    if let (Some(doc), Some(p)) = (shape.member(i), props.get_mut(*name).and_then(Value::as_object_mut)) {
                        p.insert("description".into(), Value::String(doc.to_string()));
                    }
                }
            }
            describe(&mut s, shape.and_then(|d| d.doc.as_deref()));
            s
        }
        WitType::Tuple(ts) => json!({
            "type": "array",
            "prefixItems": ts.iter().map(|t| type_schema(t, side)).collect::<Vec<_>>(),
            "minItems": ts.len(),
            "maxItems": ts.len(),
        }),
        WitType::Variant(cases) => {
            let names: Vec<&str> = cases.iter().map(|(n, _)| n.as_str()).collect();
            let shape = docs.get(Kind::Variant, &names);
            let mut one_of = Vec::with_capacity(cases.len());
            for (i, (name, payload)) in cases.iter().enumerate() {
                let mut case = match payload {
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
                };
                describe(&mut case, shape.and_then(|d| d.member(i)));
                one_of.push(case);
            }
            let mut s = json!({"oneOf": one_of});
            describe(&mut s, shape.and_then(|d| d.doc.as_deref()));
            s
        }
        WitType::Enum(names) => {
            let mut s = json!({"type": "string", "enum": names});
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            describe(&mut s, docs.get(Kind::Enum, &refs).map(|d| cases_doc(d, &refs)).as_deref());
            s
        }
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
        WitType::Flags(names) => {
            let mut s = json!({
                "type": "array",
                "items": {"type": "string", "enum": names},
                "uniqueItems": true,
            });
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            describe(&mut s, docs.get(Kind::Flags, &refs).map(|d| cases_doc(d, &refs)).as_deref());
            s
        }
    }
}

/// An enum's or flags' description: the type's doc, then one line per
/// documented case (`- upper: all capitals`), since JSON Schema cannot
/// describe the values of an `enum` one by one.
fn cases_doc(d: &super::docs::ShapeDocs, names: &[&str]) -> String {
    let mut lines: Vec<String> = d.doc.iter().cloned().collect();
    for (i, name) in names.iter().enumerate() {
        if let Some(doc) = d.member(i) {
            lines.push(format!("- {name}: {}", doc.replace('\n', " ")));
        }
    }
    lines.join("\n")
}

/// True when `null` is a valid JSON value of `ty`: the case where an
/// enclosing option must wrap `some` to stay unambiguous.
pub fn admits_null(ty: &WitType) -> bool {
    matches!(ty, WitType::Option(_))
}

/// A JSON object schema whose option-typed properties are not required.
pub fn object_schema<'a>(fields: impl Iterator<Item = (&'a str, &'a WitType)>, side: Side) -> Value {
    object_schema_documented(fields, side, &TypeDocs::default())
}

fn object_schema_documented<'a>(fields: impl Iterator<Item = (&'a str, &'a WitType)>, side: Side, docs: &TypeDocs) -> Value {
    let mut props = Map::new();
    let mut required = Vec::new();
    for (name, ty) in fields {
        props.insert(name.to_string(), type_schema_documented(ty, side, docs));
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
    input_schema_documented(params, param_docs, &TypeDocs::default())
}

/// [`input_schema`] with the docs of the types' fields and cases. A
/// parameter's own doc wins over its type's.
pub fn input_schema_documented(params: &[(String, WitType)], param_docs: &dyn Fn(&str) -> Option<String>, docs: &TypeDocs) -> Value {
    let mut schema = object_schema_documented(params.iter().map(|(n, t)| (n.as_str(), t)), Side::Input, docs);
    if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        for (name, prop) in props.iter_mut() {
            if let (Some(doc), Some(obj)) = (param_docs(name), prop.as_object_mut()) {
                obj.insert("description".into(), Value::String(doc));
            }
        }
    }
    schema
}

/// What the output schema of a function with a top-level `result<T, E>`
/// says about the `err` case, which the schema itself does not describe.
pub const RESULT_ERR_NOTE: &str = "The ok value of the function's result<T, E>. An err is not a value of this \
schema: it comes back as an error (code tool_error; over MCP an isError result with the err value under \
_meta[\"wasmward/error\"].value, over HTTP the error body's value).";

/// The JSON Schema of a function's result value, the value under `result`
/// in MCP's `structuredContent` and the HTTP API's `{"result": ...}`:
/// `null` for a function with no result; for a top-level `result<T, E>`,
/// the schema of `T` (`null` without one), since an `err` never is a value.
pub fn result_value_schema(result: Option<&WitType>) -> Value {
    result_value_schema_documented(result, &TypeDocs::default())
}

fn result_value_schema_documented(result: Option<&WitType>, docs: &TypeDocs) -> Value {
    match result {
        None => json!({"type": "null"}),
        Some(WitType::Result { ok, .. }) => {
            let mut s = ok.as_ref().map_or(json!({"type": "null"}), |t| type_schema_documented(t, Side::Output, docs));
            if let Some(o) = s.as_object_mut() {
                let note = match o.get("description").and_then(Value::as_str) {
                    Some(doc) => format!("{doc}\n\n{RESULT_ERR_NOTE}"),
                    None => RESULT_ERR_NOTE.to_string(),
                };
                o.insert("description".into(), Value::String(note));
            }
            s
        }
        Some(t) => type_schema_documented(t, Side::Output, docs),
    }
}

/// Output schema of a function. MCP requires an object, so the value sits
/// under `result`, always present (`null` for a function with no result).
pub fn output_schema(result: Option<&WitType>) -> Value {
    output_schema_documented(result, &TypeDocs::default())
}

/// [`output_schema`] with the docs of the result type's fields and cases.
pub fn output_schema_documented(result: Option<&WitType>, docs: &TypeDocs) -> Value {
    json!({
        "type": "object",
        "properties": {"result": result_value_schema_documented(result, docs)},
        "required": ["result"],
        "additionalProperties": false,
    })
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
            (
                U64,
                json!({"anyOf": [{"type": "integer", "minimum": 0, "maximum": u64::MAX},
                                 {"type": "string", "pattern": U64_PATTERN,
                                  "description": "the same integer (u64) as a decimal string, exact above 2^53"}]}),
            ),
            (
                S64,
                json!({"anyOf": [{"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX},
                                 {"type": "string", "pattern": S64_PATTERN,
                                  "description": "the same integer (s64) as a decimal string, exact above 2^53"}]}),
            ),
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
                       "minItems": 2, "maxItems": 2}),
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
    fn only_64_bit_arguments_admit_decimal_strings() {
        assert_eq!(type_schema(&U64, Side::Output), json!({"type": "integer", "minimum": 0, "maximum": u64::MAX}));
        assert_eq!(type_schema(&S64, Side::Output), json!({"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX}));
        assert_eq!(type_schema(&U32, Side::Input), json!({"type": "integer", "minimum": 0, "maximum": 4294967295u64}));
        let re = |p: &str| regex::Regex::new(p).unwrap();
        let cases = [
            ("0", true, true),
            ("18446744073709551615", true, false),
            ("-9223372036854775808", false, true),
            ("-0", false, false),
            ("007", false, false),
            ("1e3", false, false),
            (" 5", false, false),
            ("", false, false),
            ("123456789012345678901", false, false),
        ];
        for (s, u, signed) in cases {
            assert_eq!(re(U64_PATTERN).is_match(s), u, "u64 pattern on {s:?}");
            assert_eq!(re(S64_PATTERN).is_match(s), signed, "s64 pattern on {s:?}");
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
    fn field_and_case_docs_become_descriptions() {
        let wit = r#"
package example:d;
interface i {
    /// Scaling options.
    record opts {
        /// How much to scale, 1 for none.
        scale: u8,
        /// Optional label.
        label: option<string>,
        shape: shape,
        style: style,
    }
    /// A shape.
    variant shape {
        /// Just a dot.
        point,
        circle(f64),
    }
    enum style {
        /// ALL CAPS
        upper,
        lower,
    }
}
"#;
        let docs = super::super::docs::WitDocs::parse(wit).types;
        let shape = Variant(vec![("point".into(), None), ("circle".into(), Some(F64))]);
        let style = Enum(vec!["upper".into(), "lower".into()]);
        let opts = rec(&[("scale", U8), ("label", Option(Box::new(String))), ("shape", shape), ("style", style)]);
        let params = vec![("o".to_string(), opts.clone())];
        let s = input_schema_documented(&params, &|_| None, &docs);
        let o = &s["properties"]["o"];
        assert_eq!(o["description"], "Scaling options.");
        assert_eq!(o["properties"]["scale"]["description"], "How much to scale, 1 for none.");
        assert_eq!(o["properties"]["label"]["description"], "Optional label.");
        // A field without a doc gets its type's.
        assert_eq!(o["properties"]["shape"]["description"], "A shape.");
        assert_eq!(o["properties"]["shape"]["oneOf"][0]["description"], "Just a dot.");
        assert!(o["properties"]["shape"]["oneOf"][1].get("description").is_none());
        assert_eq!(o["properties"]["style"]["description"], "- upper: ALL CAPS");
        // A parameter's own doc wins over its type's.
        let s = input_schema_documented(&params, &|_| Some("the options".into()), &docs);
        assert_eq!(s["properties"]["o"]["description"], "the options");
        assert_eq!(s["properties"]["o"]["properties"]["scale"]["description"], "How much to scale, 1 for none.");
        // Output schemas too, and without docs nothing changes.
        let out = output_schema_documented(Some(&opts), &docs);
        assert_eq!(out["properties"]["result"]["properties"]["scale"]["description"], "How much to scale, 1 for none.");
        assert_eq!(output_schema(Some(&opts)), output_schema_documented(Some(&opts), &TypeDocs::default()));
        assert!(!output_schema(Some(&opts)).to_string().contains("description"));
    }

    /// The output schema of every kind of signature, and values of it.
    #[test]
    fn output_schemas_describe_the_value_each_signature_returns() {
        let note = |s: Value| {
            let mut s = s;
            s.as_object_mut().unwrap().insert("description".into(), json!(RESULT_ERR_NOTE));
            s
        };
        let u8s = json!({"type": "integer", "minimum": 0, "maximum": 255});
        let cases: Vec<(std::option::Option<WitType>, Value)> = vec![
            (None, json!({"type": "null"})),
            (Some(String), json!({"type": "string"})),
            (Some(Result { ok: Some(Box::new(U8)), err: Some(Box::new(String)) }), note(u8s.clone())),
            (Some(Result { ok: None, err: Some(Box::new(String)) }), note(json!({"type": "null"}))),
            (Some(Result { ok: None, err: None }), note(json!({"type": "null"}))),
            (
                Some(Result { ok: Some(Box::new(Option(Box::new(U8)))), err: None }),
                note(json!({"anyOf": [u8s.clone(), {"type": "null"}]})),
            ),
            (Some(Option(Box::new(U8))), json!({"anyOf": [u8s.clone(), {"type": "null"}]})),
            (
                Some(Tuple(vec![U8, String])),
                json!({"type": "array", "prefixItems": [u8s.clone(), {"type": "string"}], "minItems": 2, "maxItems": 2}),
            ),
            // A result nested in another type keeps its {"ok"}/{"err"} form.
            (
                Some(List(Box::new(Result { ok: Some(Box::new(U8)), err: None }))),
                json!({"type": "array", "items": {"oneOf": [
                    {"type": "object", "properties": {"ok": u8s.clone()}, "required": ["ok"], "additionalProperties": false},
                    {"type": "object", "properties": {"err": {"type": "null"}}, "required": ["err"], "additionalProperties": false},
                ]}}),
            ),
        ];
        for (ty, want) in cases {
            let s = output_schema(ty.as_ref());
            let what = ty.as_ref().map_or("no result".to_string(), |t| t.wit_name());
            assert_eq!(s["type"], json!("object"), "{what}");
            assert_eq!(s["required"], json!(["result"]), "{what}");
            assert_eq!(s["additionalProperties"], json!(false), "{what}");
            assert_eq!(s["properties"]["result"], want, "{what}");
        }
    }
}

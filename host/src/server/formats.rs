//! The tool list in the shapes the model APIs take, for
//! `GET /v1/tools?format=...`:
//!
//! - `openai`: `{"type": "function", "function": {"name", "description",
//!   "parameters", "strict": true}}`, the parameters rewritten by
//!   [`openai_strict`] into the JSON Schema subset OpenAI's strict mode
//!   accepts;
//! - `anthropic`: `{"name", "description", "input_schema"}` as the
//!   Anthropic Messages API takes them, the schema unchanged;
//! - `mcp`: the MCP `Tool` objects of `tools/list` (camelCase, as the MCP
//!   spec writes them).
//!
//! The native `/v1` list keeps snake_case keys (`input_schema`,
//! `output_schema`). Names are always the listed ones (see [`super::names`]).

use super::ToolView;
use serde_json::{json, Map, Value};

/// The `format=` values `/v1/tools` accepts.
pub const FORMATS: &[&str] = &["json", "mcp", "openai", "anthropic"];

/// Keywords strict mode accepts and that keep their meaning unchanged.
const KEPT: &[&str] = &[
    "type",
    "description",
    "enum",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minItems",
    "maxItems",
    "pattern",
    "format",
];

/// One function for OpenAI's function calling, strict mode on.
pub fn openai_tool(v: &ToolView) -> Value {
    json!({
        "type": "function",
        "function": {
            "name": v.mcp_name,
            "description": v.description.clone().unwrap_or_default(),
            "parameters": openai_strict(&v.input_schema),
            "strict": true,
        }
    })
}

/// One function for the Anthropic Messages API's `tools`.
pub fn anthropic_tool(v: &ToolView) -> Value {
    json!({
        "name": v.mcp_name,
        "description": v.description.clone().unwrap_or_default(),
        "input_schema": v.input_schema,
    })
}

/// `schema` rewritten into what OpenAI's strict mode accepts, admitting the
/// same argument values wherever strict mode can say so. Rules:
///
/// - every object lists all its properties in `required` and has
///   `additionalProperties: false`; a property that was optional becomes
///   `anyOf [T, {"type": "null"}]` (the call path takes `null` as an
///   omitted `option`);
/// - `oneOf` becomes `anyOf` (variant cases and result arms never overlap,
///   so the values are the same), `const: x` becomes `enum: [x]`, nested
///   `anyOf`s are flattened;
/// - a tuple (`prefixItems` + `items: false`) stays a JSON array of its
///   exact length (`minItems` = `maxItems`), its `items` the element schema
///   when all are alike, else `anyOf` of them, with the order in the
///   description; the call path checks each position, so an argument in the
///   wrong order is an `invalid_arguments` error that names it;
/// - keywords strict mode refuses are dropped (`uniqueItems`, `minLength`,
///   `maxLength`, `default`, ...): the schema only gets looser, and the
///   call path still checks them (a flag given twice, a `char` of two
///   characters).
pub fn openai_strict(schema: &Value) -> Value {
    let Value::Object(s) = schema else {
        // `true` / `false` schemas do not occur in what wasmward emits; an
        // unconstrained value is the closest strict mode has.
        return json!({});
    };
    let mut out = Map::new();
    for k in KEPT {
        if let Some(v) = s.get(*k) {
            out.insert(k.to_string(), v.clone());
        }
    }
    if let Some(c) = s.get("const") {
        out.insert("enum".into(), json!([c]));
        let ty = match c {
            Value::String(_) => Some("string"),
            Value::Bool(_) => Some("boolean"),
            Value::Number(n) if n.is_f64() => Some("number"),
            Value::Number(_) => Some("integer"),
            Value::Null => Some("null"),
            _ => None,
        };
        if let (Some(t), false) = (ty, out.contains_key("type")) {
            out.insert("type".into(), json!(t));
        }
    }
    let branches = s.get("anyOf").or_else(|| s.get("oneOf")).and_then(Value::as_array);
    if let Some(branches) = branches {
        let mut flat = Vec::new();
        for b in branches {
            match openai_strict(b) {
                Value::Object(mut o) if o.len() == 1 && o.contains_key("anyOf") => {
                    if let Some(Value::Array(inner)) = o.remove("anyOf") {
                        flat.extend(inner);
                    }
                }
                other => flat.push(other),
            }
        }
        out.insert("anyOf".into(), Value::Array(flat));
    }
    if let Some(props) = s.get("properties").and_then(Value::as_object) {
        let required: Vec<&str> = s.get("required").and_then(Value::as_array).map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        let mut p = Map::new();
        for (name, ps) in props {
            let mut strict = openai_strict(ps);
            if !required.contains(&name.as_str()) && !admits_null(&strict) {
                strict = nullable(strict);
            }
            p.insert(name.clone(), strict);
        }
        out.insert("required".into(), Value::Array(p.keys().map(|k| Value::String(k.clone())).collect()));
        out.insert("properties".into(), Value::Object(p));
    }
    if s.get("type") == Some(&json!("object")) || s.contains_key("properties") {
        out.insert("type".into(), json!("object"));
        out.entry("properties").or_insert_with(|| json!({}));
        out.entry("required").or_insert_with(|| json!([]));
        out.insert("additionalProperties".into(), json!(false));
    }
    if let Some(prefix) = s.get("prefixItems").and_then(Value::as_array) {
        let items: Vec<Value> = prefix.iter().map(openai_strict).collect();
        let mut distinct: Vec<Value> = Vec::new();
        for i in &items {
            if !distinct.contains(i) {
                distinct.push(i.clone());
            }
        }
        let item = match distinct.len() {
            0 => json!({}),
            1 => distinct.remove(0),
            _ => json!({ "anyOf": distinct }),
        };
        out.insert("items".into(), item);
        out.insert("minItems".into(), json!(items.len()));
        out.insert("maxItems".into(), json!(items.len()));
        if items.len() > 1 {
            let order: Vec<String> = items.iter().enumerate().map(|(i, t)| format!("[{i}] {}", describe(t))).collect();
            let note = format!("A tuple: exactly {} items, in this order: {}.", items.len(), order.join(", "));
            let text = match out.get("description").and_then(Value::as_str) {
                Some(d) if !d.is_empty() => format!("{d} {note}"),
                _ => note,
            };
            out.insert("description".into(), Value::String(text));
        }
    } else if let Some(items) = s.get("items").filter(|i| i.is_object()) {
        out.insert("items".into(), openai_strict(items));
    }
    Value::Object(out)
}

/// True when `null` is a valid value of the (strict) schema `s`.
fn admits_null(s: &Value) -> bool {
    match s.get("type") {
        Some(Value::String(t)) if t == "null" => return true,
        Some(Value::Array(ts)) if ts.iter().any(|t| t == "null") => return true,
        _ => {}
    }
    s.get("anyOf").and_then(Value::as_array).is_some_and(|b| b.iter().any(admits_null))
}

/// `anyOf [s, null]`, flattened when `s` is an `anyOf` itself; a
/// description stays on the outside.
fn nullable(s: Value) -> Value {
    let Value::Object(mut o) = s else { return s };
    let description = o.remove("description");
    let mut branches = match (o.len(), o.remove("anyOf")) {
        (1, Some(Value::Array(b))) => b,
        (_, Some(b)) => {
            o.insert("anyOf".into(), b);
            vec![Value::Object(o)]
        }
        (_, None) => vec![Value::Object(o)],
    };
    branches.push(json!({"type": "null"}));
    let mut out = Map::new();
    out.insert("anyOf".into(), Value::Array(branches));
    if let Some(d) = description {
        out.insert("description".into(), d);
    }
    Value::Object(out)
}

/// A few words for one tuple position: its type, or the types it allows.
fn describe(s: &Value) -> String {
    if let Some(t) = s.get("type").and_then(Value::as_str) {
        return t.to_string();
    }
    if let Some(b) = s.get("anyOf").and_then(Value::as_array) {
        return b.iter().map(describe).collect::<Vec<_>>().join(" or ");
    }
    "any value".into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::component::schema::{input_schema, type_schema, Side};
    use crate::component::wit_type::WitType::{self, *};

    fn b(t: WitType) -> Box<WitType> {
        Box::new(t)
    }

    /// Keywords strict mode refuses, anywhere in `s`.
    fn refused(s: &Value, path: &str, out: &mut Vec<std::string::String>) {
        match s {
            Value::Object(o) => {
                for (k, v) in o {
                    let allowed = KEPT.contains(&k.as_str()) || ["anyOf", "properties", "required", "additionalProperties", "items"].contains(&k.as_str());
                    if !allowed {
                        out.push(format!("{path}.{k}"));
                    }
                    if k == "properties" {
                        for (n, p) in v.as_object().unwrap() {
                            refused(p, &format!("{path}.properties.{n}"), out);
                        }
                    } else if k == "anyOf" {
                        for (i, p) in v.as_array().unwrap().iter().enumerate() {
                            refused(p, &format!("{path}.anyOf[{i}]"), out);
                        }
                    } else if k == "items" {
                        refused(v, &format!("{path}.items"), out);
                    }
                }
                if o.get("type") == Some(&json!("object")) {
                    let props: Vec<&std::string::String> = o["properties"].as_object().unwrap().keys().collect();
                    let req: Vec<&str> = o["required"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
                    if props.len() != req.len() || props.iter().any(|p| !req.contains(&p.as_str())) {
                        out.push(format!("{path}: not every property is required"));
                    }
                    if o.get("additionalProperties") != Some(&json!(false)) {
                        out.push(format!("{path}: additionalProperties is not false"));
                    }
                }
                if o.get("items") == Some(&json!(false)) {
                    out.push(format!("{path}.items: false"));
                }
            }
            other => out.push(format!("{path}: {other} is not a schema object")),
        }
    }

    fn rec(fields: &[(&str, WitType)]) -> WitType {
        Record(fields.iter().map(|(n, t)| (n.to_string(), t.clone())).collect())
    }

    #[test]
    fn every_wit_type_becomes_a_strict_schema() {
        let int = |lo: i64, hi: u64| json!({"type": "integer", "minimum": lo, "maximum": hi});
        let cases: Vec<(WitType, Value)> = vec![
            (Bool, json!({"type": "boolean"})),
            (U8, int(0, 255)),
            (S32, json!({"type": "integer", "minimum": -2147483648i64, "maximum": 2147483647})),
            // The decimal-string branch stays: strict mode takes `pattern`.
            (
                U64,
                json!({"anyOf": [{"type": "integer", "minimum": 0, "maximum": u64::MAX},
                                 {"type": "string", "description": "the same integer (u64) as a decimal string, exact above 2^53",
                                  "pattern": "^(0|[1-9][0-9]{0,19})$"}]}),
            ),
            (F64, json!({"type": "number"})),
            // minLength/maxLength are not strict-mode keywords; the call checks a char.
            (Char, json!({"type": "string"})),
            (String, json!({"type": "string"})),
            (List(b(U8)), json!({"type": "array", "items": int(0, 255)})),
            (FixedList(b(Bool), 3), json!({"type": "array", "items": {"type": "boolean"}, "minItems": 3, "maxItems": 3})),
            // Alike items: the same values as the tuple.
            (Tuple(vec![U8, U8]), json!({"type": "array", "items": int(0, 255), "minItems": 2, "maxItems": 2,
                "description": "A tuple: exactly 2 items, in this order: [0] integer, [1] integer."})),
            (
                Tuple(vec![String, Bool]),
                json!({"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "boolean"}]}, "minItems": 2, "maxItems": 2,
                       "description": "A tuple: exactly 2 items, in this order: [0] string, [1] boolean."}),
            ),
            (Tuple(vec![String]), json!({"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 1})),
            (
                rec(&[("name", String), ("age", Option(b(U8)))]),
                json!({"type": "object",
                       "properties": {"name": {"type": "string"}, "age": {"anyOf": [int(0, 255), {"type": "null"}]}},
                       "required": ["name", "age"], "additionalProperties": false}),
            ),
            (
                Variant(vec![("none".into(), None), ("some".into(), Some(Bool))]),
                json!({"anyOf": [
                    {"type": "object", "properties": {"tag": {"type": "string", "enum": ["none"]}}, "required": ["tag"], "additionalProperties": false},
                    {"type": "object", "properties": {"tag": {"type": "string", "enum": ["some"]}, "value": {"type": "boolean"}},
                     "required": ["tag", "value"], "additionalProperties": false},
                ]}),
            ),
            (Enum(vec!["a".into(), "b".into()]), json!({"type": "string", "enum": ["a", "b"]})),
            (Option(b(String)), json!({"anyOf": [{"type": "string"}, {"type": "null"}]})),
            (
                Option(b(Option(b(Bool)))),
                json!({"anyOf": [
                    {"type": "object", "properties": {"some": {"anyOf": [{"type": "boolean"}, {"type": "null"}]}},
                     "required": ["some"], "additionalProperties": false},
                    {"type": "null"}]}),
            ),
            // An option of a variant: one flat anyOf.
            (
                Option(b(Variant(vec![("a".into(), None)]))),
                json!({"anyOf": [
                    {"type": "object", "properties": {"tag": {"type": "string", "enum": ["a"]}}, "required": ["tag"], "additionalProperties": false},
                    {"type": "null"}]}),
            ),
            (
                Result { ok: Some(b(U8)), err: None },
                json!({"anyOf": [
                    {"type": "object", "properties": {"ok": int(0, 255)}, "required": ["ok"], "additionalProperties": false},
                    {"type": "object", "properties": {"err": {"type": "null"}}, "required": ["err"], "additionalProperties": false},
                ]}),
            ),
            (Flags(vec!["read".into(), "write".into()]), json!({"type": "array", "items": {"type": "string", "enum": ["read", "write"]}})),
        ];
        for (ty, want) in cases {
            let strict = openai_strict(&type_schema(&ty, Side::Input));
            assert_eq!(strict, want, "strict schema of {}", ty.wit_name());
            let mut bad: Vec<std::string::String> = Vec::new();
            refused(&strict, "$", &mut bad);
            assert!(bad.is_empty(), "{}: {bad:?}", ty.wit_name());
        }
    }

    #[test]
    fn parameters_are_all_required_and_optional_ones_nullable() {
        let params = vec![
            ("text".to_string(), String),
            ("limit".to_string(), Option(b(U32))),
            ("pair".to_string(), Tuple(vec![String, rec(&[("x", Option(b(Char)))])])),
            ("perms".to_string(), Flags(vec!["r".into()])),
        ];
        let docs = |n: &str| (n == "limit").then(|| "At most this many".to_string());
        let strict = openai_strict(&input_schema(&params, &docs));
        let mut bad: Vec<std::string::String> = Vec::new();
        refused(&strict, "$", &mut bad);
        assert!(bad.is_empty(), "{bad:?}\n{strict:#}");
        assert_eq!(strict["required"], json!(["text", "limit", "pair", "perms"]));
        assert_eq!(strict["properties"]["limit"]["description"], "At most this many");
        assert_eq!(strict["properties"]["limit"]["anyOf"][1], json!({"type": "null"}));
        assert_eq!(strict["properties"]["pair"]["items"]["anyOf"][1]["required"], json!(["x"]));
        // A property that was optional without admitting null gets null added,
        // its description kept outside.
        let loose = json!({"type": "object", "properties": {"n": {"type": "integer", "description": "d"}}});
        assert_eq!(
            openai_strict(&loose),
            json!({"type": "object", "properties": {"n": {"anyOf": [{"type": "integer"}, {"type": "null"}], "description": "d"}},
                   "required": ["n"], "additionalProperties": false})
        );
        // Unknown keywords and boolean schemas never reach OpenAI.
        let odd = json!({"type": "object", "properties": {"a": true, "b": {"type": "string", "default": "x", "examples": ["y"]}}, "required": ["a", "b"], "$comment": "c"});
        assert_eq!(
            openai_strict(&odd),
            json!({"type": "object", "properties": {"a": {}, "b": {"type": "string"}}, "required": ["a", "b"], "additionalProperties": false})
        );
    }

    #[test]
    fn tool_shapes() {
        let v = ToolView {
            name: "text.greet".into(),
            mcp_name: "text__greet".into(),
            description: Some("Greets".into()),
            input_schema: json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"], "additionalProperties": false}),
            output_schema: json!({}),
        };
        let o = openai_tool(&v);
        assert_eq!(o["type"], "function");
        assert_eq!(o["function"]["name"], "text__greet");
        assert_eq!(o["function"]["strict"], true);
        assert_eq!(o["function"]["parameters"], v.input_schema);
        let a = anthropic_tool(&v);
        assert_eq!(a, json!({"name": "text__greet", "description": "Greets", "input_schema": v.input_schema}));
    }
}

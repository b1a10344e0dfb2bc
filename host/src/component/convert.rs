//! JSON ↔ component `Val`, the exact inverse of each other, in the shapes
//! documented in `schema`.
//!
//! Errors name the JSON path, the expected type and range, and what was
//! found: `args.user.age: expected integer 0..=255 (u8), got 300`.

use super::schema::admits_null;
use super::wit_type::WitType;
use serde_json::{Map, Value};
use std::fmt;
use wasmtime::component::Val;

/// A value that does not fit the declared WIT type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertError {
    /// JSON path of the offending value, e.g. `args.user.tags[2]`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for ConvertError {}

fn err<T>(path: &str, message: impl Into<String>) -> Result<T, ConvertError> {
    Err(ConvertError { path: path.to_string(), message: message.into() })
}

/// A short rendering of what the caller sent, for error messages.
fn got(v: &Value) -> String {
    let s = match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("{s:?}"),
        Value::Array(a) => format!("an array of {} items", a.len()),
        Value::Object(_) => "an object".to_string(),
    };
    if s.len() > 60 {
        format!("{}…", &s[..s.char_indices().nth(57).map_or(s.len(), |(i, _)| i)])
    } else {
        s
    }
}

/// Converts named JSON arguments into positional params. Missing option
/// params become `none`; unknown keys are refused, so a typo is not
/// silently ignored.
pub fn args_to_vals(args: &Value, params: &[(String, WitType)]) -> Result<Vec<Val>, ConvertError> {
    let empty = Map::new();
    let obj = match args {
        Value::Object(o) => o,
        Value::Null if params.is_empty() => &empty,
        other => return err("args", format!("expected an object of named arguments, got {}", got(other))),
    };
    object_fields_to_vals(obj, params, "args", "argument").map(|fields| fields.into_iter().map(|(_, v)| v).collect())
}

fn object_fields_to_vals(
    obj: &Map<String, Value>,
    fields: &[(String, WitType)],
    path: &str,
    what: &str,
) -> Result<Vec<(String, Val)>, ConvertError> {
    if let Some(unknown) = obj.keys().find(|k| !fields.iter().any(|(n, _)| n == *k)) {
        let expected: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
        return err(
            &format!("{path}.{unknown}"),
            format!("unknown {what}; expected one of: {}", expected.join(", ")),
        );
    }
    fields
        .iter()
        .map(|(name, ty)| {
            let p = format!("{path}.{name}");
            let val = match obj.get(name) {
                Some(v) => json_to_val(v, ty, &p)?,
                None if matches!(ty, WitType::Option(_)) => Val::Option(None),
                None => return err(&p, format!("missing required {what} (expected {})", ty.wit_name())),
            };
            Ok((name.clone(), val))
        })
        .collect()
}

/// Converts one JSON value to a `Val` of type `ty`.
pub fn json_to_val(v: &Value, ty: &WitType, path: &str) -> Result<Val, ConvertError> {
    Ok(match ty {
        WitType::Bool => match v {
            Value::Bool(b) => Val::Bool(*b),
            _ => return err(path, format!("expected boolean, got {}", got(v))),
        },
        WitType::S8 | WitType::U8 | WitType::S16 | WitType::U16 | WitType::S32 | WitType::U32 | WitType::S64 | WitType::U64 => {
            let (min, max) = ty.int_range().expect("integer type");
            let expected = || format!("expected integer {min}..={max} ({})", ty.wit_name());
            let n: i128 = match v {
                Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
                    (Some(i), _, _) => i as i128,
                    (None, Some(u), _) => u as i128,
                    // JSON Schema counts 1.0 as an integer: an integral
                    // float within range is that integer (`as` saturates,
                    // so a huge one fails the range check below).
                    (None, None, Some(f)) if f.is_finite() && f.fract() == 0.0 => {
                        let n = f as i128;
                        if n < min || n > max {
                            return err(path, format!("{}, got {}", expected(), got(v)));
                        }
                        n
                    }
                    _ => return err(path, format!("{}, got {}", expected(), got(v))),
                },
                // A 64-bit integer may come as a decimal string (exact past 2^53).
                Value::String(s) if matches!(ty, WitType::S64 | WitType::U64) => match decimal(s) {
                    Some(n) => n,
                    None => {
                        return err(path, format!("{} or the same as a decimal string, got {}", expected(), got(v)));
                    }
                },
                _ => return err(path, format!("{}, got {}", expected(), got(v))),
            };
            if n < min || n > max {
                return err(path, format!("{}, got {n}", expected()));
            }
            match ty {
                WitType::S8 => Val::S8(n as i8),
                WitType::U8 => Val::U8(n as u8),
                WitType::S16 => Val::S16(n as i16),
                WitType::U16 => Val::U16(n as u16),
                WitType::S32 => Val::S32(n as i32),
                WitType::U32 => Val::U32(n as u32),
                WitType::S64 => Val::S64(n as i64),
                _ => Val::U64(n as u64),
            }
        }
        WitType::F32 | WitType::F64 => {
            let f = match v {
                Value::Number(n) => n.as_f64().expect("serde_json numbers convert to f64"),
                Value::String(s) if s == "NaN" => f64::NAN,
                Value::String(s) if s == "Infinity" => f64::INFINITY,
                Value::String(s) if s == "-Infinity" => f64::NEG_INFINITY,
                _ => return err(path, format!("expected number, got {}", got(v))),
            };
            if *ty == WitType::F32 {
                if f.is_finite() && f.abs() > f32::MAX as f64 {
                    return err(path, format!("expected number within f32 range, got {}", got(v)));
                }
                Val::Float32(f as f32)
            } else {
                Val::Float64(f)
            }
        }
        WitType::Char => {
            let s = v.as_str().ok_or_else(|| ConvertError {
                path: path.into(),
                message: format!("expected a one-character string (char), got {}", got(v)),
            })?;
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Val::Char(c),
                _ => return err(path, format!("expected a one-character string (char), got {}", got(v))),
            }
        }
        WitType::String => match v {
            Value::String(s) => Val::String(s.clone()),
            _ => return err(path, format!("expected string, got {}", got(v))),
        },
        WitType::List(t) => Val::List(json_array(v, t, path, None)?),
        WitType::FixedList(t, n) => Val::FixedLengthList(json_array(v, t, path, Some(*n as usize))?),
        WitType::Record(fields) => match v {
            Value::Object(o) => Val::Record(object_fields_to_vals(o, fields, path, "field")?),
            _ => return err(path, format!("expected object (record), got {}", got(v))),
        },
        WitType::Tuple(ts) => {
            let items = match v {
                Value::Array(a) if a.len() == ts.len() => a,
                _ => return err(path, format!("expected an array of exactly {} items ({}), got {}", ts.len(), ty.wit_name(), got(v))),
            };
            Val::Tuple(
                items
                    .iter()
                    .zip(ts)
                    .enumerate()
                    .map(|(i, (item, t))| json_to_val(item, t, &format!("{path}[{i}]")))
                    .collect::<Result<_, _>>()?,
            )
        }
        WitType::Variant(cases) => {
            let names = || cases.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ");
            let obj = match v {
                Value::Object(o) => o,
                _ => return err(path, format!("expected {{\"tag\": one of [{}], \"value\": ...}}, got {}", names(), got(v))),
            };
            let tag = match obj.get("tag") {
                Some(Value::String(t)) => t,
                _ => return err(&format!("{path}.tag"), format!("expected one of [{}]", names())),
            };
            let Some((name, payload)) = cases.iter().find(|(n, _)| n == tag) else {
                return err(&format!("{path}.tag"), format!("expected one of [{}], got {tag:?}", names()));
            };
            if let Some(extra) = obj.keys().find(|k| *k != "tag" && *k != "value") {
                return err(&format!("{path}.{extra}"), "unknown key; a variant has only \"tag\" and \"value\"");
            }
            let value = match (payload, obj.get("value")) {
                (Some(t), Some(val)) => Some(Box::new(json_to_val(val, t, &format!("{path}.value"))?)),
                (Some(t), None) => return err(&format!("{path}.value"), format!("missing payload of case {name:?} (expected {})", t.wit_name())),
                (None, None) | (None, Some(Value::Null)) => None,
                (None, Some(_)) => return err(&format!("{path}.value"), format!("case {name:?} carries no value")),
            };
            Val::Variant(name.clone(), value)
        }
        WitType::Enum(names) => match v {
            Value::String(s) if names.contains(s) => Val::Enum(s.clone()),
            _ => return err(path, format!("expected one of [{}], got {}", names.join(", "), got(v))),
        },
        WitType::Option(inner) => match v {
            Value::Null => Val::Option(None),
            _ if admits_null(inner) => match v {
                Value::Object(o) if o.len() == 1 && o.contains_key("some") => {
                    Val::Option(Some(Box::new(json_to_val(&o["some"], inner, &format!("{path}.some"))?)))
                }
                _ => return err(path, format!("expected null or {{\"some\": ...}} ({}), got {}", ty.wit_name(), got(v))),
            },
            _ => Val::Option(Some(Box::new(json_to_val(v, inner, path)?))),
        },
        WitType::Result { ok, err: error } => {
            let (key, arm, inner) = match v {
                Value::Object(o) if o.len() == 1 && o.contains_key("ok") => ("ok", ok, &o["ok"]),
                Value::Object(o) if o.len() == 1 && o.contains_key("err") => ("err", error, &o["err"]),
                _ => return err(path, format!("expected {{\"ok\": ...}} or {{\"err\": ...}}, got {}", got(v))),
            };
            let p = format!("{path}.{key}");
            let payload = match (arm, inner) {
                (Some(t), val) => Some(Box::new(json_to_val(val, t, &p)?)),
                (None, Value::Null) => None,
                (None, other) => return err(&p, format!("expected null (no payload), got {}", got(other))),
            };
            Val::Result(if key == "ok" { Ok(payload) } else { Err(payload) })
        }
        WitType::Flags(names) => {
            let items = match v {
                Value::Array(a) => a,
                _ => return err(path, format!("expected an array of flag names from [{}], got {}", names.join(", "), got(v))),
            };
            let mut set: Vec<String> = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(s) if names.contains(s) => {
                        if set.contains(s) {
                            return err(&format!("{path}[{i}]"), format!("flag {s:?} given twice"));
                        }
                        set.push(s.clone());
                    }
                    _ => return err(&format!("{path}[{i}]"), format!("expected one of [{}], got {}", names.join(", "), got(item))),
                }
            }
            Val::Flags(set)
        }
    })
}

/// A decimal integer string as `schema::U64_PATTERN`/`S64_PATTERN` admit
/// it: an optional `-`, no leading zeros, no sign on zero, at most 20
/// digits. The range is checked by the caller.
fn decimal(s: &str) -> Option<i128> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let canonical = !digits.is_empty()
        && digits.len() <= 20
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" && digits.len() == s.len() || !digits.starts_with('0'));
    canonical.then(|| s.parse().ok()).flatten()
}

fn json_array(v: &Value, t: &WitType, path: &str, len: Option<usize>) -> Result<Vec<Val>, ConvertError> {
    let items = match v {
        Value::Array(a) => a,
        _ => return err(path, format!("expected array of {}, got {}", t.wit_name(), got(v))),
    };
    if let Some(n) = len {
        if items.len() != n {
            return err(path, format!("expected exactly {n} items, got {}", items.len()));
        }
    }
    items.iter().enumerate().map(|(i, item)| json_to_val(item, t, &format!("{path}[{i}]"))).collect()
}

/// Converts a result `Val` back to JSON. `ty` disambiguates nested options.
/// Values the guest produced always match the type, so a mismatch here is a
/// host bug; it is reported as a string rather than a panic.
pub fn val_to_json(v: &Val, ty: &WitType) -> Value {
    match (v, ty) {
        (Val::Bool(b), _) => Value::Bool(*b),
        (Val::S8(n), _) => Value::from(*n),
        (Val::U8(n), _) => Value::from(*n),
        (Val::S16(n), _) => Value::from(*n),
        (Val::U16(n), _) => Value::from(*n),
        (Val::S32(n), _) => Value::from(*n),
        (Val::U32(n), _) => Value::from(*n),
        (Val::S64(n), _) => Value::from(*n),
        (Val::U64(n), _) => Value::from(*n),
        (Val::Float32(f), _) => float_json(*f as f64),
        (Val::Float64(f), _) => float_json(*f),
        (Val::Char(c), _) => Value::String(c.to_string()),
        (Val::String(s), _) => Value::String(s.clone()),
        (Val::List(items), WitType::List(t)) | (Val::FixedLengthList(items), WitType::FixedList(t, _)) => {
            Value::Array(items.iter().map(|i| val_to_json(i, t)).collect())
        }
        (Val::Record(fields), WitType::Record(types)) => Value::Object(
            fields
                .iter()
                .zip(types)
                .map(|((name, val), (_, t))| (name.clone(), val_to_json(val, t)))
                .collect(),
        ),
        (Val::Tuple(items), WitType::Tuple(ts)) => {
            Value::Array(items.iter().zip(ts).map(|(i, t)| val_to_json(i, t)).collect())
        }
        (Val::Variant(name, payload), WitType::Variant(cases)) => {
            let mut o = Map::new();
            o.insert("tag".into(), Value::String(name.clone()));
            let case_ty = cases.iter().find(|(n, _)| n == name).and_then(|(_, t)| t.as_ref());
            if let (Some(p), Some(t)) = (payload, case_ty) {
                o.insert("value".into(), val_to_json(p, t));
            }
            Value::Object(o)
        }
        (Val::Enum(name), _) => Value::String(name.clone()),
        (Val::Option(None), _) => Value::Null,
        (Val::Option(Some(inner)), WitType::Option(t)) => {
            let j = val_to_json(inner, t);
            if admits_null(t) {
                let mut o = Map::new();
                o.insert("some".into(), j);
                Value::Object(o)
            } else {
                j
            }
        }
        (Val::Result(r), WitType::Result { ok, err }) => {
            let (key, payload, t) = match r {
                Ok(p) => ("ok", p, ok),
                Err(p) => ("err", p, err),
            };
            let j = match (payload, t) {
                (Some(p), Some(t)) => val_to_json(p, t),
                _ => Value::Null,
            };
            let mut o = Map::new();
            o.insert(key.into(), j);
            Value::Object(o)
        }
        (Val::Flags(names), _) => Value::Array(names.iter().cloned().map(Value::String).collect()),
        (other, ty) => Value::String(format!("<value {other:?} does not match {}>", ty.wit_name())),
    }
}

/// A function's return value as the call's JSON result (the shape
/// `schema::result_value_schema` describes): a top-level `result<T, E>` in
/// `ok` is its payload as is (`null` without one), every other value as
/// [`val_to_json`] writes it. The caller turns an `err` into `tool_error`
/// before; given one anyway, this writes it in the nested `{"err": v}` form.
pub fn result_to_json(v: &Val, ty: &WitType) -> Value {
    match (v, ty) {
        (Val::Result(Ok(payload)), WitType::Result { ok, .. }) => match (payload, ok) {
            (Some(p), Some(t)) => val_to_json(p, t),
            _ => Value::Null,
        },
        _ => val_to_json(v, ty),
    }
}

fn float_json(f: f64) -> Value {
    if f.is_nan() {
        Value::String("NaN".into())
    } else if f.is_infinite() {
        Value::String(if f > 0.0 { "Infinity" } else { "-Infinity" }.into())
    } else {
        serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use WitType::*;

    fn b(t: WitType) -> Box<WitType> {
        Box::new(t)
    }

    fn everything() -> WitType {
        Record(vec![
            ("u8".into(), U8),
            ("s64".into(), S64),
            ("u64".into(), U64),
            ("f32".into(), F32),
            ("c".into(), Char),
            ("tags".into(), List(b(String))),
            ("pair".into(), Tuple(vec![String, U32])),
            ("nick".into(), Option(b(String))),
            ("nested".into(), Option(b(Option(b(U8))))),
            ("color".into(), Enum(vec!["red".into(), "green".into()])),
            ("perms".into(), Flags(vec!["read".into(), "write".into(), "exec".into()])),
            ("shape".into(), Variant(vec![("point".into(), None), ("circle".into(), Some(F64))])),
            ("outcome".into(), Result { ok: Some(b(U32)), err: Some(b(String)) }),
            ("unit".into(), Result { ok: None, err: None }),
            ("fixed".into(), FixedList(b(Bool), 2)),
        ])
    }

    /// Values that must survive JSON → Val → JSON unchanged.
    #[test]
    fn round_trip_covers_every_type() {
        let cases: Vec<(WitType, Value)> = vec![
            (Bool, json!(true)),
            (S8, json!(-128)),
            (U8, json!(255)),
            (S16, json!(-32768)),
            (U16, json!(65535)),
            (S32, json!(-2147483648i64)),
            (U32, json!(4294967295u64)),
            (S64, json!(i64::MIN)),
            (U64, json!(u64::MAX)),
            (F32, json!(1.5)),
            (F64, json!(-0.25)),
            (F64, json!("NaN")),
            (F64, json!("Infinity")),
            (F32, json!("-Infinity")),
            (Char, json!("é")),
            (Char, json!("🦀")),
            (String, json!("hello")),
            (List(b(U16)), json!([1, 2, 3])),
            (List(b(String)), json!([])),
            (FixedList(b(U8), 2), json!([1, 2])),
            (Tuple(vec![String, Bool, U8]), json!(["a", false, 7])),
            (Option(b(U8)), json!(null)),
            (Option(b(U8)), json!(3)),
            (Option(b(Option(b(U8)))), json!({"some": null})),
            (Option(b(Option(b(U8)))), json!({"some": 4})),
            (Option(b(Option(b(U8)))), json!(null)),
            (Enum(vec!["a".into(), "b".into()]), json!("b")),
            (Flags(vec!["r".into(), "w".into()]), json!(["w", "r"])),
            (Flags(vec!["r".into()]), json!([])),
            (Variant(vec![("none".into(), None), ("n".into(), Some(U8))]), json!({"tag": "none"})),
            (Variant(vec![("none".into(), None), ("n".into(), Some(U8))]), json!({"tag": "n", "value": 9})),
            (Result { ok: Some(b(U8)), err: Some(b(String)) }, json!({"ok": 1})),
            (Result { ok: Some(b(U8)), err: Some(b(String)) }, json!({"err": "bad"})),
            (Result { ok: None, err: None }, json!({"ok": null})),
            (Result { ok: None, err: Some(b(String)) }, json!({"err": "x"})),
            (
                everything(),
                json!({"u8": 1, "s64": -5, "u64": 18446744073709551615u64, "f32": 0.5, "c": "x",
                       "tags": ["a"], "pair": ["p", 2], "nick": null, "nested": {"some": null},
                       "color": "green", "perms": ["read", "exec"], "shape": {"tag": "circle", "value": 2.5},
                       "outcome": {"err": "no"}, "unit": {"ok": null}, "fixed": [true, false]}),
            ),
        ];
        for (ty, input) in cases {
            let val = json_to_val(&input, &ty, "args.x").unwrap_or_else(|e| panic!("{input} as {}: {e}", ty.wit_name()));
            assert_eq!(val_to_json(&val, &ty), input, "round trip of {} through {val:?}", ty.wit_name());
        }
    }

    /// JSON Schema counts 1.0 as an integer: integral floats within range
    /// are accepted as that integer.
    #[test]
    fn integral_floats_are_integers() {
        let cases: Vec<(WitType, Value, Val)> = vec![
            (U8, json!(1.0), Val::U8(1)),
            (U8, json!(255.0), Val::U8(255)),
            (U8, json!(-0.0), Val::U8(0)),
            (S8, json!(-128.0), Val::S8(-128)),
            (U32, json!(4294967295.0), Val::U32(u32::MAX)),
            (S64, json!(-9007199254740992.0), Val::S64(-9007199254740992)),
            (U64, json!(1e19), Val::U64(10_000_000_000_000_000_000)),
        ];
        for (ty, input, want) in cases {
            let got = json_to_val(&input, &ty, "args.x").unwrap_or_else(|e| panic!("{input} as {}: {e}", ty.wit_name()));
            assert_eq!(got, want, "{input} as {}", ty.wit_name());
        }
        let rec = Record(vec![("scale".into(), U8)]);
        let got = json_to_val(&json!({"scale": 1.0}), &rec, "args.x").expect("scale 1.0");
        assert_eq!(got, Val::Record(vec![("scale".into(), Val::U8(1))]));
    }

    /// Bad inputs and the exact message each must produce.
    #[test]
    fn bad_inputs_name_the_path_and_the_expected_type() {
        let person = Record(vec![("name".into(), String), ("age".into(), U8), ("nick".into(), Option(b(String)))]);
        let cases: Vec<(WitType, Value, &str)> = vec![
            (U8, json!(300), "args.x: expected integer 0..=255 (u8), got 300"),
            (U8, json!(-1), "args.x: expected integer 0..=255 (u8), got -1"),
            (S8, json!(1.5), "args.x: expected integer -128..=127 (s8), got 1.5"),
            (U8, json!(256.0), "args.x: expected integer 0..=255 (u8), got 256.0"),
            (U8, json!(-1.0), "args.x: expected integer 0..=255 (u8), got -1.0"),
            (U8, json!(0.5), "args.x: expected integer 0..=255 (u8), got 0.5"),
            (S64, json!(1e19), "args.x: expected integer -9223372036854775808..=9223372036854775807 (s64), got 1e+19"),
            (U64, json!(1e300), "args.x: expected integer 0..=18446744073709551615 (u64), got 1e+300"),
            (person.clone(), json!({"name": "a", "age": 2.5}), "args.x.age: expected integer 0..=255 (u8), got 2.5"),
            (U32, json!("5"), "args.x: expected integer 0..=4294967295 (u32), got \"5\""),
            (U64, json!("5x"), "args.x: expected integer 0..=18446744073709551615 (u64) or the same as a decimal string, got \"5x\""),
            (U64, json!("18446744073709551616"), "args.x: expected integer 0..=18446744073709551615 (u64), got 18446744073709551616"),
            (U64, json!("-1"), "args.x: expected integer 0..=18446744073709551615 (u64), got -1"),
            (U64, json!("007"), "args.x: expected integer 0..=18446744073709551615 (u64) or the same as a decimal string, got \"007\""),
            (S64, json!("-0"), "args.x: expected integer -9223372036854775808..=9223372036854775807 (s64) or the same as a decimal string, got \"-0\""),
            (S64, json!("9223372036854775808"), "args.x: expected integer -9223372036854775808..=9223372036854775807 (s64), got 9223372036854775808"),
            (S64, json!("1e3"), "args.x: expected integer -9223372036854775808..=9223372036854775807 (s64) or the same as a decimal string, got \"1e3\""),
            (S64, json!(""), "args.x: expected integer -9223372036854775808..=9223372036854775807 (s64) or the same as a decimal string, got \"\""),
            (S32, json!(null), "args.x: expected integer -2147483648..=2147483647 (s32), got null"),
            (Bool, json!("true"), "args.x: expected boolean, got \"true\""),
            (F32, json!(1e300), "args.x: expected number within f32 range, got 1e+300"),
            (F64, json!("nan"), "args.x: expected number, got \"nan\""),
            (Char, json!("ab"), "args.x: expected a one-character string (char), got \"ab\""),
            (Char, json!(""), "args.x: expected a one-character string (char), got \"\""),
            (String, json!(5), "args.x: expected string, got 5"),
            (List(b(U8)), json!({"a": 1}), "args.x: expected array of u8, got an object"),
            (List(b(U8)), json!([1, 256]), "args.x[1]: expected integer 0..=255 (u8), got 256"),
            (FixedList(b(U8), 2), json!([1]), "args.x: expected exactly 2 items, got 1"),
            (Tuple(vec![String, U8]), json!(["a"]), "args.x: expected an array of exactly 2 items (tuple<string, u8>), got an array of 1 items"),
            (Tuple(vec![String, U8]), json!(["a", "b"]), "args.x[1]: expected integer 0..=255 (u8), got \"b\""),
            (person.clone(), json!({"name": "a", "age": 300}), "args.x.age: expected integer 0..=255 (u8), got 300"),
            (person.clone(), json!({"name": "a"}), "args.x.age: missing required field (expected u8)"),
            (person.clone(), json!({"name": "a", "age": 1, "agee": 2}), "args.x.agee: unknown field; expected one of: name, age, nick"),
            (person, json!([]), "args.x: expected object (record), got an array of 0 items"),
            (Enum(vec!["a".into(), "b".into()]), json!("c"), "args.x: expected one of [a, b], got \"c\""),
            (Flags(vec!["r".into()]), json!(["r", "r"]), "args.x[1]: flag \"r\" given twice"),
            (Flags(vec!["r".into()]), json!(["w"]), "args.x[0]: expected one of [r], got \"w\""),
            (Flags(vec!["r".into()]), json!("r"), "args.x: expected an array of flag names from [r], got \"r\""),
            (Variant(vec![("a".into(), None)]), json!({"tag": "b"}), "args.x.tag: expected one of [a], got \"b\""),
            (Variant(vec![("a".into(), Some(U8))]), json!({"tag": "a"}), "args.x.value: missing payload of case \"a\" (expected u8)"),
            (Variant(vec![("a".into(), None)]), json!({"tag": "a", "value": 1}), "args.x.value: case \"a\" carries no value"),
            (Variant(vec![("a".into(), None)]), json!({"tag": "a", "extra": 1}), "args.x.extra: unknown key; a variant has only \"tag\" and \"value\""),
            (Option(b(Option(b(U8)))), json!(3), "args.x: expected null or {\"some\": ...} (option<option<u8>>), got 3"),
            (Result { ok: Some(b(U8)), err: None }, json!({"ok": 1, "err": null}), "args.x: expected {\"ok\": ...} or {\"err\": ...}, got an object"),
            (Result { ok: Some(b(U8)), err: None }, json!({"err": 1}), "args.x.err: expected null (no payload), got 1"),
        ];
        for (ty, input, want) in cases {
            let got = json_to_val(&input, &ty, "args.x").expect_err(&format!("{input} must not convert to {}", ty.wit_name()));
            assert_eq!(got.to_string(), want);
        }
    }

    /// 64-bit arguments given as decimal strings: the same value as the number.
    #[test]
    fn decimal_strings_are_accepted_for_64_bit_integers() {
        let cases: Vec<(WitType, &str, Val)> = vec![
            (U64, "18446744073709551615", Val::U64(u64::MAX)),
            (U64, "9007199254740993", Val::U64((1 << 53) + 1)),
            (U64, "0", Val::U64(0)),
            (S64, "-9223372036854775808", Val::S64(i64::MIN)),
            (S64, "9223372036854775807", Val::S64(i64::MAX)),
            (S64, "-42", Val::S64(-42)),
        ];
        for (ty, s, want) in cases {
            let got = json_to_val(&json!(s), &ty, "args.x").unwrap_or_else(|e| panic!("{s} as {}: {e}", ty.wit_name()));
            assert_eq!(got, want, "{s}");
        }
        // Inside a record, the error names the path.
        let r = Record(vec![("ids".into(), List(b(U64)))]);
        let e = json_to_val(&json!({"ids": ["1", "x"]}), &r, "args.r").unwrap_err();
        assert_eq!(e.path, "args.r.ids[1]");
    }

    /// A function's top-level result: `ok` is the value as is.
    #[test]
    fn top_level_results_return_the_ok_payload() {
        let r = Result { ok: Some(b(U8)), err: Some(b(String)) };
        assert_eq!(result_to_json(&Val::Result(Ok(Some(Box::new(Val::U8(7))))), &r), json!(7));
        assert_eq!(result_to_json(&Val::Result(Ok(None)), &Result { ok: None, err: Some(b(String)) }), json!(null));
        let opt = Result { ok: Some(b(Option(b(U8)))), err: None };
        assert_eq!(result_to_json(&Val::Result(Ok(Some(Box::new(Val::Option(None))))), &opt), json!(null));
        // Not a result, or nested: the usual shapes.
        assert_eq!(result_to_json(&Val::U8(3), &U8), json!(3));
        let list = List(b(r.clone()));
        assert_eq!(result_to_json(&Val::List(vec![Val::Result(Ok(Some(Box::new(Val::U8(1)))))]), &list), json!([{"ok": 1}]));
    }

    #[test]
    fn named_arguments_map_to_positions() {
        let params = vec![("a".to_string(), S64), ("b".to_string(), Option(b(String)))];
        let vals = args_to_vals(&json!({"a": 2}), &params).unwrap();
        assert_eq!(vals.len(), 2);
        assert!(matches!(vals[0], Val::S64(2)));
        assert!(matches!(vals[1], Val::Option(None)));
        let cases: Vec<(Value, &str)> = vec![
            (json!({}), "args.a: missing required argument (expected s64)"),
            (json!({"a": 1, "c": 2}), "args.c: unknown argument; expected one of: a, b"),
            (json!([1]), "args: expected an object of named arguments, got an array of 1 items"),
            (json!(null), "args: expected an object of named arguments, got null"),
        ];
        for (input, want) in cases {
            assert_eq!(args_to_vals(&input, &params).unwrap_err().to_string(), want);
        }
        assert!(args_to_vals(&json!(null), &[]).unwrap().is_empty());
    }
}

//! A plain model of the WIT value types a tool function can take or return.
//!
//! Converted once from wasmtime's component types at load, so schema mapping
//! and JSON conversion are pure functions that tests can drive with tables.

use wasmtime::component::types::Type;

/// A WIT value type, as far as JSON can carry it.
#[derive(Debug, Clone, PartialEq)]
pub enum WitType {
    Bool,
    S8,
    U8,
    S16,
    U16,
    S32,
    U32,
    S64,
    U64,
    F32,
    F64,
    Char,
    String,
    List(Box<WitType>),
    FixedList(Box<WitType>, u32),
    Record(Vec<(String, WitType)>),
    Tuple(Vec<WitType>),
    Variant(Vec<(String, Option<WitType>)>),
    Enum(Vec<String>),
    Option(Box<WitType>),
    Result {
        ok: Option<Box<WitType>>,
        err: Option<Box<WitType>>,
    },
    Flags(Vec<String>),
}

impl WitType {
    /// Converts a wasmtime type; `Err` names the first construct that JSON
    /// cannot carry (resources, futures, streams, ...), so the function can be
    /// skipped with a reason instead of failing the whole load.
    pub fn from_wasmtime(ty: &Type) -> Result<WitType, String> {
        let boxed = |t: &Type| WitType::from_wasmtime(t).map(Box::new);
        Ok(match ty {
            Type::Bool => WitType::Bool,
            Type::S8 => WitType::S8,
            Type::U8 => WitType::U8,
            Type::S16 => WitType::S16,
            Type::U16 => WitType::U16,
            Type::S32 => WitType::S32,
            Type::U32 => WitType::U32,
            Type::S64 => WitType::S64,
            Type::U64 => WitType::U64,
            Type::Float32 => WitType::F32,
            Type::Float64 => WitType::F64,
            Type::Char => WitType::Char,
            Type::String => WitType::String,
            Type::List(l) => WitType::List(boxed(&l.ty())?),
            Type::FixedLengthList(l) => WitType::FixedList(boxed(&l.ty())?, l.len()),
            Type::Record(r) => WitType::Record(
                r.fields()
                    .map(|f| Ok((f.name.to_string(), WitType::from_wasmtime(&f.ty)?)))
                    .collect::<Result<_, String>>()?,
            ),
            Type::Tuple(t) => WitType::Tuple(
                t.types()
                    .map(|t| WitType::from_wasmtime(&t))
                    .collect::<Result<_, _>>()?,
            ),
            Type::Variant(v) => WitType::Variant(
                v.cases()
                    .map(|c| {
                        let payload = c.ty.as_ref().map(WitType::from_wasmtime).transpose()?;
                        Ok((c.name.to_string(), payload))
                    })
                    .collect::<Result<_, String>>()?,
            ),
            Type::Enum(e) => WitType::Enum(e.names().map(str::to_string).collect()),
            Type::Option(o) => WitType::Option(boxed(&o.ty())?),
            Type::Result(r) => WitType::Result {
                ok: r.ok().as_ref().map(boxed).transpose()?,
                err: r.err().as_ref().map(boxed).transpose()?,
            },
            Type::Flags(f) => WitType::Flags(f.names().map(str::to_string).collect()),
            Type::Own(_) | Type::Borrow(_) => return Err("uses a resource handle".into()),
            Type::Future(_) => return Err("uses an async future".into()),
            Type::Stream(_) => return Err("uses an async stream".into()),
            Type::ErrorContext => return Err("uses an async error-context".into()),
            Type::Map(_) => return Err("uses a map type, which is not supported yet".into()),
        })
    }

    /// The WIT spelling, for error messages and `inspect`.
    pub fn wit_name(&self) -> String {
        match self {
            WitType::Bool => "bool".into(),
            WitType::S8 => "s8".into(),
            WitType::U8 => "u8".into(),
            WitType::S16 => "s16".into(),
            WitType::U16 => "u16".into(),
            WitType::S32 => "s32".into(),
            WitType::U32 => "u32".into(),
            WitType::S64 => "s64".into(),
            WitType::U64 => "u64".into(),
            WitType::F32 => "f32".into(),
            WitType::F64 => "f64".into(),
            WitType::Char => "char".into(),
            WitType::String => "string".into(),
            WitType::List(t) => format!("list<{}>", t.wit_name()),
            WitType::FixedList(t, n) => format!("list<{}, {n}>", t.wit_name()),
            WitType::Record(_) => "record".into(),
            WitType::Tuple(ts) => {
                let inner: Vec<_> = ts.iter().map(WitType::wit_name).collect();
                format!("tuple<{}>", inner.join(", "))
            }
            WitType::Variant(_) => "variant".into(),
            WitType::Enum(_) => "enum".into(),
            WitType::Option(t) => format!("option<{}>", t.wit_name()),
            WitType::Result { ok, err } => {
                let part = |t: &Option<Box<WitType>>| t.as_ref().map_or("_".into(), |t| t.wit_name());
                format!("result<{}, {}>", part(ok), part(err))
            }
            WitType::Flags(_) => "flags".into(),
        }
    }

    /// Integer range, for schema bounds and range errors.
    pub fn int_range(&self) -> Option<(i128, i128)> {
        Some(match self {
            WitType::S8 => (i8::MIN as i128, i8::MAX as i128),
            WitType::U8 => (0, u8::MAX as i128),
            WitType::S16 => (i16::MIN as i128, i16::MAX as i128),
            WitType::U16 => (0, u16::MAX as i128),
            WitType::S32 => (i32::MIN as i128, i32::MAX as i128),
            WitType::U32 => (0, u32::MAX as i128),
            WitType::S64 => (i64::MIN as i128, i64::MAX as i128),
            WitType::U64 => (0, u64::MAX as i128),
            _ => return None,
        })
    }
}

//! RFC 8785 (JSON Canonicalization Scheme) for the values this protocol signs.
//!
//! Objects have their members sorted by the UTF-16 code units of their names; strings use the
//! ECMAScript escaping (which is what `serde_json` writes); numbers must be integers of at most
//! 2^53 in magnitude. The protocol signs no fractional numbers, so instead of implementing the
//! ECMAScript double formatting we refuse them: a value that cannot be canonicalised exactly is an
//! error, never a silently different signature input.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// Largest integer magnitude that survives a round trip through an IEEE 754 double.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CanonicalError {
    #[error("value cannot be represented as JSON: {0}")]
    NotJson(String),
    #[error("number {0} is not an integer within +/-2^53; send it as a string")]
    UnsafeNumber(String),
    #[error("the JSON does not have the expected shape: {0}")]
    Shape(String),
    #[error(
        "the JSON is not in its one accepted form: it has members the protocol does not define, \
         or leaves out or writes differently members it always writes"
    )]
    NotExact,
}

/// The RFC 8785 canonical JSON bytes of `value`.
pub fn to_canonical_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CanonicalError> {
    let value = serde_json::to_value(value).map_err(|e| CanonicalError::NotJson(e.to_string()))?;
    let mut out = Vec::with_capacity(512);
    write_value(&value, &mut out)?;
    Ok(out)
}

/// Reads `value` as a `T` only if reading loses and adds nothing: the canonical JSON of the
/// `T` must be the canonical JSON of `value`.
///
/// This is how signed JSON is read. A signature covers the canonical form of the parsed value;
/// without this check, a member serde ignores (unknown) or fills in (a missing `Option`, a
/// `null` for an absent optional) would let JSON that was never signed pass as signed, and a
/// person reading the JSON would read text the signature does not cover.
pub fn parse_exact<T: DeserializeOwned + Serialize>(value: &Value) -> Result<T, CanonicalError> {
    let parsed = T::deserialize(value).map_err(|error| CanonicalError::Shape(error.to_string()))?;
    if to_canonical_json(&parsed)? != to_canonical_json(value)? {
        return Err(CanonicalError::NotExact);
    }
    Ok(parsed)
}

fn write_value(value: &Value, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(number) => {
            let safe = match (number.as_u64(), number.as_i64()) {
                (Some(n), _) => n <= MAX_SAFE_INTEGER,
                (None, Some(n)) => n.unsigned_abs() <= MAX_SAFE_INTEGER,
                _ => false,
            };
            if !safe {
                return Err(CanonicalError::UnsafeNumber(number.to_string()));
            }
            out.extend_from_slice(number.to_string().as_bytes());
        }
        Value::String(text) => write_string(text, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(members) => {
            let mut sorted: Vec<(&String, &Value)> = members.iter().collect();
            sorted.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
            out.push(b'{');
            for (i, (name, member)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(name, out);
                out.push(b':');
                write_value(member, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_string(text: &str, out: &mut Vec<u8>) {
    // serde_json's string escaping is exactly ECMAScript's JSON.stringify: \" \\ \b \f \n \r \t,
    // other control characters as lower-case \u00xx, everything else verbatim.
    let encoded = serde_json::to_string(text).expect("serialising a str cannot fail");
    out.extend_from_slice(encoded.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(value: Value, expected: &str) {
        let bytes = to_canonical_json(&value).unwrap();
        assert_eq!(String::from_utf8(bytes).unwrap(), expected);
    }

    #[test]
    fn sorts_members_recursively_and_drops_whitespace() {
        check(
            json!({"b": 1, "a": {"z": [true, null], "y": "x"}}),
            r#"{"a":{"y":"x","z":[true,null]},"b":1}"#,
        );
    }

    #[test]
    fn sorts_by_utf16_code_units_like_rfc8785() {
        // RFC 8785 section 3.2.3's sorting example, reduced to the names: U+20AC (euro) sorts
        // after U+0080 in UTF-16 and "\r" first; an astral character (surrogates 0xD83D..) sorts
        // before U+FB33 even though its code point is larger.
        check(
            json!({"\u{20ac}": 1, "\r": 2, "1": 3, "\u{1F600}": 4, "\u{fb33}": 5, "\u{80}": 6}),
            "{\"\\r\":2,\"1\":3,\"\u{80}\":6,\"\u{20ac}\":1,\"\u{1F600}\":4,\"\u{fb33}\":5}",
        );
    }

    #[test]
    fn escapes_strings_like_ecmascript() {
        check(json!("a\"b\\c\n\u{1}\u{1f}/é"), r#""a\"b\\c\n\u0001\u001f/é""#);
    }

    #[test]
    fn exact_parsing_refuses_whatever_parsing_would_drop_or_add() {
        #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        struct Signed {
            a: Option<u32>,
            b: String,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            c: Option<String>,
        }
        let exact = |value: Value| parse_exact::<Signed>(&value);
        // Any member order is the same value.
        assert_eq!(exact(json!({"b": "x", "a": null})).unwrap(), Signed { a: None, b: "x".into(), c: None });
        assert_eq!(exact(json!({"a": 1, "b": "x", "c": "y"})).unwrap().c.as_deref(), Some("y"));
        // Unknown member (a renamed `a` included), a written member left out, a `null` for a
        // member that is left out when empty: each would parse to the same struct.
        assert_eq!(exact(json!({"b": "x", "`": null})), Err(CanonicalError::NotExact));
        assert_eq!(exact(json!({"b": "x"})), Err(CanonicalError::NotExact));
        assert_eq!(exact(json!({"a": null, "b": "x", "c": null})), Err(CanonicalError::NotExact));
        assert!(matches!(exact(json!({"a": "1", "b": "x"})), Err(CanonicalError::Shape(_))));
    }

    #[test]
    fn refuses_numbers_that_would_change_meaning() {
        assert!(to_canonical_json(&json!(1.5)).is_err());
        assert!(to_canonical_json(&json!(9_007_199_254_740_993_u64)).is_err());
        check(json!(9_007_199_254_740_991_u64), "9007199254740991");
        check(json!(-42), "-42");
    }
}

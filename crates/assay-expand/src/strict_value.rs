//! JSON values read from JSONL lines and YAML files, refusing a key given twice in one object.
//!
//! `serde_json::Value` keeps the last of two equal keys without a word, for JSON and, through
//! serde, for YAML too: `{"prompt": "a", "prompt": "b"}` would silently lose a prompt. This
//! reader builds the same values, but stops at the first repeated key and says which key, and
//! for a YAML list of records, which record.

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::fmt;

/// Why a text is not a value.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// `key` appears twice in one object; `record` is the 1-based entry of a top-level list
    /// it is in (0 when the value is not a list).
    DuplicateKey { key: String, record: u64 },
    /// The text ends inside a value: a line or a file cut short.
    Truncated(String),
    /// Anything else: the parser's own message.
    Syntax(String),
}

/// One JSON value, as `serde_json::from_str` reads it, but strict about keys.
pub(crate) fn from_json(text: &str) -> Result<Value, ReadError> {
    let found = RefCell::new(Found::default());
    let mut de = serde_json::Deserializer::from_str(text);
    let read = Strict {
        found: &found,
        top: true,
    }
    .deserialize(&mut de)
    .and_then(|v| de.end().map(|()| v));
    read.map_err(|e| match found.into_inner().error(e.to_string()) {
        ReadError::Syntax(message) if e.is_eof() => ReadError::Truncated(message),
        other => other,
    })
}

/// One YAML document, as `yaml_serde::from_reader` reads it, but strict about keys.
pub(crate) fn from_yaml(reader: impl std::io::Read) -> Result<Value, ReadError> {
    let found = RefCell::new(Found::default());
    let read = yaml_serde::Deserializer::from_reader(reader);
    let value = Strict {
        found: &found,
        top: true,
    }
    .deserialize(read);
    value.map_err(|e| found.into_inner().error(e.to_string()))
}

#[derive(Default)]
struct Found {
    /// The entry of the top-level list being read.
    record: u64,
    duplicate: Option<String>,
}

impl Found {
    fn error(self, message: String) -> ReadError {
        match self.duplicate {
            Some(key) => ReadError::DuplicateKey {
                key,
                record: self.record,
            },
            None => ReadError::Syntax(message),
        }
    }
}

#[derive(Clone, Copy)]
struct Strict<'f> {
    found: &'f RefCell<Found>,
    /// The document's root: a list here is a list of records.
    top: bool,
}

impl Strict<'_> {
    fn inner(self) -> Self {
        Strict {
            found: self.found,
            top: false,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        serde::Deserialize::deserialize(de::value::I128Deserializer::<E>::new(v))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        serde::Deserialize::deserialize(de::value::U128Deserializer::<E>::new(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            if self.top {
                self.found.borrow_mut().record += 1;
            }
            match seq.next_element_seed(self.inner())? {
                Some(v) => items.push(v),
                None => break,
            }
        }
        if self.top {
            self.found.borrow_mut().record = 0;
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut fields = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(self.inner())?;
            if fields.contains_key(&key) {
                let message = format!("the key `{key}` appears twice");
                self.found.borrow_mut().duplicate = Some(key);
                return Err(de::Error::custom(message));
            }
            fields.insert(key, value);
        }
        Ok(Value::Object(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_serde_json_reads() {
        for text in [
            r#"{"a": 1, "b": [true, null, 2.5, "x"], "c": {"d": -3}}"#,
            r#"[1, 18446744073709551615, -9223372036854775808, 1e300]"#,
            r#""text""#,
        ] {
            let strict = from_json(text).unwrap_or_else(|e| panic!("{text}: {e:?}"));
            let loose: Value = serde_json::from_str(text).unwrap();
            assert_eq!(strict, loose, "{text}");
        }
    }

    #[test]
    fn a_repeated_key_is_refused_at_any_depth() {
        for text in [
            r#"{"prompt": "a", "prompt": "b"}"#,
            r#"{"meta": {"prompt": 1, "prompt": 2}}"#,
        ] {
            match from_json(text) {
                Err(ReadError::DuplicateKey { key, record: 0 }) => assert_eq!(key, "prompt"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_truncated_line_is_a_syntax_error() {
        assert!(matches!(
            from_json(r#"{"id": "a", "prompt": "How"#),
            Err(ReadError::Truncated(_))
        ));
        assert!(matches!(
            from_json(r#"{"a": 1}{"b": 2}"#),
            Err(ReadError::Syntax(_))
        ));
    }

    #[test]
    fn yaml_names_the_record_with_the_repeated_key() {
        let text = "- id: a\n  prompt: x\n- id: b\n  prompt: y\n  prompt: z\n";
        match from_yaml(text.as_bytes()) {
            Err(ReadError::DuplicateKey { key, record }) => {
                assert_eq!((key.as_str(), record), ("prompt", 2));
            }
            other => panic!("{other:?}"),
        }
        let ok = from_yaml("- id: a\n  n: 1\n".as_bytes()).unwrap();
        assert_eq!(ok, serde_json::json!([{"id": "a", "n": 1}]));
    }
}

//! JSON objects with a key twice: `{"is_admin": false, "is_admin": true}`
//! would silently mean the last one, so tokend refuses them, as it refuses
//! a form field given twice.

use std::{collections::HashSet, fmt};

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

/// The first key some object of `body` has twice; `None` when none has (or
/// when `body` is not JSON at all, which the body's parser then says).
pub fn duplicate_key(body: &[u8]) -> Option<String> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    match deserializer.deserialize_any(Walk) {
        Err(e) => e.to_string().strip_prefix(DUPLICATE).map(|rest| {
            // serde_json appends " at line L column C".
            rest.rsplit_once(" at line ")
                .map_or(rest, |(key, _)| key)
                .to_owned()
        }),
        Ok(()) => None,
    }
}

const DUPLICATE: &str = "duplicate key: ";

/// Walks a JSON value, failing at the first object with a key twice.
struct Walk;

impl<'de> de::Deserialize<'de> for Walk {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Walk).map(|()| Walk)
    }
}

impl<'de> Visitor<'de> for Walk {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!("{DUPLICATE}{key}")));
            }
            map.next_value::<Walk>()?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<Walk>()?.is_some() {}
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(Walk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_given_twice_is_found_at_any_depth() {
        assert_eq!(
            duplicate_key(br#"{"is_admin": false, "is_admin": true}"#).as_deref(),
            Some("is_admin")
        );
        assert_eq!(
            duplicate_key(br#"{"a": [{"b": 1, "b": 2}]}"#).as_deref(),
            Some("b")
        );
        assert_eq!(duplicate_key(br#"{"a": 1, "b": {"a": 2}}"#), None);
        assert_eq!(duplicate_key(b"not json"), None);
    }
}

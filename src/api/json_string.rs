//! A JSON string field that is only a JSON string.
//!
//! poem-openapi reads a `String` field from a JSON number or boolean too
//! (`{"password": 123}` becomes `"123"`), while the spec says `string`: a
//! client would learn the wrong contract, and schemathesis rightly flags it.
//! Request bodies use [`JsonString`], which takes JSON strings only and
//! documents itself exactly as `String` does. Forms are strings anyway
//! (serde).

use std::{borrow::Cow, fmt};

use poem_openapi::{
    registry::MetaSchemaRef,
    types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type},
};
use serde::Deserialize;
use serde_json::Value;

/// A string taken from a JSON string and nothing else.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct JsonString(pub String);

impl JsonString {
    pub fn into_inner(self) -> String {
        self.0
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Request fields may be passwords and tokens: never printed.
impl fmt::Debug for JsonString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JsonString(<redacted>)")
    }
}

impl std::ops::Deref for JsonString {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for JsonString {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for JsonString {
    fn from(text: &str) -> Self {
        JsonString(text.to_owned())
    }
}

impl From<JsonString> for String {
    fn from(text: JsonString) -> Self {
        text.0
    }
}

impl Type for JsonString {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        String::name()
    }

    fn schema_ref() -> MetaSchemaRef {
        String::schema_ref()
    }

    raw_value_is_self!();

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl ParseFromJSON for JsonString {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value.unwrap_or_default() {
            Value::String(text) => Ok(JsonString(text)),
            other => Err(ParseError::expected_type(other)),
        }
    }
}

impl ToJSON for JsonString {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_json_string_is_text() {
        let text = JsonString::parse_from_json(Some(Value::String("pw".into()))).unwrap();
        assert_eq!(text.as_str(), "pw");
        for other in [
            serde_json::json!(123),
            serde_json::json!(true),
            serde_json::json!(null),
            serde_json::json!(["pw"]),
            serde_json::json!({"pw": 1}),
        ] {
            assert!(
                JsonString::parse_from_json(Some(other.clone())).is_err(),
                "{other}"
            );
        }
        assert!(JsonString::parse_from_json(None).is_err());
    }

    #[test]
    fn text_is_documented_as_a_string() {
        assert_eq!(
            serde_json::to_value(JsonString::schema_ref()).unwrap(),
            serde_json::to_value(String::schema_ref()).unwrap()
        );
    }

    #[test]
    fn its_debug_hides_the_value() {
        assert!(!format!("{:?}", JsonString::from("hunter2")).contains("hunter2"));
    }
}

//! Request bodies as Django REST framework reads them, for simplejwt's
//! routes: JSON, form-encoded or `multipart/form-data`, and field errors
//! as DRF writes them: `{"password": ["This field is required."]}`.

use std::{borrow::Cow, collections::BTreeMap, marker::PhantomData};

use poem::{FromRequest, Request, RequestBody, error::NotFoundError, web::Multipart};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
    error::ContentTypeError,
    registry::{MetaMediaType, MetaRequest, MetaSchema, MetaSchemaRef, Registry},
    types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type},
};
use serde_json::{Map, Value};

use crate::state::AppState;

/// DRF's errors: each field's messages; `non_field_errors` for the body.
pub type FieldErrors = BTreeMap<String, Vec<String>>;

/// The body's fields, or why it has none; `T` is what the spec shows.
pub struct DrfBody<T> {
    pub fields: Result<Map<String, Value>, FieldErrors>,
    schema: PhantomData<T>,
}

const MEDIA_TYPES: [&str; 3] = [
    "application/json",
    "application/x-www-form-urlencoded",
    "multipart/form-data",
];

impl<'a, T: Type> ApiExtractor<'a> for DrfBody<T> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: Some("JSON, form-encoded or multipart/form-data, as simplejwt takes it."),
            content: MEDIA_TYPES
                .iter()
                .map(|content_type| MetaMediaType {
                    content_type,
                    schema: T::schema_ref(),
                })
                .collect(),
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        // Turned off: as if the routes did not exist.
        if !request
            .data::<AppState>()
            .is_some_and(|s| s.http.simplejwt_routes)
        {
            return Err(NotFoundError.into());
        }
        let Some(content_type) = request.content_type() else {
            return Err(ContentTypeError::ExpectContentType.into());
        };
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let fields = match essence.as_str() {
            "application/json" => {
                let data = <Vec<u8> as FromRequest>::from_request(request, body).await?;
                json_fields(&data)
            }
            "application/x-www-form-urlencoded" => {
                let data = <Vec<u8> as FromRequest>::from_request(request, body).await?;
                match serde_urlencoded::from_bytes::<Vec<(String, String)>>(&data) {
                    Ok(pairs) => Ok(text_fields(pairs)),
                    Err(e) => Err(non_field(format!("Form parse error - {e}"))),
                }
            }
            "multipart/form-data" => multipart_fields(request, body).await,
            _ => {
                return Err(ContentTypeError::NotSupported {
                    content_type: content_type.to_owned(),
                }
                .into());
            }
        };
        Ok(DrfBody {
            fields,
            schema: PhantomData,
        })
    }
}

fn json_fields(data: &[u8]) -> Result<Map<String, Value>, FieldErrors> {
    match serde_json::from_slice::<Value>(data) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(non_field(format!(
            "Invalid data. Expected a dictionary, but got {}.",
            json_kind(&other)
        ))),
        Err(e) => Err(non_field(format!("JSON parse error - {e}"))),
    }
}

/// Text fields, the last of a name given twice winning (as Django's
/// `QueryDict` does for a single value).
fn text_fields(pairs: Vec<(String, String)>) -> Map<String, Value> {
    pairs
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect()
}

async fn multipart_fields(
    request: &Request,
    body: &mut RequestBody,
) -> Result<Map<String, Value>, FieldErrors> {
    fn bad(e: impl std::fmt::Display) -> FieldErrors {
        non_field(format!("Multipart form parse error - {e}"))
    }
    let mut multipart = <Multipart as FromRequest>::from_request(request, body)
        .await
        .map_err(bad)?;
    let mut pairs = Vec::new();
    while let Some(field) = multipart.next_field().await.map_err(bad)? {
        let Some(name) = field.name().map(str::to_owned) else {
            continue;
        };
        let text = field.text().await.map_err(bad)?;
        pairs.push((name, text));
    }
    Ok(text_fields(pairs))
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Array(_) => "list",
        Value::String(_) => "str",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        Value::Null => "NoneType",
        Value::Object(_) => "dict",
    }
}

fn non_field(message: String) -> FieldErrors {
    FieldErrors::from([("non_field_errors".to_owned(), vec![message])])
}

/// A required text field, as DRF's `CharField` reads it; its error goes
/// into `errors`.
pub fn char_field(
    fields: &Map<String, Value>,
    name: &str,
    max_length: usize,
    errors: &mut FieldErrors,
) -> Option<String> {
    let message = match fields.get(name) {
        None => "This field is required.".to_owned(),
        Some(Value::Null) => "This field may not be null.".to_owned(),
        Some(Value::String(s)) if s.is_empty() => "This field may not be blank.".to_owned(),
        Some(Value::String(s)) if s.chars().count() > max_length => {
            format!("Ensure this field has no more than {max_length} characters.")
        }
        Some(Value::String(s)) => return Some(s.clone()),
        Some(Value::Number(n)) => return Some(n.to_string()),
        Some(_) => "Not a valid string.".to_owned(),
    };
    errors.insert(name.to_owned(), vec![message]);
    None
}

/// A text field as DRF's `CharField` reads it, for the spec: a JSON string
/// of 1 to `MAX` characters, or a number, which it reads as its text (`7`
/// is `"7"`). The routes read their fields with [`char_field`]; this type
/// says in the spec what that accepts, so a client is told the truth.
///
/// Without `MAX` the spec gives no length: `max_body_size` bounds the body
/// first, and a string longer than the spec's bound would be answered 413
/// rather than 400.
pub struct CharField<const MAX: usize = { usize::MAX }>(pub String);

impl<const MAX: usize> Type for CharField<MAX> {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        format!("drf_char_field_{MAX}").into()
    }

    fn schema_ref() -> MetaSchemaRef {
        let text = MetaSchema {
            min_length: Some(1),
            max_length: (MAX != usize::MAX).then_some(MAX),
            ..MetaSchema::new("string")
        };
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            any_of: vec![
                MetaSchemaRef::Inline(Box::new(text)),
                MetaSchemaRef::Inline(Box::new(MetaSchema::new("number"))),
            ],
            ..MetaSchema::ANY
        }))
    }

    raw_value_is_self!();
}

impl<const MAX: usize> ParseFromJSON for CharField<MAX> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        let fields = Map::from_iter([("field".to_owned(), value.unwrap_or_default())]);
        let mut errors = FieldErrors::new();
        match char_field(&fields, "field", MAX, &mut errors) {
            Some(text) => Ok(CharField(text)),
            None => Err(ParseError::custom(
                errors.remove("field").unwrap_or_default().concat(),
            )),
        }
    }
}

impl<const MAX: usize> ToJSON for CharField<MAX> {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn char_field_says_what_drf_says() {
        let fields = json_fields(br#"{"a": null, "b": "", "c": [1], "d": 7, "e": "ok"}"#).unwrap();
        let mut errors = FieldErrors::new();
        for name in ["a", "b", "c", "missing"] {
            assert_eq!(char_field(&fields, name, 10, &mut errors), None);
        }
        assert_eq!(
            char_field(&fields, "d", 10, &mut errors).as_deref(),
            Some("7")
        );
        assert_eq!(
            char_field(&fields, "e", 10, &mut errors).as_deref(),
            Some("ok")
        );
        assert_eq!(errors["a"], ["This field may not be null."]);
        assert_eq!(errors["b"], ["This field may not be blank."]);
        assert_eq!(errors["c"], ["Not a valid string."]);
        assert_eq!(errors["missing"], ["This field is required."]);
    }

    #[test]
    fn a_body_that_is_not_an_object_is_a_non_field_error() {
        let errors = json_fields(b"[1]").unwrap_err();
        assert_eq!(
            errors["non_field_errors"],
            ["Invalid data. Expected a dictionary, but got list."]
        );
        assert!(
            json_fields(b"{").unwrap_err()["non_field_errors"][0].starts_with("JSON parse error")
        );
    }
}

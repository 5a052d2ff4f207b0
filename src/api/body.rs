//! Request bodies taken as JSON or form-encoded, as simplejwt and the OAuth
//! RFCs send them: one extractor for every route that takes both.

use poem::{FromRequest, Request, RequestBody};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
    error::{ContentTypeError, ParseRequestPayloadError},
    payload::{Form, Json, ParsePayload, Payload},
    registry::{MetaMediaType, MetaRequest, MetaSchemaRef, Registry},
    types::{ParseFromJSON, ToJSON, Type},
};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A request object that comes as JSON or as a form.
pub trait FormOrJsonBody:
    ParseFromJSON + ToJSON + DeserializeOwned + Send + Sync + 'static
{
    /// What the body is, for the spec.
    const DESCRIPTION: &'static str;
    /// Whether the spec lists the form first (the OAuth endpoints, whose
    /// RFCs speak forms).
    const FORM_FIRST: bool = false;
}

/// The body `T`, read from `application/json` or
/// `application/x-www-form-urlencoded`; any other type is 415.
pub struct JsonOrForm<T>(pub T);

impl<'a, T: FormOrJsonBody> ApiExtractor<'a> for JsonOrForm<T> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <Json<T> as Payload>::register(registry);
        <Form<T> as Payload>::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        let json = MetaMediaType {
            content_type: <Json<T> as Payload>::CONTENT_TYPE,
            schema: <Json<T> as Payload>::schema_ref(),
        };
        let form = MetaMediaType {
            content_type: <Form<T> as Payload>::CONTENT_TYPE,
            schema: <Form<T> as Payload>::schema_ref(),
        };
        let content = if T::FORM_FIRST {
            vec![form, json]
        } else {
            vec![json, form]
        };
        Some(MetaRequest {
            description: Some(T::DESCRIPTION),
            content,
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        match request.content_type() {
            Some(content_type) if <Json<T> as Payload>::check_content_type(content_type) => {
                let data = <Vec<u8> as FromRequest>::from_request(request, body).await?;
                let bad = |reason: String| ParseRequestPayloadError { reason };
                let value: serde_json::Value = serde_json::from_slice(&data)
                    .map_err(|e| bad(format!("The body is not valid JSON ({e}).")))?;
                if let Some(problem) = field_problem::<T>(&value) {
                    return Err(bad(problem).into());
                }
                let value = T::parse_from_json(Some(value)).map_err(|e| bad(e.into_message()))?;
                Ok(JsonOrForm(value))
            }
            Some(content_type) if <Form<T> as Payload>::check_content_type(content_type) => {
                let Form(value) = <Form<T> as ParsePayload>::from_request(request, body).await?;
                Ok(JsonOrForm(value))
            }
            Some(content_type) => Err(ContentTypeError::NotSupported {
                content_type: content_type.to_owned(),
            }
            .into()),
            None => Err(ContentTypeError::ExpectContentType.into()),
        }
    }
}

/// What is wrong with a JSON body for the object `T`, in plain words that
/// name the field: a missing field, or a value of the wrong JSON type.
/// `None` when the fields are there with the right types (the parser
/// then checks lengths and formats).
pub fn field_problem<T: Type>(value: &Value) -> Option<String> {
    let Value::Object(map) = value else {
        return Some("The body must be a JSON object.".into());
    };
    let mut registry = Registry::new();
    T::register(&mut registry);
    let schema = registry.schemas.get(T::name().as_ref())?;
    for (name, property) in &schema.properties {
        let required = schema.required.contains(name);
        let expected = match property {
            MetaSchemaRef::Inline(inline) => Some(inline.ty),
            MetaSchemaRef::Reference(_) => None,
        };
        let value = match map.get(*name) {
            None if required => return Some(format!("The field `{name}` is required.")),
            None | Some(Value::Null) if !required => continue,
            None => continue,
            Some(value) => value,
        };
        let Some(expected) = expected else { continue };
        let fits = match (expected, value) {
            ("string", Value::String(_))
            | ("boolean", Value::Bool(_))
            | ("number", Value::Number(_))
            | ("array", Value::Array(_))
            | ("object", Value::Object(_)) => true,
            ("integer", Value::Number(n)) => n.is_i64() || n.is_u64(),
            ("string" | "boolean" | "number" | "integer" | "array" | "object", _) => false,
            _ => true,
        };
        if !fits {
            let what = match expected {
                "string" => "a string",
                "boolean" => "true or false",
                "integer" => "a whole number",
                "number" => "a number",
                "array" => "a list",
                _ => "an object",
            };
            let got = match value {
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::String(_) => "a string",
                Value::Array(_) => "a list",
                Value::Object(_) => "an object",
            };
            return Some(format!("The field `{name}` must be {what}, not {got}."));
        }
    }
    None
}

//! Request bodies taken as JSON or form-encoded, as simplejwt and the OAuth
//! RFCs send them: one extractor for every route that takes both.

use poem::{Request, RequestBody};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
    error::ContentTypeError,
    payload::{Form, Json, ParsePayload, Payload},
    registry::{MetaMediaType, MetaRequest, Registry},
    types::{ParseFromJSON, ToJSON},
};
use serde::de::DeserializeOwned;

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
                let Json(value) = <Json<T> as ParsePayload>::from_request(request, body).await?;
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

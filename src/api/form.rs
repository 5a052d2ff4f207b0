//! Form bodies as the clients that send them write them: containers/image
//! repeats `scope` once per repository, and Django REST framework reads a
//! boolean as `true`/`True`/`1` or `false`/`False`/`0`.

use poem::{FromRequest, Request, RequestBody};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
    error::{ContentTypeError, ParseRequestPayloadError},
    payload::{Form, Payload},
    registry::{MetaMediaType, MetaRequest, Registry},
    types::Type,
};
use serde::{Deserializer, de::DeserializeOwned};

/// A form whose fields named in `JOINED` may come several times.
pub trait JoinedFormBody: Type + DeserializeOwned + Send + Sync + 'static {
    /// What the body is, for the spec.
    const DESCRIPTION: &'static str;
    /// The fields whose repeated values are joined with a space, as if
    /// the client had sent them space-separated in one field.
    const JOINED: &'static [&'static str];
}

/// The body `T`, read from `application/x-www-form-urlencoded`; every other
/// field given twice is still refused.
pub struct JoinedForm<T>(pub T);

impl<'a, T: JoinedFormBody> ApiExtractor<'a> for JoinedForm<T> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <Form<T> as Payload>::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: Some(T::DESCRIPTION),
            content: vec![MetaMediaType {
                content_type: <Form<T> as Payload>::CONTENT_TYPE,
                schema: <Form<T> as Payload>::schema_ref(),
            }],
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        match request.content_type() {
            Some(content_type) if <Form<T> as Payload>::check_content_type(content_type) => {
                let data = <Vec<u8> as FromRequest>::from_request(request, body).await?;
                let value = parse(&data, T::JOINED)
                    .map_err(|reason| ParseRequestPayloadError { reason })?;
                Ok(JoinedForm(value))
            }
            Some(content_type) => Err(ContentTypeError::NotSupported {
                content_type: content_type.to_owned(),
            }
            .into()),
            None => Err(ContentTypeError::ExpectContentType.into()),
        }
    }
}

/// Reads a form into `T`, the values of each field in `joined` first joined
/// with a space in the place of its first occurrence.
pub fn parse<T: DeserializeOwned>(data: &[u8], joined: &[&str]) -> Result<T, String> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_bytes(data).map_err(|e| e.to_string())?;
    let mut merged: Vec<(String, String)> = Vec::with_capacity(pairs.len());
    for (key, value) in pairs {
        if joined.contains(&key.as_str())
            && let Some((_, first)) = merged.iter_mut().find(|(k, _)| *k == key)
        {
            if !value.is_empty() {
                if !first.is_empty() {
                    first.push(' ');
                }
                first.push_str(&value);
            }
            continue;
        }
        merged.push((key, value));
    }
    let text = serde_urlencoded::to_string(&merged).map_err(|e| e.to_string())?;
    serde_urlencoded::from_str(&text).map_err(|e| e.to_string())
}

/// A boolean as Django REST framework reads one: a JSON boolean, or the
/// text `true`/`True`/`1` or `false`/`False`/`0` (a form field).
pub fn drf_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    d.deserialize_any(DrfBool)
}

/// [`drf_bool`] for a field that may be absent (`#[serde(default)]`).
pub fn drf_bool_option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    d.deserialize_any(DrfBool).map(Some)
}

struct DrfBool;

impl serde::de::Visitor<'_> for DrfBool {
    type Value = bool;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a boolean: true, True, 1, false, False or 0")
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<bool, E> {
        Ok(v)
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<bool, E> {
        match v {
            "true" | "True" | "1" => Ok(true),
            "false" | "False" | "0" => Ok(false),
            _ => Err(E::custom(format!(
                "`{}` is not a boolean: send true, True, 1, false, False or 0",
                v.chars().take(20).collect::<String>()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Asked {
        scope: Option<String>,
        service: String,
        #[serde(default, deserialize_with = "drf_bool_option")]
        flag: Option<bool>,
    }

    #[test]
    fn repeated_joined_fields_become_one_space_separated_value() {
        let asked: Asked = parse(
            b"scope=repository:a/x:pull,push&service=s&scope=repository:a/y:pull&scope=",
            &["scope"],
        )
        .unwrap();
        assert_eq!(
            asked.scope.as_deref(),
            Some("repository:a/x:pull,push repository:a/y:pull")
        );
    }

    #[test]
    fn other_fields_given_twice_are_still_refused() {
        let err = parse::<Asked>(b"service=a&service=b", &["scope"]).unwrap_err();
        assert!(err.contains("duplicate field `service`"), "{err}");
    }

    #[test]
    fn form_booleans_read_as_django_reads_them() {
        for (text, want) in [
            ("true", true),
            ("True", true),
            ("1", true),
            ("false", false),
            ("False", false),
            ("0", false),
        ] {
            let asked: Asked = parse(format!("service=s&flag={text}").as_bytes(), &[]).unwrap();
            assert_eq!(asked.flag, Some(want), "{text}");
        }
        let err = parse::<Asked>(b"service=s&flag=yes", &[]).unwrap_err();
        assert!(err.contains("not a boolean"), "{err}");
    }
}

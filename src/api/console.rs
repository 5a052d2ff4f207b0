//! The web console at `/ui/`: a small static app on the public JSON API,
//! its files embedded in the binary (it needs no network and no files at
//! run time), served with a strict Content-Security-Policy.

use poem::{
    Endpoint, IntoResponse, Request, Response, handler,
    http::{Method, StatusCode, header},
    web::Redirect,
};

use super::error::json_response;

/// What the page may load: its own scripts, styles and API, nothing inline,
/// never inside a frame.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                       img-src 'self' data:; connect-src 'self'; form-action 'self'; \
                       base-uri 'none'; frame-ancestors 'none'";

/// The console's files: the name under `/ui/`, the content type, the bytes.
const FILES: &[(&str, &str, &str)] = &[
    (
        "",
        "text/html; charset=utf-8",
        include_str!("../../ui/index.html"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../ui/style.css"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/api.js"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/app.js"),
    ),
    (
        "dom.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/dom.js"),
    ),
    (
        "pages.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/pages.js"),
    ),
    (
        "admin.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/admin.js"),
    ),
];

/// The endpoint nested at `/ui`.
pub fn endpoint() -> impl Endpoint {
    serve
}

#[handler]
fn serve(req: &Request) -> Response {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed on this route.",
            "method_not_allowed",
        )
        .with_header(header::ALLOW, "GET, HEAD")
        .into_response();
    }
    let original = req.original_uri().path();
    if original == "/ui" {
        return Redirect::permanent("/ui/").into_response();
    }
    let name = req.uri().path().trim_start_matches('/');
    let Some((_, content_type, body)) = FILES.iter().find(|(n, _, _)| *n == name) else {
        return json_response(StatusCode::NOT_FOUND, "Not found.", "not_found");
    };
    Response::builder()
        .header(header::CONTENT_TYPE, *content_type)
        .header(header::CONTENT_SECURITY_POLICY, CSP)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::REFERRER_POLICY, "no-referrer")
        .header(header::X_FRAME_OPTIONS, "DENY")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(*body)
}

//! The answers hyper gives by itself, before any request reaches tokend: a
//! request it cannot parse (400), a URI too long (414), headers too large
//! (431). hyper writes them with an empty body; tokend's every answer
//! carries `{"detail", "code"}`, so the start-up's connection wrapper has
//! them rewritten here.

use serde_json::json;

/// What hyper writes for a request it could not read, and what tokend says
/// instead.
const KNOWN: [(&str, &str, &str); 3] = [
    (
        "400 Bad Request",
        "invalid_request",
        "The request could not be read: its request line or a header is malformed.",
    ),
    (
        "414 URI Too Long",
        "uri_too_long",
        "The request's URI is too long.",
    ),
    (
        "431 Request Header Fields Too Large",
        "header_fields_too_large",
        "The request's headers are too large.",
    ),
];

/// The same answer with tokend's JSON body, when `head` is one of hyper's
/// own bodyless error answers; `None` for anything else.
pub fn with_json_body(head: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(head).ok()?;
    let rest = text.strip_prefix("HTTP/1.1 ")?;
    let (status, code, detail) = KNOWN
        .iter()
        .find(|(status, _, _)| rest.starts_with(&format!("{status}\r\n")))?;
    let headers = rest.strip_prefix(status)?.strip_suffix("\r\n\r\n")?;
    // Only hyper's own: it closes the connection and sends nothing.
    let lines: Vec<&str> = headers.split("\r\n").filter(|l| !l.is_empty()).collect();
    if !lines.contains(&"connection: close") || !lines.contains(&"content-length: 0") {
        return None;
    }
    let body = json!({ "detail": detail, "code": code }).to_string();
    let mut answer = format!("HTTP/1.1 {status}\r\n");
    for line in lines {
        if line == "content-length: 0" {
            answer.push_str("content-type: application/json; charset=utf-8\r\n");
            answer.push_str(&format!("content-length: {}\r\n", body.len()));
        } else {
            answer.push_str(line);
            answer.push_str("\r\n");
        }
    }
    answer.push_str("\r\n");
    answer.push_str(&body);
    Some(answer.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypers_bodyless_errors_get_the_json_body() {
        let head = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: Wed, 02 Dec 2026 13:53:16 GMT\r\n\r\n";
        let answer = String::from_utf8(with_json_body(head).unwrap()).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["code"], "header_fields_too_large");
    }

    #[test]
    fn any_other_answer_is_left_alone() {
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
        assert!(with_json_body(ours).is_none());
        assert!(with_json_body(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
    }
}

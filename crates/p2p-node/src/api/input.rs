//! What the API accepts as input, one rule for every endpoint: JSON
//! bodies ([`JsonBody`], [`NoBody`]) and query strings ([`query`],
//! [`no_query`]), each refused with a 4xx JSON error whose stable code
//! says what was wrong (`docs/API.md`, "Request bodies and query
//! strings").
//!
//! Bodies: `Content-Type: application/json` (`415 unsupported_media_type`
//! otherwise), at most [`super::ApiLimits::max_body_bytes`] (`413
//! body_too_large`), sent within [`super::ApiLimits::body_timeout`] (`408
//! body_timeout`), one JSON object (`400 bad_json` when it is not JSON at
//! all, `400 bad_value` when it is JSON but not an object) whose keys are
//! exactly the endpoint's (`400 unknown_field`, `missing_field`,
//! `duplicate_field`) and whose values have the field's type and range
//! (`400 bad_value`: a string for a number, a negative, fractional or
//! above-2^64 count, an address that does not parse). Every request type
//! is `#[serde(deny_unknown_fields)]`, so nothing is silently ignored.
//!
//! The codes come from serde's own error messages, whose first words
//! (`unknown field`, `missing field`, `duplicate field`) are fixed by
//! `serde::de::Error`'s provided methods, which neither serde_json nor
//! serde_urlencoded overrides.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};

use super::error::ApiError;
use super::state::Api;

/// The error code of a serde data error: `unknown_field`,
/// `missing_field`, `duplicate_field`, or `otherwise` (a value of the
/// wrong type or out of range).
fn data_code(message: &str, otherwise: &'static str) -> &'static str {
    if message.starts_with("unknown field") {
        "unknown_field"
    } else if message.starts_with("missing field") {
        "missing_field"
    } else if message.starts_with("duplicate field") {
        "duplicate_field"
    } else {
        otherwise
    }
}

/// A JSON object body read as `T` (a `deny_unknown_fields` type), or the
/// error that says what is wrong with it. Handlers take
/// `Result<JsonBody<T>, ApiError>` so that they check the token first.
pub(super) struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Api> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, api: &Api) -> Result<Self, ApiError> {
        json_content_type(&req)?;
        let bytes = read_body(req, api).await?;
        parse(&bytes).map(JsonBody)
    }
}

/// The body of an endpoint that takes none (`POST /admin/heal`): empty,
/// or the empty object `{}` under the same rules as any JSON body.
pub(super) struct NoBody;

/// The only JSON body [`NoBody`] accepts: an object with no keys.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

impl FromRequest<Api> for NoBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, api: &Api) -> Result<Self, ApiError> {
        let content_type = json_content_type(&req);
        let bytes = read_body(req, api).await?;
        if bytes.is_empty() {
            return Ok(NoBody);
        }
        content_type?;
        parse::<Empty>(&bytes).map(|_| NoBody)
    }
}

/// `415 unsupported_media_type` unless the request says its body is
/// `application/json` (parameters such as `charset=utf-8` allowed).
fn json_content_type(req: &Request) -> Result<(), ApiError> {
    let given = req
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("(not ASCII)"));
    let essence = given.map(|v| v.split(';').next().unwrap_or("").trim());
    match essence {
        Some(e) if e.eq_ignore_ascii_case("application/json") => Ok(()),
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "the body must be JSON with `Content-Type: application/json` (given: {})",
                given.unwrap_or("none")
            ),
        )),
    }
}

/// The whole body, within the size limit (the router's
/// `DefaultBodyLimit`) and the time limit.
async fn read_body(req: Request, api: &Api) -> Result<Bytes, ApiError> {
    let limits = &api.limits;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the body is over {} bytes", limits.max_body_bytes),
        )
    };
    // A length declared past the limit is refused before waiting for it.
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body_bytes as u64) {
        return Err(too_large());
    }
    let read = Bytes::from_request(req, &());
    match tokio::time::timeout(limits.body_timeout, read).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(too_large()),
        Ok(Err(e)) => Err(ApiError::bad_request(
            "bad_json",
            format!("the body could not be read: {}", e.body_text()),
        )),
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!(
                "the body did not arrive within {} ms",
                limits.body_timeout.as_millis()
            ),
        )),
    }
}

/// `bytes` as one JSON object read as `T`.
fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Syntax first, so that "not JSON" is told from "JSON of the wrong
    // shape" whatever `T` is (JSON text is UTF-8: RFC 8259, section 8.1).
    let not_json = |e: &dyn std::fmt::Display| {
        ApiError::bad_request("bad_json", format!("the body is not JSON: {e}"))
    };
    std::str::from_utf8(bytes).map_err(|e| not_json(&e))?;
    serde_json::from_slice::<IgnoredAny>(bytes).map_err(|e| not_json(&e))?;
    // A derived struct also accepts an array of its fields' values in
    // order: only an object is a request body.
    if bytes.trim_ascii_start().first() != Some(&b'{') {
        return Err(ApiError::bad_request(
            "bad_value",
            "the body must be a JSON object (`{...}`)",
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        if e.is_data() {
            let message = e.to_string();
            ApiError::bad_request(data_code(&message, "bad_value"), message)
        } else {
            not_json(&e)
        }
    })
}

/// A query string read as `T` (a `deny_unknown_fields` type): `value_code`
/// for a value that does not parse (the endpoint's own code, such as
/// `bad_range`), `unknown_field` or `duplicate_field` for the parameters.
pub(super) fn query<T: DeserializeOwned>(
    raw: Option<&str>,
    value_code: &'static str,
) -> Result<T, ApiError> {
    serde_urlencoded::from_str(raw.unwrap_or("")).map_err(|e| {
        let message = format!("query string: {e}");
        ApiError::bad_request(data_code(&e.to_string(), value_code), message)
    })
}

/// Middleware for the endpoints that take no query parameter: any query
/// string is `400 unknown_field`, as an unknown key of a body is.
pub(super) async fn no_query(req: Request, next: Next) -> Response {
    match req.uri().query() {
        Some(q) if !q.is_empty() => ApiError::bad_request(
            "unknown_field",
            format!(
                "{} takes no query parameters (given `{q}`)",
                req.uri().path()
            ),
        )
        .into_response(),
        _ => next.run(req).await,
    }
}

/// A count in a path or a query string: decimal digits only (no sign, no
/// point, no exponent), at most 2^64 - 1.
pub(super) fn parse_count(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `deserialize_with` for an optional count of a query string
/// ([`parse_count`]'s rule: `+5` or `5.0` is refused, not read as 5).
pub(super) fn count<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let s = std::borrow::Cow::<str>::deserialize(d)?;
    parse_count(&s).map(Some).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "`{s}` is not a count (decimal digits, at most 18446744073709551615)"
        ))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn serde_messages_start_with_the_words_the_codes_are_told_by() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct T {
            a: u64,
        }
        let code = |body: &str| {
            let e = serde_json::from_str::<T>(body).unwrap_err().to_string();
            data_code(&e, "bad_value")
        };
        assert_eq!(code(r#"{"a": 1, "b": 2}"#), "unknown_field");
        assert_eq!(code(r#"{}"#), "missing_field");
        assert_eq!(code(r#"{"a": 1, "a": 2}"#), "duplicate_field");
        assert_eq!(code(r#"{"a": "1"}"#), "bad_value");
        assert_eq!(code(r#"{"a": -1}"#), "bad_value");
        assert_eq!(code(r#"{"a": 1.5}"#), "bad_value");
        assert_eq!(code(r#"{"a": 18446744073709551616}"#), "bad_value");
    }

    #[test]
    fn a_body_is_one_json_object_of_the_types_keys() {
        let code = |body: &[u8]| parse::<crate::api_types::SubmitTx>(body).unwrap_err();
        for (body, want) in [
            (&b"{\"tx\": \"a1b2\", \"fee\": 1}"[..], "unknown_field"),
            (b"{\"tx\": 1e400}", "bad_json"),
            (b"{\"tx\": \"\xff\"}", "bad_json"),
            (b"[\"a1b2\"]", "bad_value"),
            (b"{\"tx\": \"a1b2\"} {}", "bad_json"),
        ] {
            assert_eq!(code(body).code(), want, "{}", String::from_utf8_lossy(body));
        }
        // The message docs/API.md shows.
        let e = code(b"{\"tx\": \"a1b2\", \"fee\": 1}");
        let shown = format!("{e:?}");
        assert!(
            shown.contains("\"unknown field `fee`, expected `tx` at line 1 column 20\""),
            "{shown}"
        );
        assert_eq!(
            parse::<crate::api_types::SubmitTx>(b" {\"tx\": \"A1\"} ")
                .unwrap()
                .tx,
            "A1"
        );
    }

    #[test]
    fn counts_are_decimal_digits_within_u64() {
        assert_eq!(parse_count("0"), Some(0));
        assert_eq!(parse_count("007"), Some(7));
        assert_eq!(parse_count("18446744073709551615"), Some(u64::MAX));
        for bad in [
            "",
            "+5",
            "-1",
            "5.0",
            "1e3",
            " 5",
            "18446744073709551616",
            "x",
        ] {
            assert_eq!(parse_count(bad), None, "{bad}");
        }
    }
}

//! The one error type of the client commands, and how ARM error envelopes become one.
//!
//! Every failure a user sees is printed as `code: message` on stderr, whether it came from the
//! server's `{"error": {"code", "message"}}` envelope, from a failed long-running operation, from
//! the network, or from a check the CLI makes itself. Keeping one shape makes the output
//! scriptable (`2>&1 | cut -d: -f1` gives the code) and matches what `az` users read.

use serde_json::Value;
use std::fmt;

/// A failed command: an ARM-style error code and a human message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    pub code: String,
    pub message: String,
}

impl CliError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        CliError {
            code: code.into(),
            message: message.into(),
        }
    }

    /// An error in what the user asked for, found before anything was sent.
    pub fn validation(message: impl Into<String>) -> Self {
        CliError::new("ValidationError", message)
    }

    /// The server answered something the CLI cannot make sense of.
    pub fn bad_response(message: impl Into<String>) -> Self {
        CliError::new("BadResponse", message)
    }

    /// Reads an ARM error from a response body.
    ///
    /// ARM sends `{"error": {"code", "message"}}`; some services send the inner object bare. When
    /// the body is neither (an HTML proxy page, an empty 404), the HTTP status stands in for the
    /// code so that the user still sees what happened.
    pub fn from_response(status: u16, body: &[u8]) -> Self {
        if let Ok(value) = serde_json::from_slice::<Value>(body) {
            if let Some(err) = CliError::from_error_object(value.get("error").unwrap_or(&value)) {
                return err;
            }
        }
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        let message = if text.is_empty() {
            format!("the server answered HTTP {status} {}", reason(status))
        } else {
            format!("HTTP {status}: {text}")
        };
        CliError::new(status_code_name(status), message)
    }

    /// Reads `{"code", "message"}` (the `error` member of an envelope or of an operation status).
    pub fn from_error_object(value: &Value) -> Option<Self> {
        let code = value.get("code")?.as_str()?;
        let message = value.get("message").and_then(Value::as_str).unwrap_or("");
        Some(CliError::new(code, message))
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for CliError {}

/// An ARM-like code for a bare HTTP status, for bodies that carry no envelope.
fn status_code_name(status: u16) -> String {
    match status {
        400 => "BadRequest".into(),
        401 => "Unauthorized".into(),
        403 => "Forbidden".into(),
        404 => "NotFound".into(),
        405 => "MethodNotAllowed".into(),
        409 => "Conflict".into(),
        412 => "PreconditionFailed".into(),
        415 => "UnsupportedMediaType".into(),
        422 => "UnprocessableEntity".into(),
        429 => "TooManyRequests".into(),
        500 => "InternalServerError".into(),
        501 => "NotImplemented".into(),
        502 => "BadGateway".into(),
        503 => "ServiceUnavailable".into(),
        504 => "GatewayTimeout".into(),
        other => format!("HttpStatus{other}"),
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_becomes_code_colon_message() {
        let body = br#"{"error":{"code":"VnetAddressSpacesOverlap","message":"Cannot create or update peering p1.","details":[]}}"#;
        let err = CliError::from_response(400, body);
        assert_eq!(
            err.to_string(),
            "VnetAddressSpacesOverlap: Cannot create or update peering p1."
        );
    }

    #[test]
    fn bare_error_object_is_accepted() {
        let err = CliError::from_response(404, br#"{"code":"ResourceNotFound","message":"gone"}"#);
        assert_eq!(err, CliError::new("ResourceNotFound", "gone"));
    }

    #[test]
    fn missing_message_is_empty() {
        let err = CliError::from_response(409, br#"{"error":{"code":"Conflict"}}"#);
        assert_eq!(err.to_string(), "Conflict: ");
    }

    #[test]
    fn empty_body_falls_back_to_the_status() {
        let err = CliError::from_response(404, b"");
        assert_eq!(
            err.to_string(),
            "NotFound: the server answered HTTP 404 Not Found"
        );
    }

    #[test]
    fn plain_text_body_is_shown() {
        let err = CliError::from_response(500, b"boom\n");
        assert_eq!(err.to_string(), "InternalServerError: HTTP 500: boom");
        let err = CliError::from_response(418, b"teapot");
        assert_eq!(err.code, "HttpStatus418");
    }
}

//! The ARM error envelope and the codes vnet answers with.
//!
//! Every refusal carries an HTTP status and an Azure error code, so the API layer only has to
//! serialise it. Codes are Azure's where Azure's are known; the rest are listed in
//! `docs/error-codes.md` with the reason for each choice.

use serde_json::{json, Value};

/// An error as ARM returns it: `{"error": {"code", "message", "target", "details": []}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArmError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub target: Option<String>,
}

impl ArmError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        ArmError {
            status,
            code: code.to_string(),
            message: message.into(),
            target: None,
        }
    }
    /// 400 with the given code.
    pub fn bad(code: &str, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }
    pub fn with_target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }
    /// 404 `ResourceNotFound` in ARM's wording.
    pub fn not_found(kind: &str, name: &str, rg: &str) -> Self {
        Self::new(
            404,
            "ResourceNotFound",
            format!(
                "The Resource '{kind}/{name}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
            ),
        )
    }
    /// 400 `InvalidRequestFormat` for bodies that do not match the schema.
    pub fn invalid_format(message: impl Into<String>) -> Self {
        Self::bad("InvalidRequestFormat", message)
    }
    pub fn to_json(&self) -> Value {
        let mut e = json!({"code": self.code, "message": self.message, "details": []});
        if let Some(t) = &self.target {
            e["target"] = json!(t);
        }
        json!({ "error": e })
    }
}

impl std::fmt::Display for ArmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ArmError {}

pub type ArmResult<T> = Result<T, ArmError>;

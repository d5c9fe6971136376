//! The one error type that crosses IPC: `{kind, message}`. The UI branches on `kind` and shows
//! `message`; both come from the core, which says what happened and what was kept safe.

use dermdesk_core::{CoreError, ErrorKind};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct AppError {
    pub kind: String,
    pub message: String,
}

impl AppError {
    pub fn new(kind: &str, message: impl Into<String>) -> AppError {
        AppError { kind: kind.to_owned(), message: message.into() }
    }

    pub fn starting() -> AppError {
        AppError::new("starting", "Derm Desk is still opening its encrypted cache. Try again in a moment.")
    }
}

/// The snake_case code of a core error kind, exactly as it appears in status JSON.
fn kind_code(kind: ErrorKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "internal".to_owned())
}

impl From<CoreError> for AppError {
    fn from(error: CoreError) -> AppError {
        AppError { kind: kind_code(error.kind()), message: error.to_string() }
    }
}

pub type AppResult<T> = Result<T, AppError>;

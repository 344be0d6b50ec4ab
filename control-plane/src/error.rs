//! Every error the management API answers, mapped to one JSON shape in one
//! place: `{"statusCode": N, "message": "..."}`, as the gateway answers its
//! own clients.

use hyper::StatusCode;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// Where in the request's document the problem is (a JSON pointer),
    /// when it is in one: the declarative apply maps it to a file's line.
    pub pointer: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            pointer: None,
        }
    }

    /// The same error, placed at `pointer` in the request's document.
    pub fn at(mut self, pointer: impl Into<String>) -> ApiError {
        self.pointer = Some(pointer.into());
        self
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, message)
    }

    /// A write the gateway's own validation refused.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    pub fn body(&self) -> String {
        serde_json::json!({"statusCode": self.status.as_u16(), "message": self.message}).to_string()
    }
}

impl From<crate::store::DbError> for ApiError {
    fn from(e: crate::store::DbError) -> ApiError {
        tracing::error!(error = %e, "database error");
        crate::telemetry::STORE_ERRORS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("database error: {e}"),
        )
    }
}

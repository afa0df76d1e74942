//! The API's errors: an HTTP status, a stable code and a message, sent as
//! JSON `{"code", "message"}`; and the code of each reason a transaction is
//! refused.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chain_core::TxId;

use crate::api_types::ErrorAnswer;
use crate::mempool::MempoolError;
use crate::node::NodeError;

/// An API error: an HTTP status, a stable code and a message, and for
/// some codes a field more (`matches`, `tx`).
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    matches: Vec<String>,
    tx: Option<TxId>,
    /// `fee_too_low`, `replacement_too_low`: the rate asked (for the
    /// first) and the fee that would do (boxed: most errors have none).
    fees: Option<Box<(Option<u64>, u64)>>,
}

impl ApiError {
    pub(super) fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            matches: Vec::new(),
            tx: None,
            fees: None,
        }
    }

    /// `409 ambiguous`: a prefix that names several ids, listed in
    /// `matches`.
    pub(super) fn ambiguous(message: String, matches: Vec<String>) -> ApiError {
        ApiError {
            matches,
            ..ApiError::new(StatusCode::CONFLICT, "ambiguous", message)
        }
    }

    /// `404 contract_pending`: the contract's creating transaction `tx` is
    /// still in the mempool.
    pub(super) fn contract_pending(message: String, tx: Option<TxId>) -> ApiError {
        ApiError {
            tx,
            ..ApiError::new(StatusCode::NOT_FOUND, "contract_pending", message)
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    pub(super) fn not_found(what: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", what)
    }

    pub(super) fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> ApiError {
        match e {
            NodeError::Mempool(m) => {
                let fees = match &m {
                    MempoolError::FeeTooLow { min, needed, .. } => {
                        Some(Box::new((Some(min.get()), needed.get())))
                    }
                    MempoolError::ReplacementTooLow { needed, .. } => {
                        Some(Box::new((None, needed.get())))
                    }
                    _ => None,
                };
                ApiError {
                    fees,
                    ..ApiError::bad_request(mempool_code(&m), m.to_string())
                }
            }
            other => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "node_stopped",
                other.to_string(),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(ErrorAnswer {
                code: self.code.to_string(),
                message: self.message,
                matches: self.matches,
                tx: self.tx,
                min_fee_rate: self.fees.as_ref().and_then(|f| f.0),
                needed_fee: self.fees.as_ref().map(|f| f.1),
            }),
        )
            .into_response()
    }
}

/// The stable error code of a refused transaction: the rule it broke (the
/// `code` the API answers with, which the simulator counts by):
/// [`crate::mempool::MempoolError::code`].
pub fn mempool_code(e: &crate::mempool::MempoolError) -> &'static str {
    e.code()
}

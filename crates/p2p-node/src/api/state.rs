//! [`Api`]: the state every handler is given (the node, the token, the
//! limits on bodies), one file of its own so that the routes (`mod.rs`)
//! and the extractors and lookups beside them share it without importing
//! each other.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};

use super::error::ApiError;
use super::serve::ApiLimits;
use crate::node::NodeHandle;

/// What every handler is given.
#[derive(Clone)]
pub(super) struct Api {
    /// The running node.
    pub(super) node: NodeHandle,
    /// The token that guards the endpoints that change the node.
    pub(super) token: Option<Arc<str>>,
    /// Limits on request bodies.
    pub(super) limits: Arc<ApiLimits>,
    /// A dev chain's snapshots, on a `--dev` node.
    pub(super) dev: Option<crate::dev::DevChain>,
}

pub(super) fn authorised(api: &Api, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = &api.token else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "control_disabled",
            "this node has no API token: control endpoints are off",
        ));
    };
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given == Some(&**token) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this endpoint needs the node's token (Authorization: Bearer <token>)",
        ))
    }
}

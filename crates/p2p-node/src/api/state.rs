//! [`Api`]: the state every handler is given (the node, the token, the
//! limits on bodies), one file of its own so that the routes (`mod.rs`)
//! and the extractors and lookups beside them share it without importing
//! each other.

use std::sync::Arc;

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
}

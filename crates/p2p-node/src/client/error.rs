//! The client's errors: [`ClientError`], one variant per way a call to
//! the node's API fails, each with the message the command line prints;
//! and the token file's name, which one of them names.

use std::path::PathBuf;

/// The API's token file in a node's data directory (as bitcoind's cookie).
pub const COOKIE_FILE: &str = "api.cookie";

/// A failed API call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The node could not be reached (nothing listens there, the name does
    /// not resolve, the connection broke).
    #[error(
        "cannot reach the node at {url} ({reason}): start a node (`p2p-node run`), \
         or point --node at a running one"
    )]
    Unreachable {
        /// The node's API address.
        url: String,
        /// Why, in a few words (the innermost cause of the request error).
        reason: String,
    },
    /// Something accepted the connection and closed it, or answered, with
    /// no HTTP: most likely a node's P2P port given for its API.
    #[error(
        "something at {url} accepted the connection but gave no HTTP answer ({reason}): is that \
         a node's P2P port? A node's API has a port of its own (--api, 8000 by default; the node \
         prints `api listening on http://...` at start): point --node at that"
    )]
    NotHttp {
        /// The address asked.
        url: String,
        /// What came back, in a few words.
        reason: String,
    },
    /// The node accepted the connection but did not answer in time.
    #[error(
        "the node at {url} accepted the connection but did not answer within {secs} s: \
         is it stopped (suspended) or overloaded? (--request-timeout SECS waits longer)"
    )]
    NoAnswer {
        /// The node's API address.
        url: String,
        /// The limit that ran out, in seconds.
        secs: u64,
    },
    /// The node refused the request: its error answer.
    #[error("{message} ({code})")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The API's stable error code.
        code: String,
        /// The API's message.
        message: String,
        /// With `ambiguous`: the ids the prefix matches.
        matches: Vec<String>,
        /// With `contract_pending`: the id of the transaction that creates
        /// the contract.
        tx: Option<String>,
    },
    /// The answer was not what the API documents: something other than a
    /// node answers at that address, or a node of another version.
    #[error("unexpected answer from {url}: {what} (is --node the address of a node's API?)")]
    Unexpected {
        /// The node's API address.
        url: String,
        /// What was wrong with it.
        what: String,
    },
    /// An id given to look something up is not one (nor a prefix of at
    /// least [`MIN_PREFIX`] hex digits); checked before it goes into a URL.
    #[error(
        "`{id}` is not {what} id: give the id, or a prefix of at least 8 hex digits \
         (a contract id's dashes may be kept or left out)"
    )]
    BadId {
        /// What was given.
        id: String,
        /// What kind of id was expected: "a block", "a transaction", "a
        /// contract".
        what: &'static str,
    },
    /// The token file could not be read.
    #[error(
        "cannot read the node's API token {path}: {cause}; give --data-dir DIR of the node \
         you talk to (its token is DIR/{COOKIE_FILE}), or --token TOKEN"
    )]
    Token {
        /// The cookie file.
        path: PathBuf,
        /// Why (not a `#[source]`: the message already says it).
        cause: std::io::Error,
    },
}

/// The innermost cause of `e`, in words: "Connection refused (os error
/// 111)" rather than reqwest's three nested layers.
pub(super) fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    if let Some(io) = cause.downcast_ref::<std::io::Error>() {
        return match io.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
            std::io::ErrorKind::TimedOut => "timed out".to_string(),
            _ => io.to_string(),
        };
    }
    cause.to_string()
}

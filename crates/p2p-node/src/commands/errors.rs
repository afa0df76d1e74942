//! How the binary fails: each error maps to an exit code and a stable
//! code, and prints as one line of text (`error: ...`) or, with `--json`,
//! as `{"code": ..., "message": ...}` on stderr. docs/CLI.md lists the
//! exit codes; keep the two in step.

use p2p_node::client::ClientError;
use serde_json::json;

use super::words;

/// The exit codes (docs/CLI.md, "Exit codes").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exit {
    /// The node refused the request, or has no such thing.
    Refused = 1,
    /// The command line is wrong.
    Usage = 2,
    /// The node cannot be reached, does not answer in time, or what answers
    /// is not a node's API.
    Unreachable = 3,
    /// `--wait` gave up: not enough confirmations in time.
    Timeout = 4,
    /// `--wait`: the transaction was dropped.
    Dropped = 5,
    /// A local failure: a file cannot be read or written, the node (`run`)
    /// cannot start.
    Local = 6,
}

/// An error the binary raises itself, with its exit code and stable code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct Failure {
    /// The exit code.
    pub exit: Exit,
    /// The stable code (`usage`, `timeout`, `dropped`, ...).
    pub code: &'static str,
    /// What went wrong and what to do.
    pub message: String,
}

impl Failure {
    /// A usage error: the command line is wrong.
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            exit: Exit::Usage,
            code: "usage",
            message: message.into(),
        }
    }
}

/// The exit code, stable code, message and extra JSON fields of `e`.
fn classify(
    e: &anyhow::Error,
) -> (
    Exit,
    String,
    String,
    serde_json::Map<String, serde_json::Value>,
) {
    let mut extra = serde_json::Map::new();
    for cause in e.chain() {
        if let Some(f) = cause.downcast_ref::<Failure>() {
            return (f.exit, f.code.to_string(), render(e), extra);
        }
        if let Some(c) = cause.downcast_ref::<ClientError>() {
            let (exit, code) = match c {
                ClientError::Unreachable { .. } => (Exit::Unreachable, "unreachable".to_string()),
                ClientError::NotHttp { .. } => (Exit::Unreachable, "not_http".to_string()),
                ClientError::NoAnswer { .. } => (Exit::Unreachable, "no_answer".to_string()),
                ClientError::Unexpected { .. } => {
                    (Exit::Unreachable, "unexpected_answer".to_string())
                }
                ClientError::BadId { .. } => (Exit::Usage, "usage".to_string()),
                ClientError::Token { .. } => (Exit::Local, "token".to_string()),
                ClientError::Refused {
                    code, matches, tx, ..
                } => {
                    if !matches.is_empty() {
                        extra.insert("matches".into(), json!(matches));
                    }
                    if let Some(tx) = tx {
                        extra.insert("tx".into(), json!(tx));
                    }
                    (Exit::Refused, code.clone())
                }
            };
            return (exit, code, render(e), extra);
        }
        if let Some(clap) = cause.downcast_ref::<clap::Error>() {
            let text = clap.render().to_string();
            let text = text.strip_prefix("error: ").unwrap_or(&text).to_string();
            return (Exit::Usage, "usage".into(), text, extra);
        }
    }
    (Exit::Local, "failed".into(), render(e), extra)
}

/// The error and its causes on one line, each cause once: a cause whose
/// text its parent already shows (a library error that prints its source,
/// as `key file X: No such file...`) is not repeated. Dev accounts'
/// addresses are named.
pub(crate) fn render(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    words::name_dev_accounts(&out)
}

/// Prints `e` on stderr, as text or JSON, and returns its exit code.
pub(crate) fn report(e: &anyhow::Error, json: bool) -> std::process::ExitCode {
    let (exit, code, message, extra) = classify(e);
    if json {
        let mut body = serde_json::Map::new();
        body.insert("code".into(), json!(code));
        body.insert("message".into(), json!(message.trim_end()));
        body.extend(extra);
        tell!("{}", serde_json::Value::Object(body));
    } else if let Some(matches) = extra.get("matches").and_then(|m| m.as_array()) {
        tell!("error: {message}");
        for m in matches {
            tell!(
                "  {}",
                m.as_str().map_or_else(|| m.to_string(), str::to_string)
            );
        }
    } else {
        tell!("error: {}", message.trim_end());
    }
    std::process::ExitCode::from(exit as u8)
}

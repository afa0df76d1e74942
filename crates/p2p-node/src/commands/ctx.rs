//! [`Ctx`]: what every client subcommand is given (the global options),
//! with the client, the data directory and the printing they share.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use p2p_node::client::Client;
use serde::Serialize;

use super::args::Global;

/// What every subcommand needs: the global options.
pub(crate) struct Ctx {
    pub(super) global: Global,
}

impl Ctx {
    /// A client of the node `--node` names, without a token (only `mine`
    /// needs one).
    pub(super) fn client(&self) -> Client {
        Client::new(&self.global.node, None).with_timeout(self.request_timeout())
    }

    /// A client with the node's token (`--token`, or read from the data
    /// directory's cookie), and where the token came from, for messages.
    pub(super) fn authed_client(&self) -> anyhow::Result<(Client, String)> {
        let (token, source) = match &self.global.token {
            Some(t) => (t.clone(), "the token given with --token".to_string()),
            None => {
                let dir = self.data_dir();
                let token = Client::read_token(&dir)?;
                let file = dir.join(p2p_node::client::COOKIE_FILE);
                (token, format!("the token read from {}", file.display()))
            }
        };
        let client =
            Client::new(&self.global.node, Some(token)).with_timeout(self.request_timeout());
        Ok((client, source))
    }

    /// `--request-timeout`.
    pub(super) fn request_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.global.request_timeout)
    }

    /// The data directory whose token the client reads: `--data-dir`, or
    /// the default node's.
    pub(super) fn data_dir(&self) -> PathBuf {
        self.global
            .data_dir
            .clone()
            .unwrap_or_else(|| default_data_dir(&SocketAddr::from(([127, 0, 0, 1], 5000))))
    }

    /// Prints `answer` as `text()`, or with `--json` as JSON. Text that is
    /// empty prints nothing (not an empty line).
    ///
    /// The JSON goes through [`serde_json::Value`], whose objects keep their
    /// keys sorted, so `--json` prints the keys in the order it always has,
    /// whatever the order of the answer's fields.
    pub(super) fn print<T: Serialize>(
        &self,
        answer: &T,
        text: impl FnOnce() -> String,
    ) -> anyhow::Result<()> {
        if self.global.json {
            let json = serde_json::to_value(answer)
                .and_then(|v| serde_json::to_string_pretty(&v))
                .context("cannot write the answer as JSON")?;
            say!("{json}");
        } else {
            let text = text();
            if !text.is_empty() {
                say!("{text}");
            }
        }
        Ok(())
    }
}

/// A node's data directory when none is given: one per P2P port, so that
/// nodes on one machine do not share one (the client reads the token of
/// the default node's, port 5000).
pub(crate) fn default_data_dir(listen: &SocketAddr) -> PathBuf {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".p2p-node")
        .join(format!("node-{}", listen.port()))
}

//! One connection: the handshake, then a loop that forwards the peer's
//! messages to the core and the core's messages to the peer.
//!
//! The task owns the framed stream. It answers pings itself, pings a silent
//! peer, and closes a connection that stays silent past the idle timeout:
//! under a partition a connection stalls without failing, so socket errors
//! alone would never notice. The core talks to the task through a bounded
//! queue; when the core drops its end, the task closes the connection.

use std::net::SocketAddr;
use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, timeout};
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tracing::debug;
use wire::{Handshake, Message, Reason, WireCodec, WireError};

use crate::config::NodeConfig;
use crate::core::{ConnId, CoreMsg, Direction};
use crate::penalty::Offence;
use crate::transport::BoxStream;
use crate::transport::Transport;

type Conn = Framed<BoxStream, WireCodec>;

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PeerError {
    #[error("wire: {0}")]
    Wire(#[from] WireError),
    #[error("handshake timed out")]
    HandshakeTimeout,
    #[error("peer closed the connection")]
    Closed,
    #[error("peer sent {0} before the handshake completed")]
    Unexpected(&'static str),
    #[error("refused: {0:?} ({1})")]
    Refused(Reason, String),
    #[error("peer sent notice {0:?}: {1}")]
    Notice(Reason, String),
    #[error("node is shutting down")]
    Shutdown,
}

/// Everything a connection task needs.
pub(crate) struct PeerTask {
    pub conn: ConnId,
    pub remote: SocketAddr,
    pub direction: Direction,
    pub core: mpsc::Sender<CoreMsg>,
    pub config: Arc<NodeConfig>,
    pub cancel: CancellationToken,
}

impl PeerTask {
    /// Runs the connection to its end, then tells the core it is gone.
    pub async fn run(self, stream: BoxStream) {
        let mut framed = Framed::new(stream, WireCodec::with_max_frame(self.config.max_frame));
        let result = self.drive(&mut framed).await;
        match &result {
            Ok(()) | Err(PeerError::Closed | PeerError::Shutdown) => {
                debug!(conn = self.conn, remote = %self.remote, "connection closed")
            }
            Err(e) => debug!(conn = self.conn, remote = %self.remote, "connection ended: {e}"),
        }
        if let Err(PeerError::Wire(e)) = &result
            && matches!(
                e.kind(),
                wire::WireErrorKind::FrameTooLarge
                    | wire::WireErrorKind::Malformed
                    | wire::WireErrorKind::UnknownMessage
            )
        {
            let _ = self
                .core
                .send(CoreMsg::Offence {
                    conn: self.conn,
                    remote: self.remote,
                    offence: Offence::Frame(e.to_string()),
                })
                .await;
        }
        let _ = self.core.send(CoreMsg::Gone { conn: self.conn }).await;
        // Dropping `framed` closes the socket.
        drop(framed);
    }

    async fn drive(&self, framed: &mut Conn) -> Result<(), PeerError> {
        let (out_tx, mut out_rx) = mpsc::channel(self.config.peer_queue.max(1));
        let handshake = timeout(
            self.config.handshake_timeout,
            self.handshake(framed, out_tx),
        );
        let outcome = tokio::select! {
            _ = self.cancel.cancelled() => return Err(PeerError::Shutdown),
            r = handshake => r,
        };
        match outcome {
            Err(_) => {
                let _ = framed
                    .send(Message::notice(
                        Reason::HandshakeTimeout,
                        "handshake took too long",
                    ))
                    .await;
                return Err(PeerError::HandshakeTimeout);
            }
            Ok(Err(PeerError::Refused(reason, text))) => {
                let _ = framed.send(Message::notice(reason, &text)).await;
                return Err(PeerError::Refused(reason, text));
            }
            Ok(Err(PeerError::Wire(WireError::UnsupportedVersion { got, supported }))) => {
                let _ = framed
                    .send(Message::notice(
                        Reason::UnsupportedVersion,
                        &format!("version {got} is not supported; this node speaks {supported}"),
                    ))
                    .await;
                return Err(PeerError::Wire(WireError::UnsupportedVersion {
                    got,
                    supported,
                }));
            }
            Ok(r) => r?,
        }
        let _ = self.core.send(CoreMsg::Live { conn: self.conn }).await;

        let mut last_heard = Instant::now();
        let mut ping_nonce: Option<u64> = None;
        let mut tick = tokio::time::interval(
            // A zero period would panic in tokio; a configured zero means
            // "as often as is sensible".
            (self.config.ping_interval.min(self.config.idle_timeout) / 3)
                .max(std::time::Duration::from_millis(10)),
        );
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => {
                    let _ = framed.send(Message::notice(Reason::ShuttingDown, "node stopping")).await;
                    return Err(PeerError::Shutdown);
                }
                out = out_rx.recv() => match out {
                    Some(message) => framed.send(message).await?,
                    // The core dropped us (ban, slow peer, duplicate): close.
                    None => return Ok(()),
                },
                frame = framed.next() => {
                    let message = match frame {
                        Some(m) => m?,
                        None => return Err(PeerError::Closed),
                    };
                    last_heard = Instant::now();
                    match message {
                        Message::Ping { nonce } => framed.send(Message::Pong { nonce }).await?,
                        Message::Pong { nonce } => {
                            if ping_nonce == Some(nonce) {
                                ping_nonce = None;
                            }
                        }
                        Message::Notice { reason, text } => {
                            return Err(PeerError::Notice(reason, text.as_str().to_string()));
                        }
                        other => {
                            if self.core.send(CoreMsg::Message { conn: self.conn, message: other }).await.is_err() {
                                return Err(PeerError::Shutdown);
                            }
                        }
                    }
                }
                _ = tick.tick() => {
                    let silent = last_heard.elapsed();
                    if silent >= self.config.idle_timeout {
                        let _ = framed.send(Message::notice(Reason::IdleTimeout, "no answer to pings")).await;
                        return Err(PeerError::Closed);
                    }
                    if silent >= self.config.ping_interval && ping_nonce.is_none() {
                        let nonce = random_u64();
                        ping_nonce = Some(nonce);
                        framed.send(Message::Ping { nonce }).await?;
                    }
                }
            }
        }
    }

    /// The handshake of `docs/PROTOCOL.md`: the dialler sends its
    /// handshake; the listener checks it, answers with its own and an ack;
    /// the dialler checks that and acks.
    async fn handshake(
        &self,
        framed: &mut Conn,
        out_tx: mpsc::Sender<Message>,
    ) -> Result<(), PeerError> {
        match self.direction {
            Direction::Outbound => {
                let ours = self.hello().await?;
                framed.send(Message::Handshake(ours)).await?;
                let theirs = expect_handshake(framed).await?;
                self.admit(theirs, out_tx).await?;
                expect_ack(framed).await?;
                framed.send(Message::HandshakeAck).await?;
            }
            Direction::Inbound => {
                let theirs = expect_handshake(framed).await?;
                let ours = self.admit(theirs, out_tx).await?;
                framed.send(Message::Handshake(ours)).await?;
                framed.send(Message::HandshakeAck).await?;
                expect_ack(framed).await?;
            }
        }
        Ok(())
    }

    async fn hello(&self) -> Result<Handshake, PeerError> {
        let (reply, rx) = oneshot::channel();
        self.core
            .send(CoreMsg::Hello { reply })
            .await
            .map_err(|_| PeerError::Shutdown)?;
        rx.await.map_err(|_| PeerError::Shutdown)
    }

    async fn admit(
        &self,
        theirs: Handshake,
        sender: mpsc::Sender<Message>,
    ) -> Result<Handshake, PeerError> {
        let (reply, rx) = oneshot::channel();
        self.core
            .send(CoreMsg::Admit {
                conn: self.conn,
                remote: self.remote,
                direction: self.direction,
                hello: Box::new(theirs),
                sender,
                reply,
            })
            .await
            .map_err(|_| PeerError::Shutdown)?;
        match rx.await {
            Ok(Ok(ours)) => Ok(*ours),
            Ok(Err((reason, text))) => Err(PeerError::Refused(reason, text)),
            Err(_) => Err(PeerError::Shutdown),
        }
    }
}

async fn next_message(framed: &mut Conn) -> Result<Message, PeerError> {
    match framed.next().await {
        Some(m) => Ok(m?),
        None => Err(PeerError::Closed),
    }
}

async fn expect_handshake(framed: &mut Conn) -> Result<Handshake, PeerError> {
    match next_message(framed).await? {
        Message::Handshake(h) => Ok(h),
        Message::Notice { reason, text } => {
            Err(PeerError::Notice(reason, text.as_str().to_string()))
        }
        other => Err(PeerError::Unexpected(other.kind())),
    }
}

async fn expect_ack(framed: &mut Conn) -> Result<(), PeerError> {
    match next_message(framed).await? {
        Message::HandshakeAck => Ok(()),
        Message::Notice { reason, text } => {
            Err(PeerError::Notice(reason, text.as_str().to_string()))
        }
        other => Err(PeerError::Unexpected(other.kind())),
    }
}

/// A random number for ping nonces and node ids.
pub(crate) fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    // A failing OS RNG only makes nonces predictable; pings still work.
    let _ = getrandom::fill(&mut bytes);
    u64::from_le_bytes(bytes)
}

/// Dials `addr` as connection `conn` and runs the connection on
/// `tracker`; a dial that fails or times out is reported to the core.
pub(crate) fn spawn_dial(
    conn: ConnId,
    addr: SocketAddr,
    transport: Arc<dyn Transport>,
    core: mpsc::Sender<CoreMsg>,
    config: Arc<NodeConfig>,
    cancel: CancellationToken,
    tracker: &tokio_util::task::TaskTracker,
) {
    let task = PeerTask {
        conn,
        remote: addr,
        direction: Direction::Outbound,
        core: core.clone(),
        config: config.clone(),
        cancel: cancel.clone(),
    };
    let connect_timeout = config.handshake_timeout;
    tracker.spawn(async move {
        let connect = tokio::time::timeout(connect_timeout, transport.connect(addr));
        let stream = tokio::select! {
            _ = cancel.cancelled() => return,
            r = connect => r,
        };
        match stream {
            Ok(Ok(stream)) => task.run(stream).await,
            Ok(Err(e)) => {
                debug!(%addr, "dial failed: {e}");
                let _ = core.send(CoreMsg::DialFailed { addr }).await;
            }
            Err(_) => {
                debug!(%addr, "dial timed out");
                let _ = core.send(CoreMsg::DialFailed { addr }).await;
            }
        }
    });
}

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
use std::sync::atomic::{AtomicUsize, Ordering};

use escrow::SignedTx;
use futures::{FutureExt, SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, timeout};
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tracing::debug;
use wire::{Handshake, Message, Reason, WireError};

use crate::traffic::{CountingCodec, Traffic};

use crate::config::NodeConfig;
use crate::core::{ConnId, CoreMsg, Direction};
use crate::listener::pending::PendingSlot;
use crate::penalty::Offence;
use crate::transport::BoxStream;
use crate::transport::Transport;

type Conn = Framed<BoxStream, CountingCodec>;

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
    #[error("peer does not read fast enough")]
    TooSlow,
}

/// Everything a connection task needs.
pub(crate) struct PeerTask {
    pub conn: ConnId,
    pub remote: SocketAddr,
    pub direction: Direction,
    pub core: mpsc::Sender<CoreMsg>,
    pub config: Arc<NodeConfig>,
    pub cancel: CancellationToken,
    /// For an inbound connection, its place among the connections still
    /// in their handshake; given back once the handshake is over.
    pub pending: Option<PendingSlot>,
    /// Where the connection's frames are counted, by kind.
    pub traffic: Arc<Traffic>,
}

impl PeerTask {
    /// Runs the connection to its end, then tells the core it is gone.
    pub async fn run(mut self, stream: BoxStream) {
        let codec = CountingCodec::new(self.config.max_frame, self.traffic.clone());
        let mut framed = Framed::new(stream, codec);
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

    async fn drive(&mut self, framed: &mut Conn) -> Result<(), PeerError> {
        let (out_tx, out_rx) = mpsc::channel(self.config.peer_queue.max(1));
        let queued = Arc::new(AtomicUsize::new(0));
        if let Some(slot) = &self.pending {
            slot.started();
        }
        let handshake = timeout(
            self.config.handshake_timeout,
            self.handshake(framed, (out_tx, queued.clone())),
        );
        let outcome = tokio::select! {
            biased;
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
        // Past the handshake: the connection counts as a peer now, no
        // longer against the handshake budget.
        drop(self.pending.take());
        self.session(framed, out_rx, &queued).await
    }

    /// The connection after its handshake. Reading, the timers and writing
    /// run side by side in one `select!`: the writer is a future of its own
    /// (it takes the core's queue and the task's own pongs and pings), so a
    /// peer that stops reading blocks only the writer, never the idle and
    /// ping timers; and a frame that takes longer than the write timeout
    /// ends the connection.
    async fn session(
        &self,
        framed: &mut Conn,
        out_rx: mpsc::Receiver<Message>,
        queued: &AtomicUsize,
    ) -> Result<(), PeerError> {
        let (mut sink, mut stream) = framed.split();
        // Pongs and pings the task itself sends; a peer that pings faster
        // than it reads fills this and is too slow.
        let (ctrl_tx, ctrl_rx) = mpsc::channel::<Message>(CONTROL_QUEUE);
        let ended = {
            let writer = write_loop(
                &mut sink,
                out_rx,
                ctrl_rx,
                queued,
                self.config.write_timeout,
            );
            tokio::pin!(writer);
            let mut last_heard = Instant::now();
            let idle = tokio::time::sleep_until(last_heard + self.config.idle_timeout);
            tokio::pin!(idle);
            let ping_every = self
                .config
                .ping_interval
                .max(std::time::Duration::from_millis(10));
            let ping = tokio::time::sleep_until(last_heard + ping_every);
            tokio::pin!(ping);
            let mut ping_nonce: Option<u64> = None;
            // Nonces only pair a pong with its ping: a counter is enough,
            // and keeps a simulated run reproducible.
            let mut pings_sent: u64 = 0;
            loop {
                // Biased (in this order) rather than random, so that a
                // simulated run is reproducible: a frame that arrived is
                // read before the idle timer may close the connection.
                tokio::select! {
                    biased;
                    _ = self.cancel.cancelled() => break Ended::Shutdown,
                    written = &mut writer => break Ended::Writer(written),
                    frame = stream.next() => {
                        let mut message = match frame {
                            Some(Ok(m)) => m,
                            Some(Err(e)) => break Ended::Error(e.into()),
                            None => break Ended::Error(PeerError::Closed),
                        };
                        last_heard = Instant::now();
                        idle.as_mut().reset(last_heard + self.config.idle_timeout);
                        ping.as_mut().reset(last_heard + ping_every);
                        // Transactions that arrived together are checked
                        // together: one batch of signatures, one message to
                        // the core. What follows them (another message, an
                        // error, the end) is handled after them, in order.
                        if let Message::Tx(tx) = message {
                            let (txs, next) = take_buffered_txs(tx, &mut stream);
                            let checks = escrow::SigCache::shared().precheck_all(&txs);
                            let txs = txs.into_iter().zip(checks).collect();
                            if self.core.send(CoreMsg::Txs { conn: self.conn, txs }).await.is_err() {
                                break Ended::Shutdown;
                            }
                            match next {
                                Some(Some(Ok(m))) => message = m,
                                Some(Some(Err(e))) => break Ended::Error(e.into()),
                                Some(None) => break Ended::Error(PeerError::Closed),
                                None => continue,
                            }
                        }
                        match message {
                            Message::Ping { nonce } => {
                                if ctrl_tx.try_send(Message::Pong { nonce }).is_err() {
                                    break Ended::Error(PeerError::TooSlow);
                                }
                            }
                            Message::Pong { nonce } => {
                                if ping_nonce == Some(nonce) {
                                    ping_nonce = None;
                                }
                            }
                            Message::Notice { reason, text } => {
                                break Ended::Error(PeerError::Notice(reason, text.as_str().to_string()));
                            }
                            other => {
                                if self.core.send(CoreMsg::Message { conn: self.conn, message: other }).await.is_err() {
                                    break Ended::Shutdown;
                                }
                            }
                        }
                    }
                    () = &mut idle => break Ended::Idle,
                    () = &mut ping => {
                        if ping_nonce.is_none() {
                            pings_sent = pings_sent.wrapping_add(1);
                            let nonce = pings_sent;
                            ping_nonce = Some(nonce);
                            if ctrl_tx.try_send(Message::Ping { nonce }).is_err() {
                                break Ended::Error(PeerError::TooSlow);
                            }
                        }
                        ping.as_mut().reset(Instant::now() + ping_every);
                    }
                }
            }
        };
        // The writer is gone: a last notice goes straight to the socket,
        // briefly, as the peer may not be reading at all.
        let notice = |reason, text: &str| Message::notice(reason, text);
        let farewell = match &ended {
            Ended::Shutdown => Some(notice(Reason::ShuttingDown, "node stopping")),
            Ended::Idle => Some(notice(Reason::IdleTimeout, "no answer to pings")),
            _ => None,
        };
        if let Some(message) = farewell {
            let _ = timeout(FAREWELL_TIMEOUT, sink.send(message)).await;
        }
        match ended {
            Ended::Shutdown => Err(PeerError::Shutdown),
            Ended::Idle => Err(PeerError::Closed),
            // The core dropped us (ban, slow peer, duplicate): close.
            Ended::Writer(Ok(())) => Ok(()),
            Ended::Writer(Err(e)) | Ended::Error(e) => Err(e),
        }
    }

    /// The handshake of `docs/PROTOCOL.md`: the dialler sends its
    /// handshake; the listener checks it, answers with its own and an ack;
    /// the dialler checks that and acks.
    async fn handshake(
        &self,
        framed: &mut Conn,
        out_tx: (mpsc::Sender<Message>, Arc<AtomicUsize>),
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
                if let Some(slot) = &self.pending {
                    slot.spoke();
                }
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
        (sender, queued): (mpsc::Sender<Message>, Arc<AtomicUsize>),
    ) -> Result<Handshake, PeerError> {
        let (reply, rx) = oneshot::channel();
        self.core
            .send(CoreMsg::Admit {
                conn: self.conn,
                remote: self.remote,
                direction: self.direction,
                hello: Box::new(theirs),
                sender,
                queued,
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

/// Dials `task.remote` as connection `task.conn` (an outbound task) and
/// runs the connection on `tracker`; a dial that fails or times out is
/// reported to the core.
pub(crate) fn spawn_dial(
    task: PeerTask,
    transport: Arc<dyn Transport>,
    tracker: &tokio_util::task::TaskTracker,
) {
    let (conn, addr) = (task.conn, task.remote);
    let (core, config, cancel) = (task.core.clone(), task.config.clone(), task.cancel.clone());
    let connect_timeout = config.handshake_timeout;
    let span = tracing::info_span!("peer", conn, remote = %addr, direction = "out");
    let dial = async move {
        let connect = tokio::time::timeout(connect_timeout, transport.connect(addr));
        let stream = tokio::select! {
            biased;
            _ = cancel.cancelled() => return,
            r = connect => r,
        };
        match stream {
            Ok(Ok(stream)) => task.run(stream).await,
            Ok(Err(e)) => {
                debug!(%addr, "dial failed: {e}");
                let error = e.to_string();
                let _ = core.send(CoreMsg::DialFailed { conn, addr, error }).await;
            }
            Err(_) => {
                debug!(%addr, "dial timed out");
                let error = format!("no answer within {connect_timeout:?}");
                let _ = core.send(CoreMsg::DialFailed { conn, addr, error }).await;
            }
        }
    };
    tracker.spawn(tracing::Instrument::instrument(dial, span));
}

/// Pongs and pings the connection task itself may have queued.
const CONTROL_QUEUE: usize = 64;

/// How long a last notice may take to write.
const FAREWELL_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(200);

/// Most transactions checked as one batch (see [`take_buffered_txs`]): a
/// batch of this size takes the connection's task about a millisecond.
const MAX_TX_BATCH: usize = 64;

/// `first` and the transactions that follow it already read from the
/// socket (up to [`MAX_TX_BATCH`] in all), without waiting for more; and
/// the frame that ended the run, if one did: another message, a decoding
/// error, or the end of the stream (`Some(None)`). `None` if the run ended
/// because nothing more was ready, or at the batch limit.
#[allow(clippy::type_complexity)]
fn take_buffered_txs<S>(
    first: SignedTx,
    stream: &mut S,
) -> (Vec<SignedTx>, Option<Option<Result<Message, WireError>>>)
where
    S: futures::Stream<Item = Result<Message, WireError>> + Unpin,
{
    let mut txs = vec![first];
    while txs.len() < MAX_TX_BATCH {
        match stream.next().now_or_never() {
            Some(Some(Ok(Message::Tx(tx)))) => txs.push(tx),
            None => break,
            ended => return (txs, ended),
        }
    }
    (txs, None)
}

/// Why a session ended.
enum Ended {
    Shutdown,
    Idle,
    Writer(Result<(), PeerError>),
    Error(PeerError),
}

/// Writes what the core queued (subtracting each message's frame from the
/// queued bytes once written) and the task's own pongs and pings. Ends with
/// `Ok` when the core drops the queue, or with the error of a failed or
/// timed-out write.
///
/// Messages that are already queued when one is written go out with it in
/// one flush (at most [`MAX_WRITE_BATCH`] messages and, past the first,
/// [`MAX_WRITE_BATCH_BYTES`]), so a burst of small messages (announcements,
/// requests, transactions) costs one system call rather than one each; a
/// lone message is flushed at once, never held back. The write timeout
/// covers one such flush: a large frame is written alone, as before.
async fn write_loop(
    sink: &mut futures::stream::SplitSink<&mut Conn, Message>,
    mut out_rx: mpsc::Receiver<Message>,
    mut ctrl_rx: mpsc::Receiver<Message>,
    queued: &AtomicUsize,
    write_timeout: std::time::Duration,
) -> Result<(), PeerError> {
    // `size`: the bytes the core counted for the batch (not the task's
    // own pings and pongs); `bytes`: the batch's frames.
    let mut batch: Vec<Message> = Vec::new();
    loop {
        let (first, core) = tokio::select! {
            biased;
            m = ctrl_rx.recv() => match m {
                Some(m) => (m, false),
                None => return Ok(()),
            },
            m = out_rx.recv() => match m {
                Some(m) => (m, true),
                None => return Ok(()),
            },
        };
        let mut bytes = wire::frame_len(&first);
        let mut size = if core { bytes } else { 0 };
        batch.push(first);
        while batch.len() < MAX_WRITE_BATCH && bytes < MAX_WRITE_BATCH_BYTES {
            let (m, core) = if let Ok(m) = ctrl_rx.try_recv() {
                (m, false)
            } else if let Ok(m) = out_rx.try_recv() {
                (m, true)
            } else {
                break;
            };
            let len = wire::frame_len(&m);
            if bytes.saturating_add(len) > MAX_WRITE_BATCH_BYTES {
                // Too big to join: the batch so far goes first.
                write_batch(sink, &mut batch, write_timeout).await?;
                queued.fetch_sub(size, Ordering::Relaxed);
                size = 0;
                bytes = 0;
            }
            if core {
                size = size.saturating_add(len);
            }
            bytes = bytes.saturating_add(len);
            batch.push(m);
        }
        write_batch(sink, &mut batch, write_timeout).await?;
        // The core counted them before queueing them.
        queued.fetch_sub(size, Ordering::Relaxed);
    }
}

/// Writes `batch` (emptying it) and flushes, within `write_timeout`.
async fn write_batch(
    sink: &mut futures::stream::SplitSink<&mut Conn, Message>,
    batch: &mut Vec<Message>,
    write_timeout: std::time::Duration,
) -> Result<(), PeerError> {
    let write = async {
        for message in batch.drain(..) {
            sink.feed(message).await?;
        }
        sink.flush().await
    };
    match timeout(write_timeout, write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(PeerError::TooSlow),
    }
}

/// Most messages written in one flush (see [`write_loop`]).
const MAX_WRITE_BATCH: usize = 64;

/// Most bytes of frames gathered into one flush past its first frame (see
/// [`write_loop`]).
const MAX_WRITE_BATCH_BYTES: usize = 64 * 1024;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use futures::stream;

    fn tx(nonce: u64) -> SignedTx {
        SignedTx::sign(
            &escrow::dev::keypair("alice").unwrap(),
            nonce,
            escrow::Amount::new(1),
            chain_core::BlockHash::ZERO,
            escrow::Payload::Transfer {
                to: escrow::dev::address("bob").unwrap(),
                amount: escrow::Amount::new(1),
            },
        )
    }

    type Frame = Result<Message, WireError>;

    fn nonces(txs: &[SignedTx]) -> Vec<u64> {
        txs.iter().map(|t| t.body.nonce).collect()
    }

    #[test]
    fn buffered_transactions_are_taken_up_to_the_first_other_frame() {
        let frames: Vec<Frame> = vec![
            Ok(Message::Tx(tx(1))),
            Ok(Message::Tx(tx(2))),
            Ok(Message::Ping { nonce: 9 }),
            Ok(Message::Tx(tx(3))),
        ];
        let mut s = stream::iter(frames);
        let (txs, next) = take_buffered_txs(tx(0), &mut s);
        assert_eq!(nonces(&txs), [0, 1, 2]);
        assert!(matches!(next, Some(Some(Ok(Message::Ping { nonce: 9 })))));
        // The rest is left in the stream, in order.
        assert!(matches!(
            s.next().now_or_never(),
            Some(Some(Ok(Message::Tx(_))))
        ));
    }

    #[test]
    fn an_error_or_the_end_ends_the_run_and_is_returned() {
        let frames: Vec<Frame> = vec![
            Ok(Message::Tx(tx(1))),
            Err(WireError::UnknownMessage { tag: 99 }),
        ];
        let (txs, next) = take_buffered_txs(tx(0), &mut stream::iter(frames));
        assert_eq!(nonces(&txs), [0, 1]);
        assert!(matches!(next, Some(Some(Err(_)))));
        let (txs, next) = take_buffered_txs(tx(0), &mut stream::iter(Vec::<Frame>::new()));
        assert_eq!(nonces(&txs), [0]);
        assert!(matches!(next, Some(None)), "the end of the stream");
    }

    #[test]
    fn nothing_ready_or_a_full_batch_ends_the_run_without_a_frame() {
        // Two ready, then a stream that has nothing yet.
        let ready: Vec<Frame> = vec![Ok(Message::Tx(tx(1))), Ok(Message::Tx(tx(2)))];
        let mut s = stream::iter(ready).chain(stream::pending());
        let (txs, next) = take_buffered_txs(tx(0), &mut s);
        assert_eq!(nonces(&txs), [0, 1, 2]);
        assert!(next.is_none());
        // More than a batch: the batch is full, the rest stays.
        let many: Vec<Frame> = (1..100).map(|n| Ok(Message::Tx(tx(n)))).collect();
        let mut s = stream::iter(many);
        let (txs, next) = take_buffered_txs(tx(0), &mut s);
        assert_eq!(txs.len(), MAX_TX_BATCH);
        assert!(next.is_none());
        assert!(matches!(
            s.next().now_or_never(),
            Some(Some(Ok(Message::Tx(t)))) if t.body.nonce == MAX_TX_BATCH as u64
        ));
    }
}

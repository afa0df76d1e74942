//! One direction of a simulated connection: a pipe of timed chunks (see
//! the parent module for the model; `stream.rs` reads and writes it).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::task::Waker;

use tokio::time::Instant;

use crate::cpu::SimCpu;

/// Most bytes a connection holds unread (the sender's buffer and the
/// receiver's window together): past it, writes wait, as a TCP writer
/// does when the peer does not read or a partition swallows its segments.
pub(super) const MAX_UNREAD: usize = 4 << 20;

/// One chunk of bytes in flight.
pub(super) struct Chunk {
    /// When its last byte leaves the sender.
    pub(super) departs: Instant,
    /// When the reader sees it; `None` while its link is blocked or held.
    pub(super) arrives: Option<Instant>,
    pub(super) bytes: Vec<u8>,
    /// How far the reader has read into it.
    pub(super) read: usize,
    /// When the reader's processor has decoded it (charged when it
    /// arrives).
    pub(super) decoded: Option<Instant>,
}

/// One direction of a connection.
pub(super) struct Pipe {
    pub(super) from: usize,
    pub(super) to: usize,
    /// The reader's processor, if its work costs time.
    pub(super) reader_cpu: Option<Arc<SimCpu>>,
    pub(super) chunks: VecDeque<Chunk>,
    /// Bytes written and not yet read (in flight, held, or waiting to be
    /// read): bounded by [`MAX_UNREAD`], as TCP's buffers bound them.
    pub(super) unread: usize,
    /// The latest arrival so far: bytes arrive in order.
    pub(super) last_arrival: Instant,
    /// The latest departure so far, for the send window.
    pub(super) last_departure: Instant,
    /// The writer closed: the reader sees end of stream at this time (after
    /// the bytes before it).
    pub(super) eof_at: Option<Instant>,
    /// Writes fail from this time (the reader's host crashed).
    pub(super) reset_at: Option<Instant>,
    /// The writer's host crashed: its writes fail at once.
    pub(super) writer_dead: bool,
    /// The reader's host crashed: its reads fail at once.
    pub(super) reader_dead: bool,
    pub(super) reader: Option<Waker>,
    pub(super) writer: Option<Waker>,
}

impl Pipe {
    pub(super) fn wake_reader(&mut self) {
        if let Some(w) = self.reader.take() {
            w.wake();
        }
    }
    pub(super) fn wake_writer(&mut self) {
        if let Some(w) = self.writer.take() {
            w.wake();
        }
    }
}

pub(super) type PipeRef = Arc<Mutex<Pipe>>;

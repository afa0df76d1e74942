//! A connection's socket with a deadline on stalled writes: a write or
//! flush that makes no progress for [`super::ApiLimits::write_timeout`]
//! fails with [`std::io::ErrorKind::TimedOut`], and hyper then closes the
//! connection.
//!
//! Why: a client that asks for a large answer (or several, pipelined) or
//! subscribes to `GET /events` and then never reads fills the socket's
//! buffers, and hyper waits for room to write forever, holding one of the
//! server's connection slots; enough such clients lock everyone else out.
//! The bound is on a stall, not on a connection's life: an event stream
//! whose client reads lives as long as it likes, and a stream with
//! nothing to send does not write at all, so it never stalls.
//!
//! The clock starts when a write or flush first finds no room, and stops
//! at the next write that moves at least one byte (or a flush that
//! completes): a client reading slowly but steadily is never cut off.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// `io` whose writes fail after stalling for `limit` (see the module's doc).
pub(super) struct WriteStall<T> {
    io: T,
    limit: Duration,
    /// The stall's deadline, armed when a write finds no room; created on
    /// the first stall and reused (reset) after, so a connection whose
    /// writes never wait allocates no timer.
    timer: Option<Pin<Box<Sleep>>>,
    /// Whether `timer` runs: a write has been waiting since it was set.
    armed: bool,
}

impl<T> WriteStall<T> {
    /// `io` with writes bounded by `limit` of no progress.
    pub(super) fn new(io: T, limit: Duration) -> WriteStall<T> {
        WriteStall {
            io,
            limit,
            timer: None,
            armed: false,
        }
    }

    /// The write in progress made progress: the next stall starts afresh.
    fn progressed(&mut self) {
        self.armed = false;
    }

    /// The write in progress found no room: `Pending` (the waker is
    /// registered with both the socket and the deadline), or the
    /// `TimedOut` error once the stall has lasted `limit`.
    fn stalled<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        if !self.armed {
            let deadline = Instant::now() + self.limit;
            match &mut self.timer {
                Some(timer) => timer.as_mut().reset(deadline),
                None => self.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
            self.armed = true;
        }
        let Some(timer) = &mut self.timer else {
            // Set just above.
            return Poll::Pending;
        };
        ready!(timer.as_mut().poll(cx));
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "the client read nothing for {:?} while an answer was waiting to be sent",
                self.limit
            ),
        )))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteStall<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteStall<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.io).poll_write(cx, buf) {
            Poll::Pending => self.stalled(cx),
            Poll::Ready(r) => {
                if matches!(r, Ok(n) if n > 0) {
                    self.progressed();
                }
                Poll::Ready(r)
            }
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.io).poll_write_vectored(cx, bufs) {
            Poll::Pending => self.stalled(cx),
            Poll::Ready(r) => {
                if matches!(r, Ok(n) if n > 0) {
                    self.progressed();
                }
                Poll::Ready(r)
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.io).poll_flush(cx) {
            Poll::Pending => self.stalled(cx),
            Poll::Ready(r) => {
                if r.is_ok() {
                    self.progressed();
                }
                Poll::Ready(r)
            }
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.io).poll_shutdown(cx) {
            Poll::Pending => self.stalled(cx),
            ready => ready,
        }
    }
}

#[cfg(test)]
mod tests {
    //! On tokio's paused clock, over an in-memory pipe whose buffer the
    //! reading end drains or not: the deadline in isolation. The real
    //! sockets' case is `tests/api_limits.rs`.

    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const LIMIT: Duration = Duration::from_secs(5);

    #[tokio::test(start_paused = true)]
    async fn a_write_that_finds_no_room_fails_after_the_limit() {
        let (server, _client) = tokio::io::duplex(64);
        let mut w = WriteStall::new(server, LIMIT);
        let started = Instant::now();
        let e = w.write_all(&[7u8; 1024]).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        // On the paused clock the deadline is exact.
        assert_eq!(started.elapsed(), LIMIT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_reader_that_keeps_up_is_never_cut_off_however_long_it_takes() {
        let (server, mut client) = tokio::io::duplex(64);
        let mut w = WriteStall::new(server, LIMIT);
        let total = 64 * 100;
        let reader = tokio::spawn(async move {
            let mut got = 0;
            let mut buf = [0u8; 64];
            while got < total {
                // Each read comes most of a limit after the last: the
                // transfer lasts ~100 limits, no stall reaches one.
                tokio::time::sleep(LIMIT - Duration::from_millis(1)).await;
                got += client.read(&mut buf).await.unwrap();
            }
            got
        });
        let started = Instant::now();
        w.write_all(&vec![1u8; total]).await.unwrap();
        assert_eq!(reader.await.unwrap(), total);
        assert!(started.elapsed() > LIMIT * 50);
    }

    #[tokio::test(start_paused = true)]
    async fn reads_are_not_bounded() {
        let (server, mut client) = tokio::io::duplex(64);
        let mut w = WriteStall::new(server, LIMIT);
        let mut buf = [0u8; 4];
        let read = tokio::spawn(async move {
            w.read_exact(&mut buf).await.unwrap();
            buf
        });
        tokio::time::sleep(LIMIT * 10).await;
        client.write_all(b"late").await.unwrap();
        assert_eq!(&read.await.unwrap(), b"late");
    }
}

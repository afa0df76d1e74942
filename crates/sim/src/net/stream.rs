//! One end of a simulated connection, the stream a node reads and writes:
//! its reads wait for the chunks' arrival times, its writes take the
//! host's uplink and the link's latency (see the parent module for the
//! model).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use p2p_node::cpu::Work;

use super::pipe::{Chunk, MAX_UNREAD, PipeRef};
use super::state::{NetState, lock};
use crate::cpu::SimCpu;

/// How far ahead of now a connection's queued bytes may finish sending
/// before a write waits: the simulated socket's send buffer, in time.
const SEND_WINDOW: Duration = Duration::from_secs(2);

/// One end of a simulated connection.
pub struct SimStream {
    net: Arc<Mutex<NetState>>,
    read: PipeRef,
    write: PipeRef,
    read_timer: Option<Pin<Box<Sleep>>>,
    write_timer: Option<Pin<Box<Sleep>>>,
}

impl SimStream {
    pub(super) fn new(net: Arc<Mutex<NetState>>, read: PipeRef, write: PipeRef) -> SimStream {
        SimStream {
            net,
            read,
            write,
            read_timer: None,
            write_timer: None,
        }
    }
}

/// When `chunk`, which arrived at `arrived`, is decoded by `cpu` (charged
/// on the first call, from its arrival: tokio's timers fire on whole
/// milliseconds, so the reader may look later than the bytes came; at
/// once without a processor).
fn decoded(chunk: &mut Chunk, cpu: Option<&SimCpu>, arrived: Instant) -> Instant {
    *chunk.decoded.get_or_insert_with(|| {
        cpu.map_or(arrived, |cpu| {
            let work = Work {
                decoded_bytes: (chunk.bytes.len() - chunk.read) as u64,
                ..Work::default()
            };
            cpu.charge_from(&work, arrived)
        })
    })
}

/// Polls a timer set for `at`; `Ready` once it has passed.
fn poll_timer(timer: &mut Option<Pin<Box<Sleep>>>, at: Instant, cx: &mut Context<'_>) -> Poll<()> {
    match timer {
        Some(t) => t.as_mut().reset(at),
        None => *timer = Some(Box::pin(tokio::time::sleep_until(at))),
    }
    match timer {
        Some(t) => t.as_mut().poll(cx),
        None => Poll::Pending,
    }
}

impl AsyncRead for SimStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            let now = Instant::now();
            // When something will be readable, if the time is known.
            let next = {
                let mut p = lock(&this.read);
                if p.reader_dead {
                    return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
                }
                let cpu = p.reader_cpu.clone();
                let next = match p.chunks.front_mut() {
                    Some(chunk) => {
                        // Arrived: readable once the reader's processor has
                        // decoded it (charged now, once).
                        let ready = match chunk.arrives {
                            Some(at) if at <= now => Some(decoded(chunk, cpu.as_deref(), at)),
                            later => later,
                        };
                        match ready {
                            Some(at) if at <= now => {
                                let rest = chunk.bytes.get(chunk.read..).unwrap_or_default();
                                let n = rest.len().min(buf.remaining());
                                buf.put_slice(rest.get(..n).unwrap_or_default());
                                chunk.read += n;
                                let done = chunk.read >= chunk.bytes.len();
                                p.unread = p.unread.saturating_sub(n);
                                if done {
                                    p.chunks.pop_front();
                                    p.wake_writer();
                                }
                                return Poll::Ready(Ok(()));
                            }
                            // Arriving later, being decoded, or held by a
                            // stalled link.
                            later => later,
                        }
                    }
                    None => match p.eof_at {
                        Some(at) if at <= now => return Poll::Ready(Ok(())),
                        later => later,
                    },
                };
                // A write, a release or a crash wakes us; so does the timer.
                p.reader = Some(cx.waker().clone());
                next
            };
            let Some(at) = next else {
                return Poll::Pending;
            };
            if poll_timer(&mut this.read_timer, at, cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

impl AsyncWrite for SimStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        loop {
            let now = Instant::now();
            let mut s = lock(&this.net);
            let mut p = lock(&this.write);
            if p.writer_dead || p.eof_at.is_some() {
                return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
            }
            if p.reset_at.is_some_and(|at| at <= now) {
                return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
            }
            if p.unread >= MAX_UNREAD && !p.reader_dead {
                // Woken when the reader takes a chunk, or by a crash.
                p.writer = Some(cx.waker().clone());
                return Poll::Pending;
            }
            if p.last_departure > now + SEND_WINDOW {
                let at = p.last_departure - SEND_WINDOW;
                p.writer = Some(cx.waker().clone());
                drop(p);
                drop(s);
                if poll_timer(&mut this.write_timer, at, cx).is_pending() {
                    return Poll::Pending;
                }
                continue;
            }
            let (from, to) = (p.from, p.to);
            if p.reader_dead {
                // The peer is gone and the reset has not reached us yet:
                // the bytes go nowhere.
                return Poll::Ready(Ok(data.len()));
            }
            let latency = s.latency(from, to);
            let stalled = s.stalled(from, to);
            let Some(host) = s.hosts.get_mut(from) else {
                return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
            };
            let bits = data.len() as f64 * 8.0;
            let send_time = Duration::from_secs_f64(bits / host.spec.upload_bps.max(1) as f64);
            // Encoded once the work before it is done: what a node writes
            // follows the work that produced it.
            let encoded = host.cpu.as_ref().map_or(now, |cpu| {
                let work = Work {
                    encoded_bytes: data.len() as u64,
                    ..Work::default()
                };
                cpu.after_all(&work, now)
            });
            let departs = host.uplink_free.max(encoded) + send_time;
            host.uplink_free = departs;
            host.bytes_sent += data.len() as u64;
            let arrives = if stalled {
                None
            } else {
                let at = (departs + latency).max(p.last_arrival);
                p.last_arrival = at;
                Some(at)
            };
            p.last_departure = p.last_departure.max(departs);
            p.unread += data.len();
            p.chunks.push_back(Chunk {
                departs,
                arrives,
                bytes: data.to_vec(),
                read: 0,
                decoded: None,
            });
            p.wake_reader();
            return Poll::Ready(Ok(data.len()));
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().close_write();
        Poll::Ready(Ok(()))
    }
}

impl SimStream {
    fn close_write(&mut self) {
        let latency = {
            let p = lock(&self.write);
            let (from, to) = (p.from, p.to);
            drop(p);
            lock(&self.net).latency(from, to)
        };
        let mut p = lock(&self.write);
        if p.eof_at.is_none() {
            let at = (Instant::now() + latency).max(p.last_arrival);
            p.eof_at = Some(at);
            p.wake_reader();
        }
    }
}

impl Drop for SimStream {
    fn drop(&mut self) {
        self.close_write();
        // Nobody reads this direction any more: the other side's writes
        // go nowhere from now on.
        let mut p = lock(&self.read);
        p.reader_dead = true;
        p.chunks.clear();
        p.unread = 0;
        p.wake_writer();
    }
}

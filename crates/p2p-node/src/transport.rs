//! The transport seam: listening and dialling.
//!
//! The node never names `TcpStream`: it asks a [`Transport`] for a
//! [`Listener`] and for outgoing streams, and speaks the wire protocol over
//! any [`Stream`]. [`TcpTransport`] is the real one; a deterministic network
//! simulator (turmoil) can provide another without touching the node.

use std::io;
use std::net::SocketAddr;

use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite};

/// A byte stream to a peer.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// A boxed [`Stream`].
pub type BoxStream = Box<dyn Stream>;

/// Accepts incoming connections.
pub trait Listener: Send + 'static {
    /// The next incoming connection and the peer's address.
    fn accept(&mut self) -> BoxFuture<'_, io::Result<(BoxStream, SocketAddr)>>;
    /// The address it listens on (with the port the OS chose for port 0).
    ///
    /// # Errors
    ///
    /// The operating system's.
    fn local_addr(&self) -> io::Result<SocketAddr>;
}

/// Makes listeners and outgoing connections.
pub trait Transport: Send + Sync + 'static {
    /// Listens on `addr`.
    fn bind(&self, addr: SocketAddr) -> BoxFuture<'_, io::Result<Box<dyn Listener>>>;
    /// Connects to `addr`.
    fn connect(&self, addr: SocketAddr) -> BoxFuture<'_, io::Result<BoxStream>>;
}

/// Plain TCP through tokio.
#[derive(Clone, Copy, Debug, Default)]
pub struct TcpTransport;

struct TcpListener(tokio::net::TcpListener);

impl Listener for TcpListener {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<(BoxStream, SocketAddr)>> {
        Box::pin(async move {
            let (stream, addr) = self.0.accept().await?;
            // Small messages (announcements, pings) must not wait for
            // Nagle's algorithm: propagation time is the point.
            stream.set_nodelay(true)?;
            Ok((Box::new(stream) as BoxStream, addr))
        })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

impl Transport for TcpTransport {
    fn bind(&self, addr: SocketAddr) -> BoxFuture<'_, io::Result<Box<dyn Listener>>> {
        Box::pin(async move {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            Ok(Box::new(TcpListener(listener)) as Box<dyn Listener>)
        })
    }

    fn connect(&self, addr: SocketAddr) -> BoxFuture<'_, io::Result<BoxStream>> {
        Box::pin(async move {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            Ok(Box::new(stream) as BoxStream)
        })
    }
}

//! A node and its HTTP API, side by side: what the binary runs.
//!
//! [`Service::start`] starts a [`Node`] and, when the configuration names
//! an API address, the HTTP server over the node's handle
//! ([`crate::api`]). The node knows nothing of the API; the API knows the
//! node only through its [`NodeHandle`]. [`run`] is the whole life of a
//! service, ended by any future (Ctrl-C in the binary, anything in a test),
//! in the shape of mini-redis's `server::run`.

use std::future::Future;
use std::net::SocketAddr;
use std::ops::Deref;

use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config::NodeConfig;
use crate::node::{Node, NodeError, NodeHandle, Seams};

/// A running node and, if configured, its HTTP API.
pub struct Service {
    node: NodeHandle,
    api_addr: Option<SocketAddr>,
    api: Option<JoinHandle<()>>,
}

impl Service {
    /// Starts the node on `seams`, then the API on `config.api` (with
    /// `config.api_token` guarding the control endpoints) if given.
    ///
    /// # Errors
    ///
    /// [`NodeError`] if the node cannot start or the API address cannot be
    /// bound (the node is stopped again then).
    pub async fn start(config: NodeConfig, seams: Seams) -> Result<Service, NodeError> {
        let api = config.api;
        let token = config.api_token.clone();
        let limits = config.api_limits.clone();
        let dev = config.dev.clone();
        let node = Node::start_with(config, seams).await?;
        let Some(addr) = api else {
            return Ok(Service {
                node,
                api_addr: None,
                api: None,
            });
        };
        // Bound here (tokio's options: address reuse), then handed over
        // as a plain socket: the runtime that serves it registers it.
        let bound = async {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            let local = listener.local_addr()?;
            Ok::<_, std::io::Error>((listener.into_std()?, local))
        }
        .await;
        let (listener, api_addr) = match bound {
            Ok(b) => b,
            Err(source) => {
                node.shutdown().await;
                return Err(NodeError::ApiListen { addr, source });
            }
        };
        let router = crate::api::router(node.clone(), token, &limits, dev);
        let stopped = {
            let node = node.clone();
            async move { node.stopped().await }
        };
        let server = async move {
            let served = async {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                crate::api::serve(listener, router, &limits, stopped).await
            };
            if let Err(e) = served.await {
                warn!("the API server stopped: {e}");
            }
        };
        let server = match spawn_api(server).await {
            Ok(server) => server,
            Err(source) => {
                node.shutdown().await;
                return Err(NodeError::ApiRuntime(source));
            }
        };
        info!(%api_addr, "API listening");
        Ok(Service {
            node,
            api_addr: Some(api_addr),
            api: Some(server),
        })
    }

    /// The node's handle.
    pub fn node(&self) -> &NodeHandle {
        &self.node
    }

    /// Where the HTTP API listens, if it was started.
    pub fn api_addr(&self) -> Option<SocketAddr> {
        self.api_addr
    }

    /// Runs until `shutdown` resolves or the node stops by itself (a store
    /// that cannot save stops it), then stops both.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) {
        tokio::select! {
            biased;
            () = shutdown => {}
            () = self.node.stopped() => {}
        }
        self.shutdown().await;
    }

    /// Stops the node (which ends the API's event streams and the server's
    /// graceful shutdown) and waits for both.
    pub async fn shutdown(mut self) {
        self.node.shutdown().await;
        if let Some(api) = self.api.take() {
            let _ = api.await;
        }
    }
}

impl Deref for Service {
    type Target = NodeHandle;

    fn deref(&self) -> &NodeHandle {
        &self.node
    }
}

/// Threads of the API's own runtime: one answers `/status` while the
/// other writes a large answer.
const API_THREADS: usize = 2;

/// Runs the API server: on a runtime with several workers, on a runtime
/// of its own ([`API_THREADS`] threads), so that no task of the node's
/// (a peer's connection, a write that waits) ever holds a worker an API
/// answer waits for; a tokio worker also keeps the task it last woke in
/// a slot no other worker takes from. On a single-threaded runtime (most
/// tests, whose paused clock the API's timeouts must follow) it runs as
/// any task. The handle ends when the server has stopped.
async fn spawn_api(
    server: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<JoinHandle<()>> {
    let current = tokio::runtime::Handle::current();
    if current.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
        return Ok(tokio::spawn(server));
    }
    // The runtime is built, run and dropped on its own thread: a runtime
    // may not be dropped on one of another runtime's threads, and one
    // that failed to start comes back as the error.
    let (started, ready) = tokio::sync::oneshot::channel::<std::io::Result<()>>();
    let (done, ended) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("api-runtime".into())
        .spawn(move || {
            let built = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(API_THREADS)
                .thread_name("api")
                .enable_all()
                .build();
            let runtime = match built {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = started.send(Err(e));
                    return;
                }
            };
            let _ = started.send(Ok(()));
            runtime.block_on(server);
            // Its threads end with it, once the server's last blocking
            // read has.
            drop(runtime);
            let _ = done.send(());
        })?;
    ready.await.unwrap_or_else(|_| {
        Err(std::io::Error::other(
            "the API's thread ended before its runtime started",
        ))
    })?;
    // A server that panicked drops `done` unsent: it has stopped too.
    Ok(tokio::spawn(async move {
        let _ = ended.await;
    }))
}

/// Starts a service, runs it until `shutdown` resolves, and stops it.
///
/// # Errors
///
/// [`NodeError`] if it cannot start.
pub async fn run(
    config: NodeConfig,
    seams: Seams,
    shutdown: impl Future<Output = ()>,
) -> Result<(), NodeError> {
    Service::start(config, seams)
        .await?
        .run_until(shutdown)
        .await;
    Ok(())
}

//! The core's handling of the [`crate::NodeHandle`]'s commands: queries,
//! the read-your-writes barriers, submissions, "mine N", the mining mode
//! and the peer commands.

use tokio::time::Instant;
use tracing::info;

use crate::core::Core;
use crate::core::inbox::{self, Command, QueryFn};
use crate::core::view::NodeView;
use crate::mempool::Offered;

impl Core {
    /// Routes a command of the node's handle.
    pub(super) fn on_command(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Query(f) => self.query(f),
            Command::Published { saved, reply } => {
                // The handle's write is made visible at once: what waits
                // is saved now, and this event's end publishes.
                self.flush();
                if saved {
                    self.durable.wait_saved(reply);
                } else {
                    self.publish_waiters
                        .push(inbox::PublishWaiter::Published(reply));
                }
            }
            Command::SubmitTx { tx, check, reply } => {
                // Its gossiped successors may be waiting for it: they
                // come in after it.
                match self.mempool.offer(*tx, check, None, now) {
                    Offered::Added { id, freed } => {
                        for id in std::iter::once(id).chain(freed) {
                            self.announce_tx(id);
                        }
                        self.emit_mempool();
                        // Answered with the publication that shows it;
                        // what waits to be saved is saved now, so that
                        // this event's end publishes (as for `Published`).
                        self.flush();
                        self.publish_waiters
                            .push(inbox::PublishWaiter::Submitted(reply, id));
                    }
                    Offered::Refused(e) => {
                        let _ = reply.send(Err(e));
                    }
                    // A user's transaction never waits (`Mempool::offer`).
                    Offered::Waiting { .. } | Offered::NotKept(_) => {}
                }
            }
            Command::Mine { count, to, reply } => self.miner.request(count, to, reply),
            Command::SetMining(mode) => self.miner.set_mode(mode, self.mempool.is_empty()),
            Command::Partition(addrs) => {
                let cut = self.peers.partition(&addrs);
                info!(cut, addrs = addrs.len(), "partitioned");
            }
            Command::Heal => {
                self.peers.heal(now);
                info!("partition healed");
                self.dial_due();
            }
            Command::AddPeer(addr) => {
                self.peers.watch(addr);
                self.peers.retry_now(addr, now);
                self.dial_due();
            }
        }
    }

    /// Runs a query of the node's handle on what is saved: what waits to
    /// be saved is saved first. A node whose store failed answers nothing
    /// (the caller sees it stopped).
    fn query(&mut self, f: QueryFn) {
        if !self.flush() {
            return;
        }
        let now = Instant::now();
        let view = NodeView {
            store: self.durable.store(),
            metrics: &self.metrics,
            chain: &self.chain,
            mempool: &self.mempool,
            peers: self.peers.infos(now),
            bans: self.peers.bans(now),
            node_id: self.node_id,
            mining: self.miner.mode(),
        };
        f(&view);
    }
}

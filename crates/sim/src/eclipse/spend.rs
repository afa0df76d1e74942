//! The honest nodes' churn, the check for eclipses, and the double spend
//! against the first victim eclipsed.

use std::sync::Arc;

use escrow::{Amount, ContractId, Payload};
use p2p_node::clock::Clock;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{
    CHECK_EVERY, DOWN_FOR, DoubleSpend, PAYMENT, attacker_key, attacker_tx, is_attacker, merchant,
    refuge, victims,
};
use crate::options::Eclipse;
use crate::rng::SimRng;
use crate::world::{World, lock};

impl World {
    /// Every node but the first two restarts now and then, the victims
    /// too: each is up for an exponential time of mean `churn`, down for
    /// [`DOWN_FOR`]. Nodes 0 and 1 never go down (the attacker's
    /// conflicting transactions go to node 0).
    pub(super) async fn churn_loop(self: Arc<Self>, e: Eclipse, stop: CancellationToken) {
        let churned: Vec<usize> = (2..self.opts.nodes).collect();
        if churned.is_empty() {
            return;
        }
        let mut rng = SimRng::stream(self.opts.seed, 12);
        let gap = e.churn.div_f64(churned.len() as f64);
        loop {
            tokio::select! {
                biased;
                () = stop.cancelled() => return,
                () = tokio::time::sleep(rng.exp(gap)) => {}
            }
            let node = churned[rng.below(churned.len())];
            if self.handle(node).is_none() {
                continue;
            }
            self.crash_node(node).await;
            let world = self.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                tokio::select! {
                    () = stop.cancelled() => {}
                    () = tokio::time::sleep(DOWN_FOR) => {}
                }
                let _ = world.start_node(node).await;
            });
        }
    }

    /// Every [`CHECK_EVERY`], whether each victim is eclipsed; the first
    /// one eclipsed is double-spent.
    pub(super) async fn eclipse_watch(self: Arc<Self>, e: Eclipse, stop: CancellationToken) {
        // The contract the attacker will release and then dispute, created
        // at the start on node 0 and mined like any transaction.
        let network = self.genesis.network_id();
        let create = attacker_tx(
            self.opts.seed,
            network,
            0,
            Payload::EscrowCreate {
                seller: merchant(self.opts.seed),
                arbiter: refuge(self.opts.seed),
                amount: Amount::new(10_000),
                delivery_deadline: 1_000_000,
                dispute_window: 1_000_000,
            },
        );
        let contract = escrow::ledger::contract_id_of(&create);
        if let Some(node) = self.handle(0) {
            let _ = node.submit(create).await;
        }
        loop {
            tokio::select! {
                biased;
                () = stop.cancelled() => return,
                () = tokio::time::sleep(CHECK_EVERY) => {}
            }
            for v in victims(&self.opts, e) {
                let Some(handle) = self.handle(v) else {
                    continue;
                };
                let Ok(peers) = handle
                    .query(|view| {
                        view.peers
                            .iter()
                            .map(|p| (p.remote, p.direction))
                            .collect::<Vec<_>>()
                    })
                    .await
                else {
                    continue;
                };
                let eclipsed =
                    !peers.is_empty() && peers.iter().all(|(a, _)| is_attacker(&self.opts, e, *a));
                let outbound = peers
                    .iter()
                    .filter(|(_, d)| *d == p2p_node::Direction::Outbound);
                let (out, held) = outbound.fold((0, 0), |(n, h), (a, _)| {
                    (n + 1, h + usize::from(is_attacker(&self.opts, e, *a)))
                });
                {
                    let mut s = lock(&self.shared);
                    if let Some(state) = s.attack.victims.get_mut(&v) {
                        state.checks += 1;
                        state.outbound_held += held as f64 / out.max(1) as f64;
                        state.eclipsed_checks += u64::from(eclipsed);
                        state.stretch = if eclipsed { state.stretch + 1 } else { 0 };
                        state.longest = state.longest.max(state.stretch);
                    }
                }
                if !eclipsed {
                    continue;
                }
                let first = {
                    let mut s = lock(&self.shared);
                    let now = Instant::now();
                    let first_victim = s.attack.victims.values().all(|x| x.eclipsed_at.is_none());
                    if let Some(state) = s.attack.victims.get_mut(&v)
                        && state.eclipsed_at.is_none()
                    {
                        state.eclipsed_at = Some(now);
                    }
                    first_victim
                };
                if first {
                    tokio::spawn(self.clone().double_spend(v, contract, stop.clone()));
                }
            }
        }
    }

    /// The double spend against `victim`, eclipsed now.
    async fn double_spend(
        self: Arc<Self>,
        victim: usize,
        contract: ContractId,
        stop: CancellationToken,
    ) {
        let Some(e) = self.opts.eclipse else { return };
        let (Some(node), Some(honest)) = (self.handle(victim), self.handle(0)) else {
            return;
        };
        let seed = self.opts.seed;
        let network = self.genesis.network_id();
        let key = attacker_key(seed).address();
        let Ok(nonce) = node
            .query(move |v| v.mempool.pending_ledger().nonce(&key))
            .await
        else {
            return;
        };
        let pay = |to| Payload::Transfer {
            to,
            amount: Amount::new(PAYMENT),
        };
        let to_victim = [
            attacker_tx(seed, network, nonce, pay(merchant(seed))),
            attacker_tx(
                seed,
                network,
                nonce + 1,
                Payload::ConfirmDelivery { contract },
            ),
        ];
        let to_honest = [
            attacker_tx(seed, network, nonce, pay(refuge(seed))),
            attacker_tx(seed, network, nonce + 1, Payload::RaiseDispute { contract }),
        ];
        for tx in to_honest {
            let _ = honest.submit(tx).await;
        }
        for tx in to_victim.clone() {
            let _ = node.submit(tx).await;
        }
        let eclipsed_at = self.now_s();
        let mut report = DoubleSpend {
            victim,
            eclipsed_at_s: eclipsed_at,
            confirmed_at_s: None,
            confirmations: e.confirmations,
            victim_saw_release: false,
            payment_reverted: false,
            release_reverted: false,
        };
        lock(&self.shared).attack.double_spend = Some(report.clone());
        let Ok(mut tree) = self.genesis.chain() else {
            return;
        };
        let attacker = self.opts.nodes;
        let paid = to_victim[0].id();
        loop {
            // Seen deep enough?
            let seen = node
                .query(move |v| {
                    let height = v
                        .tx_block(&paid)
                        .and_then(|b| v.chain.header(&b))
                        .map(|h| h.height);
                    let released = v
                        .chain
                        .state()
                        .contract(&contract)
                        .is_some_and(|c| c.state == escrow::contract::State::Released);
                    (
                        height.map(|h| (v.chain.height() + 1).saturating_sub(h)),
                        released,
                    )
                })
                .await;
            if let Ok((Some(depth), released)) = seen
                && depth >= e.confirmations
            {
                report.confirmed_at_s = Some(self.now_s());
                report.victim_saw_release = released;
                lock(&self.shared).attack.double_spend = Some(report);
                // The victim has acted on what it saw. The attacker lets it
                // go once the honest chain holds the conflicting pair and
                // outweighs the victim's.
                let spent = nonce + 2;
                loop {
                    tokio::select! {
                        biased;
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(CHECK_EVERY) => {}
                    }
                    let ask = move |v: &p2p_node::NodeView<'_>| {
                        (v.chain.total_work(), v.chain.state().nonce(&key))
                    };
                    if let (Ok((honest_work, honest_nonce)), Ok((victim_work, _))) =
                        (honest.query(ask).await, node.query(ask).await)
                        && honest_work > victim_work
                        && honest_nonce >= spent
                    {
                        break;
                    }
                }
                if let Some(r) = self.released(victim) {
                    r.cancel();
                }
                return;
            }
            let Some(at) = lock(&self.lottery).next_find(attacker) else {
                return;
            };
            tokio::select! {
                biased;
                () = stop.cancelled() => return,
                () = tokio::time::sleep_until(at) => {}
            }
            if !lock(&self.lottery).claim(attacker, at) {
                continue;
            }
            // A block on the victim's tip, with what the victim was given
            // if its chain lacks it yet.
            let Some((tip, _)) = crate::selfish::learn(&node, &mut tree, self.clock.now_ms()).await
            else {
                return;
            };
            let pending = node
                .query(move |v| {
                    v.mempool.pending_ledger().nonce(&key) > v.chain.state().nonce(&key)
                })
                .await
                .unwrap_or(false);
            let to = crate::setup::key_for(seed, "attacker", 0).address();
            let txs = if pending { &to_victim[..] } else { &[] };
            let Some(block) = crate::miner::solved_block(&tree, tip, to, txs, self.clock.now_ms())
            else {
                continue;
            };
            if tree.insert(block.clone(), self.clock.now_ms()).is_err() {
                continue;
            }
            let _ = self.private_blocks.send((victim, Arc::new(block)));
        }
    }
}

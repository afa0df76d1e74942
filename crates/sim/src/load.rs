//! The load generator: simulated users sending signed transfers and
//! running escrow flows (create, then confirm, dispute and resolve, or a
//! refund by the seller) through their home node.
//!
//! Each user has one transaction outstanding at a time and sends the next
//! once the previous one is on its home node's best chain, as a wallet
//! that waits for a confirmation does; so a user's nonces reach every node
//! in order. A refused transaction, or one that waits too long (a reorg
//! dropped it), makes the user ask its home node for its next nonce again.

use std::collections::BTreeMap;
use std::time::Duration;

use chain_core::TxId;
use escrow::{Address, Amount, ContractId, FeeRate, Keypair, Memo, Party, Payload, SignedTx};
use tokio::time::Instant;

use crate::rng::SimRng;

/// Which arrivals a load loop makes.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Arrivals {
    /// Transfers and escrow steps at `tx_rate`.
    Mixed,
    /// Memo transfers carrying `memo_len` bytes each, at `block_size`
    /// bytes per block interval.
    Filler { memo_len: usize },
}

/// The smallest and largest `--block-size`. The largest keeps the largest
/// block (twice the mean, the sim's `max_block_bytes`) under the wire's
/// 4 MiB frame.
pub const BLOCK_SIZE_RANGE: std::ops::RangeInclusive<u64> = 1_000..=1_500_000;

/// A filler transaction's bytes in a block besides its memo: the `Tx` and
/// payload tags, sender, nonce, fee, network, receiver, amount, the memo's
/// length and the signature, for a nonce below 2^21, a fee below 2^14 and
/// the largest memo (measured by `filler_overhead_is_measured`).
pub(crate) const FILLER_OVERHEAD: usize = 171;

/// How many memo bytes each filler transaction carries for blocks of
/// `block_size` bytes: a quarter of a block (so a block holds several),
/// at most a memo's limit.
pub(crate) fn filler_memo_len(block_size: u64) -> usize {
    let quarter = usize::try_from(block_size / 4).unwrap_or(usize::MAX);
    quarter
        .saturating_sub(FILLER_OVERHEAD)
        .clamp(1, escrow::MAX_MEMO_BYTES)
}

/// The `max_block_bytes` of a run's genesis: the node's default, or twice
/// the mean block size when that is more, so that the backlog a long
/// interval leaves fits in the next block as it would in a network whose
/// blocks are not full.
pub(crate) fn max_block_bytes(default: usize, block_size: Option<u64>) -> usize {
    let twice = block_size.map_or(0, |b| usize::try_from(b.saturating_mul(2)).unwrap_or(0));
    default.max(twice)
}

/// How many doublings of the minimum relay rate the users' fee rates span.
pub(crate) const FEE_RATE_DOUBLINGS: u32 = 6;

/// A user's fee rate: `floor(2^(6u))` coins per kB for `u` uniform on
/// [0, 1): from the node's default minimum relay rate (1 coin per kB) to 63,
/// each doubling of the rate as likely as the next (log-uniform), as
/// wallets that pay anything from the minimum to a generous premium.
pub(crate) fn draw_fee_rate(rng: &mut SimRng) -> FeeRate {
    let rate = 2f64.powf(f64::from(FEE_RATE_DOUBLINGS) * rng.unit());
    FeeRate::per_kb(rate.floor().max(1.0) as u64)
}

/// The report's bucket of a fee rate: `floor(log2(rate))`, 0 for 1 coin
/// per kB up to 5 for 32 to 63.
pub(crate) fn fee_bucket(rate: FeeRate) -> u32 {
    rate.get().max(1).ilog2().min(FEE_RATE_DOUBLINGS - 1)
}

/// What a user's outstanding transaction does, for the flow it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    Transfer,
    Create(usize),
    Confirm(usize),
    Dispute(usize),
    Resolve(usize),
    Refund(usize),
}

/// Where an escrow flow stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Its creation is pending.
    Creating,
    /// Funded on the buyer's home node: the next step may go.
    Funded,
    /// A dispute is confirmed: the arbiter may resolve.
    Disputed,
    /// A step is pending.
    Busy,
    /// Settled.
    Done,
}

pub(crate) struct Flow {
    pub contract: Option<ContractId>,
    pub buyer: usize,
    pub seller: usize,
    pub arbiter: usize,
    pub stage: Stage,
}

pub(crate) struct Waiting {
    pub id: TxId,
    pub step: Step,
    pub sent: Instant,
    /// Its fee, and the rate it was signed at.
    pub fee: Amount,
    pub rate: FeeRate,
}

pub(crate) struct User {
    pub key: Keypair,
    pub address: Address,
    pub home: usize,
    pub next_nonce: u64,
    pub waiting: Option<Waiting>,
    /// The nonce must be asked of the home node before the next send.
    pub resync: bool,
}

/// The generator's state, shared with the watchers that see confirmations.
pub(crate) struct Load {
    pub users: Vec<User>,
    pub flows: Vec<Flow>,
    pub rng: SimRng,
    /// Fraction of arrivals that are escrow steps.
    pub escrow_share: f64,
    pub network: chain_core::BlockHash,
    pub submitted: u64,
    pub refused: BTreeMap<String, u64>,
    pub confirmed: u64,
    /// Confirmation latencies (submission to the home node's best chain).
    pub latencies: Vec<Duration>,
    /// The same, by fee-rate bucket ([`fee_bucket`]).
    pub latencies_by_rate: BTreeMap<u32, Vec<Duration>>,
    /// The fees of the confirmed transactions.
    pub fees_confirmed: u64,
    pub by_kind: BTreeMap<&'static str, u64>,
    /// A user whose transaction waits longer than this asks again.
    pub give_up: Duration,
}

/// A transaction ready to send, from `user` to its home node.
pub(crate) struct Send {
    pub user: usize,
    pub home: usize,
    pub tx: SignedTx,
    pub step: Step,
    /// The fee rate it was signed at.
    pub rate: FeeRate,
}

impl Load {
    /// Picks what the next arrival does, if some user is free to do it.
    pub fn next(&mut self, now: Instant, height: impl Fn(usize) -> u64) -> Option<Send> {
        self.expire(now);
        if self.users.is_empty() {
            return None;
        }
        if self.rng.chance(self.escrow_share)
            && let Some(send) = self.flow_step()
        {
            return Some(send);
        }
        // A transfer, or a new escrow, from a free user.
        let user = self.free_user()?;
        if self.rng.chance(self.escrow_share) && self.users.len() >= 3 {
            let seller = self.other(&[user])?;
            let arbiter = self.other(&[user, seller])?;
            let flow = self.flows.len();
            let amount = 10 + self.rng.below(491) as u64;
            let deadline = height(self.users.get(user)?.home) + 1_000;
            let payload = Payload::EscrowCreate {
                seller: self.users.get(seller)?.address,
                arbiter: self.users.get(arbiter)?.address,
                amount: Amount::new(amount),
                delivery_deadline: deadline,
                dispute_window: 100,
            };
            self.flows.push(Flow {
                contract: None,
                buyer: user,
                seller,
                arbiter,
                stage: Stage::Creating,
            });
            return self.sign(user, payload, Step::Create(flow));
        }
        let to = self.other(&[user])?;
        let payload = Payload::Transfer {
            to: self.users.get(to)?.address,
            amount: Amount::new(1 + self.rng.below(100) as u64),
        };
        self.sign(user, payload, Step::Transfer)
    }

    /// A filler transfer (`--block-size`): `memo_len` random bytes from a
    /// free user to another, moving nothing, drawn from `rng` (the
    /// filler's own stream, so a run's other draws do not depend on it).
    pub fn filler(&mut self, now: Instant, memo_len: usize, rng: &mut SimRng) -> Option<Send> {
        self.expire(now);
        let user = self.free_user()?;
        let to = self.other(&[user])?;
        let mut bytes = Vec::with_capacity(memo_len + 8);
        while bytes.len() < memo_len {
            bytes.extend_from_slice(&rng.u64().to_le_bytes());
        }
        bytes.truncate(memo_len);
        let payload = Payload::TransferMemo {
            to: self.users.get(to)?.address,
            amount: Amount::ZERO,
            memo: Memo::new(&bytes).ok()?,
        };
        let rate = draw_fee_rate(rng);
        self.sign_at(user, payload, Step::Transfer, rate)
    }

    /// The next step of some flow whose actor is free.
    fn flow_step(&mut self) -> Option<Send> {
        let ready: Vec<usize> = (0..self.flows.len())
            .filter(|&f| {
                self.flows
                    .get(f)
                    .is_some_and(|x| matches!(x.stage, Stage::Funded | Stage::Disputed))
            })
            .collect();
        if ready.is_empty() {
            return None;
        }
        let f = *ready.get(self.rng.below(ready.len()))?;
        let flow = self.flows.get(f)?;
        let contract = flow.contract?;
        let (actor, payload, step) = match flow.stage {
            Stage::Disputed => {
                let to = if self.rng.chance(0.5) {
                    Party::Buyer
                } else {
                    Party::Seller
                };
                (
                    flow.arbiter,
                    Payload::Resolve { contract, to },
                    Step::Resolve(f),
                )
            }
            _ => {
                let roll = self.rng.unit();
                if roll < 0.5 {
                    (
                        flow.buyer,
                        Payload::ConfirmDelivery { contract },
                        Step::Confirm(f),
                    )
                } else if roll < 0.8 {
                    let by = if self.rng.chance(0.5) {
                        flow.buyer
                    } else {
                        flow.seller
                    };
                    (by, Payload::RaiseDispute { contract }, Step::Dispute(f))
                } else {
                    (
                        flow.seller,
                        Payload::RefundBuyer { contract },
                        Step::Refund(f),
                    )
                }
            }
        };
        let free = self
            .users
            .get(actor)
            .is_some_and(|u| u.waiting.is_none() && !u.resync);
        if !free {
            return None;
        }
        if let Some(flow) = self.flows.get_mut(f) {
            flow.stage = Stage::Busy;
        }
        self.sign(actor, payload, step)
    }

    fn free_user(&mut self) -> Option<usize> {
        for _ in 0..8 {
            let u = self.rng.below(self.users.len());
            if self
                .users
                .get(u)
                .is_some_and(|x| x.waiting.is_none() && !x.resync)
            {
                return Some(u);
            }
        }
        None
    }

    fn other(&mut self, not: &[usize]) -> Option<usize> {
        for _ in 0..16 {
            let u = self.rng.below(self.users.len());
            if !not.contains(&u) {
                return Some(u);
            }
        }
        None
    }

    /// `user`'s next transaction, paying a fee rate drawn from the load's
    /// stream ([`draw_fee_rate`]).
    fn sign(&mut self, user: usize, payload: Payload, step: Step) -> Option<Send> {
        let rate = draw_fee_rate(&mut self.rng);
        self.sign_at(user, payload, step, rate)
    }

    fn sign_at(
        &mut self,
        user: usize,
        payload: Payload,
        step: Step,
        rate: FeeRate,
    ) -> Option<Send> {
        let network = self.network;
        let u = self.users.get_mut(user)?;
        let tx = SignedTx::sign_at_rate(&u.key, u.next_nonce, rate, network, payload);
        Some(Send {
            user,
            home: u.home,
            tx,
            step,
            rate,
        })
    }

    /// The home node took the transaction.
    pub fn accepted(&mut self, send: &Send, now: Instant) {
        self.submitted += 1;
        *self.by_kind.entry(send.tx.body.payload.kind()).or_insert(0) += 1;
        if let Some(u) = self.users.get_mut(send.user) {
            u.next_nonce += 1;
            u.waiting = Some(Waiting {
                id: send.tx.id(),
                step: send.step,
                sent: now,
                fee: send.tx.fee(),
                rate: send.rate,
            });
        }
        if let Step::Create(f) = send.step
            && let Some(flow) = self.flows.get_mut(f)
        {
            flow.contract = Some(escrow::ledger::contract_id_of(&send.tx));
        }
    }

    /// The home node refused it: the user asks for its nonce again.
    pub fn refused(&mut self, send: &Send, reason: String) {
        *self.refused.entry(reason).or_insert(0) += 1;
        if let Some(u) = self.users.get_mut(send.user) {
            u.resync = true;
        }
        self.undo_step(send.step);
    }

    /// A step that was refused or given up on ends its flow: the contract
    /// may or may not have moved, and a later step would only guess.
    fn undo_step(&mut self, step: Step) {
        let f = match step {
            Step::Transfer => return,
            Step::Create(f)
            | Step::Confirm(f)
            | Step::Dispute(f)
            | Step::Refund(f)
            | Step::Resolve(f) => f,
        };
        if let Some(flow) = self.flows.get_mut(f) {
            flow.stage = Stage::Done;
        }
    }

    /// The outstanding transactions of users homed at `node`.
    pub fn waiting_at(&self, node: usize) -> Vec<(usize, TxId)> {
        self.users
            .iter()
            .enumerate()
            .filter(|(_, u)| u.home == node)
            .filter_map(|(i, u)| u.waiting.as_ref().map(|w| (i, w.id)))
            .collect()
    }

    /// `user`'s transaction is on its home node's best chain.
    pub fn confirmed(&mut self, user: usize, now: Instant) {
        let Some(u) = self.users.get_mut(user) else {
            return;
        };
        let Some(w) = u.waiting.take() else { return };
        self.confirmed += 1;
        let latency = now.saturating_duration_since(w.sent);
        self.latencies.push(latency);
        self.latencies_by_rate
            .entry(fee_bucket(w.rate))
            .or_default()
            .push(latency);
        self.fees_confirmed = self.fees_confirmed.saturating_add(w.fee.get());
        let next = match w.step {
            Step::Transfer => return,
            Step::Create(f) | Step::Dispute(f) => {
                let stage = if matches!(w.step, Step::Create(_)) {
                    Stage::Funded
                } else {
                    Stage::Disputed
                };
                (f, stage)
            }
            Step::Confirm(f) | Step::Resolve(f) | Step::Refund(f) => (f, Stage::Done),
        };
        if let Some(flow) = self.flows.get_mut(next.0) {
            flow.stage = next.1;
        }
    }

    /// Users whose transaction waited too long give up on it.
    fn expire(&mut self, now: Instant) {
        let give_up = self.give_up;
        let mut undone = Vec::new();
        for u in &mut self.users {
            if u.waiting
                .as_ref()
                .is_some_and(|w| now.saturating_duration_since(w.sent) > give_up)
            {
                if let Some(w) = u.waiting.take() {
                    undone.push(w.step);
                }
                u.resync = true;
            }
        }
        for step in undone {
            self.undo_step(step);
        }
    }

    /// Users that must ask their home node for their next nonce.
    pub fn needs_resync(&self) -> Vec<(usize, usize, Address)> {
        self.users
            .iter()
            .enumerate()
            .filter(|(_, u)| u.resync)
            .map(|(i, u)| (i, u.home, u.address))
            .collect()
    }

    /// The home node says `user`'s next nonce is `nonce`.
    pub fn resynced(&mut self, user: usize, nonce: u64) {
        if let Some(u) = self.users.get_mut(user) {
            u.next_nonce = nonce;
            u.resync = false;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn filler_overhead_is_measured() {
        let key = escrow::dev::keypair("alice").unwrap();
        for memo_len in [1, 300, 20_000, escrow::MAX_MEMO_BYTES] {
            let memo = Memo::new(&vec![5; memo_len]).unwrap();
            let payload = Payload::TransferMemo {
                to: key.address(),
                amount: Amount::ZERO,
                memo,
            };
            // A large nonce and the largest fee the load pays (63 coins
            // per kB of a 65-kB transaction, a two-byte varint): the
            // overhead is an upper bound.
            let tx = SignedTx::sign(
                &key,
                1 << 20,
                escrow::Amount::new(16_383),
                chain_core::BlockHash::from_bytes([1; 32]),
                payload,
            );
            let len = wire::encoded_len(&escrow::Tx::Signed(tx));
            let varint = if memo_len < 128 {
                1
            } else if memo_len < 16_384 {
                2
            } else {
                3
            };
            assert_eq!(
                len - memo_len,
                FILLER_OVERHEAD - 3 + varint,
                "memo of {memo_len}"
            );
        }
        assert_eq!(filler_memo_len(535_000), escrow::MAX_MEMO_BYTES);
        assert_eq!(filler_memo_len(100_000), 25_000 - FILLER_OVERHEAD);
        assert_eq!(filler_memo_len(1_000), 250 - FILLER_OVERHEAD);
        assert_eq!(max_block_bytes(1 << 20, None), 1 << 20);
        assert_eq!(max_block_bytes(1 << 20, Some(500_000)), 1 << 20);
        assert_eq!(max_block_bytes(1 << 20, Some(535_000)), 1_070_000);
        assert_eq!(max_block_bytes(1 << 20, Some(1_500_000)), 3_000_000);
    }
}

//! The mempool's limits, rebuilds, drops, and the incremental path against
//! a full rebuild.

#![allow(clippy::unwrap_used)]

use super::*;
use escrow::{Amount, ContractId, Genesis, Payload, dev};

fn pay(ledger: &Ledger, who: &str, nonce: u64, amount: u64) -> SignedTx {
    SignedTx::sign(
        &dev::keypair(who).unwrap(),
        nonce,
        escrow::Amount::new(1),
        ledger.network(),
        Payload::Transfer {
            to: dev::address("bob").unwrap(),
            amount: Amount::new(amount),
        },
    )
}

#[test]
fn bounded_in_total_and_per_account() {
    let chain = Genesis::dev().chain().unwrap();
    let ledger = chain.state();
    let mut pool = Mempool::new(ledger, 1, 3, 2);
    pool.add(pay(ledger, "alice", 0, 1), None).unwrap();
    let again = pay(ledger, "alice", 0, 1);
    assert!(matches!(
        pool.add(again, None),
        Err(MempoolError::Duplicate(_))
    ));
    pool.add(pay(ledger, "alice", 1, 1), None).unwrap();
    assert!(matches!(
        pool.add(pay(ledger, "alice", 2, 1), None),
        Err(MempoolError::AccountFull { max: 2, .. })
    ));
    pool.add(pay(ledger, "charlie", 0, 1), None).unwrap();
    // Full: a newcomer that pays no better than what is pending is
    // refused, and told what would get it in (`fees_tests.rs`).
    assert!(matches!(
        pool.add(pay(ledger, "dave", 0, 1), None),
        Err(MempoolError::FeeTooLow { .. })
    ));
    assert!(matches!(
        pool.add(pay(ledger, "dave", 5, 1), None),
        Err(MempoolError::FeeTooLow { .. })
    ));
    assert_eq!(pool.len(), 3);
}

#[test]
fn rebuild_keeps_what_still_applies_in_order() {
    let chain = Genesis::dev().chain().unwrap();
    let ledger = chain.state();
    let mut pool = Mempool::new(ledger, 1, 100, 100);
    let a0 = pay(ledger, "alice", 0, 1);
    let a1 = pay(ledger, "alice", 1, 1);
    pool.add(a1.clone(), None).unwrap_err();
    pool.add(a0.clone(), None).unwrap();
    pool.add(a1.clone(), None).unwrap();
    // a0 comes back from an undone block ahead of the pool: order kept,
    // no duplicates.
    let dropped = pool.rebuild(ledger, 1, vec![a0.clone()], |_| false);
    assert!(dropped.is_empty(), "a duplicate is not a drop");
    assert_eq!(pool.get(&a1.id()), Some(&a1));
    assert_eq!(pool.ids(), vec![a0.id(), a1.id()], "ids in block order");
    assert_eq!(pool.txs(), &[a0, a1][..]);
}

#[test]
fn a_rebuild_keeps_every_accepted_transaction_whatever_the_limits() {
    let chain = Genesis::dev().chain().unwrap();
    let ledger = chain.state();
    let mut pool = Mempool::new(ledger, 1, 4, 2);
    pool.add(pay(ledger, "alice", 3, 1), None).unwrap_err();
    // Five of alice's transactions come back from undone blocks; the
    // pool allows two per account and four in all on admission.
    let returned: Vec<SignedTx> = (0..5).map(|n| pay(ledger, "alice", n, 1)).collect();
    let dropped = pool.rebuild(ledger, 1, returned, |_| false);
    assert!(dropped.is_empty());
    assert_eq!(pool.len(), 5);
    // New admissions still meet the limits: one that pays no better
    // than what is pending is refused.
    assert!(matches!(
        pool.add(pay(ledger, "charlie", 0, 1), None),
        Err(MempoolError::FeeTooLow { .. })
    ));
}

#[test]
fn a_transaction_that_no_longer_applies_is_dropped_with_its_reason() {
    let chain = Genesis::dev().chain().unwrap();
    let ledger = chain.state();
    let mut pool = Mempool::new(ledger, 1, 100, 100);
    let spend = pay(ledger, "alice", 0, 999_000);
    let id = pool.add(spend, None).unwrap();
    // A new tip where alice's balance is gone (another transaction of
    // hers, with the same nonce, was mined): pretend by a ledger where
    // her nonce 0 is taken.
    let mut taken = ledger.clone();
    let mut pending = PendingState::new(&taken, 1);
    pending.admit(&pay(ledger, "alice", 0, 5)).unwrap();
    taken = pending.ledger().clone();
    let dropped = pool.rebuild(&taken, 2, Vec::new(), |_| false);
    assert_eq!(dropped, vec![id]);
    assert!(pool.is_empty());
    let why = pool.dropped(&id).unwrap();
    assert!(why.reason.contains("nonce"), "{}", why.reason);
    // A block of another branch may still hold it: a compact block is
    // rebuilt from it too.
    assert!(pool.candidates().any(|(i, tx)| i == id && tx.id() == id));
    // Mined instead of dropped: not remembered as dropped.
    let mut pool = Mempool::new(ledger, 1, 100, 100);
    let id = pool.add(pay(ledger, "alice", 0, 5), None).unwrap();
    assert!(pool.rebuild(&taken, 2, Vec::new(), |t| *t == id).is_empty());
    assert!(pool.dropped(&id).is_none());
}

/// A seeded stream of choices.
struct Dice(rand_chacha::ChaCha8Rng);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        use rand_chacha::rand_core::Rng;
        self.0.next_u64() % n.max(1)
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    fn name(&mut self) -> &'static str {
        NAMES[self.below(NAMES.len() as u64) as usize]
    }
}

const NAMES: [&str; 6] = ["alice", "bob", "charlie", "dave", "eve", "ferdie"];

/// A random transaction from a dev account: a transfer (small, or
/// large enough to overspend), an escrow, or an action on a known
/// contract by any of its parties; its nonce is the sender's next by
/// `state`, now and then one past it.
fn random_tx(dice: &mut Dice, state: &Ledger, height: u64, contracts: &[ContractId]) -> SignedTx {
    let name = dice.name();
    let key = dev::keypair(name).unwrap();
    let mut nonce = state.nonce(&key.address());
    if dice.below(10) == 0 {
        nonce += 1;
    }
    let to = dev::address(dice.name()).unwrap();
    let payload = match dice.below(10) {
        0..=5 => Payload::Transfer {
            to,
            amount: Amount::new(if dice.below(4) == 0 {
                300_000 + dice.below(400_000)
            } else {
                1 + dice.below(1_000)
            }),
        },
        6 => Payload::EscrowCreate {
            seller: to,
            arbiter: dev::address(dice.name()).unwrap(),
            amount: Amount::new(1 + dice.below(500_000)),
            delivery_deadline: height + dice.below(4),
            dispute_window: dice.below(3),
        },
        _ if contracts.is_empty() => Payload::Transfer {
            to,
            amount: Amount::new(1),
        },
        _ => {
            let contract = *dice.pick(contracts);
            match dice.below(4) {
                0 => Payload::ConfirmDelivery { contract },
                1 => Payload::RaiseDispute { contract },
                2 => Payload::Resolve {
                    contract,
                    to: *dice.pick(&[escrow::Party::Buyer, escrow::Party::Seller]),
                },
                _ => Payload::RefundBuyer { contract },
            }
        }
    };
    SignedTx::sign(
        &key,
        nonce,
        escrow::Amount::new(1),
        state.network(),
        payload,
    )
}

fn assert_same(inc: &Mempool, full: &Mempool, dropped: (&[TxId], &[TxId]), what: &str) {
    assert_eq!(dropped.0, dropped.1, "{what}: the same drops");
    for id in dropped.0 {
        assert_eq!(inc.dropped(id), full.dropped(id), "{what}: the same reason");
    }
    assert_eq!(
        inc.txs(),
        full.txs(),
        "{what}: the same pool in the same order"
    );
    assert_eq!(inc.ids(), full.ids(), "{what}");
    assert_eq!(inc.per_account, full.per_account, "{what}");
    assert_eq!(
        inc.pending_ledger(),
        full.pending_ledger(),
        "{what}: the same pending state"
    );
    assert_eq!(inc.state.next_height(), full.state.next_height(), "{what}");
    let ids = |p: &Mempool| p.meta.iter().map(|m| m.id).collect::<Vec<_>>();
    assert_eq!(ids(inc), inc.ids(), "{what}: meta beside the txs");
    assert_view_shows(inc, what);
    assert_view_shows(full, what);
}

/// Over random pools and random chains of blocks (pool transactions
/// mined or not, conflicting ones from the same senders, payments to
/// pending senders, contract actions whose outcome turns on the
/// height), following the tip with `extend` gives exactly what a full
/// `rebuild` gives.
#[test]
fn extending_is_the_same_as_rebuilding() {
    use chain_core::{BlockContext, BlockHash, StateMachine};
    use rand_chacha::rand_core::SeedableRng;

    let mut drops = 0;
    let mut kept_unchecked = 0;
    for seed in 0..12u64 {
        let mut dice = Dice(rand_chacha::ChaCha8Rng::seed_from_u64(seed));
        let mut ledger = Genesis::dev().chain().unwrap().state().clone();
        let mut height = 0;
        let mut inc = Mempool::new(&ledger, 1, 1_000, 1_000);
        let mut contracts: Vec<ContractId> = Vec::new();
        let mut mined: HashSet<TxId> = HashSet::new();
        for round in 0..10 {
            // New transactions, admitted (or not) alike.
            let mut full = inc.clone();
            for _ in 0..(4 + dice.below(12)) {
                let tx = random_tx(&mut dice, inc.pending_ledger(), height + 1, &contracts);
                let (a, b) = (inc.add(tx.clone(), None), full.add(tx.clone(), None));
                assert_eq!(a, b);
                if a.is_ok() && matches!(tx.body.payload, Payload::EscrowCreate { .. }) {
                    contracts.push(ContractId::from_tx(&tx.id()));
                }
            }
            // One or two blocks: some pool transactions in order, and
            // others made against the chain (conflicting nonces,
            // payments, contract actions).
            let mut block_txs: Vec<Tx> = Vec::new();
            for _ in 0..(1 + dice.below(2)) {
                height += 1;
                let mut filter = PendingState::new(&ledger, height);
                let mut txs = vec![Tx::Coinbase {
                    to: dev::address(dice.name()).unwrap(),
                    height,
                }];
                let pool: Vec<SignedTx> = inc.txs().to_vec();
                for tx in pool {
                    if dice.below(3) == 0 {
                        let fresh = random_tx(&mut dice, filter.ledger(), height, &contracts);
                        if filter.admit_verified(&fresh).is_ok() {
                            if matches!(fresh.body.payload, Payload::EscrowCreate { .. }) {
                                contracts.push(ContractId::from_tx(&fresh.id()));
                            }
                            txs.push(Tx::Signed(fresh));
                        }
                    }
                    if dice.below(2) == 0 && filter.admit_verified(&tx).is_ok() {
                        txs.push(Tx::Signed(tx));
                    }
                }
                let ctx = BlockContext {
                    hash: BlockHash::from_bytes([height as u8; 32]),
                    height,
                    timestamp_ms: height * 1_000,
                };
                ledger.apply_block(&ctx, &txs).unwrap();
                mined.extend(txs.iter().map(chain_core::Transaction::id));
                block_txs.extend(txs);
            }
            let before = inc.len();
            let included = |id: &TxId| mined.contains(id);
            let a = inc.extend(&ledger, height + 1, &block_txs, included);
            let b = full.rebuild(&ledger, height + 1, Vec::new(), included);
            assert_same(&inc, &full, (&a, &b), &format!("seed {seed} round {round}"));
            drops += a.len();
            kept_unchecked += before.min(inc.len());
        }
    }
    assert!(drops > 20, "the scenarios drop transactions ({drops})");
    assert!(kept_unchecked > 100, "and keep some ({kept_unchecked})");
}

#[test]
fn extending_rechecks_only_what_the_block_touched() {
    let chain = Genesis::dev().chain().unwrap();
    let ledger = chain.state();
    let mut pool = Mempool::new(ledger, 1, 100, 100);
    let alice = pay(ledger, "alice", 0, 1);
    let charlie = pay(ledger, "charlie", 0, 1);
    pool.add(alice.clone(), None).unwrap();
    pool.add(charlie.clone(), None).unwrap();
    // A block with another transaction of dave's, to eve: neither
    // alice, nor charlie, nor bob (their payee) is touched.
    let mut next = PendingState::new(ledger, 1);
    let dave = SignedTx::sign(
        &dev::keypair("dave").unwrap(),
        0,
        escrow::Amount::new(1),
        ledger.network(),
        Payload::Transfer {
            to: dev::address("eve").unwrap(),
            amount: Amount::new(5),
        },
    );
    next.admit(&dave).unwrap();
    let mined = [
        Tx::Coinbase {
            to: dev::address("ferdie").unwrap(),
            height: 1,
        },
        Tx::Signed(dave),
    ];
    let tip = next.ledger().clone();
    let dropped = pool.extend(&tip, 2, &mined, |_| false);
    assert!(dropped.is_empty());
    assert_eq!(pool.txs(), &[alice.clone(), charlie.clone()][..]);
    assert_eq!(
        pool.pending_ledger().balance(&dev::address("eve").unwrap()),
        tip.balance(&dev::address("eve").unwrap()),
        "the block's changes are in the pending state"
    );
    // A block that mines alice's transaction: it leaves, not dropped.
    let mut next = PendingState::new(&tip, 2);
    next.admit(&alice).unwrap();
    let mined = [
        Tx::Coinbase {
            to: dev::address("ferdie").unwrap(),
            height: 2,
        },
        Tx::Signed(alice.clone()),
    ];
    let dropped = pool.extend(next.ledger(), 3, &mined, |id| *id == alice.id());
    assert!(dropped.is_empty());
    assert_eq!(pool.txs(), &[charlie][..]);
    assert!(pool.dropped(&alice.id()).is_none());
    assert_eq!(pool.ids().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_peers_transaction_ahead_of_its_nonce_waits_and_comes_in_with_its_predecessor() {
    let chain = Genesis::dev().chain().unwrap();
    let ledger = chain.state();
    let mut pool = Mempool::new(ledger, 1, 100, 100);
    let now = tokio::time::Instant::now();
    let (a0, a1, a2) = (
        pay(ledger, "alice", 0, 1),
        pay(ledger, "alice", 1, 1),
        pay(ledger, "alice", 2, 1),
    );
    assert_eq!(
        pool.offer(a2.clone(), None, Some(7), now),
        Offered::Waiting { evicted: None }
    );
    assert_eq!(
        pool.offer(a1.clone(), None, Some(8), now),
        Offered::Waiting { evicted: None }
    );
    assert!(
        pool.knows(&a1.id()) && !pool.contains(&a1.id()),
        "waiting, not pending"
    );
    assert_eq!(
        pool.offer(a0.clone(), None, Some(9), now),
        Offered::Added {
            id: a0.id(),
            freed: vec![a1.id(), a2.id()]
        },
        "the predecessor lets the waiting ones in, in nonce order"
    );
    assert_eq!(pool.len(), 3);
    assert!(pool.orphans().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_users_transaction_ahead_of_its_nonce_is_refused_not_kept() {
    let chain = Genesis::dev().chain().unwrap();
    let ledger = chain.state();
    let mut pool = Mempool::new(ledger, 1, 100, 100);
    let now = tokio::time::Instant::now();
    let ahead = pay(ledger, "alice", 3, 1);
    let offered = pool.offer(ahead.clone(), None, None, now);
    assert!(
        matches!(
            offered,
            Offered::Refused(MempoolError::Invalid(AdmissionError::Invalid(
                LedgerError::BadNonce {
                    expected: 0,
                    got: 3,
                    ..
                }
            )))
        ),
        "{offered:?}"
    );
    assert!(!pool.knows(&ahead.id()));
    // A nonce already taken is refused whoever sends it.
    pool.offer(pay(ledger, "alice", 0, 1), None, None, now);
    let behind = pool.offer(pay(ledger, "alice", 0, 2), None, Some(1), now);
    assert!(matches!(behind, Offered::Refused(_)), "{behind:?}");
    // An unfunded sender's orphan is not kept, and that is not refused as
    // invalid (the peer is not at fault).
    let stranger = SignedTx::sign(
        &escrow::Keypair::from_seed([0x77; 32]),
        1,
        escrow::Amount::new(1),
        ledger.network(),
        Payload::Transfer {
            to: dev::address("bob").unwrap(),
            amount: Amount::new(1),
        },
    );
    assert_eq!(
        pool.offer(stranger, None, Some(1), now),
        Offered::NotKept(orphans::OrphanRefusal::Unfunded)
    );
}

#[tokio::test(start_paused = true)]
async fn waiting_transactions_go_with_their_peer_and_announcements_skip_what_left() {
    let chain = Genesis::dev().chain().unwrap();
    let ledger = chain.state();
    let mut pool = Mempool::new(ledger, 1, 100, 100);
    let now = tokio::time::Instant::now();
    pool.offer(pay(ledger, "alice", 2, 1), None, Some(4), now);
    assert_eq!(pool.forget_peer(4), 1);
    assert!(pool.orphans().is_empty());

    let kept = pay(ledger, "charlie", 0, 1);
    pool.add(kept.clone(), None).unwrap();
    pool.queue_announcement([1, 2], kept.id(), now);
    let gone = pay(ledger, "alice", 0, 1);
    pool.queue_announcement([1], gone.id(), now);
    assert_eq!(
        pool.announcements_due(),
        Some(now + announce::ANNOUNCE_DELAY)
    );
    assert!(pool.take_due_announcements(now).is_empty(), "not due yet");
    let due = pool.take_due_announcements(now + announce::ANNOUNCE_DELAY);
    assert_eq!(
        due,
        vec![(1, vec![kept.id()]), (2, vec![kept.id()])],
        "an id no longer pending is not announced"
    );
    assert_eq!(pool.announcements_due(), None);
}

/// Asserts that `pool`'s view shows exactly its pending transactions, in
/// order, and its dropped ones.
pub(super) fn assert_view_shows(pool: &Mempool, what: &str) {
    let view = pool.view();
    let shown: Vec<&SignedTx> = view.txs().collect();
    let pending: Vec<&SignedTx> = pool.txs().iter().collect();
    assert_eq!(shown, pending, "{what}: the view's pending transactions");
    for tx in pool.txs() {
        assert_eq!(view.get(&tx.id()), Some(tx), "{what}: by id");
    }
    assert_eq!(view.len(), pool.len(), "{what}");
    let mut ids: Vec<&TxId> = view.ids().collect();
    ids.sort();
    let mut expected: Vec<TxId> = pool.ids();
    expected.sort();
    assert_eq!(ids, expected.iter().collect::<Vec<_>>(), "{what}: ids");
    let mut dropped: Vec<&TxId> = view.dropped_ids().collect();
    let mut expected: Vec<&TxId> = pool.dropped_ids().collect();
    dropped.sort();
    expected.sort();
    assert_eq!(dropped, expected, "{what}: dropped ids");
    for id in expected {
        assert_eq!(view.dropped(id), pool.dropped(id), "{what}: why dropped");
    }
}

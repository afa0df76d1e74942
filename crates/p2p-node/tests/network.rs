//! Real nodes over TCP on 127.0.0.1: agreement, forks and reorgs, sync,
//! address gossip, shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use escrow::{Amount, ContractId, Party, Payload, State};
use p2p_node::MiningMode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_nodes_in_a_mesh_agree_on_one_chain_and_one_ledger() {
    let mut mesh = mesh(&[
        MiningMode::WhenPending,
        MiningMode::Off,
        MiningMode::Off,
        MiningMode::Off,
    ])
    .await
    .into_iter();
    let (a, b, c, d) = (
        mesh.next().unwrap(),
        mesh.next().unwrap(),
        mesh.next().unwrap(),
        mesh.next().unwrap(),
    );
    let nodes = [&a, &b, &c, &d];

    // Transactions sent to different nodes.
    b.submit(sign(
        "alice",
        0,
        Payload::Transfer {
            to: addr("bob"),
            amount: Amount::new(10),
        },
    ))
    .await
    .unwrap();
    let create = sign(
        "charlie",
        0,
        Payload::EscrowCreate {
            seller: addr("dave"),
            arbiter: addr("eve"),
            amount: Amount::new(50),
            delivery_deadline: 1_000,
            dispute_window: 10,
        },
    );
    let contract = ContractId::from_tx(&create.id());
    c.submit(create).await.unwrap();
    wait_for("the escrow mined everywhere", || async {
        for n in nodes {
            let known = n
                .query(move |v| v.chain.state().contract(&contract).is_some())
                .await
                .unwrap();
            if !known {
                return false;
            }
        }
        true
    })
    .await;
    // The dispute goes to one node, the resolution to another.
    d.submit(sign("charlie", 1, Payload::RaiseDispute { contract }))
        .await
        .unwrap();
    wait_for("the dispute mined", || async {
        let state = b
            .query(move |v| v.chain.state().contract(&contract).map(|c| c.state))
            .await
            .unwrap();
        matches!(state, Some(State::Disputed { .. }))
    })
    .await;
    b.submit(sign(
        "eve",
        0,
        Payload::Resolve {
            contract,
            to: Party::Buyer,
        },
    ))
    .await
    .unwrap();
    wait_for("the resolution mined", || async {
        let state = d
            .query(move |v| v.chain.state().contract(&contract).map(|c| c.state))
            .await
            .unwrap();
        state == Some(State::Refunded)
    })
    .await;
    wait_same_tip(&nodes).await;

    let reference = ledger(&a).await;
    for n in &nodes[1..] {
        assert_eq!(
            ledger(n).await,
            reference,
            "every node holds the same ledger"
        );
    }
    let start = Amount::new(escrow::genesis::DEV_BALANCE);
    // Charlie was refunded, less the fees of his creation and dispute.
    assert_eq!(
        reference.balance(&addr("charlie")),
        Amount::new(escrow::genesis::DEV_BALANCE - 2 * common::FEE)
    );
    assert_eq!(reference.balance(&addr("dave")), start);
    assert_eq!(reference.balance(&addr("bob")), Amount::new(1_000_010));
    assert_eq!(reference.total_supply(), Some(reference.issued()));
    for n in nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn competing_miners_converge_and_a_reorg_returns_transactions_to_the_pool() {
    // Two nodes that do not know each other yet mine their own chains.
    let a = start(&[], MiningMode::Off).await;
    let b = start(&[], MiningMode::Off).await;
    let pay = sign(
        "alice",
        0,
        Payload::Transfer {
            to: addr("bob"),
            amount: Amount::new(7),
        },
    );
    let id = pay.id();
    a.submit(pay).await.unwrap();
    a.mine_blocks(2).await.unwrap();
    let in_a = a.query(move |v| v.mempool.contains(&id)).await.unwrap();
    assert!(!in_a, "mined on a's chain");
    b.mine_blocks(5).await.unwrap();
    let (b_tip, _) = tip(&b).await;

    // Connected, a reorganises onto b's heavier chain ...
    a.add_peer(b.local_addr()).await.unwrap();
    wait_for("a reorganised", || async {
        a.query(move |v| v.chain.is_on_best_chain(&b_tip))
            .await
            .unwrap()
    })
    .await;
    // ... its transaction is pending again, and relayed to b ...
    wait_for("the transaction back in both pools", || async {
        let in_a = a.query(move |v| v.mempool.contains(&id)).await.unwrap();
        let in_b = b.query(move |v| v.mempool.contains(&id)).await.unwrap();
        in_a && in_b
    })
    .await;
    // ... and mined again, on the chain both agree on.
    b.mine_blocks(1).await.unwrap();
    wait_same_tip(&[&a, &b]).await;
    let bob = ledger(&a).await.balance(&addr("bob"));
    assert_eq!(bob, Amount::new(escrow::genesis::DEV_BALANCE + 7));
    assert_eq!(ledger(&a).await, ledger(&b).await);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_node_syncs_five_hundred_blocks() {
    let a = start(&[], MiningMode::Off).await;
    a.mine_blocks(500).await.unwrap();
    let (a_tip, height) = tip(&a).await;
    assert_eq!(height, 500);
    let late = start(&[a.local_addr()], MiningMode::Off).await;
    wait_for("the late node at a's tip", || async {
        tip(&late).await.0 == a_tip
    })
    .await;
    assert_eq!(ledger(&late).await, ledger(&a).await);
    late.shutdown().await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_learns_its_other_peers_through_address_gossip() {
    let a = start(&[], MiningMode::Off).await;
    let b = start(&[a.local_addr()], MiningMode::Off).await;
    wait_for("a and b connected", || async { peer_count(&a).await == 1 }).await;
    // c knows only a.
    let c = start(&[a.local_addr()], MiningMode::Off).await;
    let b_id = b.node_id();
    wait_for("c connected to b too", || async {
        c.query(move |v| v.peers.iter().any(|p| p.node_id == b_id))
            .await
            .unwrap()
    })
    .await;
    // Every node sees both others (each side admits a connection on its
    // own schedule, so wait for all three)...
    for n in [&a, &b, &c] {
        wait_for("every node with both others", || async {
            peer_count(n).await == 2
        })
        .await;
    }
    // ...and never two connections between the same two nodes, even once
    // every dial still in flight has ended.
    for n in [&a, &b, &c] {
        wait_for("no dial in flight", || async {
            n.query(|v| v.dials_in_flight).await.unwrap() == 0
        })
        .await;
    }
    for n in [&a, &b, &c] {
        let ids = n
            .query(|v| v.peers.iter().map(|p| p.node_id).collect::<Vec<_>>())
            .await
            .unwrap();
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(ids.len(), unique.len(), "duplicate connection");
        assert_eq!(ids.len(), 2);
    }
    for n in [a, b, c] {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_every_task_and_closes_every_socket() {
    let a = start(&[], MiningMode::Continuous).await;
    let b = start(&[a.local_addr()], MiningMode::Off).await;
    wait_for("connected", || async { peer_count(&b).await == 1 }).await;
    let addr = a.local_addr();
    // Returns only once every task (core, listener, connections, miner)
    // has ended.
    a.shutdown().await;
    assert!(a.tip().await.is_err(), "the core is gone");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the listening socket is closed"
    );
    wait_for("b saw the connection close", || async {
        peer_count(&b).await == 0
    })
    .await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_syncing_from_a_busy_miner_catches_up_without_banning_it() {
    // Tips announced while the new node is still behind arrive as orphans:
    // that is the new node's lag, not the miner's fault.
    let a = start(&[], MiningMode::Off).await;
    a.mine_blocks(2_000).await.unwrap();
    a.set_mining(MiningMode::Continuous).await.unwrap();
    let b = start(&[a.local_addr()], MiningMode::Off).await;
    let target = tip(&a).await.1 + 100;
    wait_for("b past where a was", || async { tip(&b).await.1 >= target }).await;
    a.set_mining(MiningMode::Off).await.unwrap();
    wait_same_tip(&[&a, &b]).await;
    let (peers, bans) = b.query(|v| (v.peers.len(), v.bans.len())).await.unwrap();
    assert_eq!(
        (peers, bans),
        (1, 0),
        "b still connected to a, nobody banned"
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_heals_onto_the_most_work_chain_and_the_losers_transactions_are_mined_again() {
    let a = start(&[], MiningMode::WhenPending).await;
    let b = start(&[a.local_addr()], MiningMode::Off).await;
    let c = start(&[a.local_addr(), b.local_addr()], MiningMode::WhenPending).await;
    let d = start(
        &[a.local_addr(), b.local_addr(), c.local_addr()],
        MiningMode::Off,
    )
    .await;
    let all = [&a, &b, &c, &d];
    wait_full_mesh(&all).await;
    // Cut {a, b} | {c, d}.
    let left = vec![a.local_addr(), b.local_addr()];
    let right = vec![c.local_addr(), d.local_addr()];
    for n in [&a, &b] {
        n.partition(right.clone()).await.unwrap();
    }
    for n in [&c, &d] {
        n.partition(left.clone()).await.unwrap();
    }
    wait_for("the cut", || async {
        for n in all {
            if peer_count(n).await != 1 {
                return false;
            }
        }
        true
    })
    .await;
    // Each side mines its own transaction; the right side one more block.
    let left_tx = sign(
        "alice",
        0,
        Payload::Transfer {
            to: addr("bob"),
            amount: Amount::new(3),
        },
    );
    let left_id = left_tx.id();
    b.submit(left_tx).await.unwrap();
    d.submit(sign(
        "charlie",
        0,
        Payload::Transfer {
            to: addr("dave"),
            amount: Amount::new(4),
        },
    ))
    .await
    .unwrap();
    wait_for("both sides mined", || async {
        tip(&b).await.1 == 1 && tip(&d).await.1 == 1
    })
    .await;
    c.mine_blocks(1).await.unwrap();
    wait_same_tip(&[&c, &d]).await;
    let right_tip = tip(&c).await.0;
    // Heal: everyone ends on the right side's heavier chain, and alice's
    // transfer, undone on the left, is mined again.
    for n in all {
        n.heal().await.unwrap();
    }
    wait_for("the left side reorganised", || async {
        a.query(move |v| v.chain.is_on_best_chain(&right_tip))
            .await
            .unwrap()
    })
    .await;
    wait_for("alice's transfer mined again", || async {
        let mut ok = true;
        for n in all {
            ok &= n
                .query(move |v| v.tx_block(&left_id).is_some())
                .await
                .unwrap();
        }
        ok
    })
    .await;
    // a and c may both have mined it again: two blocks of equal work, and
    // each node keeps the one it saw first. The next block settles it.
    a.mine_blocks(1).await.unwrap();
    wait_same_tip(&all).await;
    let l = ledger(&a).await;
    assert_eq!(l.balance(&addr("bob")), Amount::new(1_000_003));
    assert_eq!(l.balance(&addr("dave")), Amount::new(1_000_004));
    for n in &all[1..] {
        assert_eq!(ledger(n).await, l);
    }
    for n in all {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_tells_its_peers_the_address_it_advertises() {
    init_logs();
    let mut c = config();
    // Not where it listens: what a node behind a wildcard or a NAT says.
    let advertised: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
    c.advertise = Some(advertised);
    let a = p2p_node::Node::start(c).await.unwrap();
    let b = start(&[a.local_addr()], MiningMode::Off).await;
    wait_for("connected", || async { peer_count(&b).await == 1 }).await;
    let told = b
        .query(|v| v.peers.first().and_then(|p| p.listen_addr))
        .await
        .unwrap();
    assert_eq!(told, Some(advertised));
    a.shutdown().await;
    b.shutdown().await;
}

/// Two nodes that mined competing blocks of equal work while apart agree
/// on one tip once they meet, with nobody mining again: the smaller hash
/// wins the tie on both (and after a partition heals, likewise).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equal_work_tips_converge_on_the_smaller_hash_without_more_blocks() {
    let a = start(&[], MiningMode::Off).await;
    // Another miner account, so that the two blocks differ even when both
    // are mined in the same millisecond.
    let mut c = config();
    c.miner_account = addr("bob");
    let b = p2p_node::Node::start(c).await.unwrap();
    let ha = a.mine_blocks(1).await.unwrap()[0];
    let hb = b.mine_blocks(1).await.unwrap()[0];
    assert_ne!(ha, hb);
    let winner = ha.min(hb);
    b.add_peer(a.local_addr()).await.unwrap();
    wait_for("both on the smaller hash", || async {
        tip(&a).await.0 == winner && tip(&b).await.0 == winner
    })
    .await;
    assert_eq!(tip(&a).await.1, 1, "no block was mined to settle it");
    // Apart again: each mines one more, then the partition heals.
    b.partition(vec![a.local_addr()]).await.unwrap();
    a.partition(vec![b.local_addr()]).await.unwrap();
    wait_for("apart", || async {
        peer_count(&a).await == 0 && peer_count(&b).await == 0
    })
    .await;
    let ha = a.mine_blocks(1).await.unwrap()[0];
    let hb = b.mine_blocks(1).await.unwrap()[0];
    let winner = ha.min(hb);
    a.heal().await.unwrap();
    b.heal().await.unwrap();
    wait_for("one tip after the heal", || async {
        tip(&a).await.0 == winner && tip(&b).await.0 == winner
    })
    .await;
    assert_eq!(tip(&b).await.1, 2);
    a.shutdown().await;
    b.shutdown().await;
}

/// Four nodes mining whenever transactions wait, under a burst of load:
/// once the load stops they settle on one tip with empty mempools, with
/// nobody asking anyone to mine (competing blocks of equal work go to the
/// smaller hash).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_load_stops_four_pending_miners_agree_without_anyone_mining_on_demand() {
    let mut nodes = Vec::new();
    for miner in ["alice", "bob", "charlie", "dave"] {
        let mut c = config();
        c.mining = MiningMode::WhenPending;
        c.miner_account = addr(miner);
        c.peers = nodes.iter().map(p2p_node::NodeHandle::local_addr).collect();
        nodes.push(p2p_node::Node::start(c).await.unwrap());
    }
    let all: Vec<&p2p_node::NodeHandle> = nodes.iter().collect();
    wait_full_mesh(&all).await;
    // A burst: every node takes transfers from its own sender.
    for nonce in 0..10 {
        for (node, who) in nodes.iter().zip(["eve", "ferdie", "alice", "bob"]) {
            node.submit(sign(
                who,
                nonce,
                Payload::Transfer {
                    to: addr("charlie"),
                    amount: Amount::new(1),
                },
            ))
            .await
            .unwrap();
        }
    }
    wait_for("one tip and empty mempools", || async {
        let first = tip(all[0]).await.0;
        for n in &all {
            let pending = n.query(|v| v.mempool.len()).await.unwrap();
            if tip(n).await.0 != first || pending != 0 {
                return false;
            }
        }
        true
    })
    .await;
    for node in nodes {
        node.shutdown().await;
    }
}

//! Sample messages, shared by the codec tests, the golden vectors and the
//! benchmark: one fixed sample of every message (deterministic, so its bytes
//! can be checked in), a proptest strategy for every message, and a block of
//! signed transfers.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use chain_core::{Block, BlockHash, CompactTarget, HEADER_VERSION, Header, TxId, Work};
use escrow::{Amount, ContractId, Genesis, Keypair, Party, Payload, SignedTx, Tx, dev};
use proptest::prelude::*;
use wire::message::{MAX_ADDRS, MAX_INVENTORY, MAX_LOCATOR};
use wire::{
    Bounded, BoundedString, CompactBlock, Handshake, Message, NodeId, PROTOCOL_VERSION, Reason,
};

/// The network id the samples name.
pub fn network() -> BlockHash {
    BlockHash::from_bytes([0x11; 32])
}

fn hash(byte: u8) -> BlockHash {
    BlockHash::from_bytes([byte; 32])
}

fn txid(byte: u8) -> TxId {
    TxId::from_bytes([byte; 32])
}

/// Alice pays Bob 42, her nonce 3.
pub fn signed_tx() -> SignedTx {
    SignedTx::sign(
        &dev::keypair("alice").unwrap(),
        3,
        escrow::Amount::new(1),
        network(),
        Payload::Transfer {
            to: dev::address("bob").unwrap(),
            amount: Amount::new(42),
        },
    )
}

/// A handshake with every field set.
pub fn handshake() -> Message {
    Message::Handshake(Handshake {
        version: PROTOCOL_VERSION,
        network: network(),
        node_id: NodeId([0x22; 32]),
        listen_addr: Some(SocketAddr::V4(SocketAddrV4::new(
            Ipv4Addr::LOCALHOST,
            30333,
        ))),
        best_tip: hash(0x33),
        best_height: 1234,
        total_work: Work::from_u128(1234 * 65536),
        user_agent: BoundedString::new("p2p-node/0.1.0".to_string()).unwrap(),
    })
}

fn header(height: u64, transactions: &[Tx]) -> Header {
    let ids: Vec<TxId> = transactions
        .iter()
        .map(chain_core::Transaction::commitment)
        .collect();
    Header {
        version: HEADER_VERSION,
        height,
        parent: hash(0x44),
        merkle_root: chain_core::merkle_root(&ids),
        timestamp_ms: 1_767_225_600_000 + height * 10_000,
        target: CompactTarget::from_u32(0x1f00_ffff),
        nonce: 0x0123_4567_89ab_cdef,
    }
}

/// A block holding every payload kind once, after its coinbase.
pub fn block_of_every_payload() -> Block<Tx> {
    let contract = ContractId::from_tx(&txid(0x55));
    let k = |name: &str| dev::keypair(name).unwrap();
    let a = |name: &str| dev::address(name).unwrap();
    let payloads = [
        (
            "alice",
            Payload::Transfer {
                to: a("bob"),
                amount: Amount::new(7),
            },
        ),
        (
            "charlie",
            Payload::EscrowCreate {
                seller: a("dave"),
                arbiter: a("eve"),
                amount: Amount::new(50),
                delivery_deadline: 100,
                dispute_window: 20,
            },
        ),
        ("alice", Payload::ConfirmDelivery { contract }),
        ("charlie", Payload::RaiseDispute { contract }),
        (
            "eve",
            Payload::Resolve {
                contract,
                to: Party::Buyer,
            },
        ),
        ("dave", Payload::RefundBuyer { contract }),
        (
            "bob",
            Payload::TransferMemo {
                to: a("alice"),
                amount: Amount::ZERO,
                memo: escrow::Memo::new(b"invoice 42").unwrap(),
            },
        ),
    ];
    let mut transactions = vec![Tx::Coinbase {
        to: a("ferdie"),
        height: 5,
    }];
    for (i, (who, payload)) in payloads.into_iter().enumerate() {
        transactions.push(Tx::Signed(SignedTx::sign(
            &k(who),
            i as u64,
            escrow::Amount::new(1),
            network(),
            payload,
        )));
    }
    Block {
        header: header(5, &transactions),
        transactions,
    }
}

/// `n` signed transfers (from 100 senders) after a coinbase.
pub fn block_of_transfers(n: usize) -> Block<Tx> {
    let senders: Vec<Keypair> = (0..100u8)
        .map(|i| Keypair::from_seed([i.wrapping_add(1); 32]))
        .collect();
    let bob = dev::address("bob").unwrap();
    let mut transactions = vec![Tx::Coinbase {
        to: dev::address("ferdie").unwrap(),
        height: 9,
    }];
    for i in 0..n {
        transactions.push(Tx::Signed(SignedTx::sign(
            &senders[i % senders.len()],
            (i / senders.len()) as u64,
            escrow::Amount::new(1),
            network(),
            Payload::Transfer {
                to: bob,
                amount: Amount::new(1 + i as u64),
            },
        )));
    }
    Block {
        header: header(9, &transactions),
        transactions,
    }
}

/// One fixed sample of every message, named for its golden vector file.
/// Every variant of [`Message`] appears at least once.
pub fn all() -> Vec<(&'static str, Message)> {
    let v6 = SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 30334, 0, 0));
    let v4 = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 2), 30335));
    let mut no_listen = match handshake() {
        Message::Handshake(h) => h,
        _ => unreachable!(),
    };
    no_listen.listen_addr = None;
    no_listen.user_agent = BoundedString::default();
    vec![
        ("handshake", handshake()),
        ("handshake_no_listen", Message::Handshake(no_listen)),
        ("handshake_ack", Message::HandshakeAck),
        ("ping", Message::Ping { nonce: 0xdead_beef }),
        ("pong", Message::Pong { nonce: u64::MAX }),
        (
            "announce_txs",
            Message::AnnounceTxs(Bounded::new(vec![txid(1), txid(2)]).unwrap()),
        ),
        (
            "announce_blocks",
            Message::AnnounceBlocks(Bounded::new(vec![hash(3)]).unwrap()),
        ),
        (
            "get_txs",
            Message::GetTxs(Bounded::new(vec![txid(4)]).unwrap()),
        ),
        (
            "get_blocks",
            Message::GetBlocks(Bounded::new(vec![hash(5), hash(6)]).unwrap()),
        ),
        ("tx", Message::Tx(signed_tx())),
        ("block", Message::Block(block_of_every_payload())),
        ("block_genesis", Message::Block(Genesis::dev().block())),
        (
            "get_sync",
            Message::GetSync {
                locator: Bounded::new(vec![hash(7), hash(8), hash(9)]).unwrap(),
                stop: BlockHash::ZERO,
            },
        ),
        (
            "sync_blocks",
            Message::SyncBlocks {
                blocks: Bounded::new(vec![block_of_transfers(2)]).unwrap(),
                more: true,
            },
        ),
        ("get_addrs", Message::GetAddrs),
        ("addrs", Message::Addrs(Bounded::new(vec![v4, v6]).unwrap())),
        (
            "not_found",
            Message::NotFound {
                txs: Bounded::new(vec![txid(10)]).unwrap(),
                blocks: Bounded::default(),
            },
        ),
        (
            "notice",
            Message::notice(Reason::WrongNetwork, "genesis 1111… is not ours"),
        ),
        (
            "send_compact",
            Message::SendCompact {
                high_bandwidth: true,
            },
        ),
        (
            "compact_block",
            Message::CompactBlock(CompactBlock::new(&block_of_transfers(2), 7, &[])),
        ),
        (
            "get_block_txn",
            Message::GetBlockTxn {
                block: hash(11),
                indexes: Bounded::new(vec![1, 2]).unwrap(),
            },
        ),
        (
            "block_txn",
            Message::BlockTxn {
                block: hash(12),
                txs: Bounded::new(vec![Tx::Signed(signed_tx())]).unwrap(),
            },
        ),
        ("get_compact", Message::GetCompact { block: hash(13) }),
        (
            "get_headers",
            Message::GetHeaders {
                locator: Bounded::new(vec![hash(14), hash(15)]).unwrap(),
                stop: BlockHash::ZERO,
            },
        ),
        (
            "headers",
            Message::Headers(Bounded::new(vec![block_of_transfers(1).header]).unwrap()),
        ),
    ]
}

/// Finds the first varint at or after `start` that fits one byte (< 0x80)
/// and writes it over-long (two bytes, same value). `None` if there is none.
pub fn pad_first_varint_after(body: &[u8], start: usize) -> Option<Vec<u8>> {
    let at = (start..body.len()).find(|&i| body[i] < 0x80)?;
    let mut out = body[..at].to_vec();
    out.push(body[at] | 0x80);
    out.push(0x00);
    out.extend_from_slice(&body[at + 1..]);
    Some(out)
}

fn arb_hash() -> impl Strategy<Value = BlockHash> + Clone {
    any::<[u8; 32]>().prop_map(BlockHash::from_bytes)
}

fn arb_txid() -> impl Strategy<Value = TxId> + Clone {
    any::<[u8; 32]>().prop_map(TxId::from_bytes)
}

fn arb_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port))),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::V6(SocketAddrV6::new(
            Ipv6Addr::from(ip),
            port,
            0,
            0
        ))),
    ]
}

fn arb_string<const MAX: usize>() -> impl Strategy<Value = BoundedString<MAX>> {
    // Any Unicode, cut to the maximum on a character boundary.
    ".{0,80}".prop_map(|s: String| BoundedString::truncating(&s))
}

fn arb_reason() -> impl Strategy<Value = Reason> {
    prop_oneof![
        Just(Reason::WrongNetwork),
        Just(Reason::UnsupportedVersion),
        Just(Reason::DuplicateConnection),
        Just(Reason::TooManyPeers),
        Just(Reason::Banned),
        Just(Reason::HandshakeTimeout),
        Just(Reason::IdleTimeout),
        Just(Reason::ShuttingDown),
        Just(Reason::Other),
        Just(Reason::StoreDamaged),
    ]
}

fn arb_payload() -> impl Strategy<Value = Payload> {
    let address = any::<[u8; 32]>().prop_map(escrow::Address::from_bytes);
    let contract = any::<[u8; 32]>().prop_map(|b| ContractId::from_tx(&TxId::from_bytes(b)));
    prop_oneof![
        (address.clone(), any::<u64>()).prop_map(|(to, amount)| Payload::Transfer {
            to,
            amount: Amount::new(amount)
        }),
        (
            address.clone(),
            address,
            any::<u64>(),
            any::<u64>(),
            any::<u64>()
        )
            .prop_map(|(seller, arbiter, amount, d, w)| Payload::EscrowCreate {
                seller,
                arbiter,
                amount: Amount::new(amount),
                delivery_deadline: d,
                dispute_window: w,
            }),
        contract
            .clone()
            .prop_map(|contract| Payload::ConfirmDelivery { contract }),
        contract
            .clone()
            .prop_map(|contract| Payload::RaiseDispute { contract }),
        (contract.clone(), any::<bool>()).prop_map(|(contract, seller)| Payload::Resolve {
            contract,
            to: if seller { Party::Seller } else { Party::Buyer },
        }),
        contract.prop_map(|contract| Payload::RefundBuyer { contract }),
    ]
}

fn arb_signed_tx() -> impl Strategy<Value = SignedTx> {
    (any::<[u8; 32]>(), any::<u64>(), arb_hash(), arb_payload()).prop_map(
        |(seed, nonce, network, payload)| {
            SignedTx::sign(
                &Keypair::from_seed(seed),
                nonce,
                escrow::Amount::new(1),
                network,
                payload,
            )
        },
    )
}

fn arb_block() -> impl Strategy<Value = Block<Tx>> {
    let tx = prop_oneof![
        arb_signed_tx().prop_map(Tx::Signed),
        (any::<[u8; 32]>(), any::<u64>()).prop_map(|(to, height)| Tx::Coinbase {
            to: escrow::Address::from_bytes(to),
            height
        }),
        (any::<[u8; 32]>(), any::<u64>()).prop_map(|(to, amount)| Tx::Allocation {
            to: escrow::Address::from_bytes(to),
            amount: Amount::new(amount)
        }),
    ];
    (any::<[u8; 96]>(), proptest::collection::vec(tx, 0..4)).prop_map(|(header, transactions)| {
        Block {
            header: Header::from_bytes(&header).unwrap(),
            transactions,
        }
    })
}

fn arb_inventory<T: std::fmt::Debug + Clone + 'static>(
    item: impl Strategy<Value = T> + Clone + 'static,
) -> impl Strategy<Value = Bounded<T, MAX_INVENTORY>> {
    prop_oneof![
        4 => proptest::collection::vec(item.clone(), 0..8),
        1 => proptest::collection::vec(item, MAX_INVENTORY..=MAX_INVENTORY),
    ]
    .prop_map(|v| Bounded::new(v).unwrap())
}

/// Any message, with lists up to their maxima.
pub fn arb_message() -> impl Strategy<Value = Message> {
    let handshake = (
        any::<u32>().prop_map(|_| PROTOCOL_VERSION),
        arb_hash(),
        any::<[u8; 32]>(),
        proptest::option::of(arb_addr()),
        arb_hash(),
        any::<u64>(),
        any::<u128>(),
        arb_string(),
    )
        .prop_map(
            |(version, network, id, listen_addr, best_tip, best_height, work, user_agent)| {
                Message::Handshake(Handshake {
                    version,
                    network,
                    node_id: NodeId(id),
                    listen_addr,
                    best_tip,
                    best_height,
                    total_work: Work::from_u128(work),
                    user_agent,
                })
            },
        );
    prop_oneof![
        handshake,
        Just(Message::HandshakeAck),
        any::<u64>().prop_map(|nonce| Message::Ping { nonce }),
        any::<u64>().prop_map(|nonce| Message::Pong { nonce }),
        arb_inventory(arb_txid()).prop_map(Message::AnnounceTxs),
        arb_inventory(arb_hash()).prop_map(Message::AnnounceBlocks),
        arb_inventory(arb_txid()).prop_map(Message::GetTxs),
        arb_inventory(arb_hash()).prop_map(Message::GetBlocks),
        arb_signed_tx().prop_map(Message::Tx),
        arb_block().prop_map(Message::Block),
        (
            proptest::collection::vec(arb_hash(), 0..=MAX_LOCATOR),
            arb_hash()
        )
            .prop_map(|(locator, stop)| Message::GetSync {
                locator: Bounded::new(locator).unwrap(),
                stop
            }),
        (proptest::collection::vec(arb_block(), 0..3), any::<bool>()).prop_map(|(blocks, more)| {
            Message::SyncBlocks {
                blocks: Bounded::new(blocks).unwrap(),
                more,
            }
        }),
        Just(Message::GetAddrs),
        proptest::collection::vec(arb_addr(), 0..=MAX_ADDRS)
            .prop_map(|a| Message::Addrs(Bounded::new(a).unwrap())),
        (arb_inventory(arb_txid()), arb_inventory(arb_hash()))
            .prop_map(|(txs, blocks)| Message::NotFound { txs, blocks }),
        (arb_reason(), arb_string()).prop_map(|(reason, text)| Message::Notice { reason, text }),
        any::<bool>().prop_map(|high_bandwidth| Message::SendCompact { high_bandwidth }),
        (
            arb_block(),
            any::<u64>(),
            proptest::collection::vec(any::<usize>(), 0..3)
        )
            .prop_map(|(block, salt, mut prefill)| {
                let n = block.transactions.len().max(1);
                prefill.iter_mut().for_each(|i| *i %= n);
                prefill.sort_unstable();
                Message::CompactBlock(CompactBlock::new(&block, salt, &prefill))
            }),
        (arb_hash(), proptest::collection::vec(any::<u32>(), 0..5)).prop_map(|(block, i)| {
            Message::GetBlockTxn {
                block,
                indexes: Bounded::new(i).unwrap(),
            }
        }),
        (arb_hash(), proptest::collection::vec(arb_signed_tx(), 0..3)).prop_map(|(block, t)| {
            Message::BlockTxn {
                block,
                txs: Bounded::new(t.into_iter().map(Tx::Signed).collect()).unwrap(),
            }
        }),
        arb_hash().prop_map(|block| Message::GetCompact { block }),
        (
            proptest::collection::vec(arb_hash(), 0..=MAX_LOCATOR),
            arb_hash()
        )
            .prop_map(|(locator, stop)| Message::GetHeaders {
                locator: Bounded::new(locator).unwrap(),
                stop
            }),
        proptest::collection::vec(any::<[u8; 96]>(), 0..4).prop_map(|h| {
            Message::Headers(
                Bounded::new(h.iter().map(|b| Header::from_bytes(b).unwrap()).collect()).unwrap(),
            )
        }),
    ]
}

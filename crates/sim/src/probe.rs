//! The probe a check runs inside a query on a node's own state: what one
//! look at a node finds (height, tip, the blocks and transactions asked
//! about) and whether an invariant is broken (conservation of funds, every
//! contract's payouts).

use chain_core::{BlockHash, TxId};
use escrow::{Action, Amount};
use p2p_node::NodeView;

/// What one look at a node found.
pub(crate) struct Probe {
    pub height: u64,
    pub tip: BlockHash,
    pub mempool: usize,
    /// The best chain's block at each height asked about.
    pub at_heights: Vec<Option<BlockHash>>,
    /// Which of the transactions asked about are on the best chain.
    pub confirmed: Vec<usize>,
    /// A broken invariant, in words.
    pub problem: Option<String>,
}

/// The tips `probes` found, each with how many nodes have it and their
/// pending transactions, the ten most held first: what a disagreement
/// looks like, in words.
pub(crate) fn tips_in_words(probes: &[Option<Probe>]) -> String {
    let mut tips: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    for p in probes {
        let (tip, pending) = p.as_ref().map_or(("down".to_string(), 0), |p| {
            (format!("{}@{}", p.height, p.tip), p.mempool)
        });
        let entry = tips.entry(tip).or_default();
        entry.0 += 1;
        entry.1 += pending;
    }
    let mut tips: Vec<_> = tips.into_iter().collect();
    tips.sort_by_key(|(tip, (nodes, _))| (std::cmp::Reverse(*nodes), tip.clone()));
    let shown: Vec<String> = tips
        .iter()
        .take(10)
        .map(|(tip, (nodes, pending))| format!("{tip} on {nodes} nodes ({pending} pending in all)"))
        .collect();
    format!(
        "{} tips: {}{}",
        tips.len(),
        shown.join(", "),
        if tips.len() > 10 { ", ..." } else { "" }
    )
}

/// What to look at.
pub(crate) struct Ask {
    /// The genesis allocations' sum.
    pub genesis_total: Amount,
    /// Heights whose best-chain block is wanted.
    pub heights: Vec<u64>,
    /// Outstanding transactions (user, id) to look for.
    pub waiting: Vec<(usize, TxId)>,
    /// Check conservation (one pass over accounts and contracts).
    pub supply: bool,
    /// ... unless the node's tip is this one: conservation was checked at
    /// it, and a ledger is the state at its tip.
    pub supply_checked_at: Option<BlockHash>,
    /// Also walk every contract's history (another pass over contracts).
    pub contracts: bool,
}

pub(crate) fn probe(view: &NodeView<'_>, ask: &Ask) -> Probe {
    let chain = view.chain;
    let height = chain.height();
    let best = chain.best_chain();
    let ledger = chain.state();
    let mut problem = None;
    // Conservation: balances plus funds held by open contracts equal the
    // genesis allocations plus one reward per block.
    let expected = u128::from(ask.genesis_total.get())
        + u128::from(ledger.coinbase_reward().get()) * u128::from(height);
    let supply = ask.supply && ask.supply_checked_at != Some(chain.tip());
    // Computed only when asked: it is a pass over every account.
    match supply.then(|| ledger.total_supply()) {
        None => {}
        Some(None) => problem = Some("supply: the sum of balances overflows".to_string()),
        Some(Some(held)) if u128::from(held.get()) == expected => {}
        Some(Some(held)) => {
            problem = Some(format!(
                "supply: balances plus escrowed funds are {} at height {height}, \
                 genesis plus rewards is {expected}",
                held.get()
            ));
        }
    }
    if ask.contracts && problem.is_none() {
        problem = ledger.contracts().values().find_map(|c| {
            let payouts = c
                .history
                .iter()
                .filter(|h| {
                    matches!(
                        h.action,
                        Action::DeliveryConfirmed | Action::Resolved(_) | Action::Refunded
                    )
                })
                .count();
            if payouts > 1 {
                Some(format!("contract {} paid out {payouts} times", c.id))
            } else if c.state.is_final() != (payouts == 1) {
                Some(format!(
                    "contract {} is {} with {payouts} payouts in its history",
                    c.id,
                    c.state.name()
                ))
            } else {
                None
            }
        });
    }
    let at = |h: u64| usize::try_from(h).ok().and_then(|i| best.get(i)).copied();
    Probe {
        height,
        tip: chain.tip(),
        mempool: view.mempool.len(),
        at_heights: ask.heights.iter().map(|h| at(*h)).collect(),
        confirmed: ask
            .waiting
            .iter()
            .filter(|(_, id)| view.tx_block(id).is_some())
            .map(|(u, _)| *u)
            .collect(),
        problem,
    }
}

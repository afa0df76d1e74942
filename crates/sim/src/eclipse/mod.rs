//! Eclipse attacks and the double spends they allow (`--eclipse-hosts`).
//!
//! An attacker with a budget of hosts (IP addresses) and addresses (ports
//! on them) targets the last `victims` nodes:
//!
//! - each attacker host keeps connections open to every victim (inbound
//!   for the victim, as many as its slots let in), completes a real
//!   handshake, answers pings, and tells the victim its addresses:
//!   unsolicited `Addrs` every [`GOSSIP_EVERY`], and as the answer to
//!   every `GetAddrs`;
//! - its listener answers on every port, so a victim that dials one of the
//!   attacker's addresses gets an attacker peer (outbound for the victim);
//! - the honest nodes other than the victims restart now and then (mean
//!   uptime `churn`), so a victim's connections to them end, and the victim
//!   fills the slots again from its address book, by its own rules.
//!
//! A victim is **eclipsed** once every one of its peers is an attacker's
//! (checked every [`CHECK_EVERY`]). The first victim eclipsed is then
//! **double-spent**: the attacker (a funded account, which created an
//! escrow contract with the victim's owner as seller at the start) signs a
//! payment to the victim's owner and the release of the contract, gives
//! them to the victim, and mines them into a private chain that it feeds
//! the victim, at its share `power` of the hash power; the honest network
//! meanwhile gets a conflicting pair with the same nonces (a payment back
//! to the attacker, a dispute of the contract). Once the victim shows the
//! payment `confirmations` deep, the attacker stops mining for it and
//! waits until the honest chain holds the conflicting pair and outweighs
//! the victim's; then it lets the victim go: it hangs up and refuses its
//! dials; the victim finds honest peers, and the heavier honest chain
//! undoes what it saw. An eclipse that breaks first ends the attempt
//! (there is one, against the first victim eclipsed).
//!
//! What the node does against it is its own code: its address book, dial
//! plan, eviction rule and fork choice (`docs/PROTOCOL.md`, "Addresses"
//! and "Connection limits").

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chain_core::BlockHash;
use escrow::fee::FeeRate;
use escrow::{Address, Amount, Keypair, Payload, SignedTx};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::net::{SIM_PORT, host_addr};
use crate::options::{Eclipse, SimOptions};
use crate::records::{AttackRecord, VictimState};
use crate::report::{DoubleSpend, EclipseReport};
use crate::world::{World, lock};

/// How often an attacker connection tells its victim of the attacker's
/// addresses, unasked.
pub const GOSSIP_EVERY: Duration = Duration::from_secs(30);
/// How often the attacker checks whether a victim is eclipsed.
pub const CHECK_EVERY: Duration = Duration::from_secs(10);
/// How long an attacker host waits between attempts to open one more
/// connection to a victim.
const REDIAL_EVERY: Duration = Duration::from_secs(5);
/// The payment the attacker double-spends, in coins.
const PAYMENT: u64 = 50_000;
/// How long a churned honest node stays down.
const DOWN_FOR: Duration = Duration::from_secs(30);
/// The victim's inbound slots the attacker aims to hold (the node's
/// default `max_inbound`).
const INBOUND_SLOTS: usize = 24;

impl SimOptions {
    /// Checks the eclipse's options against the run's ([`check_options`]).
    pub(crate) fn check_eclipse(&self) -> Result<(), String> {
        check_options(self)
    }

    /// The hash power shares with the attacker's, if there is one
    /// ([`share_power`]).
    pub(crate) fn share_eclipse_power(&self, shares: &mut Vec<f64>) {
        share_power(shares, self);
    }
}

/// Checks the eclipse's options against the run's.
fn check_options(opts: &SimOptions) -> Result<(), String> {
    let Some(e) = opts.eclipse else {
        return Ok(());
    };
    if e.hosts == 0 || e.addrs < e.hosts {
        return Err("an eclipse needs at least one host and as many addresses as hosts".into());
    }
    if e.addrs > 50_000 {
        return Err("at most 50,000 attacker addresses".into());
    }
    if e.victims == 0 || e.victims + 2 > opts.nodes {
        return Err(format!(
            "an eclipse attacks 1 to {} victims among {} nodes (two honest nodes stay out of it)",
            opts.nodes.saturating_sub(2),
            opts.nodes
        ));
    }
    if !(e.power > 0.0 && e.power < 1.0) {
        return Err("the attacker's power must be above 0 and below 1".into());
    }
    if e.confirmations == 0 || e.churn.is_zero() {
        return Err("an eclipse needs at least one confirmation and a churn above 0".into());
    }
    if opts.faults.is_some() || opts.selfish.is_some() {
        return Err("an eclipse runs without the swarm's faults and without a selfish pool".into());
    }
    if opts.users == 0 || opts.tx_rate > 0.0 || opts.block_size.is_some() {
        return Err(
            "an eclipse needs a funded user (the attacker's account) and no load (--tx-rate 0)"
                .into(),
        );
    }
    Ok(())
}

/// The victims: the last `victims` nodes.
fn victims(opts: &SimOptions, e: Eclipse) -> std::ops::Range<usize> {
    opts.nodes - e.victims..opts.nodes
}

/// The attacker's `i`th address of `addrs`: ports spread over its hosts
/// (network hosts `nodes..nodes + hosts`, address `i` on host `i % hosts`),
/// the first of each host on [`SIM_PORT`].
pub(crate) fn attacker_addr(opts: &SimOptions, e: Eclipse, i: usize) -> SocketAddr {
    let host = opts.nodes + i % e.hosts.max(1);
    let port = u16::try_from(i / e.hosts.max(1))
        .ok()
        .and_then(|p| SIM_PORT.checked_add(p))
        .unwrap_or(SIM_PORT);
    SocketAddr::new(host_addr(host).ip(), port)
}

/// Whether `addr` is an attacker host's.
fn is_attacker(opts: &SimOptions, e: Eclipse, addr: SocketAddr) -> bool {
    (opts.nodes..opts.nodes + e.hosts).any(|h| host_addr(h).ip() == addr.ip())
}

/// The hash power shares with the attacker's appended after the nodes'
/// (its private chain's finds), at `power` of the total.
fn share_power(shares: &mut Vec<f64>, opts: &SimOptions) {
    if let Some(e) = opts.eclipse {
        let honest: f64 = shares.iter().sum();
        shares.push(honest * e.power / (1.0 - e.power));
    }
}

/// The attacker's account: the first simulated user (funded in genesis;
/// an eclipse run sends no other load from it).
fn attacker_key(seed: u64) -> Keypair {
    crate::setup::key_for(seed, "user", 0)
}

/// The victim owner's account: paid by the attacker, the contract's seller.
fn merchant(seed: u64) -> Address {
    crate::setup::key_for(seed, "merchant", 0).address()
}

/// Where the attacker's conflicting payment goes: its own second account.
fn refuge(seed: u64) -> Address {
    crate::setup::key_for(seed, "refuge", 0).address()
}

/// A transaction of the attacker's, at a fee every node relays.
fn attacker_tx(seed: u64, network: BlockHash, nonce: u64, payload: Payload) -> SignedTx {
    SignedTx::sign_at_rate(
        &attacker_key(seed),
        nonce,
        FeeRate::per_kb(1_000),
        network,
        payload,
    )
}

impl World {
    /// Starts the attack: every attacker host's listener and dialers, the
    /// honest nodes' churn, the check for eclipses and the double spend,
    /// all until `stop` (the end of the main phase).
    pub(crate) fn start_eclipse(
        self: &Arc<Self>,
        stop: &CancellationToken,
        tasks: &tokio_util::task::TaskTracker,
    ) {
        let Some(e) = self.opts.eclipse else { return };
        {
            let mut s = lock(&self.shared);
            for v in victims(&self.opts, e) {
                s.attack.victims.insert(v, VictimState::default());
            }
        }
        for k in 0..e.hosts {
            let host = self.opts.nodes + k;
            self.net.listen_on_every_port(host);
            tasks.spawn(self.clone().attacker_listener(host, stop.clone()));
            for v in victims(&self.opts, e) {
                tasks.spawn(self.clone().attacker_dialer(host, v, stop.clone()));
            }
        }
        tasks.spawn(self.clone().churn_loop(e, stop.clone()));
        tasks.spawn(self.clone().eclipse_watch(e, stop.clone()));
    }

    /// Counts an event of the attack in the report's `fault_events`.
    pub(super) fn count(&self, what: &str) {
        *lock(&self.shared)
            .fault_events
            .entry(what.to_string())
            .or_insert(0) += 1;
    }

    pub(super) fn released(&self, victim: usize) -> Option<CancellationToken> {
        lock(&self.shared)
            .attack
            .victims
            .get(&victim)
            .map(|v| v.released.clone())
    }
}

/// The eclipse's figures, from the attacker's record and the final chain
/// (`ledger`: the state of the final best chain).
pub(crate) fn report(
    opts: &SimOptions,
    record: &AttackRecord,
    start: Instant,
    ledger: &escrow::Ledger,
) -> Option<EclipseReport> {
    let e = opts.eclipse?;
    let times: Vec<Option<f64>> =
        victims(opts, e)
            .map(|v| {
                record.victims.get(&v).and_then(|s| s.eclipsed_at).map(|t| {
                    crate::options::round3(t.saturating_duration_since(start).as_secs_f64())
                })
            })
            .collect();
    let eclipsed = times.iter().flatten().count();
    let per = |f: &dyn Fn(&VictimState) -> f64| -> Vec<f64> {
        victims(opts, e)
            .map(|v| record.victims.get(&v).map_or(0.0, f))
            .map(|x| (x * 1e4).round() / 1e4)
            .collect()
    };
    let checks = |s: &VictimState| s.checks.max(1) as f64;
    let double_spend = record.double_spend.clone().map(|mut d| {
        let seed = opts.seed;
        let paid = Amount::new(PAYMENT);
        d.payment_reverted =
            ledger.balance(&merchant(seed)) < paid && ledger.balance(&refuge(seed)) >= paid;
        d.release_reverted = ledger
            .contracts()
            .values()
            .filter(|c| c.seller == merchant(seed))
            .all(|c| c.state != escrow::contract::State::Released);
        d
    });
    Some(EclipseReport {
        hosts: e.hosts,
        addrs: e.addrs,
        victims: e.victims,
        churn_s: e.churn.as_secs_f64(),
        eclipsed,
        eclipsed_share: eclipsed as f64 / e.victims as f64,
        time_to_eclipse_s: times,
        eclipsed_time_share: per(&|s| s.eclipsed_checks as f64 / checks(s)),
        longest_eclipse_s: per(&|s| s.longest as f64 * CHECK_EVERY.as_secs_f64()),
        outbound_held_share: per(&|s| s.outbound_held / checks(s)),
        attacker_connections: record.accepted,
        double_spend,
    })
}

mod hosts;
mod spend;

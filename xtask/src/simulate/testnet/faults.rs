//! What the testnet does to its nodes once they are up: cuts and heals
//! links in the network itself, mines, and makes one host misbehave; and
//! the wait for the nodes to connect that `up` and `heal` share.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::super::net::{Net, NodeProc, prefix};
use super::hosts::{self, State};

/// How long a testnet step may take: a partition waits out the nodes'
/// idle timeout (45 s) where the kernel cannot close sockets at once, and
/// a heal the longest redial backoff (30 s).
pub(super) const STEP: Duration = Duration::from_secs(120);

/// Waits until every node has as many peers as it can have among the
/// others (8 outbound at most, so at least min(N - 1, 8)).
pub(super) fn wait_connected(net: &mut Net, state: &State) -> anyhow::Result<()> {
    let want = (state.hosts.len() - 1).min(8) as u64;
    let deadline = Instant::now() + STEP;
    loop {
        let mut counts = Vec::new();
        for n in net.live() {
            counts.push(net.get(n, "/status")?["peers"].as_u64().unwrap_or(0));
        }
        if counts.iter().all(|c| *c >= want) {
            net.clear_spinner();
            println!("connected: peers per node {counts:?}, learned by address gossip from node 0");
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "the nodes did not connect within {} s: peers per node {counts:?}",
                STEP.as_secs()
            );
        }
        net.tick()?;
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The IP addresses of a node's live peers' connections.
fn peer_ips(net: &Net, node: &NodeProc) -> anyhow::Result<Vec<String>> {
    let peers = net.get(node, "/peers")?;
    Ok(peers
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p["remote"].as_str())
                .filter_map(|r| r.rsplit_once(':').map(|(ip, _)| ip.to_string()))
                .collect()
        })
        .unwrap_or_default())
}

/// `0,1 2,3` → `[[0, 1], [2, 3]]`: host numbers below `hosts`, each in
/// one group at most.
fn parse_groups(groups: &[String], hosts: usize) -> anyhow::Result<Vec<Vec<usize>>> {
    let mut seen = BTreeSet::new();
    let mut parsed: Vec<Vec<usize>> = Vec::new();
    for g in groups {
        let mut group = Vec::new();
        for part in g.split(',') {
            let i: usize = part
                .trim()
                .parse()
                .with_context(|| format!("`{g}`: give host numbers, e.g. 0,1"))?;
            if i >= hosts {
                bail!(
                    "no host {i}: the testnet has hosts 0 to {}",
                    hosts.saturating_sub(1)
                );
            }
            if !seen.insert(i) {
                bail!("host {i} is in two groups");
            }
            group.push(i);
        }
        parsed.push(group);
    }
    Ok(parsed)
}

pub(super) fn partition(net: &mut Net, state: &mut State, groups: &[String]) -> anyhow::Result<()> {
    let parsed = parse_groups(groups, state.hosts.len())?;
    for (gi, group) in parsed.iter().enumerate() {
        for (gj, other) in parsed.iter().enumerate() {
            if gi == gj {
                continue;
            }
            for a in group {
                for b in other {
                    let (ns, ip) = (state.host(*a)?.ns.clone(), state.host(*b)?.ip.clone());
                    hosts::ip(&["-n", &ns, "route", "add", "prohibit", &format!("{ip}/32")])?;
                    state.cuts.push((*a, *b));
                    state.save()?;
                    // Close the connections already open, where the kernel
                    // can (otherwise the nodes' idle timeout does).
                    let _ = hosts::run(
                        Command::new("ip").args(["netns", "exec", &ns, "ss", "-K", "dst", &ip]),
                    );
                }
            }
        }
    }
    println!(
        "partition: {}; waiting for the nodes to lose the other side",
        groups.join(" | ")
    );
    let deadline = Instant::now() + STEP;
    loop {
        let mut crossing = Vec::new();
        for (a, b) in &state.cuts {
            let ips = peer_ips(net, net.node(*a)?)?;
            if ips.contains(&state.host(*b)?.ip) {
                crossing.push(format!("{a}→{b}"));
            }
        }
        if crossing.is_empty() {
            net.clear_spinner();
            println!("partitioned: no node has a peer across the cut");
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "links still up across the cut after {} s: {}",
                STEP.as_secs(),
                crossing.join(" ")
            );
        }
        net.tick()?;
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub(super) fn heal(net: &mut Net, state: &mut State) -> anyhow::Result<()> {
    let cuts = state.cuts.clone();
    for (a, b) in &cuts {
        let (ns, ip) = (state.host(*a)?.ns.clone(), state.host(*b)?.ip.clone());
        // A route already gone ("No such process") is healed.
        match hosts::ip(&["-n", &ns, "route", "del", "prohibit", &format!("{ip}/32")]) {
            Err(e) if !format!("{e:#}").contains("No such process") => return Err(e),
            _ => {}
        }
        state.cuts.retain(|c| c != &(*a, *b));
        state.save()?;
    }
    println!(
        "heal: {} cut links restored; waiting for the nodes to reconnect and agree",
        cuts.len()
    );
    wait_connected(net, state)?;
    net.settle()?;
    let s = net.get(net.node(0)?, "/status")?;
    println!(
        "healed: every node is on tip {} at height {}",
        prefix(s["tip"].as_str().unwrap_or("?"), 12),
        s["height"]
    );
    Ok(())
}

pub(super) fn mine(net: &Net, state: &State, node: usize, blocks: u64) -> anyhow::Result<()> {
    state.host(node)?;
    net.post(net.node(node)?, "/mine", json!({ "blocks": blocks }))?;
    let s = net.get(net.node(node)?, "/status")?;
    println!(
        "node {node} mined {blocks} block(s): height {}",
        s["height"]
    );
    Ok(())
}

pub(super) fn misbehave(
    net: &mut Net,
    state: &State,
    host: usize,
    target: usize,
) -> anyhow::Result<()> {
    if host == target {
        bail!("a host cannot misbehave towards itself");
    }
    let (bad, victim) = (state.host(host)?.clone(), state.host(target)?.clone());
    let node = net.node(target)?;
    let before: Vec<Value> = net
        .get(node, "/peers")?
        .as_array()
        .cloned()
        .unwrap_or_default();
    let others_before: BTreeSet<String> = before
        .iter()
        .filter_map(|p| p["remote"].as_str())
        .filter(|r| !r.starts_with(&format!("{}:", bad.ip)))
        .map(str::to_string)
        .collect();
    println!(
        "misbehave: host {host} ({}) sends node {target} ({}) a frame that is not one; node {target} has {} peers, {} from other hosts",
        bad.ip,
        victim.p2p(),
        before.len(),
        others_before.len()
    );
    let me = std::env::current_exe().context("cannot find this program")?;
    let network = net.get(net.node(target)?, "/status")?["network"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    hosts::run(
        Command::new("ip")
            .args(["netns", "exec", &bad.ns])
            .arg(&me)
            .args(["testnet", "garbage", &victim.p2p(), &network]),
    )?;

    let deadline = Instant::now() + Duration::from_secs(30);
    let ip_ban = json!({"kind": "ip", "value": bad.ip});
    loop {
        let node = net.node(target)?;
        let bans = net.get(node, "/bans")?;
        let banned = bans.as_array().is_some_and(|b| {
            b.iter()
                .any(|x| x["kind"] == ip_ban["kind"] && x["value"] == ip_ban["value"])
        });
        let ips = peer_ips(net, node)?;
        if banned && !ips.contains(&bad.ip) {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "node {target} did not ban {} and drop its peers within 30 s: bans {bans}, peer IPs {ips:?}",
                bad.ip
            );
        }
        net.tick()?;
    }
    net.clear_spinner();
    println!(
        "  node {target} banned IP {} (GET /bans) and has no peer from it",
        bad.ip
    );
    let node = net.node(target)?;
    let after: BTreeSet<String> = net
        .get(node, "/peers")?
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p["remote"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let lost: Vec<&String> = others_before.difference(&after).collect();
    if !lost.is_empty() {
        bail!("node {target} lost peers of other hosts: {lost:?}");
    }
    println!(
        "  its {} peers from other hosts kept their slots",
        others_before.len()
    );
    // Node `host` itself is refused if it dials again (its IP is banned):
    // a while later it still has no link to the target.
    std::thread::sleep(Duration::from_secs(3));
    let own = peer_ips(net, net.node(host)?)?;
    if own.contains(&victim.ip) {
        bail!("node {host} is connected to node {target} again: the ban did not hold");
    }
    if own.is_empty() {
        bail!("node {host} lost every peer: only node {target} banned it");
    }
    println!(
        "  node {host}'s own node is refused by node {target}, and stays connected to the others"
    );
    Ok(())
}

/// The protocol version this handshake speaks (`docs/PROTOCOL.md`,
/// "Versions"): xtask depends on no crate of the workspace, so it writes
/// the few bytes of a handshake itself.
const PROTOCOL_VERSION: u8 = 5;

/// A frame: the body's length (4 bytes, big-endian), then the body.
fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = u32::try_from(body.len())
        .unwrap_or(u32::MAX)
        .to_be_bytes()
        .to_vec();
    out.extend_from_slice(body);
    out
}

/// Connects to `addr` as a peer of the network `network` (hex): a real
/// handshake (`docs/PROTOCOL.md`, "Messages": tag 0, version, network, a
/// node id, no listening address, genesis as its tip, no work, a user
/// agent), the node's own handshake read and acknowledged, then a frame
/// whose length prefix says 6 bytes and whose body decodes as no message.
/// An admitted peer's offence bans its IP; a connection's before its
/// handshake bans only its exact address.
pub(super) fn garbage(addr: &str, network: &str) -> anyhow::Result<()> {
    let network = (0..network.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(network.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<Vec<u8>, _>>()
        .ok()
        .filter(|b| b.len() == 32)
        .with_context(|| format!("`{network}` is not a network id (64 hex digits)"))?;
    let mut stream =
        TcpStream::connect(addr).with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut hello = vec![0u8, PROTOCOL_VERSION];
    hello.extend_from_slice(&network);
    hello.extend(std::iter::repeat_n(0x5a, 32)); // node id
    hello.push(0); // no listening address
    hello.extend_from_slice(&network); // best tip: genesis
    hello.push(0); // best height 0
    hello.extend([0u8; 32]); // total work
    let agent = b"xtask-misbehave";
    hello.push(agent.len() as u8);
    hello.extend_from_slice(agent);
    stream.write_all(&frame(&hello))?;
    // The node's handshake (and perhaps its ack): read one frame, answer
    // with an ack (tag 1), which makes the connection live.
    let mut len = [0u8; 4];
    std::io::Read::read_exact(&mut stream, &mut len).context("the node sent no handshake")?;
    let mut body = vec![0u8; u32::from_be_bytes(len).min(1 << 20) as usize];
    std::io::Read::read_exact(&mut stream, &mut body).context("the node's handshake was cut")?;
    if body.first() != Some(&0) {
        anyhow::bail!(
            "the node answered the handshake with message tag {:?}",
            body.first()
        );
    }
    stream.write_all(&frame(&[1]))?;
    stream.write_all(&[0, 0, 0, 6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])?;
    stream.flush()?;
    // Wait for the node to close the connection.
    let mut rest = [0u8; 4096];
    while matches!(std::io::Read::read(&mut stream, &mut rest), Ok(n) if n > 0) {}
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{PROTOCOL_VERSION, parse_groups};

    /// The handshake's version is written here by hand: it must be the
    /// one the node speaks (`crates/wire`), or the node refuses it (a
    /// stale 4 here failed `.ci/testnet` once the node moved to 5).
    #[test]
    fn the_handshake_speaks_the_nodes_protocol_version() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let wire = std::fs::read_to_string(root.join("crates/wire/src/message.rs")).unwrap();
        let line = wire
            .lines()
            .find(|l| l.starts_with("pub const PROTOCOL_VERSION: u32 = "))
            .expect("crates/wire/src/message.rs defines PROTOCOL_VERSION");
        let version: u8 = line
            .trim_start_matches("pub const PROTOCOL_VERSION: u32 = ")
            .trim_end_matches(';')
            .parse()
            .unwrap();
        assert_eq!(PROTOCOL_VERSION, version);
    }

    fn groups(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn groups_are_host_numbers_each_in_one_group() {
        assert_eq!(
            parse_groups(&groups(&["0,1", "2,3"]), 4).ok(),
            Some(vec![vec![0, 1], vec![2, 3]])
        );
        assert_eq!(
            parse_groups(&groups(&["0", "1,2"]), 4).ok(),
            Some(vec![vec![0], vec![1, 2]])
        );
        for (bad, why) in [
            (&["0,1", "1,2"][..], "in two groups"),
            (&["0,1", "4"][..], "no host 4"),
            (&["0,x", "2"][..], "give host numbers"),
        ] {
            let e = parse_groups(&groups(bad), 4)
                .err()
                .map(|e| format!("{e:#}"));
            assert!(
                e.as_deref().is_some_and(|e| e.contains(why)),
                "{bad:?}: {e:?}"
            );
        }
    }
}

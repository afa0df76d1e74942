//! What a run's world is drawn from before any node starts: the hosts
//! (region and bandwidth), the link latency model, and the accounts' keys.

use escrow::Keypair;

use crate::net::{HostSpec, Latency};
use crate::options::SimOptions;
use crate::rng::SimRng;

/// The hosts of a run, drawn from `rng`: one per node (its region by the
/// regions' shares, with that region's bandwidth), then the Byzantine or
/// the eclipse's attacker hosts, whose place comes after every node's
/// draw, so the nodes' hosts are what they were without them.
pub(crate) fn hosts(opts: &SimOptions, rng: &mut SimRng) -> Vec<HostSpec> {
    let mut hosts: Vec<HostSpec> = (0..opts.nodes)
        .map(|_| match &opts.regions {
            Some(r) => {
                let mut x = rng.unit() * r.share.iter().sum::<f64>();
                let mut region = 0;
                for (i, s) in r.share.iter().enumerate() {
                    region = i;
                    if x < *s {
                        break;
                    }
                    x -= s;
                }
                HostSpec {
                    region,
                    upload_bps: r.upload_bps.get(region).copied().unwrap_or(opts.upload_bps),
                }
            }
            None => HostSpec {
                region: 0,
                upload_bps: opts.upload_bps,
            },
        })
        .collect();
    let byzantine = opts.faults.map_or(0, |f| f.byzantine);
    let attackers = opts.eclipse.map_or(0, |e| e.hosts);
    hosts.extend((0..byzantine + attackers).map(|_| HostSpec {
        region: 0,
        upload_bps: opts.upload_bps,
    }));
    hosts
}

/// The latency model of a run: the regions' matrix, or the option's.
pub(crate) fn latency(opts: &SimOptions) -> Latency {
    match &opts.regions {
        Some(r) => Latency::Regions(r.latency_ms.clone()),
        None => opts.latency.clone(),
    }
}

/// The key of the `i`th account of a `role` (a user, a node's miner), from
/// the seed.
pub(crate) fn key_for(seed: u64, role: &str, i: usize) -> Keypair {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"escrow-chain sim key");
    hasher.update(&seed.to_le_bytes());
    hasher.update(role.as_bytes());
    hasher.update(&(i as u64).to_le_bytes());
    Keypair::from_seed(*hasher.finalize().as_bytes())
}

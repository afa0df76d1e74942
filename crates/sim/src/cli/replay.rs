//! A run's options spelled as the `cargo xtask sim` command that replays
//! it (printed with a failed check, and by sweeps and swarms).

use super::{Args, dur};

impl Args {
    /// This run's options as `cargo xtask sim` arguments, with `seed`.
    pub(super) fn replay(&self, seed: u64) -> String {
        let mut parts = vec!["cargo xtask sim".to_string()];
        if self.swarm {
            parts.push("--swarm --seeds 1".into());
            parts.push(format!("--fault-gap {}", dur(self.fault_gap)));
            if self.store_faults {
                parts.push("--store-faults".into());
            }
            if self.byzantine > 0 {
                parts.push(format!("--byzantine {}", self.byzantine));
            }
        }
        parts.push(format!("--seed {seed}"));
        if let Some(n) = self.nodes {
            parts.push(format!("--nodes {n}"));
        }
        if let Some(b) = self.block_interval {
            parts.push(format!("--block-interval {}", dur(b)));
        }
        parts.push(format!("--latency {}", self.latency));
        parts.push(format!("--bandwidth {}", self.bandwidth));
        parts.push(format!("--seeds-per-node {}", self.seeds_per_node));
        if let Some(d) = self.duration {
            parts.push(format!("--duration {}", dur(d)));
        }
        if let Some(b) = self.blocks {
            parts.push(format!("--blocks {b}"));
        }
        parts.push(format!("--tx-rate {}", self.tx_rate));
        parts.push(format!("--escrow-share {}", self.escrow_share));
        if let Some(u) = self.users {
            parts.push(format!("--users {u}"));
        }
        parts.push(format!("--hash-power {}", self.hash_power));
        if let Some(s) = self.settle_bound {
            parts.push(format!("--settle-bound {}", dur(s)));
        }
        if let Some(b) = self.block_size {
            parts.push(format!("--block-size {b}"));
        }
        parts.push(format!(
            "--ping-interval {} --idle-timeout {} --relay {}",
            dur(self.ping_interval),
            dur(self.idle_timeout),
            match self.relay {
                p2p_node::Relay::Compact => "compact",
                p2p_node::Relay::Legacy => "legacy",
            }
        ));
        if self.no_cpu {
            parts.push("--no-cpu".into());
        } else {
            parts.push(format!(
                "--cores {} --cpu-speed {}",
                self.cores, self.cpu_speed
            ));
            if let Some(m) = &self.cpu_model {
                parts.push(format!("--cpu-model {}", m.display()));
            }
        }
        if let Some(power) = self.selfish_power {
            parts.push(format!(
                "--selfish-power {power} --selfish-peers {}",
                self.selfish_peers
            ));
            if let Some(ms) = self.selfish_link_ms {
                parts.push(format!("--selfish-link-ms {ms}"));
            }
        }
        if let Some(hosts) = self.eclipse_hosts {
            parts.push(format!(
                "--eclipse-hosts {hosts} --eclipse-addrs {} --eclipse-victims {} --eclipse-churn {} --eclipse-power {} --eclipse-confirmations {}",
                self.eclipse_addrs.unwrap_or(hosts * 10),
                self.eclipse_victims,
                dur(self.eclipse_churn),
                self.eclipse_power,
                self.eclipse_confirmations
            ));
        }
        parts.join(" ")
    }
}

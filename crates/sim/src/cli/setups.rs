//! `--setup NAME`: published setups as presets. A setup is a list of
//! options put before the command line's own, so an option given on the
//! command line wins over the setup's (`--setup bitcoin-2016 --nodes 1000`).
//! `docs/SIMULATION.md`, "Published setups", gives the source of each
//! input.

/// One preset.
pub(super) struct Setup {
    /// `--setup NAME`.
    pub name: &'static str,
    /// The options it stands for, in layers (a later one overrides).
    pub layers: &'static [&'static [&'static str]],
}

/// Bitcoin's network of 2016: SimBlock's Bitcoin setup (6,000 nodes,
/// 10-minute blocks, 535 kB blocks) with SimBlock's regions, latencies and
/// upload bandwidths of 2015, the node's own relay (announce, request,
/// block) and its 8 outbound peers, processors half as fast as the
/// reference machine, Bitcoin Core's ping interval and inactivity timeout,
/// and no load but the memo transfers that fill the blocks.
const BITCOIN_2016: &[&str] = &[
    "--nodes",
    "6000",
    "--block-interval",
    "10m",
    "--latency",
    "bitcoin-2015",
    "--block-size",
    "535kB",
    "--tx-rate",
    "0",
    "--users",
    "500",
    "--cpu-speed",
    "0.5",
    "--ping-interval",
    "2m",
    "--idle-timeout",
    "20m",
    "--relay",
    "legacy",
];

/// The same network at 200 nodes, for CI and quick looks: only the node
/// count and the users change.
const SMALL: &[&str] = &["--nodes", "200", "--users", "100"];

/// Every setup.
pub(super) const SETUPS: &[Setup] = &[
    Setup {
        name: "bitcoin-2016",
        layers: &[BITCOIN_2016],
    },
    Setup {
        name: "bitcoin-2016-small",
        layers: &[BITCOIN_2016, SMALL],
    },
];

/// `args` (the command line after the program's name) with the options of
/// the setup it names, if any, put in front.
///
/// # Errors
///
/// An unknown setup name, or `--setup` without one.
pub(super) fn expand(args: &[String]) -> anyhow::Result<Vec<String>> {
    let mut name = None;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--setup" {
            name = Some(
                iter.next()
                    .ok_or_else(|| anyhow::anyhow!("--setup needs a name"))?
                    .as_str(),
            );
        } else if let Some(n) = arg.strip_prefix("--setup=") {
            name = Some(n);
        }
    }
    let Some(name) = name else {
        return Ok(args.to_vec());
    };
    let setup = SETUPS.iter().find(|s| s.name == name).ok_or_else(|| {
        let names: Vec<&str> = SETUPS.iter().map(|s| s.name).collect();
        anyhow::anyhow!("no setup `{name}`; the setups: {}", names.join(", "))
    })?;
    Ok(setup
        .layers
        .iter()
        .flat_map(|layer| layer.iter())
        .map(|a| (*a).to_string())
        .chain(args.iter().cloned())
        .collect())
}

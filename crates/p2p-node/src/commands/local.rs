//! The subcommands that need no node: `keygen`, `address`, `genesis init`,
//! `completions`, `check` (a stopped node's store); and reading an account from a name or a key file.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use clap::CommandFactory;
use escrow::genesis::{Allocation, DEV_BALANCE};
use escrow::{Address, Amount, Genesis, Keypair, dev};
use serde_json::json;

use super::args::{AccountArg, Cli, GenesisInit};
use super::ctx::Ctx;
use super::errors::Failure;
use super::words::who;

/// The account an [`AccountArg`] names: the address given, or the key
/// file's.
pub(super) fn account_of(a: &AccountArg) -> anyhow::Result<Address> {
    match (&a.account, &a.key) {
        (Some(address), _) => Ok(*address),
        (None, Some(path)) => Ok(Keypair::load(path)?.address()),
        (None, None) => Err(Failure::usage("name an account, or give --key FILE").into()),
    }
}

/// `address NAME | --key FILE`.
pub(super) fn address(ctx: &Ctx, a: &AccountArg) -> anyhow::Result<()> {
    let address = account_of(a)?;
    let name = dev::name_of(&address)
        .map(str::to_string)
        .or_else(|| super::keyring::name_of(&address));
    let answer = json!({"address": address, "name": name});
    ctx.print(&answer, || address.to_string())
}

/// `keygen --out FILE` or `keygen --name NAME`.
pub(super) fn keygen(ctx: &Ctx, out: Option<&Path>, name: Option<&str>) -> anyhow::Result<()> {
    let path = match (out, name) {
        (Some(out), _) => out.to_path_buf(),
        (None, Some(name)) => {
            super::keyring::check_name(name).map_err(Failure::usage)?;
            let dir = super::keyring::dir();
            let made = !dir.exists();
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create the key directory {}", dir.display()))?;
            // Owner-only, if this made it (a directory the user named is
            // theirs to set).
            #[cfg(unix)]
            if made {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
            }
            super::keyring::path_of(name)
        }
        (None, None) => return Err(Failure::usage("give --out FILE or --name NAME").into()),
    };
    let key = Keypair::generate().context("cannot generate a key")?;
    key.save(&path)?;
    let answer = json!({"address": key.address(), "file": path, "name": name});
    ctx.print(&answer, || key.address().to_string())
}

/// `keys`: the named keys.
pub(super) fn keys(ctx: &Ctx) -> anyhow::Result<()> {
    let keys = super::keyring::list();
    let answer: Vec<_> = keys
        .iter()
        .map(|(name, address)| json!({"name": name, "address": address}))
        .collect();
    ctx.print(&answer, || {
        if keys.is_empty() {
            return format!(
                "no named keys in {} (`p2p-node keygen --name NAME` makes one)",
                super::keyring::dir().display()
            );
        }
        keys.iter()
            .map(|(name, address)| format!("{name:<12} {address}"))
            .collect::<Vec<_>>()
            .join("\n")
    })
}

/// `purge`: removes a stopped node's store (and its repair copy) and its
/// token, then the directory if nothing else is in it.
pub(super) fn purge(ctx: &Ctx, yes: bool) -> anyhow::Result<()> {
    let dir = ctx.data_dir();
    let store = dir.join(p2p_node::store::STORE_FILE);
    let fail = |code: &'static str, message: String| Failure {
        exit: super::errors::Exit::Local,
        code,
        message,
    };
    if !store.exists() {
        return Err(fail(
            "no_chain",
            format!(
                "there is no chain in {} (no {})",
                dir.display(),
                store.display()
            ),
        )
        .into());
    }
    // A running node holds the store open, and redb refuses a second
    // opener: opened here and kept open until the files are gone, so no
    // node can start on it meanwhile. A store redb cannot read at all
    // (damaged) is removed as it is.
    let _held = match redb::Database::open(&store) {
        Ok(db) => Some(db),
        Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
            return Err(fail(
                "store_in_use",
                format!("a node is using {}: stop it first", store.display()),
            )
            .into());
        }
        Err(_) => None,
    };
    let bytes = std::fs::metadata(&store).map(|m| m.len()).unwrap_or(0);
    if !yes {
        use std::io::{BufRead, IsTerminal, Write};
        if !std::io::stdin().is_terminal() {
            return Err(Failure::usage(format!(
                "purge removes {} ({bytes} bytes) for good: give --yes to do it without a question",
                store.display()
            ))
            .into());
        }
        let mut stderr = std::io::stderr();
        let _ = write!(
            stderr,
            "remove the chain in {} ({bytes} bytes) for good? type yes: ",
            dir.display()
        );
        let _ = stderr.flush();
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        if line.trim() != "yes" {
            return Err(fail("not_confirmed", "nothing removed".to_string()).into());
        }
    }
    let mut repair_copy = store.clone().into_os_string();
    repair_copy.push(".");
    repair_copy.push(p2p_node::store::BEFORE_REPAIR_SUFFIX);
    let mut removed = Vec::new();
    for path in [
        store,
        std::path::PathBuf::from(repair_copy),
        dir.join(p2p_node::client::COOKIE_FILE),
    ] {
        match std::fs::remove_file(&path) {
            Ok(()) => removed.push(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(
                    fail("failed", format!("cannot remove {}: {e}", path.display())).into(),
                );
            }
        }
    }
    // The directory too, if that left it empty.
    let dir_removed = std::fs::remove_dir(&dir).is_ok();
    let answer = json!({"removed": removed, "bytes": bytes, "directory_removed": dir_removed});
    ctx.print(&answer, || {
        let mut lines: Vec<String> = removed
            .iter()
            .map(|p| format!("removed {}", p.display()))
            .collect();
        if dir_removed {
            lines.push(format!("removed the empty directory {}", dir.display()));
        }
        lines.join("\n")
    })
}

/// `check`: reads back every record of the store in the data directory
/// (the node stopped) and lists the damaged ones; a damaged store is a
/// failure (exit 6, `store_damaged`), after the report.
pub(super) fn check(ctx: &Ctx) -> anyhow::Result<()> {
    let dir = ctx.data_dir();
    let file = dir.join(p2p_node::store::STORE_FILE);
    let report = p2p_node::store::check(&dir).map_err(|e| Failure {
        exit: super::errors::Exit::Local,
        code: "store_damaged",
        message: format!(
            "{e}; move {} aside and start the node again to sync the chain from peers",
            file.display()
        ),
    })?;
    let damage: Vec<_> = report
        .damage
        .iter()
        .map(|d| json!({"table": d.table, "key": d.key, "problem": d.problem}))
        .collect();
    let answer = json!({"file": file, "records": report.records, "damage": damage});
    ctx.print(&answer, || {
        let mut lines: Vec<String> = report
            .records
            .iter()
            .map(|(table, n)| format!("{table}: {n} records"))
            .collect();
        lines.extend(report.damage.iter().map(|d| format!("damaged: {d}")));
        lines.join("\n")
    })?;
    if report.is_intact() {
        return Ok(());
    }
    Err(Failure {
        exit: super::errors::Exit::Local,
        code: "store_damaged",
        message: format!(
            "{} damaged records in {}; damaged bodies: start the node with --peer HOST:PORT of \
             a node that has the chain: a body among the blocks saved after the last ledger \
             snapshot is fetched again at start, any other once the node reads it (ask the \
             running node for it: `p2p-node block HASH`), and written back; damage elsewhere \
             (headers, undo records, the index, the snapshot): move the file aside and start \
             again to sync the chain from peers",
            report.damage.len(),
            file.display()
        ),
    }
    .into())
}

/// `completions SHELL`: the script on stdout (written whole; a closed
/// stdout drops it).
pub(super) fn completions(shell: clap_complete::Shell) {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "p2p-node", &mut script);
    let _ = std::io::stdout().write_all(&script);
}

/// The genesis `genesis init` describes.
fn genesis_of(g: &GenesisInit) -> anyhow::Result<Genesis> {
    let mut genesis = Genesis::dev();
    genesis.name.clone_from(&g.name);
    genesis.coinbase_reward = Amount::new(g.reward);
    genesis.params.initial_target_bits = g.target_bits;
    genesis.timestamp_ms = match g.timestamp_ms {
        Some(t) => t,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .context("the system clock is before 1970")?,
    };
    if !g.allocs.is_empty() {
        genesis.allocations.clear();
        for (to, amount) in &g.allocs {
            if genesis.allocations.iter().any(|a| a.to == *to) {
                return Err(Failure::usage(format!(
                    "{} is given twice with --alloc: give each account once",
                    who(to)
                ))
                .into());
            }
            genesis.allocations.push(Allocation {
                to: *to,
                amount: Amount::new(*amount),
            });
        }
    }
    let total = genesis
        .allocations
        .iter()
        .try_fold(Amount::ZERO, |acc, a| acc.checked_add(a.amount));
    if total.is_none() {
        return Err(Failure::usage(format!(
            "the --alloc amounts add up to more than {}: give smaller ones",
            u64::MAX
        ))
        .into());
    }
    Ok(genesis)
}

/// `genesis init`: writes the file (or prints it) and says the network id.
pub(super) fn genesis_init(ctx: &Ctx, g: &GenesisInit) -> anyhow::Result<()> {
    let genesis = genesis_of(g)?;
    if g.allocs.is_empty() {
        tell!(
            "warning: no --alloc: the dev accounts get the coins, and anyone can sign as them \
             (their keys derive from their names); for a network of your own give --alloc \
             ACCOUNT=AMOUNT (a named key, a key file or an address)"
        );
    }
    let text = genesis.to_json();
    let network = genesis.network_id();
    let Some(out) = &g.out else {
        say!("{text}");
        return Ok(());
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if g.force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = options.open(out).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow::anyhow!(
                "{} already exists; not overwriting it (give --force to replace it)",
                out.display()
            )
        } else {
            anyhow::anyhow!("cannot write the genesis file {}: {e}", out.display())
        }
    })?;
    file.write_all(format!("{text}\n").as_bytes())
        .with_context(|| format!("cannot write the genesis file {}", out.display()))?;
    let answer = json!({"file": out, "network": network});
    ctx.print(&answer, || {
        let accounts = genesis.allocations.len();
        let default = if g.allocs.is_empty() {
            format!(" (the dev accounts, {DEV_BALANCE} each)")
        } else {
            String::new()
        };
        format!(
            "wrote {}: network {network}, {accounts} accounts{default}, reward {}, target {} bits\n\
             start each node of this network with --genesis {}",
            out.display(),
            genesis.coinbase_reward,
            genesis.params.initial_target_bits,
            out.display()
        )
    })
}

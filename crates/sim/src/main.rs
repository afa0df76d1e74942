//! `sim`: the deterministic simulator's command line: one run, a sweep or
//! a fault swarm, with a report and pictures. `cargo xtask sim` builds it
//! in release mode and runs it; `sim --help` lists the options and
//! `docs/SIMULATION.md` documents them.

mod cli;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    cli::run(&args)
}

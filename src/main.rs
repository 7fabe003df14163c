//! The `shmq` command line.
fn main() {
    std::process::exit(shmq_cli::run());
}

#[path = "cli/mod.rs"]
mod shmq_cli;

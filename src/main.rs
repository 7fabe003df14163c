//! The `shmq` command line.
fn main() {
    // Die quietly on a closed pipe (`shmq export | head`), as Unix tools do,
    // instead of Rust's default of ignoring SIGPIPE and panicking in println!.
    // SAFETY: called first thing in main, before any thread exists; SIG_DFL
    // is a valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    std::process::exit(shmq_cli::run());
}

#[path = "cli/mod.rs"]
mod shmq_cli;

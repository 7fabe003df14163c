//! Subcommands of the `shmq` binary.
pub fn run() -> i32 {
    0
}

//! Liveness: every attached process holds an exclusive `flock` on its own
//! file in `<namespace>/peers/`. The kernel drops the lock when the process
//! dies, however it dies, so "can I take a shared lock on it?" tells a dead
//! peer from a slow one, and a reused PID cannot fool it (the token is a
//! random 64-bit number, not a PID).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};

use crate::error::Error;

/// This process's liveness token in one namespace.
#[derive(Debug)]
pub(crate) struct Peer {
    pub(crate) token: u64,
    path: PathBuf,
    _lock: File,
}

/// A fresh random non-zero token.
pub(crate) fn random_token() -> u64 {
    let mut bytes = [0u8; 8];
    loop {
        if rustix::rand::getrandom(&mut bytes, rustix::rand::GetRandomFlags::empty()).is_err() {
            // No getrandom: fall back to time and pid, which are unique enough
            // for a token that also carries a lock.
            let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
            bytes = (nanos ^ (u64::from(std::process::id()) << 32)).to_le_bytes();
        }
        let token = u64::from_le_bytes(bytes);
        if token != 0 {
            return token;
        }
    }
}

pub(crate) fn peer_path(peers_dir: &Path, token: u64) -> PathBuf {
    peers_dir.join(format!("{token:016x}"))
}

impl Peer {
    /// Creates and locks this process's peer file. The file is locked under a
    /// temporary name and renamed into place, so no checker ever sees it
    /// unlocked.
    pub(crate) fn register(peers_dir: &Path, tmp_dir: &Path, file_mode: u32) -> Result<Peer, Error> {
        let token = random_token();
        let tmp = tmp_dir.join(format!("peer-{token:016x}"));
        let file = OpenOptions::new().read(true).write(true).create_new(true).mode(file_mode).open(&tmp).map_err(|e| Error::io(&tmp, e))?;
        flock(&file, FlockOperation::NonBlockingLockExclusive).map_err(|e| Error::io(&tmp, e.into()))?;
        let _ = std::io::Write::write_all(&mut &file, format!("{}\n", std::process::id()).as_bytes());
        let path = peer_path(peers_dir, token);
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        Ok(Peer { token, path, _lock: file })
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // A clean exit leaves no file behind.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Liveness of a peer token: true while its process holds its lock.
pub(crate) fn is_alive(peers_dir: &Path, token: u64) -> bool {
    let path = peer_path(peers_dir, token);
    let file = match File::open(&path) {
        Ok(file) => file,
        // No file: the peer exited (cleanly, or its file was collected).
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return false,
        // Can't tell (e.g. permissions): assume alive, never recover wrongly.
        Err(_) => return true,
    };
    match flock(&file, FlockOperation::NonBlockingLockShared) {
        Ok(()) => {
            // We got the lock: nobody holds it, so the peer is dead. Remove the
            // stale file while we hold the lock.
            let _ = std::fs::remove_file(&path);
            false
        }
        Err(_) => true,
    }
}

/// Tokens of every peer file in `peers_dir`, with liveness.
pub(crate) fn list_peers(peers_dir: &Path) -> Vec<(u64, bool, Option<u32>)> {
    let Ok(entries) = std::fs::read_dir(peers_dir) else {
        return Vec::new();
    };
    let mut peers = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(token) = name.to_str().and_then(|n| u64::from_str_radix(n, 16).ok()) else {
            continue;
        };
        let pid = std::fs::read_to_string(entry.path()).ok().and_then(|s| s.trim().parse().ok());
        peers.push((token, is_alive(peers_dir, token), pid));
    }
    peers
}

//! Liveness: every attached process holds an exclusive `flock` on its own
//! file in `<namespace>/peers/`. The kernel drops the lock when the process
//! dies, however it dies, so "can I take a shared lock on it?" tells a dead
//! peer from a slow one, and a reused PID cannot fool it (the token is a
//! random 64-bit number, not a PID).
//!
//! A peer file that cannot be opened (a member's file it made unreadable)
//! is judged by the kernel's lock table (`/proc/locks`) instead; if even
//! that cannot tell, the peer counts as dead: "cannot tell" never means
//! "alive for ever" (docs/SECURITY.md).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Once};

use rustix::fs::{flock, FlockOperation};

use crate::error::Error;
use crate::nsdir::{NamespaceDir, Sub};

/// This process's liveness token in one namespace.
#[derive(Debug)]
pub(crate) struct Peer {
    pub(crate) token: u64,
    /// The process that registered it (see [`inherited`]).
    pub(crate) pid: u32,
    dir: Arc<NamespaceDir>,
    /// Closed in `drop`, inside [`OPENING`] (see there).
    lock: std::mem::ManuallyDrop<File>,
    /// Its entry in [`LOCK_FDS`], if one was free.
    fork_entry: Option<usize>,
}

/// How many peer-file locks of one process the fork handler covers (one
/// per namespace open): beyond that, a fork child keeps its copies of the
/// later ones until it closes them.
const FORK_GUARDED: usize = 256;

/// The descriptors of this process's peer-file locks, -1 for a free entry.
/// A `fork` child inherits every descriptor, and a descriptor of the locked
/// file holds the `flock` for as long as any process has it open: a child
/// would keep a dead parent alive to every liveness check. The fork handler
/// points each of these descriptors, in the child only, at `/dev/null`.
static LOCK_FDS: [AtomicI32; FORK_GUARDED] = [const { AtomicI32::new(-1) }; FORK_GUARDED];

/// `/dev/null`, opened once (close-on-exec): what the fork handler puts in
/// place of each lock descriptor, so the child's `File` still closes a
/// descriptor of its own. -1 if it could not be opened (no protection).
static PLACEHOLDER: AtomicI32 = AtomicI32::new(-1);

static INSTALL_FORK_HANDLER: Once = Once::new();

/// Held while a peer file is opened and its descriptor entered in
/// [`LOCK_FDS`], and by a forking thread from its `fork`'s start to its
/// end: a child never inherits a descriptor of a peer file that the table
/// does not list yet (a `flock` taken later through the same open file
/// would be the child's too).
///
/// A spin lock: 1 while held, 0 when free. Its Acquire (taking) and Release
/// (giving back) pair with each other, as any lock's; the table's entries
/// are written only under it or in the single-threaded child, hence
/// Relaxed. Process-local, like the table: loom cannot model `fork`.
static OPENING: AtomicI32 = AtomicI32::new(0);

/// [`OPENING`], held until dropped.
struct Opening;

impl Opening {
    fn hold() -> Self {
        while OPENING.compare_exchange_weak(0, 1, Ordering::Acquire, Ordering::Relaxed).is_err() {
            std::thread::yield_now();
        }
        Opening
    }
}

impl Drop for Opening {
    fn drop(&mut self) {
        OPENING.store(0, Ordering::Release);
    }
}

/// Runs in the forking thread before `fork`: waits out a peer file being
/// opened in another thread (a few system calls), and holds [`OPENING`]
/// through the fork.
unsafe extern "C" fn before_fork() {
    std::mem::forget(Opening::hold());
}

/// Runs in the parent after `fork`: lets registrations go on.
unsafe extern "C" fn after_fork_in_parent() {
    OPENING.store(0, Ordering::Release);
}

extern "C" {
    fn pthread_atfork(
        prepare: Option<unsafe extern "C" fn()>,
        parent: Option<unsafe extern "C" fn()>,
        child: Option<unsafe extern "C" fn()>,
    ) -> std::ffi::c_int;
    fn dup2(old: std::ffi::c_int, new: std::ffi::c_int) -> std::ffi::c_int;
}

/// Runs in a fork child, before `fork` returns there: only
/// async-signal-safe calls (atomics, `dup2`).
unsafe extern "C" fn release_inherited_locks() {
    let placeholder = PLACEHOLDER.load(Ordering::Relaxed);
    for entry in &LOCK_FDS {
        // The child's own copy of the table: its entries name the parent's
        // locks, none of the child's.
        let fd = entry.swap(-1, Ordering::Relaxed);
        if fd >= 0 && placeholder >= 0 {
            // SAFETY: `fd` is open in the child (an entry is cleared before
            // its `File` closes, and the child has a copy of every
            // descriptor), and `dup2` is async-signal-safe. It drops the
            // child's reference to the locked file; the parent's stays.
            unsafe { dup2(placeholder, fd) };
        }
    }
    OPENING.store(0, Ordering::Release);
}

/// Installs the fork handlers, once per process.
fn install_fork_handlers() {
    INSTALL_FORK_HANDLER.call_once(|| {
        let Ok(null) = rustix::fs::open("/dev/null", rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC, rustix::fs::Mode::empty())
        else {
            return;
        };
        PLACEHOLDER.store(std::os::fd::IntoRawFd::into_raw_fd(null), Ordering::Relaxed);
        // SAFETY: registers handlers that touch only statics living for the
        // whole process; the child's makes only async-signal-safe calls.
        // They are never unregistered.
        unsafe { pthread_atfork(Some(before_fork), Some(after_fork_in_parent), Some(release_inherited_locks)) };
    });
}

/// Adds `lock` to the table the fork handler reads; the entry taken, if
/// one was free. The caller holds [`OPENING`] since before it opened it.
fn guard_against_fork(lock: &File, _opening: &Opening) -> Option<usize> {
    let fd = lock.as_raw_fd();
    LOCK_FDS.iter().position(|entry| entry.compare_exchange(-1, fd, Ordering::Relaxed, Ordering::Relaxed).is_ok())
}

/// True in a process other than `pid`: a `fork` child dropping a handle it
/// inherited. Such a child must leave its parent's shared state alone:
/// requeueing the parent's deliveries, freeing its rows or unlinking its
/// peer file would act on a live process's behalf.
pub(crate) fn inherited(pid: u32) -> bool {
    std::process::id() != pid
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

/// The file name of a token in `peers/`.
pub(crate) fn peer_name(token: u64) -> String {
    format!("{token:016x}")
}

/// Longest pid line a peer file holds; reads stop there.
const PID_BYTES: usize = 64;

impl Peer {
    /// Creates and locks this process's peer file. The file is locked under a
    /// temporary name and renamed into place, so no checker ever sees it
    /// unlocked. Its mode is set explicitly (0600, or 0660 in a shared
    /// namespace), whatever this process's umask.
    pub(crate) fn register(dir: &Arc<NamespaceDir>) -> Result<Peer, Error> {
        let token = random_token();
        let tmp = format!("peer-{token:016x}");
        install_fork_handlers();
        // No fork from another thread between the open and the entry in
        // the fork handler's table (on an error below, dropping the peer
        // takes the entry out again).
        let opening = Opening::hold();
        let file = dir.create_file(Sub::Tmp, &tmp)?;
        let guard = crate::segment::TmpGuard(dir, &tmp);
        let fork_entry = guard_against_fork(&file, &opening);
        drop(opening);
        let peer = Peer { token, pid: std::process::id(), dir: dir.clone(), lock: std::mem::ManuallyDrop::new(file), fork_entry };
        flock(&*peer.lock, FlockOperation::NonBlockingLockExclusive).map_err(|e| Error::io(dir.path_of(Sub::Tmp, &tmp), e.into()))?;
        let _ = std::io::Write::write_all(&mut &*peer.lock, format!("{}\n", std::process::id()).as_bytes());
        dir.rename(Sub::Tmp, &tmp, Sub::Peers, &peer_name(token))?;
        drop(guard);
        Ok(peer)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if inherited(self.pid) {
            // A fork child's copy (pointed at /dev/null by the fork handler
            // if the table listed it): the descriptor is the child's to
            // close; the file is the parent's.
            // SAFETY: dropped once, here, and never used again.
            unsafe { std::mem::ManuallyDrop::drop(&mut self.lock) };
            return;
        }
        // No fork between taking the descriptor out of the table and
        // closing it: a child forked in between would keep the lock.
        let opening = Opening::hold();
        if let Some(entry) = self.fork_entry {
            let _ = LOCK_FDS[entry].compare_exchange(self.lock.as_raw_fd(), -1, Ordering::Relaxed, Ordering::Relaxed);
        }
        // A clean exit leaves no file behind.
        self.dir.unlink(Sub::Peers, &peer_name(self.token));
        // SAFETY: dropped once, here, and never used again.
        unsafe { std::mem::ManuallyDrop::drop(&mut self.lock) };
        drop(opening);
    }
}

/// What a liveness check found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Liveness {
    /// Its lock is held: the process lives.
    Alive,
    /// No file, not a liveness file, or its lock is free: the process died.
    Dead,
    /// This process could not look just now (out of file descriptors or
    /// memory): ask again at the next sweep, never act on it.
    Unknown,
}

/// True unless the peer is known dead: recovery acts only on the dead.
pub(crate) fn is_alive(dir: &NamespaceDir, token: u64) -> bool {
    liveness(dir, token) != Liveness::Dead
}

/// Errors that say something about this process (its descriptors, memory
/// or lock table), not about the peer.
fn is_local_shortage(errno: Option<i32>) -> bool {
    use rustix::io::Errno;
    errno.is_some_and(|e| {
        [Errno::MFILE, Errno::NFILE, Errno::NOMEM, Errno::NOLCK, Errno::INTR, Errno::AGAIN, Errno::NOBUFS]
            .iter()
            .any(|known| known.raw_os_error() == e)
    })
}

/// Liveness of a peer token.
pub(crate) fn liveness(dir: &NamespaceDir, token: u64) -> Liveness {
    let name = peer_name(token);
    match dir.open_file(Sub::Peers, &name, false) {
        Ok((file, _)) => match flock(&file, FlockOperation::NonBlockingLockShared) {
            Ok(()) => {
                // We got the lock: nobody holds it, so the peer is dead. Remove
                // the stale file while we hold the lock (in a shared
                // namespace's sticky peers/ only its owner can; gc skips it).
                dir.unlink(Sub::Peers, &name);
                Liveness::Dead
            }
            Err(rustix::io::Errno::WOULDBLOCK) => Liveness::Alive,
            Err(e) if is_local_shortage(Some(e.raw_os_error())) => Liveness::Unknown,
            Err(_) => held_by_anyone(dir, &name),
        },
        // No file: the peer exited (cleanly, or its file was collected).
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Liveness::Dead,
        Err(Error::Io { source, .. }) if is_local_shortage(source.raw_os_error()) => Liveness::Unknown,
        // A symbolic link, FIFO, device or a file of an untrusted user is
        // nobody's liveness file.
        Err(Error::UnsafePath { .. }) => Liveness::Dead,
        // Cannot open it (e.g. a member made it unreadable): ask the kernel.
        Err(_) => held_by_anyone(dir, &name),
    }
}

/// Whether the kernel's lock table shows a `flock` on `peers/<name>`. Dead
/// when there is no table to read (no /proc): a peer we can never check is
/// recovered rather than trusted for ever; Unknown when this process cannot
/// read it just now or it is too long to read whole.
fn held_by_anyone(dir: &NamespaceDir, name: &str) -> Liveness {
    let stat = match dir.stat_errno(Sub::Peers, name) {
        Ok(stat) => stat,
        // Gone since we tried to open it: the peer exited.
        Err(rustix::io::Errno::NOENT) => return Liveness::Dead,
        Err(_) => return Liveness::Unknown,
    };
    match flock_holder(stat.st_dev, stat.st_ino) {
        Ok(Some(_)) => Liveness::Alive,
        Ok(None) => Liveness::Dead,
        // No procfs at all: a peer we can never check is recovered rather
        // than trusted for ever.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Liveness::Dead,
        // Out of descriptors, a table too long to read, ...: ask again.
        Err(_) => Liveness::Unknown,
    }
}

/// The pid holding a `flock` on the file `(dev, ino)` according to
/// `/proc/locks`: `Ok(Some(pid))`, or `Ok(None)` if no process holds one;
/// `Err` if the table cannot be read whole. A lock line whose pid does not
/// parse counts as held (pid 0). "Not held" needs two whole reads that
/// agree: the kernel walks its table between `read` calls, so one read can
/// skip a line when other locks go away meanwhile.
pub(crate) fn flock_holder(dev: u64, ino: u64) -> std::io::Result<Option<u32>> {
    match flock_holder_once(dev, ino)? {
        Some(pid) => Ok(Some(pid)),
        None => flock_holder_once(dev, ino),
    }
}

/// Most bytes of `/proc/locks` read; a longer table is "cannot tell".
const PROC_LOCKS_LIMIT: u64 = 64 << 20;

fn flock_holder_once(dev: u64, ino: u64) -> std::io::Result<Option<u32>> {
    let file = File::open("/proc/locks")?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(file, PROC_LOCKS_LIMIT + 1), &mut text)?;
    if text.len() as u64 > PROC_LOCKS_LIMIT {
        return Err(std::io::Error::other("/proc/locks is longer than shmq reads"));
    }
    let (major, minor) = (rustix::fs::major(dev), rustix::fs::minor(dev));
    for line in text.lines() {
        // "1: FLOCK  ADVISORY  WRITE 1234 00:1a:5678 0 EOF"; waiters have "->".
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 6 || fields[1] != "FLOCK" {
            continue;
        }
        let mut id = fields[5].split(':');
        let (Some(ma), Some(mi), Some(i)) = (id.next(), id.next(), id.next()) else { continue };
        let same = u32::from_str_radix(ma, 16).ok() == Some(major)
            && u32::from_str_radix(mi, 16).ok() == Some(minor)
            && i.parse::<u64>().ok() == Some(ino);
        if same {
            return Ok(Some(fields[4].parse().unwrap_or(0)));
        }
    }
    Ok(None)
}

/// Tokens of every peer file in `peers/`, with liveness and pid. Entries
/// that are not regular files are skipped (by [`NamespaceDir::list`]); pid
/// reads are bounded.
pub(crate) fn list_peers(dir: &NamespaceDir) -> Vec<(u64, bool, Option<u32>)> {
    let Ok(names) = dir.list(Sub::Peers) else {
        return Vec::new();
    };
    let mut peers = Vec::new();
    for name in names {
        let Ok(token) = u64::from_str_radix(&name, 16) else { continue };
        let pid = dir
            .read_bounded(Sub::Peers, &name, PID_BYTES)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .and_then(|s| s.trim().parse().ok());
        peers.push((token, is_alive(dir, token), pid));
    }
    peers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_entry_that_is_not_a_regular_file_counts_as_dead() {
        let path = std::env::temp_dir().join(format!("shmq-liveness-fifo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        let dir = NamespaceDir::open_path(&path, crate::nsdir::Create::Yes, false).unwrap();
        let fifo = path.join("peers").join(peer_name(0xF1F0));
        rustix::fs::mknodat(rustix::fs::CWD, &fifo, rustix::fs::FileType::Fifo, rustix::fs::Mode::from_raw_mode(0o600), 0).unwrap();
        std::os::unix::fs::symlink("/dev/zero", path.join("peers").join(peer_name(0x5E1F))).unwrap();
        // A held-open FIFO would block an opener; a link would be followed.
        assert_eq!(liveness(&dir, 0xF1F0), Liveness::Dead);
        assert_eq!(liveness(&dir, 0x5E1F), Liveness::Dead);
        assert_eq!(liveness(&dir, 0xAB5E), Liveness::Dead, "no file at all");
        std::fs::remove_dir_all(&path).unwrap();
    }

    #[test]
    fn flock_holder_finds_this_process_lock() {
        let path = std::env::temp_dir().join(format!("shmq-flock-holder-{}", std::process::id()));
        let file = File::create(&path).unwrap();
        let stat = rustix::fs::fstat(&file).unwrap();
        if flock_holder(stat.st_dev, stat.st_ino).is_err() {
            eprintln!("skipping: /proc/locks is not readable here");
            return;
        }
        assert_eq!(flock_holder(stat.st_dev, stat.st_ino).unwrap(), None);
        flock(&file, FlockOperation::LockExclusive).unwrap();
        assert_eq!(flock_holder(stat.st_dev, stat.st_ino).unwrap(), Some(std::process::id()));
        std::fs::remove_file(&path).unwrap();
    }
}

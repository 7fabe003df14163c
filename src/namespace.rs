//! Namespaces: a directory of segment files shared by cooperating processes.
//!
//! ```text
//! <root>/shmq.ns          namespace marker: magic + layout version
//! <root>/queues/<name>    one segment per queue
//! <root>/peers/<token>    one flock-held liveness file per attached process
//! <root>/tmp/             segments under construction
//! ```

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use crate::error::Error;
use crate::liveness::{self, Peer};
use crate::queue::consumer::Consumer;
use crate::queue::options::{ConsumerOptions, QueueOptions};
use crate::queue::producer::Producer;
use crate::queue::{Agent, QueueHandle};
use crate::ring::layout::{ROLE_CONSUMER, ROLE_PRODUCER};
use crate::ring::{Ring, RingMemory};
use crate::segment::{self, Created, QueueConfig};
use crate::sync::Ordering;

/// Where namespaces given by name live.
pub const DEFAULT_ROOT: &str = "/dev/shm/shmq";

/// The environment variable naming the namespace for programs that take
/// none: a name (under [`DEFAULT_ROOT`]) or a path (if it contains `/`).
pub const NAMESPACE_ENV: &str = "SHMQ_NAMESPACE";

/// Options for opening a namespace.
///
/// # Examples
/// ```
/// let options = shmq::NamespaceOptions::default().group_shared(true);
/// assert!(options.group_shared);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NamespaceOptions {
    /// Create files 0660 and directories 0770 (instead of 0600/0700), so
    /// processes of the owner's group can attach.
    pub group_shared: bool,
}

impl NamespaceOptions {
    /// Sets group sharing.
    ///
    /// # Examples
    /// See [`NamespaceOptions`].
    #[must_use]
    pub fn group_shared(mut self, on: bool) -> Self {
        self.group_shared = on;
        self
    }
}

/// State shared by a namespace and every handle opened from it.
pub(crate) struct NsShared {
    pub(crate) root: PathBuf,
    pub(crate) name: String,
    file_mode: u32,
    peer: Mutex<Weak<Peer>>,
}

impl NsShared {
    pub(crate) fn queues_dir(&self) -> PathBuf {
        self.root.join("queues")
    }
    pub(crate) fn peers_dir(&self) -> PathBuf {
        self.root.join("peers")
    }
    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// This process's liveness token, registered on first use.
    fn peer(&self) -> Result<Arc<Peer>, Error> {
        let mut guard = self.peer.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(peer) = guard.upgrade() {
            return Ok(peer);
        }
        let peer = Arc::new(Peer::register(&self.peers_dir(), &self.tmp_dir(), self.file_mode)?);
        *guard = Arc::downgrade(&peer);
        Ok(peer)
    }
}

/// Counts and figures of one queue. Stale as soon as it is returned when
/// other processes are active.
///
/// # Examples
/// See [`Namespace::queue_stats`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// The queue's name.
    pub name: String,
    /// Messages waiting for a consumer (including in-flight publishes).
    pub ready: u64,
    /// Messages delivered and not yet acked.
    pub unacked: u64,
    /// Attached consumers.
    pub consumers: u32,
    /// Attached producers.
    pub producers: u32,
    /// Data bytes in use (ready, unacked, and not yet reclaimed).
    pub bytes_used: u64,
    /// Data capacity in bytes.
    pub capacity_bytes: u64,
    /// The most messages held at once.
    pub max_messages: u32,
    /// The options the queue was declared with.
    pub options: QueueOptions,
    /// Messages published, ever.
    pub published: u64,
    /// Deliveries, ever (redeliveries included).
    pub delivered: u64,
    /// Acks, ever.
    pub acked: u64,
    /// Redeliveries, ever.
    pub redelivered: u64,
    /// Messages dropped by the drop-oldest policy, ever.
    pub dropped: u64,
    /// Messages discarded on expiry, ever.
    pub expired: u64,
}

/// A namespace: the directory of segments that cooperating processes share.
/// Cheap to clone; clones share this process's liveness token.
///
/// # Examples
/// ```
/// # #[cfg(not(shmq_loom))] {
/// let dir = std::env::temp_dir().join(format!("shmq-doc-ns-{}", std::process::id()));
/// let ns = shmq::Namespace::open_dir(&dir).unwrap();
/// ns.declare_queue("hello", &shmq::QueueOptions::default()).unwrap();
/// assert_eq!(ns.list_queues().unwrap(), vec!["hello".to_string()]);
/// # std::fs::remove_dir_all(&dir).ok();
/// # }
/// ```
#[derive(Clone)]
pub struct Namespace {
    shared: Arc<NsShared>,
}

/// Checks a queue (or namespace) name: 1–255 bytes, no `/` or NUL, not `.`
/// or `..`.
///
/// # Errors
/// `Error::InvalidName` saying what is wrong.
///
/// # Examples
/// ```
/// assert!(shmq::validate_name("queue", "hello").is_ok());
/// assert!(shmq::validate_name("queue", "a/b").is_err());
/// assert!(shmq::validate_name("queue", &"x".repeat(256)).is_err());
/// ```
pub fn validate_name(what: &'static str, name: &str) -> Result<(), Error> {
    let reason = if name.is_empty() {
        Some("a name is required")
    } else if name.len() > 255 {
        Some("names are at most 255 bytes")
    } else if name.contains('/') {
        Some("names may not contain '/'")
    } else if name.contains('\0') {
        Some("names may not contain NUL")
    } else if name == "." || name == ".." {
        Some("'.' and '..' are reserved")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidName { what, name: name.to_owned(), reason }),
        None => Ok(()),
    }
}

impl Namespace {
    /// Opens (creating if needed) the namespace named by `$SHMQ_NAMESPACE`,
    /// else `default`.
    ///
    /// # Errors
    /// As [`open`](Namespace::open).
    ///
    /// # Examples
    /// ```no_run
    /// let ns = shmq::Namespace::open_default().unwrap();
    /// ```
    pub fn open_default() -> Result<Namespace, Error> {
        let name = std::env::var(NAMESPACE_ENV).unwrap_or_else(|_| "default".to_owned());
        Self::open(&name)
    }

    /// Opens (creating if needed) a namespace: a name means
    /// `/dev/shm/shmq/<name>`, a string with `/` is a directory path.
    ///
    /// # Errors
    /// `InvalidName`, `PermissionDenied`, `NoSpace`, `Io`, or
    /// `IncompatibleVersion` for a namespace of another layout version.
    ///
    /// # Examples
    /// ```no_run
    /// let ns = shmq::Namespace::open("myapp").unwrap();
    /// ```
    pub fn open(name_or_path: &str) -> Result<Namespace, Error> {
        Self::open_with(name_or_path, NamespaceOptions::default())
    }

    /// As [`open`](Namespace::open), with options.
    ///
    /// # Errors
    /// As [`open`](Namespace::open).
    ///
    /// # Examples
    /// ```no_run
    /// let ns = shmq::Namespace::open_with("team", shmq::NamespaceOptions::default().group_shared(true)).unwrap();
    /// ```
    pub fn open_with(name_or_path: &str, options: NamespaceOptions) -> Result<Namespace, Error> {
        if name_or_path.contains('/') {
            Self::open_dir_with(Path::new(name_or_path), options)
        } else {
            validate_name("namespace", name_or_path)?;
            Self::open_dir_with(&Path::new(DEFAULT_ROOT).join(name_or_path), options)
        }
    }

    /// Opens (creating if needed) a namespace in any directory, for example
    /// one on disk so that queues survive a reboot.
    ///
    /// # Errors
    /// As [`open`](Namespace::open).
    ///
    /// # Examples
    /// See [`Namespace`].
    pub fn open_dir(dir: impl AsRef<Path>) -> Result<Namespace, Error> {
        Self::open_dir_with(dir.as_ref(), NamespaceOptions::default())
    }

    /// As [`open_dir`](Namespace::open_dir), with options.
    ///
    /// # Errors
    /// As [`open`](Namespace::open).
    ///
    /// # Examples
    /// ```no_run
    /// let dir = std::path::Path::new("/var/lib/app/queues");
    /// let ns = shmq::Namespace::open_dir_with(dir, shmq::NamespaceOptions::default()).unwrap();
    /// ```
    pub fn open_dir_with(dir: &Path, options: NamespaceOptions) -> Result<Namespace, Error> {
        let (dir_mode, file_mode) = if options.group_shared { (0o770, 0o660) } else { (0o700, 0o600) };
        let root = dir.to_path_buf();
        for sub in ["queues", "peers", "tmp"] {
            let path = root.join(sub);
            // create_dir_all tolerates a racing creator (EEXIST on a dir).
            std::fs::DirBuilder::new().recursive(true).mode(dir_mode).create(&path).map_err(|e| Error::io(&path, e))?;
        }
        if options.group_shared {
            for path in [root.clone(), root.join("queues"), root.join("peers"), root.join("tmp")] {
                let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(dir_mode));
            }
        }
        let name = root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| root.display().to_string());
        let marker_tmp = root.join("tmp").join(format!("ns-{:016x}", liveness::random_token()));
        segment::ensure_namespace_marker(&root.join("shmq.ns"), &marker_tmp, file_mode)?;
        Ok(Namespace { shared: Arc::new(NsShared { root, name, file_mode, peer: Mutex::new(Weak::new()) }) })
    }

    /// The namespace's directory.
    ///
    /// # Examples
    /// ```no_run
    /// let ns = shmq::Namespace::open("app").unwrap();
    /// assert_eq!(ns.path(), std::path::Path::new("/dev/shm/shmq/app"));
    /// ```
    pub fn path(&self) -> &Path {
        &self.shared.root
    }

    /// The namespace's name (its directory's last component).
    ///
    /// # Examples
    /// ```no_run
    /// assert_eq!(shmq::Namespace::open("app").unwrap().name(), "app");
    /// ```
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Declares a queue: creates it, or checks that the existing one has the
    /// same options (RabbitMQ's `queue.declare`). Safe to race with other
    /// processes declaring the same queue. Returns the queue's stats.
    ///
    /// # Errors
    /// `InvalidName`, `InvalidOptions`, `PreconditionFailed` if it exists
    /// with other options, `NoSpace` if the file system cannot hold it,
    /// `PermissionDenied`, `Corrupt`, `IncompatibleVersion`.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-declare-{}", std::process::id()));
    /// let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// let options = shmq::QueueOptions::default();
    /// ns.declare_queue("q", &options).unwrap();
    /// ns.declare_queue("q", &options).unwrap(); // idempotent
    /// let other = options.clone().overflow(shmq::Overflow::Reject);
    /// assert!(matches!(ns.declare_queue("q", &other), Err(shmq::Error::PreconditionFailed { .. })));
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn declare_queue(&self, name: &str, options: &QueueOptions) -> Result<QueueStats, Error> {
        validate_name("queue", name)?;
        let config = QueueConfig::from_options(name, options)?;
        let tmp_name = format!("q-{:016x}", liveness::random_token());
        let created = segment::create_queue(&self.shared.queues_dir(), &self.shared.tmp_dir(), &tmp_name, &config, self.shared.file_mode)?;
        let segment = match created {
            Created::New(segment) => segment,
            Created::Existing(segment) => {
                check_same(&segment.config, &config)?;
                segment
            }
        };
        Ok(self.stats_of(&Ring::new(segment)))
    }

    /// Checks that a queue exists (RabbitMQ's passive declare) and returns
    /// its stats.
    ///
    /// # Errors
    /// `QueueNotFound` (with a did-you-mean), `Corrupt`, ...
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-passive-{}", std::process::id()));
    /// let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// assert!(ns.declare_queue_passive("missing").is_err());
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn declare_queue_passive(&self, name: &str) -> Result<QueueStats, Error> {
        self.queue_stats(name)
    }

    /// Stats of a queue.
    ///
    /// # Errors
    /// As [`declare_queue_passive`](Namespace::declare_queue_passive).
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-stats-{}", std::process::id()));
    /// let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// ns.declare_queue("q", &shmq::QueueOptions::default()).unwrap();
    /// let stats = ns.queue_stats("q").unwrap();
    /// assert_eq!((stats.ready, stats.unacked, stats.consumers), (0, 0, 0));
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn queue_stats(&self, name: &str) -> Result<QueueStats, Error> {
        let ring = Ring::new(self.open_segment(name)?);
        Ok(self.stats_of(&ring))
    }

    /// Names of every queue, sorted.
    ///
    /// # Errors
    /// `Io` if the directory cannot be read.
    ///
    /// # Examples
    /// See [`Namespace`].
    pub fn list_queues(&self) -> Result<Vec<String>, Error> {
        let dir = self.shared.queues_dir();
        let mut names: Vec<String> =
            std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?.flatten().filter_map(|e| e.file_name().into_string().ok()).collect();
        names.sort();
        Ok(names)
    }

    /// Deletes a queue. Attached handles see it deleted and fail their next
    /// operation; its file goes away when the last one unmaps it.
    ///
    /// # Errors
    /// `QueueNotFound`, `PermissionDenied`, `Io`.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-delete-{}", std::process::id()));
    /// let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// ns.declare_queue("q", &shmq::QueueOptions::default()).unwrap();
    /// ns.delete_queue("q").unwrap();
    /// assert!(ns.list_queues().unwrap().is_empty());
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn delete_queue(&self, name: &str) -> Result<(), Error> {
        let segment = self.open_segment(name)?;
        // SYNC POINT DELETED: Release pairs with the loads in handles; they
        // only need to see the flag eventually, waiters are woken below.
        segment.deleted_word().store(1, Ordering::Release);
        let ring = Ring::new(segment);
        ring.notify_consumers();
        ring.notify_producers();
        let path = &ring.memory().path;
        std::fs::remove_file(path).map_err(|e| Error::io(path, e))
    }

    /// Discards every ready message of a queue (unacked ones stay) and
    /// returns how many.
    ///
    /// # Errors
    /// `QueueNotFound`, `TooManyHandles`, ...
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-purge-{}", std::process::id()));
    /// let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// ns.declare_queue("q", &shmq::QueueOptions::default()).unwrap();
    /// ns.producer("q").unwrap().publish_batch(&[b"a", b"b"]).unwrap();
    /// assert_eq!(ns.purge_queue("q").unwrap(), 2);
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn purge_queue(&self, name: &str) -> Result<u64, Error> {
        let agent = self.attach(name, ROLE_CONSUMER, 0)?;
        let mut purged = 0;
        while agent.queue.ring.discard_oldest(agent.index) {
            purged += 1;
        }
        agent.queue.ring.notify_producers();
        Ok(purged)
    }

    /// Flushes a queue's pages to its file: with an on-disk namespace, what
    /// was published before this returns survives power loss.
    ///
    /// # Errors
    /// `QueueNotFound`, `Io`.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-flush-{}", std::process::id()));
    /// let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// ns.declare_queue("q", &shmq::QueueOptions::default()).unwrap();
    /// ns.flush_queue("q").unwrap();
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn flush_queue(&self, name: &str) -> Result<(), Error> {
        let segment = self.open_segment(name)?;
        segment.flush().map_err(|e| Error::io(&segment.path, e))
    }

    /// A producer on queue `name`.
    ///
    /// # Errors
    /// `QueueNotFound`, `TooManyHandles`, `Corrupt`, ...
    ///
    /// # Examples
    /// See [`Producer`].
    pub fn producer(&self, name: &str) -> Result<Producer, Error> {
        Ok(Producer::new(self.attach(name, ROLE_PRODUCER, 0)?))
    }

    /// A consumer on queue `name`.
    ///
    /// # Errors
    /// As [`producer`](Namespace::producer).
    ///
    /// # Examples
    /// See [`Consumer`].
    pub fn consumer(&self, name: &str, options: ConsumerOptions) -> Result<Consumer, Error> {
        Ok(Consumer::new(self.attach(name, ROLE_CONSUMER, options.prefetch)?, options))
    }

    /// Recovers what dead processes left in every queue: requeues their
    /// unacked messages, skips their half-written ones, frees their handles
    /// and removes their liveness files. Attached handles do this on their
    /// own; this is for tools (`shmq gc`).
    ///
    /// # Errors
    /// `Io` if the namespace cannot be listed.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-gc-{}", std::process::id()));
    /// let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// assert_eq!(ns.collect_garbage().unwrap().requeued, 0);
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn collect_garbage(&self) -> Result<crate::ring::Recovered, Error> {
        let mut total = crate::ring::Recovered::default();
        let peers = self.shared.peers_dir();
        for name in self.list_queues()? {
            let Ok(segment) = self.open_segment(&name) else { continue };
            let ring = Ring::new(segment);
            let report = ring.recover(&mut |token| liveness::is_alive(&peers, token));
            ring.reclaim();
            total.requeued += report.requeued;
            total.abandoned += report.abandoned;
            total.agents_freed += report.agents_freed;
        }
        // Dead peers' files are removed by the liveness check itself.
        let _ = liveness::list_peers(&peers);
        Ok(total)
    }

    /// `(token, alive, pid)` of every process attached to the namespace.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-peers-{}", std::process::id()));
    /// let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// assert!(ns.peers().is_empty());
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn peers(&self) -> Vec<(u64, bool, Option<u32>)> {
        liveness::list_peers(&self.shared.peers_dir())
    }

    fn open_segment(&self, name: &str) -> Result<segment::QueueSegment, Error> {
        validate_name("queue", name)?;
        let path = self.shared.queues_dir().join(name);
        match segment::open_queue(&path) {
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Err(Error::QueueNotFound {
                queue: name.to_owned(),
                namespace: self.shared.name.clone(),
                did_you_mean: self.closest_queue(name),
            }),
            other => other,
        }
    }

    fn attach(&self, name: &str, role: u32, prefetch: u32) -> Result<Agent, Error> {
        let segment = self.open_segment(name)?;
        let peer = self.shared.peer()?;
        let queue = Arc::new(QueueHandle { ring: Ring::new(segment), ns: self.shared.clone() });
        Agent::attach(queue, peer, role, prefetch)
    }

    fn closest_queue(&self, name: &str) -> Option<String> {
        let names = self.list_queues().ok()?;
        names.into_iter().map(|n| (edit_distance(&n, name), n)).filter(|(d, n)| *d <= 2.max(n.len() / 4)).min().map(|(_, n)| n)
    }

    fn stats_of(&self, ring: &Ring<segment::QueueSegment>) -> QueueStats {
        let segment = ring.memory();
        let (ready, bytes_used) = ring.depth();
        let mut stats = QueueStats {
            name: segment.config.name.clone(),
            ready: u64::from(ready),
            bytes_used,
            capacity_bytes: u64::from(segment.config.geometry.data_units) * crate::ring::layout::UNIT as u64,
            max_messages: segment.config.geometry.slot_count,
            options: segment.config.options(),
            ..QueueStats::default()
        };
        let add = |stats: &mut QueueStats, c: &crate::ring::layout::Counters| {
            stats.published += c.published.load(Ordering::Relaxed);
            stats.delivered += c.delivered.load(Ordering::Relaxed);
            stats.acked += c.acked.load(Ordering::Relaxed);
            stats.redelivered += c.redelivered.load(Ordering::Relaxed);
            stats.dropped += c.dropped.load(Ordering::Relaxed);
            stats.expired += c.expired.load(Ordering::Relaxed);
        };
        add(&mut stats, segment.retired());
        for index in 0..crate::ring::layout::AGENT_SLOTS {
            let agent = segment.agent(index);
            if agent.token.load(Ordering::Acquire) == 0 {
                continue;
            }
            add(&mut stats, &agent.counters);
            match agent.role.load(Ordering::Relaxed) {
                ROLE_CONSUMER => {
                    stats.consumers += 1;
                    stats.unacked += u64::from(agent.unacked.load(Ordering::Relaxed));
                }
                ROLE_PRODUCER => stats.producers += 1,
                _ => {}
            }
        }
        stats
    }
}

impl std::fmt::Debug for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Namespace").field("name", &self.shared.name).field("path", &self.shared.root).finish()
    }
}

fn check_same(existing: &QueueConfig, requested: &QueueConfig) -> Result<(), Error> {
    let queue = requested.name.clone();
    let fail =
        |field: &'static str, existing: String, requested: String| Err(Error::PreconditionFailed { queue, field, existing, requested });
    let (e, r) = (existing.options(), requested.options());
    if e.capacity_bytes != r.capacity_bytes {
        return fail("capacity_bytes", e.capacity_bytes.to_string(), r.capacity_bytes.to_string());
    }
    if e.max_messages != r.max_messages {
        return fail("max_messages", e.max_messages.to_string(), r.max_messages.to_string());
    }
    if e.max_message_bytes != r.max_message_bytes {
        return fail("max_message_bytes", e.max_message_bytes.to_string(), r.max_message_bytes.to_string());
    }
    if e.overflow != r.overflow {
        return fail("overflow", e.overflow.to_string(), r.overflow.to_string());
    }
    if e.message_ttl != r.message_ttl {
        return fail("message_ttl", format!("{:?}", e.message_ttl), format!("{:?}", r.message_ttl));
    }
    Ok(())
}

/// Levenshtein distance, for did-you-mean suggestions.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::edit_distance;

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("hello", "helo"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }
}

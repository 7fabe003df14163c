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
use std::sync::{Arc, Mutex};

use crate::error::Error;
use crate::liveness::{self, Peer};
use crate::queue::consumer::Consumer;
use crate::queue::options::{ConsumerOptions, QueueOptions};
use crate::queue::producer::Producer;
use crate::queue::{Agent, QueueHandle};
use crate::ring::layout::{ROLE_CONSUMER, ROLE_PRODUCER};
use crate::ring::{Ring, RingMemory};
use crate::routing::table::{RoutingLimits, RoutingSegment};
use crate::routing::{QueueMeta, Router};
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
    /// Routing-table capacities, used when this open creates the namespace.
    pub routing_limits: RoutingLimits,
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

    /// Sets the routing-table capacities for a new namespace.
    ///
    /// # Examples
    /// ```
    /// let limits = shmq::RoutingLimits { max_bindings: 100, ..Default::default() };
    /// let options = shmq::NamespaceOptions::default().routing_limits(limits);
    /// assert_eq!(options.routing_limits.max_bindings, 100);
    /// ```
    #[must_use]
    pub fn routing_limits(mut self, limits: RoutingLimits) -> Self {
        self.routing_limits = limits;
        self
    }
}

/// State shared by a namespace and every handle opened from it.
pub(crate) struct NsShared {
    pub(crate) root: PathBuf,
    pub(crate) name: String,
    file_mode: u32,
    /// This process's liveness token in this namespace: registered on first
    /// use, held as long as the namespace handle or any of its handles live.
    peer: Mutex<Option<Arc<Peer>>>,
    pub(crate) routing: RoutingSegment,
    /// The latest compiled routing snapshot, shared by this process's publishers.
    pub(crate) router: Mutex<Option<Arc<Router>>>,
    /// Exclusive queues this namespace handle declared; deleted when it closes.
    pub(crate) exclusive: Mutex<Vec<String>>,
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

    /// Marks a queue's segment deleted, wakes its waiters and unlinks it.
    /// Returns false if there was no such file.
    pub(crate) fn remove_queue_file(&self, name: &str) -> bool {
        let path = self.queues_dir().join(name);
        let Ok(segment) = segment::open_queue(&path) else {
            return std::fs::remove_file(&path).is_ok();
        };
        // SYNC POINT DELETED: Release pairs with the loads in handles; they
        // only need to see the flag eventually, waiters are woken below.
        segment.deleted_word().store(1, Ordering::Release);
        let ring = Ring::new(segment);
        ring.notify_consumers();
        ring.notify_producers();
        std::fs::remove_file(&path).is_ok()
    }

    /// The compiled routing snapshot for the table's current generation.
    pub(crate) fn router(&self) -> Result<Arc<Router>, Error> {
        let generation = self.routing.current_generation();
        let mut cached = self.router.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(router) = cached.as_ref().filter(|r| r.generation == generation) {
            return Ok(router.clone());
        }
        let (generation, table) = self.routing.read()?;
        let router = Arc::new(Router::compile(&table, generation));
        *cached = Some(router.clone());
        Ok(router)
    }

    /// This process's liveness token, registered on first use.
    pub(crate) fn peer(&self) -> Result<Arc<Peer>, Error> {
        let mut guard = self.peer.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(peer) = guard.as_ref() {
            return Ok(peer.clone());
        }
        let peer = Arc::new(Peer::register(&self.peers_dir(), &self.tmp_dir(), self.file_mode)?);
        *guard = Some(peer.clone());
        Ok(peer)
    }
}

impl Drop for NsShared {
    fn drop(&mut self) {
        // Exclusive queues end with the namespace handle that declared them,
        // as RabbitMQ's end with their connection.
        let names = std::mem::take(&mut *self.exclusive.lock().unwrap_or_else(|e| e.into_inner()));
        if names.is_empty() {
            return;
        }
        let _ = self.routing.update(|table| {
            for name in &names {
                table.remove_queue(name);
            }
            Ok(())
        });
        for name in &names {
            self.remove_queue_file(name);
        }
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
    pub(crate) shared: Arc<NsShared>,
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
        let routing_tmp = root.join("tmp").join(format!("routing-{:016x}", liveness::random_token()));
        let routing = RoutingSegment::open_or_create(&root, &routing_tmp, file_mode, options.routing_limits)?;
        Ok(Namespace {
            shared: Arc::new(NsShared {
                root,
                name,
                file_mode,
                peer: Mutex::new(None),
                routing,
                router: Mutex::new(None),
                exclusive: Mutex::new(Vec::new()),
            }),
        })
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
        let generated;
        let name = if name.is_empty() && options.exclusive {
            generated = format!("amq.gen-{:016x}{:08x}", liveness::random_token(), liveness::random_token() as u32);
            generated.as_str()
        } else {
            validate_name("queue", name)?;
            name
        };
        let config = QueueConfig::from_options(name, options)?;
        let owner = if options.exclusive { self.shared.peer()?.token } else { 0 };
        let meta = QueueMeta { name: name.to_owned(), exclusive_owner: owner, auto_delete: options.auto_delete };
        // Register first (under the table lock), so that no publisher routes
        // to a file that is not in the registry, and conflicts fail early.
        let registered = self.update_table(|table| match table.queue(name) {
            Some(existing) if existing.exclusive_owner != 0 && existing.exclusive_owner != owner => {
                Err(Error::ExclusiveQueue { queue: name.to_owned() })
            }
            Some(existing) if existing.auto_delete != meta.auto_delete || (existing.exclusive_owner != 0) != options.exclusive => {
                let describe = |m: &QueueMeta| format!("exclusive={}, auto_delete={}", m.exclusive_owner != 0, m.auto_delete);
                Err(Error::PreconditionFailed {
                    queue: name.to_owned(),
                    field: "flags",
                    existing: describe(existing),
                    requested: describe(&meta),
                })
            }
            Some(_) => Ok(false),
            None => {
                table.queues.push(meta.clone());
                Ok(true)
            }
        })?;
        let tmp_name = format!("q-{:016x}", liveness::random_token());
        let created = segment::create_queue(&self.shared.queues_dir(), &self.shared.tmp_dir(), &tmp_name, &config, self.shared.file_mode);
        let segment = match created {
            Ok(Created::New(segment)) => segment,
            Ok(Created::Existing(segment)) => {
                check_same(&segment.config, &config)?;
                segment
            }
            Err(e) => {
                if registered {
                    let _ = self.update_table(|table| {
                        table.remove_queue(name);
                        Ok(())
                    });
                }
                return Err(e);
            }
        };
        if registered && options.exclusive {
            self.shared.exclusive.lock().unwrap_or_else(|e| e.into_inner()).push(name.to_owned());
        }
        Ok(self.stats_of(&Ring::new(segment)))
    }

    /// An auto-delete queue whose consumers all died (after it had one):
    /// recover it first, then check that no consumer is left.
    fn auto_delete_is_abandoned(&self, name: &str) -> bool {
        let Ok(segment) = segment::open_queue(&self.shared.queues_dir().join(name)) else { return false };
        let ring = Ring::new(segment);
        if !ring.had_consumer() {
            return false;
        }
        let peers = self.shared.peers_dir();
        ring.recover(&mut |token| liveness::is_alive(&peers, token));
        !ring.has_consumers(None)
    }

    /// Runs a routing-table change under the writers' lock, first removing
    /// exclusive queues whose owning process died (and their files).
    pub(crate) fn update_table<R>(&self, change: impl FnOnce(&mut crate::routing::Table) -> Result<R, Error>) -> Result<R, Error> {
        let peers = self.shared.peers_dir();
        let my_token = self.shared.peer.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map_or(0, |p| p.token);
        let mut orphans = Vec::new();
        let result = self.shared.routing.update(|table| {
            orphans = table
                .queues
                .iter()
                .filter(|q| {
                    let dead_owner =
                        q.exclusive_owner != 0 && q.exclusive_owner != my_token && !liveness::is_alive(&peers, q.exclusive_owner);
                    dead_owner || (q.auto_delete && self.auto_delete_is_abandoned(&q.name))
                })
                .map(|q| q.name.clone())
                .collect();
            for name in &orphans {
                table.remove_queue(name);
            }
            change(table)
        });
        for name in orphans {
            self.shared.remove_queue_file(&name);
        }
        result
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
        validate_name("queue", name)?;
        let registered = self.update_table(|table| {
            let found = table.queue(name).is_some();
            table.remove_queue(name);
            Ok(found)
        })?;
        let existed = self.shared.remove_queue_file(name);
        if !registered && !existed {
            return Err(Error::QueueNotFound {
                queue: name.to_owned(),
                namespace: self.shared.name.clone(),
                did_you_mean: self.closest_queue(name),
            });
        }
        Ok(())
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
        let (owner, auto_delete) = self.shared.router()?.queue_meta(name).unwrap_or((0, false));
        if owner != 0 && owner != self.shared.peer()?.token {
            return Err(Error::ExclusiveQueue { queue: name.to_owned() });
        }
        let agent = self.attach(name, ROLE_CONSUMER, options.prefetch)?;
        Ok(Consumer::new(agent, options, auto_delete.then(|| self.clone())))
    }

    /// A publisher that routes through exchanges.
    ///
    /// # Examples
    /// See [`Publisher`](crate::Publisher).
    pub fn publisher(&self) -> crate::Publisher {
        crate::Publisher::new(self.clone())
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
        // Exclusive and auto-delete queues of dead processes go with the
        // next table change; make one that changes nothing else.
        self.update_table(|_| Ok(()))?;
        // Segments a creator was building when it died stay in tmp/; nothing
        // builds one for a minute.
        if let Ok(entries) = std::fs::read_dir(self.shared.tmp_dir()) {
            for entry in entries.flatten() {
                let stale = entry.metadata().and_then(|m| m.modified()).is_ok_and(|t| t.elapsed().is_ok_and(|age| age.as_secs() > 60));
                if stale {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
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

    pub(crate) fn open_segment(&self, name: &str) -> Result<segment::QueueSegment, Error> {
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

    pub(crate) fn attach(&self, name: &str, role: u32, prefetch: u32) -> Result<Agent, Error> {
        let segment = self.open_segment(name)?;
        let peer = self.shared.peer()?;
        let queue = Arc::new(QueueHandle { ring: Ring::new(segment), ns: self.shared.clone() });
        Agent::attach(queue, peer, role, prefetch)
    }

    pub(crate) fn closest_queue(&self, name: &str) -> Option<String> {
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
            // SYNC POINT AGENT: pairs with `register_agent`/`release_agent`.
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
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
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

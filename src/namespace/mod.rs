//! Namespaces: a directory of segment files shared by cooperating processes.
//!
//! ```text
//! <root>/shmq.ns          namespace marker: magic + layout version
//! <root>/queues/<name>    one segment per queue
//! <root>/peers/<token>    one flock-held liveness file per attached process
//! <root>/tmp/             segments under construction
//! ```
//!
//! This file holds the handle and opening; [`declare`] the queue and table
//! changes, [`stats`] the figures, [`gc`] recovery for tools. Every file
//! operation goes through [`NamespaceDir`](crate::nsdir::NamespaceDir).

mod declare;
mod exchanges;
mod gc;
pub(crate) mod housekeeping;
pub(crate) mod inspect;
pub(crate) mod publisher;
mod stats;

pub use declare::DIRECT_REPLY_TO;
pub use housekeeping::Housekept;
pub use stats::QueueStats;

use std::path::Path;
use std::sync::Arc;

use crate::error::Error;
use crate::liveness;
use crate::namespace_state::NamespaceState;
use crate::nsdir::{validate_queue_name, Create, NamespaceDir, Sub};
use crate::options::ConsumerOptions;
use crate::queue::chain::Chain;
use crate::queue::consumer::Consumer;
use crate::queue::producer::Producer;
use crate::queue::{Agent, QueueHandle};
use crate::ring::layout::ROLE_PRODUCER;
use crate::ring::Ring;
use crate::routing::table::{RoutingLimits, RoutingSegment};
use crate::segment;

/// The environment variable naming the namespace for programs that take
/// none: a name (under [`default_root`](crate::default_root)) or a path (if
/// it contains `/`).
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
    /// Create files 0660 and directories 2770 (instead of 0600/0700), so
    /// processes of the owner's group can attach (docs/SECURITY.md).
    pub group_shared: bool,
    /// Routing-table capacities, used when this open creates the namespace.
    pub routing_limits: RoutingLimits,
    /// Bytes the namespace's queues may take in all, set when this open
    /// creates the namespace (RabbitMQ's memory high watermark, in spirit;
    /// opening an existing one with a different budget is `InvalidOptions`):
    /// queues grow until it is reached, then publishers that need room block
    /// until consumers make some. `None`: 40 % of the file system's free
    /// space at creation.
    pub memory_budget: Option<u64>,
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

    /// Sets the memory budget for a new namespace.
    ///
    /// # Examples
    /// ```
    /// let options = shmq::NamespaceOptions::default().memory_budget(64 << 20);
    /// assert_eq!(options.memory_budget, Some(64 << 20));
    /// ```
    #[must_use]
    pub fn memory_budget(mut self, bytes: u64) -> Self {
        self.memory_budget = Some(bytes);
        self
    }
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
    pub(crate) shared: Arc<NamespaceState>,
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
    /// `<default_root()>/<name>` (`/dev/shm/shmq-<uid>/<name>`), a string
    /// with `/` is a directory path.
    ///
    /// # Errors
    /// `InvalidName`, `PermissionDenied`, `UnsafePath` (the directory, or the
    /// per-user root, belongs to another user or is writable by others, or a
    /// file in it is a link, FIFO or device), `NoSpace`, `Io`, or
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
        Self::resolve(name_or_path, options, Create::Yes)
    }

    /// Opens a namespace that must already exist: never creates one. (An
    /// existing namespace missing a subdirectory or its routing segment,
    /// say after a partial manual clean-up, is completed as by
    /// [`open`](Namespace::open).)
    /// For read-only tools and passive opens.
    ///
    /// # Errors
    /// `NoSuchNamespace` (with a did-you-mean among the caller's namespaces)
    /// if it does not exist; otherwise as [`open`](Namespace::open).
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-existing-{}", std::process::id()));
    /// let missing = shmq::Namespace::open_existing(dir.to_str().unwrap()).unwrap_err();
    /// assert!(matches!(missing, shmq::Error::NoSuchNamespace { .. }));
    /// assert!(!dir.exists());
    /// shmq::Namespace::open_dir(&dir).unwrap();
    /// assert!(shmq::Namespace::open_existing(dir.to_str().unwrap()).is_ok());
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn open_existing(name_or_path: &str) -> Result<Namespace, Error> {
        Self::resolve(name_or_path, NamespaceOptions::default(), Create::No)
    }

    fn resolve(name_or_path: &str, options: NamespaceOptions, create: Create) -> Result<Namespace, Error> {
        let dir = if name_or_path.contains('/') {
            NamespaceDir::open_path(Path::new(name_or_path), create, options.group_shared)?
        } else {
            NamespaceDir::open_named(name_or_path, create, options.group_shared)?
        };
        Self::from_dir(dir, options)
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
        Self::from_dir(NamespaceDir::open_path(dir, Create::Yes, options.group_shared)?, options)
    }

    fn from_dir(dir: NamespaceDir, options: NamespaceOptions) -> Result<Namespace, Error> {
        let dir = Arc::new(dir);
        let path = dir.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string());
        let budget = segment::ensure_namespace_marker(&dir, &format!("ns-{:016x}", liveness::random_token()), options.memory_budget)?;
        // Fixed at creation: a different one asked for is refused, not ignored.
        if options.memory_budget.is_some_and(|asked| asked != budget) {
            return Err(Error::InvalidOptions(format!(
                "namespace '{}' has a memory budget of {budget} bytes, fixed when it was created; open it without one (or with {budget})",
                dir.path().display()
            )));
        }
        let routing_tmp = format!("routing-{:016x}", liveness::random_token());
        let routing = RoutingSegment::open_or_create(&dir, &routing_tmp, options.routing_limits)?;
        Ok(Namespace { shared: Arc::new(NamespaceState::new(dir, name, routing, budget)) })
    }

    /// The memory budget fixed when the namespace was created: bytes all its
    /// queues' rings may take (see [`NamespaceOptions::memory_budget`]).
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-budget-{}", std::process::id()));
    /// let options = shmq::NamespaceOptions::default().memory_budget(64 << 20);
    /// let ns = shmq::Namespace::open_dir_with(&dir, options).unwrap();
    /// assert_eq!(ns.memory_budget(), 64 << 20);
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn memory_budget(&self) -> u64 {
        self.shared.memory_budget
    }

    /// Bytes the namespace's queue files take now, what counts against the
    /// memory budget.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-inuse-{}", std::process::id()));
    /// let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// assert_eq!(ns.memory_in_use(), 0);
    /// ns.declare_queue("q", &shmq::QueueOptions::default()).unwrap();
    /// assert!(ns.memory_in_use() > 8 << 20);
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn memory_in_use(&self) -> u64 {
        segment::bytes_in_use(&self.shared.dir)
    }

    /// The namespace's directory.
    ///
    /// # Examples
    /// ```no_run
    /// let ns = shmq::Namespace::open("app").unwrap();
    /// assert_eq!(ns.path(), shmq::default_root().join("app"));
    /// ```
    pub fn path(&self) -> &Path {
        self.shared.dir.path()
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

    /// Names of every queue, sorted.
    ///
    /// # Errors
    /// `Io` if the directory cannot be read.
    ///
    /// # Examples
    /// See [`Namespace`].
    pub fn list_queues(&self) -> Result<Vec<String>, Error> {
        let dir = &self.shared.dir;
        // Only queues the routing table lists: a file it does not is a
        // deleted queue's leftover (or planted), as `is_registered` says.
        let router = self.shared.router()?;
        let mut names: Vec<String> = dir
            .list(Sub::Queues)?
            .iter()
            .filter_map(|file| segment::queue_of_file(dir, file))
            .filter(|name| router.queue_meta(name).is_some())
            .collect();
        names.sort();
        Ok(names)
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
    /// As [`producer`](Namespace::producer); `ExclusiveConsumer` if another
    /// consumer holds it exclusively (or this one asks for that and cannot
    /// have it); `InvalidOptions` for a `basic.get` handle with `exclusive`
    /// or a priority.
    ///
    /// # Examples
    /// See [`Consumer`].
    pub fn consumer(&self, name: &str, options: ConsumerOptions) -> Result<Consumer, Error> {
        // Refused, not ignored: a `basic.get` handle is no consumer.
        if options.get_only && (options.exclusive || options.priority != 0) {
            return Err(Error::InvalidOptions(
                "a basic.get handle (for_get) takes no exclusive or priority: those are for consumers".into(),
            ));
        }
        // An exclusive queue of a dead process is gone, not locked.
        if !self.is_registered(name)? {
            return Err(self.queue_not_found(name));
        }
        let (owner, auto_delete) = self.shared.router()?.queue_meta(name).unwrap_or((0, false));
        if owner != 0 && owner != self.shared.peer()?.token {
            return Err(Error::ExclusiveQueue { queue: name.to_owned() });
        }
        let agent = self.attach(name, options.role(), options.prefetch)?;
        // RabbitMQ 3.10 refuses an exclusive consumer of a single-active-
        // consumer queue, as if another held it.
        if options.exclusive && agent.queue.segment().config.single_active_consumer {
            return Err(Error::ExclusiveConsumer { queue: name.to_owned() });
        }
        // `basic.get` is no consumer: exclusive use does not concern it.
        let refused = || {
            if options.exclusive {
                !agent.queue.ring.claim_exclusive(agent.owner)
            } else {
                !options.get_only && agent.queue.ring.exclusively_held(agent.owner)
            }
        };
        // The one in the way may be a dead process's: sweep, then look again.
        if refused() && (agent.queue.recover(agent.peer.token).agents_freed == 0 || refused()) {
            return Err(Error::ExclusiveConsumer { queue: name.to_owned() });
        }
        if options.priority != 0 {
            agent.queue.ring.set_consumer_priority(agent.owner, options.priority);
        }
        housekeeping::touch(agent.queue.segment());
        let max_priority = agent.queue.segment().config.max_priority;
        // A `basic.get` handle never makes an auto-delete queue go.
        let consumer = Consumer::new(agent, options, (auto_delete && !options.get_only).then(|| self.clone()));
        if max_priority == 0 {
            return Ok(consumer);
        }
        Ok(consumer.with_levels(max_priority))
    }

    /// A publisher that routes through exchanges.
    ///
    /// # Examples
    /// See [`Publisher`](crate::Publisher).
    pub fn publisher(&self) -> crate::Publisher {
        crate::Publisher::new(self.clone())
    }

    pub(crate) fn open_segment(&self, name: &str) -> Result<segment::QueueSegment, Error> {
        validate_queue_name(name)?;
        if !self.is_registered(name)? {
            return Err(self.queue_not_found(name));
        }
        match segment::open_queue(&self.shared.dir, name) {
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Err(self.queue_not_found(name)),
            other => other,
        }
    }

    fn queue_not_found(&self, name: &str) -> Error {
        Error::QueueNotFound { queue: name.to_owned(), namespace: self.shared.name.clone(), did_you_mean: self.closest_queue(name) }
    }

    /// Whether the routing table lists `name`: a queue is registered
    /// before its file is made and unregistered before its file goes, so a
    /// file the table does not list is a deleted queue's (its deleter died
    /// before unlinking it). An exclusive queue whose owning process died
    /// is removed here and then (as RabbitMQ deletes one when its
    /// connection drops), not only at the next table change.
    fn is_registered(&self, name: &str) -> Result<bool, Error> {
        let Some((owner, _)) = self.shared.router()?.queue_meta(name) else { return Ok(false) };
        if owner == 0 || owner == self.shared.registered_token() || liveness::is_alive(&self.shared.dir, owner) {
            return Ok(true);
        }
        self.update_table(|_| Ok(()))?;
        Ok(false)
    }

    pub(crate) fn attach(&self, name: &str, role: u32, prefetch: u32) -> Result<Agent, Error> {
        let segment = self.open_segment(name)?;
        segment.prefault();
        let peer = self.shared.peer()?;
        let queue = Arc::new(QueueHandle { ring: Ring::new(segment), ns: self.shared.clone() });
        Agent::attach(queue, peer, role, prefetch)
    }

    /// A queue's chain of rings, mapped for reading.
    pub(crate) fn chain(&self, name: &str) -> Result<Chain, Error> {
        let segment = self.open_segment(name)?;
        Ok(Chain::new(Arc::new(QueueHandle { ring: Ring::new(segment), ns: self.shared.clone() })))
    }

    /// Every chain of a queue in the order consumers take from them: a
    /// priority queue's existing levels highest first, then the queue's own
    /// (level 0), which is all a queue without priorities has.
    pub(crate) fn chains(&self, name: &str) -> Result<Vec<Chain>, Error> {
        let own = self.chain(name)?;
        let mut chains: Vec<Chain> = crate::queue::priority::existing_levels(&own.first).into_iter().map(Chain::new).collect();
        chains.push(own);
        Ok(chains)
    }

    pub(crate) fn closest_queue(&self, name: &str) -> Option<String> {
        crate::nsdir::closest(name, &self.list_queues().ok()?)
    }
}

impl std::fmt::Debug for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Namespace").field("name", &self.shared.name).field("path", &self.path()).finish()
    }
}

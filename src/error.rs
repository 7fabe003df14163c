//! Error types. Each operation has its own; every `Display` is lowercase and
//! says what to do about it.

use std::io;
use std::path::PathBuf;

/// Errors from opening namespaces and declaring, opening or managing queues.
///
/// # Examples
/// ```
/// # #[cfg(not(shmq_loom))] {
/// let dir = std::env::temp_dir().join(format!("shmq-doc-err-{}", std::process::id()));
/// let ns = shmq::Namespace::open_dir(&dir).unwrap();
/// let err = ns.producer("nope").unwrap_err();
/// assert!(matches!(err, shmq::Error::QueueNotFound { .. }));
/// assert!(err.to_string().contains("no such queue 'nope'"));
/// # std::fs::remove_dir_all(&dir).ok();
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A queue or namespace name is empty, too long, or has a forbidden byte.
    #[error("invalid {what} name {name:?}: {reason}")]
    InvalidName {
        /// "queue", "namespace", ...
        what: &'static str,
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: std::borrow::Cow<'static, str>,
    },
    /// The queue does not exist.
    #[error("no such queue '{queue}' in namespace '{namespace}'{}", did_you_mean.as_ref().map(|s| format!(" (did you mean '{s}'?)")).unwrap_or_default())]
    QueueNotFound {
        /// The queue asked for.
        queue: String,
        /// The namespace searched.
        namespace: String,
        /// The closest existing name, if one is close.
        did_you_mean: Option<String>,
    },
    /// The queue exists with other options (RabbitMQ's PRECONDITION_FAILED).
    #[error("queue '{queue}' already exists with {field} = {existing}, but this declare asks for {requested}: declare it with the same options, or delete it first")]
    PreconditionFailed {
        /// The queue.
        queue: String,
        /// The first option that differs.
        field: &'static str,
        /// Its value in the existing queue.
        existing: String,
        /// The value this declare asked for.
        requested: String,
    },
    /// A RabbitMQ queue argument shmq does not implement, or one of the
    /// wrong type or value (RabbitMQ's PRECONDITION_FAILED "invalid arg").
    #[error("invalid arg '{argument}' for queue '{queue}': {reason}")]
    InvalidArgument {
        /// The queue.
        queue: String,
        /// The argument, e.g. `x-max-priority`.
        argument: String,
        /// What is wrong, in RabbitMQ's words where it has them.
        reason: String,
    },
    /// A queue argument that takes a name (`x-dead-letter-exchange`,
    /// `x-dead-letter-routing-key`) given a value of another type; RabbitMQ
    /// words this one differently from other invalid arguments.
    #[error("invalid type '{found}' for arg '{argument}' in queue '{queue}'")]
    InvalidArgumentType {
        /// The queue.
        queue: String,
        /// The argument.
        argument: String,
        /// The AMQP type it was given as, e.g. `long`.
        found: &'static str,
    },
    /// Queue options that cannot work together.
    #[error("invalid queue options: {0}")]
    InvalidOptions(String),
    /// A segment file is not a valid shmq segment, or was damaged.
    #[error("segment {path} is corrupt: {reason}; delete the queue (or `shmq reset` the namespace) to recover")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What check failed.
        reason: String,
    },
    /// A segment written by another layout version of shmq.
    #[error("segment {path} has layout version {found}, but this shmq reads version {supported}: use a matching shmq build, or reset the namespace")]
    IncompatibleVersion {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// The file system (usually /dev/shm) has no room for a new segment.
    #[error("no space to create {path} ({needed} bytes{}): free space on that file system (for /dev/shm: delete queues or raise its size), or declare a smaller capacity", available.map(|a| format!(", {a} bytes available")).unwrap_or_default())]
    NoSpace {
        /// The file that could not be created.
        path: PathBuf,
        /// How many bytes it needed (0 if unknown).
        needed: u64,
        /// Bytes free on that file system when it failed, if known.
        available: Option<u64>,
    },
    /// A new queue's first segment would take the namespace past its memory
    /// budget (fixed when the namespace was created).
    #[error("declaring queue '{queue}' needs {needed} bytes, but the namespace's segments take {in_use} of its memory budget of {budget} bytes: delete queues, or create the namespace with a larger budget (--memory-budget)")]
    MemoryBudget {
        /// The queue.
        queue: String,
        /// Bytes its first segment takes.
        needed: u64,
        /// Bytes the namespace's segments take now.
        in_use: u64,
        /// The namespace's budget.
        budget: u64,
    },
    /// A file or directory in the namespace's path failed a safety check:
    /// another user owns it, it is writable by others, or it is a symbolic
    /// link, FIFO or device where shmq expects a directory or a regular file.
    /// shmq touched nothing through it.
    #[error("refusing {path} (owner uid {owner}, mode {mode:04o}): {why}")]
    UnsafePath {
        /// The file or directory.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// Its permission bits.
        mode: u32,
        /// What is wrong and what to do about it.
        why: String,
    },
    /// The namespace does not exist (and this open was not allowed to create it).
    #[error("no such namespace '{name}'{}: check the name, or declare a queue in it to create it", did_you_mean.as_ref().map(|s| format!(" (did you mean '{s}'?)")).unwrap_or_default())]
    NoSuchNamespace {
        /// The namespace asked for (a name or a path).
        name: String,
        /// The closest existing namespace name, if one is close.
        did_you_mean: Option<String>,
    },
    /// Another process held the routing table's writer lock for the whole wait.
    #[error("timed out after {waited:?} waiting for the routing table lock {path}{}: that process may be stuck; stop it, or retry", holder.map(|pid| format!(", held by pid {pid}")).unwrap_or_else(|| ", held by an unknown process".to_string()))]
    LockTimeout {
        /// The lock file.
        path: PathBuf,
        /// How long this call waited.
        waited: std::time::Duration,
        /// The holder's pid, when it is known.
        holder: Option<u32>,
    },
    /// The caller may not open or create a file.
    #[error("permission denied on {path}: {}; run as that user, or create the namespace with group sharing (NamespaceOptions::group_shared)", owner.map_or("its owner is unknown".to_string(), |uid| format!("it is owned by uid {uid}")))]
    PermissionDenied {
        /// The file or directory.
        path: PathBuf,
        /// Its owner, if it could be read.
        owner: Option<u32>,
    },
    /// Any other I/O failure.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Every agent slot of the queue is taken.
    #[error("queue '{queue}' already has {limit} producers and consumers attached: close some handles first")]
    TooManyHandles {
        /// The queue.
        queue: String,
        /// The limit.
        limit: usize,
    },
    /// The queue was deleted while this handle was attached.
    #[error("queue '{queue}' was deleted: declare it again and open a new handle")]
    QueueDeleted {
        /// The queue.
        queue: String,
    },
    /// The exchange does not exist.
    #[error("no such exchange '{exchange}' in namespace '{namespace}'{}", did_you_mean.as_ref().map(|s| format!(" (did you mean '{s}'?)")).unwrap_or_default())]
    ExchangeNotFound {
        /// The exchange asked for.
        exchange: String,
        /// The namespace searched.
        namespace: String,
        /// The closest existing name, if one is close.
        did_you_mean: Option<String>,
    },
    /// The exchange exists with other options (RabbitMQ's PRECONDITION_FAILED).
    #[error("exchange '{exchange}' already exists as {existing}, but this declare asks for {requested}: declare it the same way, or delete it first")]
    ExchangeConflict {
        /// The exchange.
        exchange: String,
        /// Its existing type and flags.
        existing: String,
        /// What this declare asked for.
        requested: String,
    },
    /// `delete_exchange` with `if_unused` on an exchange that has bindings.
    #[error("exchange '{exchange}' is in use by {bindings} bindings: unbind them first, or delete without if-unused")]
    ExchangeInUse {
        /// The exchange.
        exchange: String,
        /// How many bindings use it as their source.
        bindings: usize,
    },
    /// `delete_queue_if` with `if_unused` on a queue that has consumers, or
    /// `if_empty` on one that holds messages (RabbitMQ's 406s).
    #[error("queue '{queue}' {reason}: delete it without that condition, or wait")]
    QueueInUse {
        /// The queue.
        queue: String,
        /// RabbitMQ's words: `in use` or `not empty`.
        reason: &'static str,
    },
    /// An exclusive consumer holds the queue, or an exclusive consumer was
    /// asked for while others are attached (RabbitMQ's 403
    /// ACCESS_REFUSED "in exclusive use").
    #[error("queue '{queue}' is in exclusive use: another consumer holds it exclusively, or an exclusive consumer needs it to have none")]
    ExclusiveConsumer {
        /// The queue.
        queue: String,
    },
    /// A name reserved for shmq itself (`amq.*`, the default exchange).
    #[error("access refused: '{name}' is reserved ({reason})")]
    AccessRefused {
        /// The name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// Another process owns this exclusive queue (RabbitMQ's RESOURCE_LOCKED).
    #[error("queue '{queue}' is exclusive to another process: consume from your own queue, or declare it non-exclusive")]
    ExclusiveQueue {
        /// The queue.
        queue: String,
    },
    /// The routing table is full.
    #[error("the routing table is full: at most {limit} {what}; delete unused ones, or create the namespace with larger RoutingLimits")]
    TableFull {
        /// What ran out: "exchanges", "queues", "bindings" or "table bytes".
        what: &'static str,
        /// The limit.
        limit: u64,
    },
}

#[cfg(not(shmq_loom))]
impl Error {
    /// Wraps an I/O error, naming the path and mapping ENOSPC and EACCES to
    /// their own variants.
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        let path = path.into();
        match source.raw_os_error() {
            Some(code) if code == rustix::io::Errno::NOSPC.raw_os_error() => Error::NoSpace { path, needed: 0, available: None },
            Some(code) if code == rustix::io::Errno::ACCESS.raw_os_error() || code == rustix::io::Errno::PERM.raw_os_error() => {
                let owner = owner_of(&path);
                Error::PermissionDenied { path, owner }
            }
            _ => Error::Io { path, source },
        }
    }
}

#[cfg(not(shmq_loom))]
fn owner_of(path: &std::path::Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let mut probe = Some(path);
    while let Some(p) = probe {
        // lstat: naming the owner for a message must not follow a link.
        if let Ok(meta) = std::fs::symlink_metadata(p) {
            return Some(meta.uid());
        }
        probe = p.parent();
    }
    None
}

/// Why a publish did not happen. The body stays with the caller (publish
/// takes it by reference), so nothing is lost: retry, or handle it.
///
/// # Examples
/// ```
/// let err = shmq::PublishError::TooLarge { size: 10, limit: 4 };
/// assert_eq!(err.to_string(), "message of 10 bytes (body and properties) is over the queue's limit of 4 bytes: split it, or declare the queue with a larger max_message_bytes");
/// ```
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublishError {
    /// Body plus encoded properties exceed the queue's largest message.
    #[error("message of {size} bytes (body and properties) is over the queue's limit of {limit} bytes: split it, or declare the queue with a larger max_message_bytes")]
    TooLarge {
        /// Encoded size.
        size: usize,
        /// The queue's limit.
        limit: usize,
    },
    /// The queue is at its `max_length`/`max_length_bytes` and its overflow
    /// policy is `reject-publish`.
    #[error("queue is at its max_length or max_length_bytes (overflow reject-publish): the message was not published; consume faster, or raise the limit")]
    QueueFull,
    /// A blocking publish waited its whole timeout for room: the queue was
    /// at its limit with overflow `block`, or the namespace at its memory
    /// budget (flow control).
    #[error("timed out waiting for room (a queue at its limit with overflow block, or the namespace at its memory budget): the message was not published; consume faster or raise the limit or budget")]
    Timeout,
    /// The wait hook asked a waiting publish to stop (see
    /// [`WaitHook`](crate::WaitHook)).
    #[error("the publish was interrupted while waiting for room: the message was not published")]
    Interrupted,
    /// The queue was deleted.
    #[error("the queue was deleted: declare it again")]
    QueueDeleted,
    /// A property cannot be encoded.
    #[error("invalid message property: {0}")]
    InvalidProperty(&'static str),
    /// A batch reservation asked for no messages or too many.
    #[error("invalid batch: {0}")]
    InvalidBatch(&'static str),
    /// The queue's cursors are impossible: the segment is damaged.
    #[error("the queue's segment is corrupt (its cursors are inconsistent): delete and redeclare the queue")]
    Corrupt,
    /// A `mandatory` publish matched no queue.
    #[error("message is unroutable: no queue is bound for this exchange and routing key (it was published with mandatory)")]
    Unroutable,
    /// The exchange does not exist.
    #[error("no such exchange: declare it first")]
    ExchangeNotFound,
    /// The exchange is internal: only other exchanges may publish to it.
    #[error("exchange is internal: publish to an exchange bound to it instead")]
    InternalExchange,
    /// The routing table could not be read.
    #[error("the routing table could not be read: {0}")]
    Routing(String),
}

/// Why a receive returned no message.
///
/// # Examples
/// ```
/// assert_eq!(shmq::RecvError::Timeout.to_string(), "timed out waiting for a message");
/// ```
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecvError {
    /// `try_recv` found nothing deliverable now.
    #[error("no message is ready")]
    Empty,
    /// `recv_timeout` waited its whole timeout.
    #[error("timed out waiting for a message")]
    Timeout,
    /// The consumer holds `prefetch` unacked messages: ack some first.
    #[error("prefetch limit of {0} unacked messages reached: ack or reject deliveries first")]
    PrefetchFull(u32),
    /// The queue was deleted.
    #[error("the queue was deleted: declare it again")]
    QueueDeleted,
    /// A slot held nonsense (a damaged segment); it was discarded.
    #[error("slot {0} of the queue is corrupt and was skipped; the segment may be damaged")]
    Corrupt(u32),
}

/// Why an ack, nack or reject failed.
///
/// # Examples
/// ```
/// let err = shmq::AckError::UnknownDeliveryTag(7);
/// assert!(err.to_string().contains("unknown delivery tag 7"));
/// ```
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum AckError {
    /// The tag is not a delivery this consumer holds unacked (already
    /// settled, from another consumer, or invented).
    #[error("unknown delivery tag {0}: it was already acked or rejected, or belongs to another consumer")]
    UnknownDeliveryTag(u64),
}

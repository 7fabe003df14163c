//! What a namespace handle and every producer, consumer and publisher opened
//! from it share: the directory handle, the routing segment and its compiled
//! snapshot, this process's liveness token, and the exclusive queues to
//! delete on close. Below both the queue handles and the `Namespace` API, so
//! neither reaches up into the other.

use std::sync::{Arc, Mutex};

use crate::error::Error;
use crate::liveness::Peer;
use crate::nsdir::{NamespaceDir, Sub};
use crate::ring::Ring;
use crate::routing::table::RoutingSegment;
use crate::routing::Router;
use crate::segment;
use crate::sync::Ordering;

/// State shared by a namespace and every handle opened from it.
pub(crate) struct NamespaceState {
    /// The namespace directory: every file operation goes through it.
    pub(crate) dir: Arc<NamespaceDir>,
    pub(crate) name: String,
    /// This process's liveness token in this namespace: registered on first
    /// use, held as long as the namespace handle or any of its handles live.
    peer: Mutex<Option<Arc<Peer>>>,
    pub(crate) routing: RoutingSegment,
    /// The latest compiled routing snapshot, shared by this process's publishers.
    pub(crate) router: Mutex<Option<Arc<Router>>>,
    /// Exclusive queues this namespace handle declared; deleted when it closes.
    pub(crate) exclusive: Mutex<Vec<String>>,
    /// Bytes all queue segments may take (fixed at creation, in `shmq.ns`).
    pub(crate) memory_budget: u64,
    /// The bytes queue segments took when last counted, when, and what
    /// this process declared since (see [`NamespaceState::bytes_in_use`]).
    bytes_counted: Mutex<Option<(u64, std::time::Instant, u32)>>,
    /// This process's share of the broker's timers (see `housekeeping.rs`).
    pub(crate) housekeeping: crate::namespace::housekeeping::HousekeepingLock,
}

/// How stale the count of bytes in use may be when a declare checks the
/// budget: counting stats every segment file, so it is not done per
/// declare; declares in between add their own sizes.
const COUNT_AGAIN_AFTER: (std::time::Duration, u32) = (std::time::Duration::from_millis(100), 64);

impl NamespaceState {
    /// The bytes the namespace's segments take: counted (a `stat` of every
    /// segment file) at most every 100 ms or 64 declares, plus the segments
    /// this process declared since.
    pub(crate) fn bytes_in_use(&self) -> u64 {
        let mut counted = self.bytes_counted.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match *counted {
            Some((bytes, at, declares)) if at.elapsed() < COUNT_AGAIN_AFTER.0 && declares < COUNT_AGAIN_AFTER.1 => bytes,
            _ => {
                let bytes = crate::segment::bytes_in_use(&self.dir);
                *counted = Some((bytes, std::time::Instant::now(), 0));
                bytes
            }
        }
    }

    /// Notes a segment of `bytes` this process just created.
    pub(crate) fn count_created(&self, bytes: u64) {
        if let Some((total, _, declares)) = self.bytes_counted.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_mut() {
            *total = total.saturating_add(bytes);
            *declares += 1;
        }
    }

    /// Marks a queue's segment deleted, wakes its waiters and unlinks it.
    /// Returns false if there was no such file. `name` may come from shared
    /// memory: the directory handle validates it, and the unlink is relative
    /// to `queues/`, so no name reaches a file outside it.
    pub(crate) fn remove_queue_file(&self, name: &str) -> bool {
        if crate::nsdir::validate_queue_name(name).is_err() {
            return false;
        }
        let file = crate::nsdir::queue_file_name(name);
        let segment = match segment::open_queue_file(&self.dir, name) {
            // Another queue's (two names hashed alike): not this one to
            // remove.
            Ok(segment) if segment.config.name != name => return false,
            Ok(segment) => segment,
            // Damaged: nothing in it can be saved.
            Err(_) => return self.dir.unlink(Sub::Queues, &file),
        };
        // SYNC POINT DELETED: Release pairs with the loads in handles; they
        // only need to see the flag eventually, waiters are woken below.
        segment.deleted_word().store(1, Ordering::Release);
        let prefix = format!("{:016x}.", segment.config.queue_id);
        let first = segment.config.clone();
        let ring = Ring::new(segment);
        ring.notify_consumers();
        ring.notify_producers();
        let removed = self.dir.unlink(Sub::Queues, &file);
        // The next budget check counts afresh, without this queue.
        *self.bytes_counted.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        // Its later rings: flag them too (handles there check their own
        // ring), wake their waiters, and remove them.
        // Priority levels' chains (`<id>.p<level>.<seq>`) too.
        for extent in self.dir.list(Sub::Extents).unwrap_or_default() {
            let Some((level, seq)) = extent.strip_prefix(&prefix).and_then(segment::parse_extent_name) else { continue };
            if level > first.max_priority {
                continue;
            }
            let of_level = segment::QueueConfig { level, ..first.clone() };
            if let Ok(later) = segment::open_extent(&self.dir, &of_level, seq) {
                later.deleted_word().store(1, Ordering::Release);
                let ring = Ring::new(later);
                ring.notify_consumers();
                ring.notify_producers();
            }
            self.dir.unlink(Sub::Extents, &extent);
        }
        removed
    }

    /// State for a namespace just opened.
    pub(crate) fn new(dir: Arc<NamespaceDir>, name: String, routing: RoutingSegment, memory_budget: u64) -> Self {
        Self {
            dir,
            name,
            peer: Mutex::new(None),
            routing,
            router: Mutex::new(None),
            exclusive: Mutex::new(Vec::new()),
            memory_budget,
            bytes_counted: Mutex::new(None),
            housekeeping: Default::default(),
        }
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

    /// This process's liveness token if it registered one yet, else 0 (a
    /// fork child has none until it registers its own).
    pub(crate) fn registered_token(&self) -> u64 {
        self.peer.lock().unwrap_or_else(|e| e.into_inner()).as_ref().filter(|p| !crate::liveness::inherited(p.pid)).map_or(0, |p| p.token)
    }

    /// This process's liveness token, registered on first use. A fork
    /// child registers its own (and drops its copy of the parent's list of
    /// exclusive queues, which stay the parent's): what it attaches after
    /// the fork is recovered when it dies, not when its parent does.
    pub(crate) fn peer(&self) -> Result<Arc<Peer>, Error> {
        let mut guard = self.peer.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(peer) = guard.as_ref() {
            if !crate::liveness::inherited(peer.pid) {
                return Ok(peer.clone());
            }
            self.exclusive.lock().unwrap_or_else(|e| e.into_inner()).clear();
            // Dropping the copy leaves the parent's file alone (Peer's Drop
            // does nothing in a child) and, with the last copy, closes the
            // child's descriptor of its lock: the parent's death shows then.
            drop(guard.take());
        }
        let peer = Arc::new(Peer::register(&self.dir)?);
        *guard = Some(peer.clone());
        Ok(peer)
    }
}

impl Drop for NamespaceState {
    fn drop(&mut self) {
        // A fork child's copy: the exclusive queues are the parent's.
        if self.peer.lock().unwrap_or_else(|e| e.into_inner()).as_ref().is_some_and(|p| crate::liveness::inherited(p.pid)) {
            return;
        }
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

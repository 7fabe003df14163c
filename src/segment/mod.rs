//! Segment files: creating, mapping and validating them.
//!
//! A segment is created under a temporary name, sized with `fallocate`,
//! initialised, marked ready, and only then hard-linked to its real name, so
//! no process ever maps a half-built segment under its real name. Opening
//! re-validates everything anyway: the file is untrusted input.
//! docs/LAYOUT.md gives the byte-exact layout.

pub(crate) mod layout;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

use memmap2::MmapRaw;

use crate::error::Error;
use crate::nsdir::{NamespaceDir, Sub};
use crate::options::{Overflow, QueueOptions};
use crate::ring::layout::{AgentSlot, RingHeader, Slot, UNIT};
use crate::ring::{Geometry, RingMemory};
use crate::sync::{AtomicU32, Ordering};
use layout::*;

/// A validated queue configuration, as stored in the segment header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct QueueConfig {
    /// This segment's ring sizes (the first segment's are the declared ones).
    pub(crate) geometry: Geometry,
    pub(crate) max_message_bytes: u32,
    /// As given at declare; `None` means drop-head.
    pub(crate) overflow: Option<Overflow>,
    pub(crate) message_ttl_ms: u64,
    pub(crate) max_length: Option<u64>,
    pub(crate) max_length_bytes: Option<u64>,
    pub(crate) name: String,
    /// Random, fixed at declare: names the queue's later segments.
    pub(crate) queue_id: u64,
    /// 0 for the first segment, then 1, 2, ... for each later ring.
    pub(crate) seq: u64,
    pub(crate) dead_letter_exchange: Option<String>,
    pub(crate) dead_letter_routing_key: Option<String>,
    pub(crate) delivery_limit: Option<u32>,
    /// `x-expires` in ms; 0 = never.
    pub(crate) expires_ms: u64,
    pub(crate) queue_type: crate::QueueType,
    /// `x-single-active-consumer`.
    pub(crate) single_active_consumer: bool,
    /// Declared durable.
    pub(crate) durable: bool,
    /// `x-max-priority`; 0: not a priority queue.
    pub(crate) max_priority: u8,
    /// `x-max-priority` was declared (0 included).
    pub(crate) max_priority_declared: bool,
    /// The priority level whose messages this segment's chain holds (see
    /// src/queue/priority.rs); 0 for the queue's own chain.
    pub(crate) level: u8,
}

impl QueueConfig {
    pub(crate) fn from_options(name: &str, options: &QueueOptions) -> Result<Self, Error> {
        let geometry = options.geometry()?;
        Ok(Self {
            geometry,
            max_message_bytes: options.max_message_bytes,
            overflow: options.overflow,
            message_ttl_ms: options.message_ttl.map_or(0, |d| d.as_millis().min(u128::from(u64::MAX)) as u64),
            max_length: options.max_length,
            max_length_bytes: options.max_length_bytes,
            name: name.to_owned(),
            queue_id: crate::liveness::random_token(),
            seq: 0,
            dead_letter_exchange: options.dead_letter_exchange.clone(),
            dead_letter_routing_key: options.dead_letter_routing_key.clone(),
            delivery_limit: options.delivery_limit,
            expires_ms: options.expires.map_or(0, |d| d.as_millis().clamp(1, u128::from(u64::MAX)) as u64),
            queue_type: options.queue_type,
            single_active_consumer: options.single_active_consumer,
            // RabbitMQ makes exclusive queues non-durable, whatever asked.
            durable: options.durable && !options.exclusive,
            max_priority: options.max_priority.unwrap_or(0),
            max_priority_declared: options.max_priority.is_some(),
            level: 0,
        })
    }

    /// The options this configuration was declared with (of the first
    /// segment's config).
    pub(crate) fn options(&self) -> QueueOptions {
        QueueOptions {
            capacity_bytes: u64::from(self.geometry.data_units) * UNIT as u64,
            max_length: self.max_length,
            max_length_bytes: self.max_length_bytes,
            max_message_bytes: self.max_message_bytes,
            overflow: self.overflow,
            message_ttl: (self.message_ttl_ms != 0).then(|| std::time::Duration::from_millis(self.message_ttl_ms)),
            exclusive: false,
            auto_delete: false,
            durable: self.durable,
            dead_letter_exchange: self.dead_letter_exchange.clone(),
            dead_letter_routing_key: self.dead_letter_routing_key.clone(),
            delivery_limit: self.delivery_limit,
            expires: (self.expires_ms != 0).then(|| std::time::Duration::from_millis(self.expires_ms)),
            queue_type: self.queue_type,
            single_active_consumer: self.single_active_consumer,
            max_priority: self.max_priority_declared.then_some(self.max_priority),
        }
    }

    /// True if messages leaving this queue other than by ack go somewhere
    /// (a dead-letter exchange) or are counted against a delivery limit:
    /// consumers then take expired and over-delivered messages into their
    /// hands instead of discarding them in the ring.
    pub(crate) fn has_lifecycle(&self) -> bool {
        self.dead_letter_exchange.is_some() || self.delivery_limit.is_some()
    }

    /// The config of this queue's segment `seq` with ring sizes `geometry`.
    pub(crate) fn extent(&self, seq: u64, geometry: Geometry) -> Self {
        Self { geometry, seq, ..self.clone() }
    }
}

/// The file name of segment `seq` of priority level `level`'s chain of a
/// queue (`<id>.<seq>` for the queue's own chain, `<id>.p<level>.<seq>` for
/// a level's): numbers only, so a name read from shared memory never
/// reaches a path.
pub(crate) fn extent_name(queue_id: u64, level: u8, seq: u64) -> String {
    if level == 0 {
        format!("{queue_id:016x}.{seq}")
    } else {
        format!("{queue_id:016x}.p{level}.{seq}")
    }
}

/// `(level, seq)` of an extent file name's part after `<id>.`: the inverse
/// of [`extent_name`]; `None` for anything else.
pub(crate) fn parse_extent_name(rest: &str) -> Option<(u8, u64)> {
    match rest.strip_prefix('p') {
        Some(level_seq) => {
            let (level, seq) = level_seq.split_once('.')?;
            let level: u8 = level.parse().ok().filter(|&l| l > 0)?;
            Some((level, seq.parse().ok()?))
        }
        None => Some((0, rest.parse().ok()?)),
    }
}

/// A mapped queue segment. Implements [`RingMemory`] over the mapping.
pub(crate) struct QueueSegment {
    map: MmapRaw,
    base: NonNull<u8>,
    pub(crate) path: PathBuf,
    pub(crate) config: QueueConfig,
    offsets: QueueOffsets,
    _file: File,
}

// SAFETY: the mapping lives as long as `self`; everything reached through
// `base` is either an atomic (the ring structs) or data bytes that the ring
// protocol gives to one owner at a time.
unsafe impl Send for QueueSegment {}
// SAFETY: as for Send; shared access goes through atomics only.
unsafe impl Sync for QueueSegment {}

/// What `create_queue` found.
pub(crate) enum Created {
    /// This call created the segment.
    New(QueueSegment),
    /// Another process (or an earlier call) had created it.
    Existing(QueueSegment),
}

/// Creates `queues/<config.name>` as a queue segment unless it exists;
/// `tmp/<tmp_name>` holds the segment while it is being built.
pub(crate) fn create_queue(dir: &NamespaceDir, tmp_name: &str, config: &QueueConfig) -> Result<Created, Error> {
    create_segment(dir, tmp_name, config, Sub::Queues, &crate::nsdir::queue_file_name(&config.name))
}

/// Creates the queue's later segment `config.seq` (`extents/<id>.<seq>`)
/// unless it exists.
pub(crate) fn create_extent(dir: &NamespaceDir, tmp_name: &str, config: &QueueConfig) -> Result<Created, Error> {
    create_segment(dir, tmp_name, config, Sub::Extents, &extent_name(config.queue_id, config.level, config.seq))
}

fn create_segment(dir: &NamespaceDir, tmp_name: &str, config: &QueueConfig, sub: Sub, name: &str) -> Result<Created, Error> {
    let path = dir.path_of(sub, name);
    let open_existing = || if sub == Sub::Queues { open_queue(dir, &config.name) } else { open_extent(dir, config, config.seq) };
    if dir.exists(sub, name) {
        return open_existing().map(Created::Existing);
    }
    let offsets = QueueOffsets::for_geometry(config.geometry);
    let tmp = dir.path_of(Sub::Tmp, tmp_name);
    // Created with the namespace's mode, set explicitly (the umask is not ours).
    let file = dir.create_file(Sub::Tmp, tmp_name)?;
    let cleanup = TmpGuard(dir, tmp_name);
    reserve(dir, &file, offsets.total, &path)?;
    let map = MmapRaw::map_raw(&file).map_err(|e| Error::io(&tmp, e))?;
    prefault(&file, &map);
    let base = NonNull::new(map.as_mut_ptr()).ok_or_else(|| Error::Corrupt { path: tmp.clone(), reason: "mmap returned null".into() })?;
    let header = encode_queue_header(config, &offsets);
    // SAFETY: the mapping is `offsets.total >= HEADER_BYTES` bytes long and
    // nobody else has this brand-new file yet.
    unsafe { std::ptr::copy_nonoverlapping(header.as_ptr(), base.as_ptr(), header.len()) };
    let segment = QueueSegment { map, base, path: path.clone(), config: config.clone(), offsets, _file: file };
    segment.init_ring();
    // SYNC POINT SEGMENT-READY: Release pairs with the Acquire load in
    // `map_segment`: the header and ring initialisation are visible to any
    // process that sees READY.
    segment.ready_word().store(READY_VALUE, Ordering::Release);
    let linked = dir.link(Sub::Tmp, tmp_name, sub, name)?;
    drop(cleanup);
    if linked {
        Ok(Created::New(segment))
    } else {
        drop(segment);
        open_existing().map(Created::Existing)
    }
}

/// Removes a file under construction when its builder gives up (or is done:
/// the real name is a hard link).
pub(crate) struct TmpGuard<'d>(pub(crate) &'d NamespaceDir, pub(crate) &'d str);

impl Drop for TmpGuard<'_> {
    fn drop(&mut self) {
        self.0.unlink(Sub::Tmp, self.1);
    }
}

/// Reserves `len` bytes so that a full file system fails here, not with
/// SIGBUS on first touch. A failure is `NoSpace` naming `path` (the file's
/// real name) and the space left.
pub(crate) fn reserve(dir: &NamespaceDir, file: &File, len: u64, path: &Path) -> Result<(), Error> {
    let result = match rustix::fs::fallocate(file, rustix::fs::FallocateFlags::empty(), 0, len) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::OPNOTSUPP) | Err(rustix::io::Errno::NOSYS) => file.set_len(len),
        Err(e) => Err(e.into()),
    };
    result.map_err(|e| match Error::io(path, e) {
        Error::NoSpace { path, .. } => Error::NoSpace { path, needed: len, available: dir.available_bytes() },
        other => other,
    })
}

/// Maps and validates the existing segment of queue `name` (its file is
/// `queues/<queue_file_name(name)>`): a regular file of a trusted owner
/// (checked by [`NamespaceDir::open_file`]) whose size is exactly what its
/// header implies, so that no access through the mapping can fall beyond
/// the end of the file, and whose header names this queue.
pub(crate) fn open_queue(dir: &NamespaceDir, name: &str) -> Result<QueueSegment, Error> {
    let segment = open_queue_file(dir, name)?;
    if segment.config.name != name {
        return Err(Error::Corrupt {
            path: segment.path.clone(),
            reason: format!("it holds queue '{}', not '{name}'", segment.config.name.escape_debug()),
        });
    }
    Ok(segment)
}

/// Maps and validates the segment in queue `name`'s file, whichever queue
/// its header names (a hashed file name may be another queue's).
pub(crate) fn open_queue_file(dir: &NamespaceDir, name: &str) -> Result<QueueSegment, Error> {
    map_segment(dir, Sub::Queues, &crate::nsdir::queue_file_name(name), KIND_QUEUE)
}

/// The queue a file under `queues/` holds, by its name or, for a hashed
/// name, by its header; `None` if no queue name gives that file.
pub(crate) fn queue_of_file(dir: &NamespaceDir, file: &str) -> Option<String> {
    if let Some(name) = crate::nsdir::queue_name_of_file(file) {
        return Some(name);
    }
    let name = map_segment(dir, Sub::Queues, file, KIND_QUEUE).ok()?.config.name;
    (crate::nsdir::validate_queue_name(&name).is_ok() && crate::nsdir::queue_file_name(&name) == file).then_some(name)
}

/// Maps and validates segment `seq` of the queue whose first segment has
/// config `first`: it must name the same queue, id and sequence number.
/// For a priority level's chain, `first` is the config of the level's first
/// segment (or of any segment of the queue with that level set), and
/// segment 0 is the level's first.
pub(crate) fn open_extent(dir: &NamespaceDir, first: &QueueConfig, seq: u64) -> Result<QueueSegment, Error> {
    let name = extent_name(first.queue_id, first.level, seq);
    let segment = map_segment(dir, Sub::Extents, &name, if seq == 0 { KIND_QUEUE } else { KIND_EXTENT })?;
    let c = &segment.config;
    if c.name != first.name
        || c.queue_id != first.queue_id
        || c.seq != seq
        || c.level != first.level
        || c.max_priority != first.max_priority
    {
        return Err(Error::Corrupt {
            path: segment.path.clone(),
            reason: format!(
                "it claims to be segment {} of level {} of queue '{}' (id {:016x}), not segment {seq} of level {} of '{}'",
                c.seq, c.level, c.name, c.queue_id, first.level, first.name
            ),
        });
    }
    Ok(segment)
}

fn map_segment(dir: &NamespaceDir, sub: Sub, name: &str, kind: u32) -> Result<QueueSegment, Error> {
    let (file, stat) = dir.open_file(sub, name, true)?;
    let path = dir.path_of(sub, name);
    let path = path.as_path();
    let len = u64::try_from(stat.st_size).unwrap_or(0);
    let corrupt = |reason: String| Error::Corrupt { path: path.to_owned(), reason };
    if len < HEADER_BYTES as u64 {
        return Err(corrupt(format!("truncated: {len} bytes, smaller than the {HEADER_BYTES}-byte header")));
    }
    let map = MmapRaw::map_raw(&file).map_err(|e| Error::io(path, e))?;
    let base = NonNull::new(map.as_mut_ptr()).ok_or_else(|| corrupt("mmap returned null".into()))?;
    let mut header = [0u8; HEADER_BYTES];
    // SAFETY: the mapping is at least HEADER_BYTES long (checked above). Other
    // processes may write it concurrently; we copy it out once and validate
    // the copy, never the live bytes.
    unsafe { std::ptr::copy_nonoverlapping(base.as_ptr(), header.as_mut_ptr(), HEADER_BYTES) };
    // SAFETY: offset READY_OFFSET is 4-aligned inside the mapping (page-aligned
    // base); only atomics touch that word.
    let ready = unsafe { &*(base.as_ptr().add(READY_OFFSET) as *const AtomicU32) };
    // SYNC POINT SEGMENT-READY: pairs with the Release store in `create_segment`.
    let ready = ready.load(Ordering::Acquire);
    let config = decode_queue_header(&header, ready, len, kind).map_err(|problem| match problem {
        HeaderProblem::Version(found) => Error::IncompatibleVersion { path: path.to_owned(), found, supported: LAYOUT_VERSION },
        HeaderProblem::Corrupt(reason) => corrupt(reason),
    })?;
    let offsets = QueueOffsets::for_geometry(config.geometry);
    Ok(QueueSegment { map, base, path: path.to_owned(), config, offsets, _file: file })
}

impl QueueSegment {
    /// Faults the mapping's pages in now, for a producer or consumer about
    /// to use the ring: its first messages then take no page faults. Not
    /// done for a look at a queue (stats, a passive declare), which would
    /// pay it for nothing (half a millisecond for a default ring). Only an
    /// open ring's: a closed one takes no more writes, and a retired one's
    /// data pages were given back, not to be faulted in again. The size
    /// was validated when it was mapped.
    pub(crate) fn prefault(&self) {
        if self.header().chain.closed.load(Ordering::Relaxed) == 0 {
            prefault(&self._file, &self.map);
        }
    }

    fn ready_word(&self) -> &AtomicU32 {
        // SAFETY: READY_OFFSET is 4-aligned and inside the mapping.
        unsafe { &*(self.base.as_ptr().add(READY_OFFSET) as *const AtomicU32) }
    }

    /// Writes the initial cursor and slot values into a fresh segment.
    fn init_ring(&self) {
        crate::ring::init_positions(self, 0, 0);
    }

    /// Pointer to data byte `offset`, for in-place reads and writes.
    ///
    /// # Panics
    /// Never for offsets the ring produced; an out-of-range offset is a bug
    /// and is checked.
    pub(crate) fn data_ptr(&self, offset: usize, len: usize) -> Option<*mut u8> {
        let end = offset.checked_add(len)?;
        if end > self.offsets.data_len {
            return None;
        }
        // SAFETY: `offset + len` is within the data area, checked above.
        Some(unsafe { self.base.as_ptr().add(self.offsets.data + offset) })
    }

    /// Copies data bytes that another process may be changing (for `peek`):
    /// volatile byte reads, validated by the caller afterwards.
    pub(crate) fn copy_racy(&self, offset: usize, len: usize) -> Option<Vec<u8>> {
        let ptr = self.data_ptr(offset, len)?;
        // SAFETY: in bounds (data_ptr checked); volatile reads of plain bytes
        // never fault, and the caller discards the copy unless the slot's
        // control word shows nobody wrote these bytes meanwhile.
        Some((0..len).map(|i| unsafe { std::ptr::read_volatile(ptr.add(i)) }).collect())
    }

    /// Gives a retired ring's data pages back to the system: punches them
    /// out of the file (the size stays). Nothing reads or writes a retired
    /// ring's data again (claims racing its close give up before writing),
    /// so no access can fault a page back in. Best effort.
    pub(crate) fn release_data(&self) {
        let flags = rustix::fs::FallocateFlags::PUNCH_HOLE | rustix::fs::FallocateFlags::KEEP_SIZE;
        let _ = rustix::fs::fallocate(&self._file, flags, self.offsets.data as u64, self.offsets.data_len as u64);
    }

    /// Flushes the mapping to its file (meaningful for on-disk namespaces).
    pub(crate) fn flush(&self) -> std::io::Result<()> {
        self.map.flush()
    }
}

impl RingMemory for QueueSegment {
    fn geometry(&self) -> Geometry {
        self.config.geometry
    }

    fn counts_ready_bytes(&self) -> bool {
        self.config.max_length_bytes.is_some()
    }

    fn lifecycle(&self) -> crate::ring::Lifecycle {
        crate::ring::Lifecycle { hold_dead: self.config.has_lifecycle(), delivery_limit: self.config.delivery_limit }
    }

    fn header(&self) -> &RingHeader {
        // SAFETY: RING_OFFSET is 128-aligned within the mapping, the header
        // is all atomics, and the mapping outlives `&self`.
        unsafe { &*(self.base.as_ptr().add(RING_OFFSET) as *const RingHeader) }
    }

    fn slot(&self, index: u32) -> &Slot {
        debug_assert!(index < self.config.geometry.slot_count);
        let index = (index & (self.config.geometry.slot_count - 1)) as usize;
        // SAFETY: the masked index is below slot_count, so the slot lies in the
        // validated slot array; Slot is all atomics, 8-aligned.
        unsafe { &*(self.base.as_ptr().add(self.offsets.slots + index * SLOT_BYTES) as *const Slot) }
    }

    fn agent(&self, index: usize) -> &AgentSlot {
        let index = index % crate::ring::layout::AGENT_SLOTS;
        // SAFETY: index < AGENT_SLOTS; the agent table is 128-aligned and all
        // atomics.
        unsafe { &*(self.base.as_ptr().add(AGENTS_OFFSET + index * AGENT_BYTES) as *const AgentSlot) }
    }

    unsafe fn write_data(&self, offset: usize, src: &[u8]) -> bool {
        match self.data_ptr(offset, src.len()) {
            // SAFETY: in bounds (checked); the caller owns the claimed record.
            Some(dst) => unsafe {
                std::ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len());
                true
            },
            None => false,
        }
    }

    unsafe fn read_data(&self, offset: usize, dst: &mut [u8]) -> bool {
        match self.data_ptr(offset, dst.len()) {
            // SAFETY: in bounds (checked); the caller holds the record DELIVERED.
            Some(src) => unsafe {
                std::ptr::copy_nonoverlapping(src, dst.as_mut_ptr(), dst.len());
                true
            },
            None => false,
        }
    }
}

/// The namespace marker's name in the namespace directory.
pub(crate) const MARKER: &str = "shmq.ns";

/// Whether the namespace marker (`shmq.ns`) exists, as anything.
pub(crate) fn has_namespace_marker(dir: &NamespaceDir) -> bool {
    dir.exists(Sub::Root, MARKER)
}

/// A namespace's marker segment: magic, version, ready, and the memory
/// budget (bytes 24..32) fixed when the namespace was created. Guards
/// against mixing layout versions in one directory. Creates it if missing
/// with `budget` (the caller's choice, else [`default_budget`]); reads at
/// most 64 bytes of it, and only if it is a regular file. Returns the budget.
pub(crate) fn ensure_namespace_marker(dir: &NamespaceDir, tmp_name: &str, budget: Option<u64>) -> Result<u64, Error> {
    let path = dir.path_of(Sub::Root, MARKER);
    if !has_namespace_marker(dir) {
        let mut bytes = [0u8; NAMESPACE_MARKER_BYTES];
        bytes[..8].copy_from_slice(&MAGIC);
        bytes[8..12].copy_from_slice(&LAYOUT_VERSION.to_le_bytes());
        bytes[12..16].copy_from_slice(&KIND_NAMESPACE.to_le_bytes());
        bytes[16..20].copy_from_slice(&READY_VALUE.to_le_bytes());
        bytes[24..32].copy_from_slice(&budget.unwrap_or_else(|| default_budget(dir)).to_le_bytes());
        let mut file = dir.create_file(Sub::Tmp, tmp_name)?;
        let _guard = TmpGuard(dir, tmp_name);
        std::io::Write::write_all(&mut file, &bytes).map_err(|e| Error::io(dir.path_of(Sub::Tmp, tmp_name), e))?;
        // Another process may have linked its marker first: fine.
        dir.link(Sub::Tmp, tmp_name, Sub::Root, MARKER)?;
    }
    let bytes = dir.read_bounded(Sub::Root, MARKER, 64)?;
    let corrupt = |reason: &str| Error::Corrupt { path: path.clone(), reason: reason.to_owned() };
    if bytes.len() < 20 {
        return Err(corrupt("truncated namespace marker"));
    }
    if bytes[..8] != MAGIC {
        return Err(corrupt("not an shmq namespace marker (bad magic)"));
    }
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if version != LAYOUT_VERSION {
        return Err(Error::IncompatibleVersion { path, found: version, supported: LAYOUT_VERSION });
    }
    if bytes.len() < 32 {
        return Err(corrupt("truncated namespace marker (no memory budget)"));
    }
    let mut budget = [0u8; 8];
    budget.copy_from_slice(&bytes[24..32]);
    Ok(u64::from_le_bytes(budget))
}

/// The share of the file system's free space a new namespace may use.
pub(crate) const DEFAULT_BUDGET_PERCENT: u64 = 40;

/// The default memory budget: [`DEFAULT_BUDGET_PERCENT`] of the space free
/// in the namespace's file system now (1 GiB if it cannot be read).
pub(crate) fn default_budget(dir: &NamespaceDir) -> u64 {
    dir.available_bytes().map_or(1 << 30, |free| free / 100 * DEFAULT_BUDGET_PERCENT)
}

/// Bytes of queue segments in the namespace now (first segments and later
/// rings): what counts against the memory budget. Allocated blocks, not
/// sizes: a retired first ring's punched data pages no longer count, and a
/// sparse file planted in `extents/` cannot use the budget up.
pub(crate) fn bytes_in_use(dir: &NamespaceDir) -> u64 {
    [Sub::Queues, Sub::Extents]
        .into_iter()
        .flat_map(|sub| dir.list(sub).unwrap_or_default().into_iter().map(move |name| (sub, name)))
        .filter_map(|(sub, name)| dir.stat(sub, &name))
        .map(|stat| u64::try_from(stat.st_blocks).unwrap_or(0).saturating_mul(512))
        .fold(0u64, u64::saturating_add)
}

/// Atomic-word views used by the namespace to mark deletion.
impl QueueSegment {
    pub(crate) fn deleted_word(&self) -> &AtomicU32 {
        &self.header().state.deleted
    }

    /// When the queue was last used, for `x-expires`.
    pub(crate) fn last_used(&self) -> &crate::sync::AtomicU64 {
        &self.header().state.last_used_ms
    }

    /// The retired counters' `published` etc., for stats.
    pub(crate) fn retired(&self) -> &crate::ring::layout::Counters {
        &self.header().state.retired
    }
}

/// tmpfs's `statfs` magic number.
const TMPFS_MAGIC: i64 = 0x0102_1994;

/// Faults in every page of a segment on tmpfs, writable, before the hot
/// path can touch it (MADV_POPULATE_WRITE; the data are not accessed). A
/// first touch costs a minor fault of microseconds: before this, those
/// faults were shmq's whole latency p99 (3–4 µs; 0.3–0.5 µs after). Not on
/// disk namespaces, where a write fault would dirty the whole file. Best
/// effort: kernels before 5.14 refuse the advice and fault lazily.
fn prefault(file: &std::fs::File, map: &MmapRaw) {
    // `f_type` is i64 here but narrower on other targets.
    #[allow(clippy::unnecessary_cast)]
    let on_tmpfs = rustix::fs::fstatfs(file).is_ok_and(|stat| stat.f_type as i64 == TMPFS_MAGIC);
    if on_tmpfs {
        let _ = map.advise(memmap2::Advice::PopulateWrite);
    }
}

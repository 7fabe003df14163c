//! The routing segment (`<namespace>/routing`): a header, then a
//! [`seqtable`](super::seqtable) of the encoded [`Table`]. Writers serialise
//! through `flock` on `<namespace>/routing.lock`, which a crashed writer
//! cannot wedge (the kernel drops its lock); a writer that dies mid-update
//! leaves only the unpublished region half-written.

use std::fs::File;
use std::path::PathBuf;
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::{Duration, Instant};

use memmap2::MmapRaw;
use rustix::fs::{flock, FlockOperation};

use super::{ArgValue, Binding, Destination, ExchangeInfo, ExchangeKind, ExchangeOptions, QueueMeta, Table};
use crate::error::Error;
use crate::nsdir::{NamespaceDir, Sub};
use crate::segment::layout::{LAYOUT_VERSION, MAGIC, READY_VALUE};
use crate::seqtable::{self, SeqError, SeqStorage};
use crate::sync::{AtomicU32, AtomicU64, Ordering};

/// Segment kind: the routing table.
const KIND_ROUTING: u32 = 3;
const HEADER_BYTES: usize = 512;
const GENERATION_OFFSET: usize = 512;
const UNROUTABLE_OFFSET: usize = 640;
const REGIONS_OFFSET: usize = 768;

/// Capacities of a namespace's routing table, fixed when it is created.
///
/// # Examples
/// ```
/// let limits = shmq::RoutingLimits::default();
/// assert_eq!(limits.max_bindings, 16384);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoutingLimits {
    /// Most exchanges (the five built-in ones count).
    pub max_exchanges: u32,
    /// Most queues.
    pub max_queues: u32,
    /// Most bindings.
    pub max_bindings: u32,
    /// Bytes of each of the table's two regions.
    pub table_bytes: u64,
}

impl Default for RoutingLimits {
    fn default() -> Self {
        Self { max_exchanges: 1024, max_queues: 4096, max_bindings: 16384, table_bytes: 4 << 20 }
    }
}

/// The largest [`RoutingLimits`] shmq accepts, when creating a namespace and
/// when opening one (its header is read from shared memory, untrusted):
/// every allocation a reader makes for the table is bounded by these.
pub(crate) const MAX_LIMITS: RoutingLimits =
    RoutingLimits { max_exchanges: 1 << 16, max_queues: 1 << 20, max_bindings: 1 << 22, table_bytes: 64 << 20 };

impl RoutingLimits {
    /// Checks these limits are usable and within [`MAX_LIMITS`]: room for
    /// the built-in exchanges and their encoding, nothing beyond the maxima.
    pub(crate) fn check(&self) -> Result<(), String> {
        let builtins = super::BUILTIN_EXCHANGES.len() as u32;
        let m = &MAX_LIMITS;
        let bad = |what: &str, value: u64, low: u64, high: u64| format!("routing limit {what} = {value} is outside {low}..={high}");
        if !(builtins..=m.max_exchanges).contains(&self.max_exchanges) {
            return Err(bad("max_exchanges", self.max_exchanges.into(), builtins.into(), m.max_exchanges.into()));
        }
        if self.max_queues > m.max_queues {
            return Err(bad("max_queues", self.max_queues.into(), 0, m.max_queues.into()));
        }
        if self.max_bindings > m.max_bindings {
            return Err(bad("max_bindings", self.max_bindings.into(), 0, m.max_bindings.into()));
        }
        if !(MIN_TABLE_BYTES..=m.table_bytes).contains(&self.table_bytes) {
            return Err(bad("table_bytes", self.table_bytes, MIN_TABLE_BYTES, m.table_bytes));
        }
        Ok(())
    }
}

/// Enough bytes for the built-in exchanges' encoding.
const MIN_TABLE_BYTES: u64 = 4096;

/// The mapped routing segment.
pub(crate) struct RoutingSegment {
    _map: MmapRaw,
    base: NonNull<u8>,
    region_words: usize,
    pub(crate) limits: RoutingLimits,
    pub(crate) path: PathBuf,
    dir: Arc<NamespaceDir>,
}

/// The routing segment's and its writers' lock's names in the namespace.
const ROUTING: &str = "routing";
const ROUTING_LOCK: &str = "routing.lock";
/// How long a table writer waits for the writers' lock.
pub(crate) const LOCK_WAIT: Duration = Duration::from_secs(5);

// SAFETY: everything reached through `base` after the header is atomics.
unsafe impl Send for RoutingSegment {}
// SAFETY: as for Send.
unsafe impl Sync for RoutingSegment {}

fn region_words(limits: &RoutingLimits) -> usize {
    (limits.table_bytes as usize).div_ceil(8)
}

/// Rows of the per-exchange counter table (open addressing by name hash).
pub(crate) const EXCHANGE_STAT_ROWS: usize = 1024;
const EXCHANGE_STAT_BYTES: usize = 32;

fn stats_offset(limits: &RoutingLimits) -> usize {
    REGIONS_OFFSET + 2 * 8 * (1 + region_words(limits))
}

fn total_bytes(limits: &RoutingLimits) -> u64 {
    (stats_offset(limits) + EXCHANGE_STAT_ROWS * EXCHANGE_STAT_BYTES) as u64
}

/// Adds `n` to a counter in shared memory, stopping at `u64::MAX` instead
/// of wrapping (another process may have stored anything there); returns
/// the previous value.
fn saturating_add(counter: &AtomicU64, n: u64) -> u64 {
    // Relaxed: a statistic; nothing is published through it.
    let mut current = counter.load(Ordering::Relaxed);
    while current != u64::MAX && n != 0 {
        match counter.compare_exchange_weak(current, current.saturating_add(n), Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => break,
            Err(actual) => current = actual,
        }
    }
    current
}

/// A statistics counter in the routing segment: adds saturate at
/// `u64::MAX`, since the stored value is untrusted and may be anything.
pub(crate) struct Counter<'s>(&'s AtomicU64);

impl Counter<'_> {
    /// Adds `n`, saturating; returns the previous value. Always Relaxed (a
    /// statistic publishes nothing); `_order` keeps `AtomicU64`'s signature.
    pub(crate) fn fetch_add(&self, n: u64, _order: Ordering) -> u64 {
        saturating_add(self.0, n)
    }

    /// The current value.
    pub(crate) fn load(&self, order: Ordering) -> u64 {
        self.0.load(order)
    }
}

/// The 64-bit FNV-1a hash of an exchange name, never 0 (0 marks a free row).
pub(crate) fn exchange_hash(name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in name.as_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h.max(1)
}

impl SeqStorage for RoutingSegment {
    fn generation(&self) -> &AtomicU64 {
        // SAFETY: 8-aligned offset inside the validated mapping.
        unsafe { &*(self.base.as_ptr().add(GENERATION_OFFSET) as *const AtomicU64) }
    }

    fn region(&self, which: usize) -> (&AtomicU64, &[AtomicU64]) {
        let start = REGIONS_OFFSET + (which % 2) * 8 * (1 + self.region_words);
        // SAFETY: both regions lie inside the mapping (its length was checked
        // against `total_bytes` on open); 8-aligned; atomics only.
        unsafe {
            let len = &*(self.base.as_ptr().add(start) as *const AtomicU64);
            let words = std::slice::from_raw_parts(self.base.as_ptr().add(start + 8) as *const AtomicU64, self.region_words);
            (len, words)
        }
    }
}

impl RoutingSegment {
    /// Opens the namespace's routing segment, creating it (under the name
    /// `tmp/<tmp_name>` first) if missing.
    pub(crate) fn open_or_create(dir: &Arc<NamespaceDir>, tmp_name: &str, limits: RoutingLimits) -> Result<Self, Error> {
        if !dir.exists(Sub::Root, ROUTING) {
            Self::create(dir, tmp_name, limits)?;
        }
        // Created now so that a reader-only process never has to.
        drop(dir.open_or_create_file(Sub::Root, ROUTING_LOCK)?);
        Self::open(dir)
    }

    fn create(dir: &Arc<NamespaceDir>, tmp_name: &str, limits: RoutingLimits) -> Result<(), Error> {
        limits.check().map_err(Error::InvalidOptions)?;
        let tmp = dir.path_of(Sub::Tmp, tmp_name);
        let file = dir.create_file(Sub::Tmp, tmp_name)?;
        let _cleanup = crate::segment::TmpGuard(dir, tmp_name);
        let total = total_bytes(&limits);
        // Every page is backed now, or this is NoSpace: never SIGBUS later.
        crate::segment::reserve(dir, &file, total, &dir.path_of(Sub::Root, ROUTING))?;
        let mut header = [0u8; HEADER_BYTES];
        header[..8].copy_from_slice(&MAGIC);
        header[8..12].copy_from_slice(&LAYOUT_VERSION.to_le_bytes());
        header[12..16].copy_from_slice(&KIND_ROUTING.to_le_bytes());
        header[24..32].copy_from_slice(&limits.table_bytes.to_le_bytes());
        header[32..36].copy_from_slice(&limits.max_exchanges.to_le_bytes());
        header[36..40].copy_from_slice(&limits.max_queues.to_le_bytes());
        header[40..44].copy_from_slice(&limits.max_bindings.to_le_bytes());
        std::io::Write::write_all(&mut &file, &header).map_err(|e| Error::io(&tmp, e))?;
        let segment = Self::map(file, tmp.clone(), limits, dir.clone())?;
        let words = encode(&Table::with_builtins());
        if !seqtable::write(&segment, &words) {
            return Err(Error::TableFull { what: "table bytes", limit: limits.table_bytes });
        }
        // SYNC POINT SEGMENT-READY: Release pairs with the Acquire load in
        // `open`.
        segment.ready_word().store(READY_VALUE, Ordering::Release);
        drop(segment);
        // Another process may have linked its table first: fine, use it.
        dir.link(Sub::Tmp, tmp_name, Sub::Root, ROUTING)?;
        Ok(())
    }

    fn map(file: File, path: PathBuf, limits: RoutingLimits, dir: Arc<NamespaceDir>) -> Result<Self, Error> {
        let map = MmapRaw::map_raw(&file).map_err(|e| Error::io(&path, e))?;
        let base =
            NonNull::new(map.as_mut_ptr()).ok_or_else(|| Error::Corrupt { path: path.clone(), reason: "mmap returned null".into() })?;
        Ok(Self { _map: map, base, region_words: region_words(&limits), limits, path, dir })
    }

    fn ready_word(&self) -> &AtomicU32 {
        // SAFETY: offset 16, 4-aligned, inside the mapping.
        unsafe { &*(self.base.as_ptr().add(16) as *const AtomicU32) }
    }

    /// Maps the routing segment: a regular file of a trusted owner (checked
    /// by [`NamespaceDir::open_file`]) exactly as long as its header implies.
    fn open(dir: &Arc<NamespaceDir>) -> Result<Self, Error> {
        let path = dir.path_of(Sub::Root, ROUTING);
        let corrupt = |reason: String| Error::Corrupt { path: path.clone(), reason };
        let (file, stat) = dir.open_file(Sub::Root, ROUTING, true)?;
        let len = u64::try_from(stat.st_size).unwrap_or(0);
        if len < (REGIONS_OFFSET + 16) as u64 {
            return Err(corrupt(format!("truncated routing segment: {len} bytes")));
        }
        let mut header = [0u8; 48];
        std::io::Read::read_exact(&mut &file, &mut header).map_err(|e| Error::io(&path, e))?;
        if header[..8] != MAGIC {
            return Err(corrupt("not an shmq routing segment (bad magic)".into()));
        }
        let version = u32::from_le_bytes(header[8..12].try_into().unwrap_or_default());
        if version != LAYOUT_VERSION {
            return Err(Error::IncompatibleVersion { path, found: version, supported: LAYOUT_VERSION });
        }
        if u32::from_le_bytes(header[12..16].try_into().unwrap_or_default()) != KIND_ROUTING {
            return Err(corrupt("segment is not a routing table".into()));
        }
        let limits = RoutingLimits {
            table_bytes: u64::from_le_bytes(header[24..32].try_into().unwrap_or_default()),
            max_exchanges: u32::from_le_bytes(header[32..36].try_into().unwrap_or_default()),
            max_queues: u32::from_le_bytes(header[36..40].try_into().unwrap_or_default()),
            max_bindings: u32::from_le_bytes(header[40..44].try_into().unwrap_or_default()),
        };
        // Untrusted: out-of-range limits would size the reader's buffers.
        limits.check().map_err(&corrupt)?;
        if total_bytes(&limits) != len {
            return Err(corrupt(format!("file is {len} bytes, its header implies {}", total_bytes(&limits))));
        }
        let segment = Self::map(file, path.clone(), limits, dir.clone())?;
        // SYNC POINT SEGMENT-READY: pairs with the Release store in `create`.
        if segment.ready_word().load(Ordering::Acquire) != READY_VALUE {
            return Err(corrupt("the creator never finished initialising it (ready word unset)".into()));
        }
        Ok(segment)
    }

    /// Takes the writers' lock, waiting at most [`LOCK_WAIT`], and records
    /// this process's pid in the lock file for the next waiter's error.
    fn lock_writers(&self) -> Result<File, Error> {
        let lock = self.dir.open_or_create_file(Sub::Root, ROUTING_LOCK)?;
        let path = self.dir.path_of(Sub::Root, ROUTING_LOCK);
        let start = Instant::now();
        let mut pause = Duration::from_micros(200);
        loop {
            match flock(&lock, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => break,
                Err(rustix::io::Errno::WOULDBLOCK) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(Error::io(&path, e.into())),
            }
            let waited = start.elapsed();
            if waited >= LOCK_WAIT {
                return Err(Error::LockTimeout { path, waited, holder: lock_holder(&lock) });
            }
            std::thread::sleep(pause.min(LOCK_WAIT - waited));
            pause = (pause * 2).min(Duration::from_millis(20));
        }
        let pid = format!("{}\n", std::process::id());
        let _ = rustix::fs::ftruncate(&lock, 0);
        let _ = rustix::io::pwrite(&lock, pid.as_bytes(), 0);
        Ok(lock)
    }

    /// The generation counter's current value (one atomic load).
    #[inline]
    pub(crate) fn current_generation(&self) -> u64 {
        // SYNC POINT SEQ-PUBLISH (reader side): a changed value is followed by
        // a full `read`.
        self.generation().load(Ordering::Acquire)
    }

    /// Unroutable messages dropped in this namespace, ever (a counter that
    /// saturates: see [`Counter`]).
    pub(crate) fn unroutable(&self) -> Counter<'_> {
        // SAFETY: 8-aligned offset inside the mapping.
        Counter(unsafe { &*(self.base.as_ptr().add(UNROUTABLE_OFFSET) as *const AtomicU64) })
    }

    /// Counter row `i`: `(name hash, published, unroutable)`.
    fn stat_row(&self, i: usize) -> [&AtomicU64; 3] {
        let at = stats_offset(&self.limits) + (i % EXCHANGE_STAT_ROWS) * EXCHANGE_STAT_BYTES;
        // SAFETY: the counter table lies inside the mapping (its length was
        // checked against `total_bytes`); 8-aligned; atomics only.
        unsafe { [0, 8, 16].map(|off| &*(self.base.as_ptr().add(at + off) as *const AtomicU64)) }
    }

    /// Adds to an exchange's counters (claiming a row on first use),
    /// saturating at `u64::MAX` whatever the rows hold. Counts for a name
    /// that finds no free row are dropped from the per-exchange view only;
    /// the namespace total still counts unroutable ones.
    pub(crate) fn add_exchange_counts(&self, hash: u64, published: u64, unroutable: u64) {
        for probe in 0..EXCHANGE_STAT_ROWS {
            let [key, p, u] = self.stat_row((hash as usize).wrapping_add(probe));
            let current = key.load(Ordering::Relaxed);
            let mine = current == hash
                || (current == 0
                    && match key.compare_exchange(0, hash, Ordering::Relaxed, Ordering::Relaxed) {
                        Ok(_) => true,
                        Err(actual) => actual == hash,
                    });
            if mine {
                saturating_add(p, published);
                saturating_add(u, unroutable);
                return;
            }
        }
    }

    /// `(published, unroutable)` counted for an exchange.
    pub(crate) fn exchange_counts(&self, name: &str) -> (u64, u64) {
        let hash = exchange_hash(name);
        for probe in 0..EXCHANGE_STAT_ROWS {
            let [key, p, u] = self.stat_row((hash as usize).wrapping_add(probe));
            match key.load(Ordering::Relaxed) {
                0 => return (0, 0),
                k if k == hash => return (p.load(Ordering::Relaxed), u.load(Ordering::Relaxed)),
                _ => {}
            }
        }
        (0, 0)
    }

    /// A consistent snapshot of the table and its generation.
    pub(crate) fn read(&self) -> Result<(u64, Table), Error> {
        let mut words = Vec::new();
        let generation = seqtable::read(self, &mut words).map_err(|e| match e {
            SeqError::Corrupt => Error::Corrupt { path: self.path.clone(), reason: "routing table length is impossible".into() },
            SeqError::Busy => Error::Corrupt { path: self.path.clone(), reason: "routing table changed on every read attempt".into() },
        })?;
        let table = decode_within(&words, &self.limits)
            .ok_or_else(|| Error::Corrupt { path: self.path.clone(), reason: "routing table does not decode".into() })?;
        Ok((generation, table))
    }

    /// Runs `change` on the current table under the writers' lock and
    /// publishes the result if it changed.
    pub(crate) fn update<R>(&self, change: impl FnOnce(&mut Table) -> Result<R, Error>) -> Result<R, Error> {
        let lock = self.lock_writers()?;
        let (_, mut table) = self.read()?;
        let before = table.clone();
        let result = change(&mut table)?;
        if table != before {
            self.check_limits(&table)?;
            let words = encode(&table);
            if !seqtable::write(self, &words) {
                return Err(Error::TableFull { what: "table bytes", limit: self.limits.table_bytes });
            }
        }
        drop(lock);
        Ok(result)
    }

    fn check_limits(&self, table: &Table) -> Result<(), Error> {
        let l = &self.limits;
        if table.exchanges.len() > l.max_exchanges as usize {
            return Err(Error::TableFull { what: "exchanges", limit: u64::from(l.max_exchanges) });
        }
        if table.queues.len() > l.max_queues as usize {
            return Err(Error::TableFull { what: "queues", limit: u64::from(l.max_queues) });
        }
        if table.bindings.len() > l.max_bindings as usize {
            return Err(Error::TableFull { what: "bindings", limit: u64::from(l.max_bindings) });
        }
        Ok(())
    }
}

// ---- codec: the table as bytes, packed into words (first word: byte length)

struct Out(Vec<u8>);

impl Out {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        let len = s.len().min(u16::MAX as usize);
        self.0.extend_from_slice(&(len as u16).to_le_bytes());
        self.0.extend_from_slice(&s.as_bytes()[..len]);
    }
}

/// Who holds the writers' lock: the kernel's lock table names the process;
/// else the pid the last holder wrote into the file (read bounded).
fn lock_holder(lock: &File) -> Option<u32> {
    let stat = rustix::fs::fstat(lock).ok()?;
    if let Ok(holder) = crate::liveness::flock_holder(stat.st_dev, stat.st_ino) {
        return holder;
    }
    let mut bytes = [0u8; 32];
    let n = rustix::io::pread(lock, &mut bytes, 0).ok()?;
    std::str::from_utf8(&bytes[..n]).ok()?.trim().parse().ok()
}

pub(crate) fn encode(table: &Table) -> Vec<u64> {
    let mut o = Out(Vec::new());
    o.u32(table.exchanges.len() as u32);
    for e in &table.exchanges {
        o.str(&e.name);
        o.u8(e.options.kind.code());
        o.u8(u8::from(e.options.auto_delete)
            | u8::from(e.options.internal) << 1
            | u8::from(e.builtin) << 2
            | u8::from(e.options.durable) << 3);
        match &e.options.alternate_exchange {
            Some(a) => {
                o.u8(1);
                o.str(a);
            }
            None => o.u8(0),
        }
    }
    o.u32(table.queues.len() as u32);
    for q in &table.queues {
        o.str(&q.name);
        o.u64(q.exclusive_owner);
        o.u8(u8::from(q.auto_delete));
    }
    o.u32(table.bindings.len() as u32);
    for b in &table.bindings {
        o.str(&b.source);
        match &b.destination {
            Destination::Queue(q) => {
                o.u8(1);
                o.str(q);
            }
            Destination::Exchange(x) => {
                o.u8(2);
                o.str(x);
            }
        }
        o.str(&b.key);
        o.u32(b.arguments.len() as u32);
        for (k, v) in &b.arguments {
            o.str(k);
            match v {
                ArgValue::Str(s) => {
                    o.u8(1);
                    o.str(s);
                }
                ArgValue::Int(i) => {
                    o.u8(2);
                    o.u64(*i as u64);
                }
                ArgValue::Bool(b) => {
                    o.u8(3);
                    o.u8(u8::from(*b));
                }
                ArgValue::Void => o.u8(4),
            }
        }
    }
    let bytes = o.0;
    let mut words = Vec::with_capacity(1 + bytes.len().div_ceil(8));
    words.push(bytes.len() as u64);
    for chunk in bytes.chunks(8) {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        words.push(u64::from_le_bytes(w));
    }
    words
}

struct In<'b> {
    bytes: &'b [u8],
    at: usize,
}

impl In<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.at.checked_add(n)?;
        let out = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(out)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes)
    }
    fn str(&mut self) -> Option<String> {
        let len = self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))? as usize;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }
    /// A count, bounded by what the remaining bytes could possibly hold, so
    /// a hostile count cannot make us allocate wildly.
    fn count(&mut self, min_item_bytes: usize) -> Option<usize> {
        let n = self.u32()? as usize;
        (n <= (self.bytes.len() - self.at) / min_item_bytes.max(1)).then_some(n)
    }
}

/// The encoded table's bytes, in place where the words' memory order is
/// the encoding's byte order (little-endian), else copied.
fn word_bytes(words: &[u64]) -> std::borrow::Cow<'_, [u8]> {
    if cfg!(target_endian = "little") {
        // SAFETY: `words` is one live allocation of `size_of_val(words)`
        // initialised bytes (u64 has no padding); u8 needs no alignment; the
        // borrow keeps `words` alive and unmodified for the slice's lifetime.
        std::borrow::Cow::Borrowed(unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), std::mem::size_of_val(words)) })
    } else {
        std::borrow::Cow::Owned(words.iter().flat_map(|w| w.to_le_bytes()).collect())
    }
}

/// Decodes a table within shmq's largest limits ([`MAX_LIMITS`]), for
/// callers without a segment (the fuzz entry points in `crate::fuzzing`).
#[allow(dead_code)]
pub(crate) fn decode(words: &[u64]) -> Option<Table> {
    decode_within(words, &MAX_LIMITS)
}

/// Decodes a table read from shared memory, so untrusted: `None` unless it
/// is well formed and within `limits`. Allocates nothing beyond what the
/// items actually present need (every count is checked against the bytes
/// left and the limit before anything is reserved), so never more than a
/// small multiple of `words`' own size.
pub(crate) fn decode_within(words: &[u64], limits: &RoutingLimits) -> Option<Table> {
    let (&len, rest) = words.split_first()?;
    let len = usize::try_from(len).ok()?;
    if len > rest.len().checked_mul(8)? {
        return None;
    }
    let all = word_bytes(rest);
    let bytes = &all[..len];
    let mut r = In { bytes, at: 0 };
    let mut table = Table::default();
    let within = |n: usize, limit: u32| (n <= limit as usize).then_some(n);
    for _ in 0..within(r.count(5)?, limits.max_exchanges)? {
        let name = r.str()?;
        let kind = ExchangeKind::from_code(r.u8()?)?;
        let flags = r.u8()?;
        let alternate_exchange = match r.u8()? {
            0 => None,
            _ => Some(r.str()?),
        };
        table.exchanges.push(ExchangeInfo {
            name,
            options: ExchangeOptions {
                kind,
                auto_delete: flags & 1 != 0,
                internal: flags & 2 != 0,
                alternate_exchange,
                durable: flags & 8 != 0,
            },
            builtin: flags & 4 != 0,
        });
    }
    for _ in 0..within(r.count(11)?, limits.max_queues)? {
        let name = r.str()?;
        let exclusive_owner = r.u64()?;
        let auto_delete = r.u8()? != 0;
        table.queues.push(QueueMeta { name, exclusive_owner, auto_delete });
    }
    for _ in 0..within(r.count(11)?, limits.max_bindings)? {
        let source = r.str()?;
        let destination = match r.u8()? {
            1 => Destination::Queue(r.str()?),
            2 => Destination::Exchange(r.str()?),
            _ => return None,
        };
        let key = r.str()?;
        let mut arguments = Vec::new();
        for _ in 0..r.count(3)? {
            let k = r.str()?;
            let v = match r.u8()? {
                1 => ArgValue::Str(r.str()?),
                2 => ArgValue::Int(r.u64()? as i64),
                3 => ArgValue::Bool(r.u8()? != 0),
                4 => ArgValue::Void,
                _ => return None,
            };
            arguments.push((k, v));
        }
        table.bindings.push(Binding { source, destination, key, arguments });
    }
    (r.at == bytes.len()).then_some(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_round_trips_through_the_codec() {
        let mut t = Table::with_builtins();
        t.queues.push(QueueMeta { name: "q".into(), exclusive_owner: 42, auto_delete: true });
        t.exchanges.push(ExchangeInfo {
            name: "x".into(),
            options: ExchangeOptions::new(ExchangeKind::Topic).alternate_exchange("amq.fanout").auto_delete(true),
            builtin: false,
        });
        t.bindings.push(Binding {
            source: "amq.headers".into(),
            destination: Destination::Queue("q".into()),
            key: "k".into(),
            arguments: vec![
                ("x-match".into(), ArgValue::Str("any".into())),
                ("n".into(), ArgValue::Int(-3)),
                ("b".into(), ArgValue::Bool(true)),
                ("v".into(), ArgValue::Void),
            ],
        });
        assert_eq!(decode(&encode(&t)), Some(t));
    }

    /// Hostile counts and lengths in a few bytes decode to nothing (the
    /// decoder pushes item by item, so a huge count cannot reserve memory;
    /// `routing::a_routing_header_claiming_a_huge_table_is_corrupt_and_never_allocated`
    /// measures the allocation bound).
    #[test]
    fn huge_claimed_counts_in_a_small_buffer_are_refused() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&u32::MAX.to_le_bytes()); // exchanges
        bytes.extend_from_slice(&[0; 12]);
        let mut words = vec![bytes.len() as u64];
        words.extend(bytes.chunks(8).map(|c| {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            u64::from_le_bytes(w)
        }));
        assert_eq!(decode(&words), None);
        // A byte length beyond the words, or one that overflows.
        assert_eq!(decode(&[u64::MAX, 0, 0]), None);
        assert_eq!(decode(&[17, 0, 0]), None);
        assert_eq!(decode(&[]), None);
    }

    #[test]
    fn tables_beyond_the_segments_limits_do_not_decode() {
        let mut t = Table::with_builtins();
        for name in ["a", "b", "c"] {
            t.queues.push(QueueMeta { name: name.into(), exclusive_owner: 0, auto_delete: false });
        }
        let words = encode(&t);
        let roomy = RoutingLimits { max_queues: 3, ..RoutingLimits::default() };
        let tight = RoutingLimits { max_queues: 2, ..RoutingLimits::default() };
        assert_eq!(decode_within(&words, &roomy), Some(t));
        assert_eq!(decode_within(&words, &tight), None);
    }

    #[test]
    fn limits_outside_the_maxima_are_refused() {
        assert_eq!(RoutingLimits::default().check(), Ok(()));
        assert_eq!(MAX_LIMITS.check(), Ok(()));
        let huge_table = RoutingLimits { table_bytes: 1 << 30, ..RoutingLimits::default() };
        assert!(huge_table.check().unwrap_err().contains("table_bytes = 1073741824"));
        for bad in [
            RoutingLimits { max_exchanges: 4, ..RoutingLimits::default() },
            RoutingLimits { max_exchanges: u32::MAX, ..RoutingLimits::default() },
            RoutingLimits { max_queues: u32::MAX, ..RoutingLimits::default() },
            RoutingLimits { max_bindings: u32::MAX, ..RoutingLimits::default() },
            RoutingLimits { table_bytes: 0, ..RoutingLimits::default() },
            RoutingLimits { table_bytes: u64::MAX, ..RoutingLimits::default() },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn damaged_words_never_panic() {
        let mut t = Table::with_builtins();
        t.queues.push(QueueMeta { name: "q".into(), exclusive_owner: 1, auto_delete: false });
        let words = encode(&t);
        let mut state = 0x1234_5678_9ABC_DEF0u64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut damaged = words.clone();
            let i = (state % damaged.len() as u64) as usize;
            damaged[i] ^= 1 << (state >> 58);
            let _ = decode(&damaged);
            let _ = decode(&damaged[..i]);
        }
    }
}

#[cfg(test)]
mod proptests {
    use super::*;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 4000, failure_persistence: None, ..Default::default() })]

        /// Arbitrary words never panic the decoder or make it allocate wildly.
        #[test]
        fn decode_survives_arbitrary_words(words in proptest::collection::vec(proptest::prelude::any::<u64>(), 0..64)) {
            let _ = decode(&words);
        }

        /// Small edits of a valid table decode to a table or to nothing.
        #[test]
        fn decode_survives_edits_of_a_valid_table(edits in proptest::collection::vec((0usize..64, proptest::prelude::any::<u64>()), 1..4)) {
            let mut t = Table::with_builtins();
            t.queues.push(QueueMeta { name: "q".into(), exclusive_owner: 7, auto_delete: true });
            t.bindings.push(Binding { source: "amq.topic".into(), destination: Destination::Queue("q".into()), key: "a.#".into(), arguments: vec![] });
            let mut words = encode(&t);
            for (at, value) in edits {
                let i = at % words.len();
                words[i] ^= value;
            }
            let _ = decode(&words);
        }
    }
}

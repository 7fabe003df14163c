//! Byte offsets of a queue segment, layout version 6 (docs/LAYOUT.md).
//!
//! ```text
//! 0      segment header (48 B) + queue config (to 128)
//! 128    queue name, 256 B (length in the config)
//! 384    message lifecycle config (to 512)
//! 512    dead-letter exchange, 256 B
//! 768    dead-letter routing key, 256 B
//! 1024   RingHeader, 8 × 128 B
//! 2048   agent table, 64 × 128 B
//! 10240  slot array, slot_count × 32 B
//! data   data area, data_units × 8 B, at the next 4096-byte boundary
//! ```

use super::QueueConfig;
use crate::options::{Overflow, QueueType};
use crate::ring::layout::{AgentSlot, RingHeader, Slot, AGENT_SLOTS, UNIT};
use crate::ring::Geometry;

/// First bytes of every shmq segment.
pub(crate) const MAGIC: [u8; 8] = *b"SHMQSEG\0";
/// The layout version this build reads and writes.
pub const LAYOUT_VERSION: u32 = 7;
/// Segment kind: a queue.
pub(crate) const KIND_QUEUE: u32 = 1;
/// Segment kind: a namespace marker.
pub(crate) const KIND_NAMESPACE: u32 = 2;
/// Segment kind: a later ring of a queue (`extents/<queue id>.<seq>`).
pub(crate) const KIND_EXTENT: u32 = 3;
/// Stored for "no limit" in the limit fields.
const NO_LIMIT: u64 = u64::MAX;
/// The ready word's value once the creator finished initialising ("RDY!").
pub(crate) const READY_VALUE: u32 = u32::from_le_bytes(*b"RDY!");

/// Bytes of the fixed header region copied out and validated on open.
pub(crate) const HEADER_BYTES: usize = 1024;
pub(crate) const NAMESPACE_MARKER_BYTES: usize = 64;
pub(crate) const READY_OFFSET: usize = 16;
const NAME_OFFSET: usize = 128;
const NAME_MAX: usize = 255;
const DLX_OFFSET: usize = 512;
const DLRK_OFFSET: usize = 768;
/// Lifecycle flags at 120: which optional settings are present.
const FLAG_DEAD_LETTER_EXCHANGE: u32 = 1;
const FLAG_DEAD_LETTER_ROUTING_KEY: u32 = 2;
const FLAG_QUORUM: u32 = 4;
const FLAG_SINGLE_ACTIVE_CONSUMER: u32 = 8;
const FLAG_DURABLE: u32 = 16;
/// `x-max-priority` was given (0 included: RabbitMQ compares it).
const FLAG_MAX_PRIORITY: u32 = 32;
const KNOWN_FLAGS: u32 = 63;
/// `x-max-priority` at 408 (u32; 0 = not a priority queue).
const MAX_PRIORITY_OFFSET: usize = 408;
/// The priority level this segment's chain holds, at 412 (u32; 0 for the
/// queue's own chain, which also holds unprioritised messages).
const LEVEL_OFFSET: usize = 412;
pub(crate) const RING_OFFSET: usize = 1024;
pub(crate) const AGENTS_OFFSET: usize = RING_OFFSET + core::mem::size_of::<RingHeader>();
pub(crate) const AGENT_BYTES: usize = core::mem::size_of::<AgentSlot>();
pub(crate) const SLOTS_OFFSET: usize = AGENTS_OFFSET + AGENT_SLOTS * AGENT_BYTES;
pub(crate) const SLOT_BYTES: usize = core::mem::size_of::<Slot>();
const PAGE: usize = 4096;

pub(crate) use crate::ring::{MAX_DATA_UNITS, MAX_SLOTS, MIN_DATA_UNITS};

const _: () = {
    assert!(AGENTS_OFFSET == 2048);
    assert!(SLOTS_OFFSET == 10240);
    assert!(DLRK_OFFSET + 256 <= RING_OFFSET);
    assert!(AGENTS_OFFSET.is_multiple_of(128) && SLOTS_OFFSET.is_multiple_of(128));
    assert!(NAME_OFFSET + 256 <= HEADER_BYTES);
};

/// Where each part of a queue segment of some geometry lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct QueueOffsets {
    pub(crate) slots: usize,
    pub(crate) data: usize,
    pub(crate) data_len: usize,
    pub(crate) total: u64,
}

impl QueueOffsets {
    pub(crate) fn for_geometry(geometry: Geometry) -> Self {
        let slots_end = SLOTS_OFFSET + geometry.slot_count as usize * SLOT_BYTES;
        let data = slots_end.div_ceil(PAGE) * PAGE;
        let data_len = geometry.data_units as usize * UNIT;
        Self { slots: SLOTS_OFFSET, data, data_len, total: (data + data_len) as u64 }
    }
}

fn put_u32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put_u64(buf: &mut [u8], at: usize, v: u64) {
    buf[at..at + 8].copy_from_slice(&v.to_le_bytes());
}
fn get_u32(buf: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}
fn get_u64(buf: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[at..at + 8]);
    u64::from_le_bytes(b)
}

/// The header bytes of a fresh queue segment (ready word still zero).
pub(crate) fn encode_queue_header(config: &QueueConfig, offsets: &QueueOffsets) -> [u8; HEADER_BYTES] {
    let mut b = [0u8; HEADER_BYTES];
    b[0..8].copy_from_slice(&MAGIC);
    put_u32(&mut b, 8, LAYOUT_VERSION);
    put_u32(&mut b, 12, if config.seq == 0 { KIND_QUEUE } else { KIND_EXTENT });
    // 16: ready word, stored last by the creator.
    put_u32(&mut b, 20, RING_OFFSET as u32);
    put_u64(&mut b, 24, offsets.total);
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    put_u64(&mut b, 32, now_ms);
    put_u32(&mut b, 40, std::process::id());
    put_u32(&mut b, 48, config.geometry.slot_count);
    put_u32(&mut b, 52, config.geometry.data_units);
    put_u32(&mut b, 56, config.max_message_bytes);
    put_u32(&mut b, 60, config.overflow.map_or(0, |o| o as u32));
    put_u64(&mut b, 64, config.message_ttl_ms);
    put_u32(&mut b, 72, AGENT_SLOTS as u32);
    put_u32(&mut b, 76, config.name.len() as u32);
    b[80..88].copy_from_slice(&(offsets.data as u64).to_le_bytes());
    put_u64(&mut b, 88, config.queue_id);
    put_u64(&mut b, 96, config.seq);
    put_u64(&mut b, 104, config.max_length.unwrap_or(NO_LIMIT));
    put_u64(&mut b, 112, config.max_length_bytes.unwrap_or(NO_LIMIT));
    b[NAME_OFFSET..NAME_OFFSET + config.name.len()].copy_from_slice(config.name.as_bytes());
    let mut flags = 0;
    if let Some(exchange) = &config.dead_letter_exchange {
        flags |= FLAG_DEAD_LETTER_EXCHANGE;
        put_u32(&mut b, 400, exchange.len() as u32);
        b[DLX_OFFSET..DLX_OFFSET + exchange.len()].copy_from_slice(exchange.as_bytes());
    }
    if let Some(key) = &config.dead_letter_routing_key {
        flags |= FLAG_DEAD_LETTER_ROUTING_KEY;
        put_u32(&mut b, 404, key.len() as u32);
        b[DLRK_OFFSET..DLRK_OFFSET + key.len()].copy_from_slice(key.as_bytes());
    }
    if config.queue_type == QueueType::Quorum {
        flags |= FLAG_QUORUM;
    }
    if config.single_active_consumer {
        flags |= FLAG_SINGLE_ACTIVE_CONSUMER;
    }
    if config.durable {
        flags |= FLAG_DURABLE;
    }
    if config.max_priority_declared {
        flags |= FLAG_MAX_PRIORITY;
    }
    put_u32(&mut b, MAX_PRIORITY_OFFSET, u32::from(config.max_priority));
    put_u32(&mut b, LEVEL_OFFSET, u32::from(config.level));
    put_u32(&mut b, 120, flags);
    put_u64(&mut b, 384, config.delivery_limit.map_or(NO_LIMIT, u64::from));
    put_u64(&mut b, 392, config.expires_ms);
    b
}

/// The short string of `len_at`'s length at `offset`, if `flag` is set.
fn stored_name(
    b: &[u8; HEADER_BYTES],
    flags: u32,
    flag: u32,
    len_at: usize,
    offset: usize,
    what: &str,
) -> Result<Option<String>, HeaderProblem> {
    if flags & flag == 0 {
        return Ok(None);
    }
    let len = get_u32(b, len_at) as usize;
    if len > NAME_MAX {
        return Err(HeaderProblem::Corrupt(format!("{what} length {len} is over {NAME_MAX}")));
    }
    let name = std::str::from_utf8(&b[offset..offset + len]).map_err(|_| HeaderProblem::Corrupt(format!("{what} is not UTF-8")))?;
    Ok(Some(name.to_owned()))
}

/// Why a header failed validation.
pub(crate) enum HeaderProblem {
    Version(u32),
    Corrupt(String),
}

/// Validates a copied-out header against the ready word and the file size:
/// a queue's first segment if `kind` is [`KIND_QUEUE`], a later one if
/// [`KIND_EXTENT`].
pub(crate) fn decode_queue_header(
    b: &[u8; HEADER_BYTES],
    ready: u32,
    file_len: u64,
    expected_kind: u32,
) -> Result<QueueConfig, HeaderProblem> {
    use HeaderProblem::Corrupt;
    if b[0..8] != MAGIC {
        return Err(Corrupt("not an shmq segment (bad magic)".into()));
    }
    let version = get_u32(b, 8);
    if version != LAYOUT_VERSION {
        return Err(HeaderProblem::Version(version));
    }
    let kind = get_u32(b, 12);
    if kind != expected_kind {
        return Err(Corrupt(format!(
            "segment kind {kind} is not {}",
            if expected_kind == KIND_QUEUE { "a queue" } else { "a queue extent" }
        )));
    }
    if ready != READY_VALUE {
        return Err(Corrupt("the creator never finished initialising it (ready word unset)".into()));
    }
    if get_u32(b, 20) as usize != RING_OFFSET {
        return Err(Corrupt("ring offset does not match this layout".into()));
    }
    let slot_count = get_u32(b, 48);
    let data_units = get_u32(b, 52);
    if !slot_count.is_power_of_two() || !(2..=MAX_SLOTS).contains(&slot_count) {
        return Err(Corrupt(format!("slot count {slot_count} is not a power of two in 2..={MAX_SLOTS}")));
    }
    if !data_units.is_power_of_two() || !(MIN_DATA_UNITS..=MAX_DATA_UNITS).contains(&data_units) {
        return Err(Corrupt(format!("data size {data_units} units is not a power of two in {MIN_DATA_UNITS}..={MAX_DATA_UNITS}")));
    }
    let geometry = Geometry { slot_count, data_units };
    let offsets = QueueOffsets::for_geometry(geometry);
    let total = get_u64(b, 24);
    if total != offsets.total || get_u64(b, 80) != offsets.data as u64 {
        return Err(Corrupt(format!("recorded size {total} does not match its geometry ({} bytes)", offsets.total)));
    }
    if file_len != offsets.total {
        return Err(Corrupt(format!("file is {file_len} bytes but its header says {}", offsets.total)));
    }
    let max_message_bytes = get_u32(b, 56);
    if u64::from(max_message_bytes) > crate::options::MAX_MESSAGE_BYTES {
        return Err(Corrupt(format!("largest message {max_message_bytes} is over half the largest ring")));
    }
    let seq = get_u64(b, 96);
    if (seq == 0) != (kind == KIND_QUEUE) {
        return Err(Corrupt(format!("sequence number {seq} does not fit segment kind {kind}")));
    }
    let max_length = Some(get_u64(b, 104)).filter(|&n| n != NO_LIMIT);
    if max_length.is_some_and(|n| n > u64::from(u32::MAX)) {
        return Err(Corrupt("max length is over 2^32 - 1".into()));
    }
    let overflow = match get_u32(b, 60) {
        0 => None,
        v => Some(Overflow::from_u32(v).ok_or_else(|| Corrupt(format!("unknown overflow policy {v}")))?),
    };
    if get_u32(b, 72) as usize != AGENT_SLOTS {
        return Err(Corrupt("agent table size does not match this layout".into()));
    }
    let name_len = get_u32(b, 76) as usize;
    if name_len == 0 || name_len > NAME_MAX {
        return Err(Corrupt(format!("queue name length {name_len} is not in 1..=255")));
    }
    let name = std::str::from_utf8(&b[NAME_OFFSET..NAME_OFFSET + name_len]).map_err(|_| Corrupt("queue name is not UTF-8".into()))?;
    let flags = get_u32(b, 120);
    if flags & !KNOWN_FLAGS != 0 {
        return Err(Corrupt(format!("unknown queue flags {flags:#x}")));
    }
    let dead_letter_exchange = stored_name(b, flags, FLAG_DEAD_LETTER_EXCHANGE, 400, DLX_OFFSET, "dead-letter exchange")?;
    let dead_letter_routing_key = stored_name(b, flags, FLAG_DEAD_LETTER_ROUTING_KEY, 404, DLRK_OFFSET, "dead-letter routing key")?;
    let delivery_limit = match get_u64(b, 384) {
        NO_LIMIT => None,
        n => Some(u32::try_from(n).map_err(|_| Corrupt(format!("delivery limit {n} is over 2^32 - 1")))?),
    };
    let max_priority = get_u32(b, MAX_PRIORITY_OFFSET);
    let max_priority = u8::try_from(max_priority).map_err(|_| Corrupt(format!("max priority {max_priority} is over 255")))?;
    let level = get_u32(b, LEVEL_OFFSET);
    let level = u8::try_from(level)
        .ok()
        .filter(|&l| l <= max_priority)
        .ok_or_else(|| Corrupt(format!("priority level {level} is over the queue's max priority {max_priority}")))?;
    Ok(QueueConfig {
        single_active_consumer: flags & FLAG_SINGLE_ACTIVE_CONSUMER != 0,
        durable: flags & FLAG_DURABLE != 0,
        max_priority_declared: flags & FLAG_MAX_PRIORITY != 0,
        max_priority,
        level,
        dead_letter_exchange,
        dead_letter_routing_key,
        delivery_limit,
        expires_ms: get_u64(b, 392),
        queue_type: if flags & FLAG_QUORUM != 0 { QueueType::Quorum } else { QueueType::Classic },
        geometry,
        max_message_bytes,
        overflow,
        message_ttl_ms: get_u64(b, 64),
        max_length,
        max_length_bytes: Some(get_u64(b, 112)).filter(|&n| n != NO_LIMIT),
        name: name.to_owned(),
        queue_id: get_u64(b, 88),
        seq,
    })
}

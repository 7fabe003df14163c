//! A double-buffered seqlock of words: one writer at a time (serialised by
//! the caller, a `flock` in production) publishes whole tables; any number
//! of readers take consistent snapshots without locks. Written once, generic
//! over where its words live: the routing segment in production, the heap
//! under loom.

use crate::sync::{fence, AtomicU64, Ordering};

/// Where a seqtable's words live: a generation word and two regions, each a
/// length word plus `capacity` data words.
pub trait SeqStorage {
    /// The generation counter; region `generation % 2` is the live one.
    fn generation(&self) -> &AtomicU64;
    /// Region `which` (0 or 1): its length word, then its data words.
    fn region(&self, which: usize) -> (&AtomicU64, &[AtomicU64]);
}

/// Why a snapshot could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum SeqError {
    /// The live region's length is larger than the region: damaged.
    Corrupt,
    /// Writers kept publishing while we read, many times over.
    Busy,
}

/// Reads a consistent snapshot into `out`; returns its generation.
///
/// # Errors
/// `Corrupt` if the stored length is impossible; `Busy` after 1000 retries.
pub fn read<S: SeqStorage>(storage: &S, out: &mut Vec<u64>) -> Result<u64, SeqError> {
    for _ in 0..1000 {
        // SYNC POINT SEQ-PUBLISH: Acquire pairs with the Release store in
        // `write`: the region of this generation is complete.
        let before = storage.generation().load(Ordering::Acquire);
        let (len, words) = storage.region((before % 2) as usize);
        let n = len.load(Ordering::Relaxed);
        out.clear();
        if n <= words.len() as u64 {
            out.extend(words[..n as usize].iter().map(|w| w.load(Ordering::Relaxed)));
        }
        // SYNC POINT SEQ-REUSE: pairs with the Release fence in `write`. If
        // we read any word a later writer stored into this region, we see
        // that writer's generation (or a later one) below, and retry.
        fence(Ordering::Acquire);
        if storage.generation().load(Ordering::Relaxed) == before {
            if n > words.len() as u64 {
                return Err(SeqError::Corrupt);
            }
            return Ok(before);
        }
        crate::sync::spin_hint();
    }
    Err(SeqError::Busy)
}

/// Publishes `table` as the next generation. The caller must hold the
/// writers' lock. Returns false if the table does not fit a region.
pub fn write<S: SeqStorage>(storage: &S, table: &[u64]) -> bool {
    let current = storage.generation().load(Ordering::Acquire);
    let next = current.wrapping_add(1);
    let (len, words) = storage.region((next % 2) as usize);
    if table.len() > words.len() {
        return false;
    }
    // SYNC POINT SEQ-REUSE: readers still reading generation `current - 1`
    // from this region see our stores only together with a generation
    // >= `current`, and retry.
    fence(Ordering::Release);
    len.store(table.len() as u64, Ordering::Relaxed);
    for (word, value) in words.iter().zip(table) {
        word.store(*value, Ordering::Relaxed);
    }
    // SYNC POINT SEQ-PUBLISH: Release pairs with the Acquire load in `read`.
    storage.generation().store(next, Ordering::Release);
    // A publish that starts after this write returns must see it: drain our
    // store buffer before returning.
    fence(Ordering::SeqCst);
    true
}

/// Heap storage, for loom models and unit tests.
pub struct HeapSeqStorage {
    generation: AtomicU64,
    lens: [AtomicU64; 2],
    regions: [Box<[AtomicU64]>; 2],
}

impl HeapSeqStorage {
    /// Two regions of `capacity` words, generation 0 holding `initial`.
    ///
    /// # Panics
    /// If `initial` is longer than `capacity`.
    pub fn new(capacity: usize, initial: &[u64]) -> Self {
        assert!(initial.len() <= capacity);
        let region =
            |init: &[u64]| -> Box<[AtomicU64]> { (0..capacity).map(|i| AtomicU64::new(init.get(i).copied().unwrap_or(0))).collect() };
        Self {
            generation: AtomicU64::new(0),
            lens: [AtomicU64::new(initial.len() as u64), AtomicU64::new(0)],
            regions: [region(initial), region(&[])],
        }
    }
}

impl SeqStorage for HeapSeqStorage {
    fn generation(&self) -> &AtomicU64 {
        &self.generation
    }
    fn region(&self, which: usize) -> (&AtomicU64, &[AtomicU64]) {
        (&self.lens[which % 2], &self.regions[which % 2])
    }
}

#[cfg(all(test, not(shmq_loom)))]
mod tests {
    use super::*;

    #[test]
    fn write_then_read_round_trips_and_bumps_the_generation() {
        let s = HeapSeqStorage::new(4, &[7]);
        let mut out = Vec::new();
        assert_eq!(read(&s, &mut out), Ok(0));
        assert_eq!(out, vec![7]);
        assert!(write(&s, &[1, 2, 3]));
        assert_eq!(read(&s, &mut out), Ok(1));
        assert_eq!(out, vec![1, 2, 3]);
        assert!(!write(&s, &[0; 5]));
    }

    #[test]
    fn impossible_length_is_corrupt() {
        let s = HeapSeqStorage::new(2, &[]);
        s.region(0).0.store(99, Ordering::Relaxed);
        assert_eq!(read(&s, &mut Vec::new()), Err(SeqError::Corrupt));
    }
}

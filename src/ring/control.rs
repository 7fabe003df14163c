//! The per-slot control word: one `u64` that a single CAS moves between states.
//!
//! Bits: `stamp:32 | owner:16 | flags:8 | state:8`. The stamp is the slot's
//! position (mod 2^32), so a CAS that expects `(stamp = p, ...)` can never
//! succeed on the same slot in a later lap: that is the ABA guard.

/// Not yet committed for position `stamp` (claimed, or reset for the lap).
pub(crate) const FREE: u8 = 0;
/// Committed and deliverable.
pub(crate) const READY: u8 = 1;
/// Handed to consumer `owner`, awaiting ack.
pub(crate) const DELIVERED: u8 = 2;
/// Acked, expired, dropped or purged: reclaimable.
pub(crate) const DONE: u8 = 3;
/// Claimed by a producer that aborted or died: reclaimable, never delivered.
pub(crate) const ABANDONED: u8 = 4;

/// The message was delivered before and requeued.
pub(crate) const FLAG_REDELIVERED: u8 = 1;
/// On a reset (FREE for the next lap) slot: the reclaimed slot was ABANDONED,
/// so the data cursor must not move to its (meaningless) `data_end`.
pub(crate) const FLAG_KEEP_DATA: u8 = 2;
/// On a DELIVERED slot: the consumer uses auto-ack (at-most-once), so if it
/// dies holding the message, the message is discarded, not redelivered.
pub(crate) const FLAG_AUTO_ACK: u8 = 4;
/// On a READY slot: the message is dead and its dead-lettered copy could
/// not be published yet (the dead-letter queue was full). Consumers skip
/// it; the housekeeping retries it (see `Ring::shelve`).
pub(crate) const FLAG_SHELVED: u8 = 8;

/// An unpacked control word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Control {
    pub(crate) stamp: u32,
    pub(crate) owner: u16,
    pub(crate) flags: u8,
    pub(crate) state: u8,
}

impl Control {
    #[inline]
    pub(crate) const fn new(stamp: u32, owner: u16, flags: u8, state: u8) -> Self {
        Self { stamp, owner, flags, state }
    }

    #[inline]
    pub(crate) const fn pack(self) -> u64 {
        ((self.stamp as u64) << 32) | ((self.owner as u64) << 16) | ((self.flags as u64) << 8) | self.state as u64
    }

    #[inline]
    pub(crate) const fn unpack(word: u64) -> Self {
        Self { stamp: (word >> 32) as u32, owner: (word >> 16) as u16, flags: (word >> 8) as u8, state: word as u8 }
    }
}

/// Packs a (slot position, data position) pair into one cursor word.
#[inline]
pub(crate) const fn pack_cursor(slot: u32, data: u32) -> u64 {
    ((slot as u64) << 32) | data as u64
}

/// Inverse of [`pack_cursor`].
#[inline]
pub(crate) const fn unpack_cursor(word: u64) -> (u32, u32) {
    ((word >> 32) as u32, word as u32)
}

#[cfg(all(test, not(shmq_loom)))]
mod tests {
    use super::*;

    #[test]
    fn control_round_trips_every_field() {
        let c = Control::new(0xDEAD_BEEF, 0xABCD, FLAG_REDELIVERED, DELIVERED);
        assert_eq!(Control::unpack(c.pack()), c);
        assert_eq!(unpack_cursor(pack_cursor(7, u32::MAX)), (7, u32::MAX));
    }
}

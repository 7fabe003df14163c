//! The one place atomics, fences, spin hints and futex waits come from.
//!
//! Under `--cfg shmq_loom` every item here is loom's model of it, so the ring
//! algorithm in [`crate::ring`] runs unchanged inside the model checker. The
//! futex becomes a loom `Mutex` + `Condvar` that re-checks the word, so a lost
//! wake-up shows up in the model as a deadlock.
#![allow(clippy::disallowed_types)]

#[cfg(not(shmq_loom))]
pub(crate) use std::sync::atomic::{fence, Ordering};

#[cfg(shmq_loom)]
pub(crate) use loom::sync::atomic::{fence, Ordering};

#[cfg(not(shmq_loom))]
use std::sync::atomic as imp;

#[cfg(shmq_loom)]
use loom::sync::atomic as imp;

macro_rules! atomic {
    ($name:ident, $int:ty) => {
        /// The crate's atomic integer: std's in production (same size and
        /// alignment as the integer, so it can live in a mapped segment),
        /// loom's under `--cfg shmq_loom`. The only door to atomics, so that
        /// clippy can ban the std types everywhere else.
        #[repr(transparent)]
        pub struct $name(imp::$name);

        #[allow(dead_code)] // each width uses a different subset
        impl $name {
            #[inline]
            pub(crate) fn new(value: $int) -> Self {
                Self(imp::$name::new(value))
            }
            #[inline]
            pub(crate) fn load(&self, order: Ordering) -> $int {
                self.0.load(order)
            }
            #[inline]
            pub(crate) fn store(&self, value: $int, order: Ordering) {
                self.0.store(value, order)
            }
            #[inline]
            pub(crate) fn swap(&self, value: $int, order: Ordering) -> $int {
                self.0.swap(value, order)
            }
            #[inline]
            pub(crate) fn fetch_add(&self, value: $int, order: Ordering) -> $int {
                self.0.fetch_add(value, order)
            }
            #[inline]
            pub(crate) fn fetch_or(&self, value: $int, order: Ordering) -> $int {
                self.0.fetch_or(value, order)
            }
            #[inline]
            pub(crate) fn fetch_sub(&self, value: $int, order: Ordering) -> $int {
                self.0.fetch_sub(value, order)
            }
            #[inline]
            pub(crate) fn compare_exchange(&self, current: $int, new: $int, success: Ordering, failure: Ordering) -> Result<$int, $int> {
                self.0.compare_exchange(current, new, success, failure)
            }
            #[inline]
            pub(crate) fn compare_exchange_weak(
                &self,
                current: $int,
                new: $int,
                success: Ordering,
                failure: Ordering,
            ) -> Result<$int, $int> {
                self.0.compare_exchange_weak(current, new, success, failure)
            }
            /// The std atomic, for syscalls that take one (futex).
            #[cfg(not(shmq_loom))]
            #[inline]
            pub(crate) fn as_std(&self) -> &imp::$name {
                &self.0
            }
        }
    };
}

atomic!(AtomicU32, u32);
atomic!(AtomicU64, u64);

#[cfg(not(shmq_loom))]
const _: () = {
    assert!(core::mem::size_of::<AtomicU64>() == 8 && core::mem::align_of::<AtomicU64>() == 8);
    assert!(core::mem::size_of::<AtomicU32>() == 4 && core::mem::align_of::<AtomicU32>() == 4);
};

use std::time::Duration;

/// Spin-wait hint; under loom a yield, so the model explores other threads.
#[inline]
pub(crate) fn spin_hint() {
    #[cfg(not(shmq_loom))]
    core::hint::spin_loop();
    #[cfg(shmq_loom)]
    loom::thread::yield_now();
}

/// Sleep until `word` no longer holds `expected`, a wake arrives, or `timeout`
/// passes. Spurious returns are allowed; callers re-check their condition.
///
/// The futex is *shared* (no `FUTEX_PRIVATE_FLAG`), so a waker in another
/// process that maps the same file reaches this sleeper.
#[cfg(not(shmq_loom))]
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    use rustix::thread::futex;
    let timespec =
        timeout.map(|t| futex::Timespec { tv_sec: t.as_secs().min(i64::MAX as u64) as i64, tv_nsec: i64::from(t.subsec_nanos()) });
    // EAGAIN (value already changed), ETIMEDOUT and EINTR all mean "re-check":
    // the caller loops on its own condition and deadline.
    let _ = futex::wait(word.as_std(), futex::Flags::empty(), expected, timespec.as_ref());
}

/// Wake every sleeper on `word`, in any process.
#[cfg(not(shmq_loom))]
pub(crate) fn futex_wake_all(word: &AtomicU32) {
    use rustix::thread::futex;
    // An error here can only be EFAULT/EINVAL on a bad address, which a
    // reference into a live mapping never is; sleepers also time out.
    let _ = futex::wake(word.as_std(), futex::Flags::empty(), i32::MAX as u32);
}

#[cfg(shmq_loom)]
mod loom_futex {
    use loom::sync::{Condvar, Mutex};

    pub(crate) struct Parking {
        pub(crate) lock: Mutex<()>,
        pub(crate) cond: Condvar,
    }

    loom::lazy_static! {
        pub(crate) static ref PARKING: Parking = Parking { lock: Mutex::new(()), cond: Condvar::new() };
    }
}

/// loom model of the futex wait: no timeout, so a lost wake-up deadlocks.
#[cfg(shmq_loom)]
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, _timeout: Option<Duration>) {
    let parking = &*loom_futex::PARKING;
    let guard = parking.lock.lock().unwrap();
    // The kernel compares the word under its hash-bucket lock; the mutex plays
    // that role here.
    if word.load(Ordering::SeqCst) == expected {
        drop(parking.cond.wait(guard).unwrap());
    }
}

/// loom model of the futex wake.
#[cfg(shmq_loom)]
pub(crate) fn futex_wake_all(_word: &AtomicU32) {
    let parking = &*loom_futex::PARKING;
    let _guard = parking.lock.lock().unwrap();
    parking.cond.notify_all();
}

/// An eventcount: lets a thread sleep until "something changed" without the
/// notifier making a syscall when nobody sleeps, and with one wake syscall
/// per sleep, not one per notify.
///
/// Layout (8 bytes): `seq: u32`, then 4 reserved bytes (zero). Bit 0 of
/// `seq` is the *armed* bit: a waiter sets it before sleeping; the first
/// notifier to see it set clears it, bumps the counter in the upper bits and
/// makes the one wake syscall. Notifiers that follow before anyone re-arms
/// see it clear and make none. (Layout version 1 kept a waiter count instead, and
/// every notify made a syscall while a woken waiter had not run yet: a wake
/// storm of one syscall per message.) A waiter that dies while armed costs
/// the next notifier one unneeded syscall, then the bit is clear again.
#[repr(C)]
pub struct EventCount {
    pub(crate) seq: AtomicU32,
    pub(crate) reserved: AtomicU32,
}

/// Bit 0 of [`EventCount::seq`]: a waiter may sleep on the current value.
const ARMED: u32 = 1;

impl EventCount {
    /// A fresh eventcount (nobody armed).
    pub(crate) fn new() -> Self {
        Self { seq: AtomicU32::new(0), reserved: AtomicU32::new(0) }
    }

    /// Called by the side that made progress, after making it visible.
    #[inline]
    pub fn notify(&self) {
        // SYNC POINT EC-FENCE: pairs with the fence in `prepare_wait`. Either
        // the sleeper sees our progress when it re-checks, or we see its
        // armed bit here and wake it (Dekker-style store/load).
        fence(Ordering::SeqCst);
        let seq = self.seq.load(Ordering::Relaxed);
        if seq & ARMED != 0 {
            // Clear the bit and advance the counter in one step: `(seq | 1) + 1`
            // carries into bit 1. A failed CAS means another notifier did it
            // (and woke everyone), since waiters only ever set the bit.
            // SYNC POINT EC-WAKE: Release pairs with the Acquire `fetch_or`
            // in `prepare_wait`, which then reads a newer value as its ticket.
            if self.seq.compare_exchange(seq, seq.wrapping_add(1), Ordering::Release, Ordering::Relaxed).is_ok() {
                futex_wake_all(&self.seq);
            }
        }
    }

    /// Arms the eventcount and returns the ticket to wait on. The caller
    /// must re-check its condition after this and before `wait`; if the
    /// re-check finds progress it just does not wait (the armed bit stays,
    /// costing the next notify at most one unneeded syscall).
    #[inline]
    pub fn prepare_wait(&self) -> u32 {
        // SYNC POINT EC-WAKE: Acquire pairs with the notifier's Release CAS.
        let ticket = self.seq.fetch_or(ARMED, Ordering::Acquire) | ARMED;
        // SYNC POINT EC-FENCE: see `notify`.
        fence(Ordering::SeqCst);
        ticket
    }

    /// Sleeps on the ticket (bounded by `timeout`). Returns at once if a
    /// notify came after `prepare_wait`.
    #[inline]
    pub fn wait(&self, ticket: u32, timeout: Option<Duration>) {
        futex_wait(&self.seq, ticket, timeout);
    }
}

/// One byte of heap-backed ring data. Under loom every access is tracked, so
/// a data race between a producer's write and a consumer's read fails the
/// model.
pub(crate) struct DataCell(#[cfg(not(shmq_loom))] std::cell::UnsafeCell<u8>, #[cfg(shmq_loom)] loom::cell::UnsafeCell<u8>);

// SAFETY: access is only through the unsafe `get`/`set`, whose callers own the
// byte by the ring protocol (a claimed or delivered record).
unsafe impl Sync for DataCell {}

impl DataCell {
    pub(crate) fn new() -> Self {
        #[cfg(not(shmq_loom))]
        return Self(std::cell::UnsafeCell::new(0));
        #[cfg(shmq_loom)]
        return Self(loom::cell::UnsafeCell::new(0));
    }

    /// # Safety
    /// The caller owns this byte: no other thread reads or writes it now.
    #[inline]
    pub(crate) unsafe fn set(&self, value: u8) {
        #[cfg(not(shmq_loom))]
        // SAFETY: exclusive by the caller's contract.
        unsafe {
            *self.0.get() = value
        };
        #[cfg(shmq_loom)]
        // SAFETY: exclusive by the caller's contract; loom checks it.
        self.0.with_mut(|p| unsafe { *p = value });
    }

    /// # Safety
    /// No other thread writes this byte now.
    #[inline]
    pub(crate) unsafe fn get(&self) -> u8 {
        #[cfg(not(shmq_loom))]
        // SAFETY: no concurrent writer by the caller's contract.
        return unsafe { *self.0.get() };
        #[cfg(shmq_loom)]
        // SAFETY: no concurrent writer by the caller's contract; loom checks it.
        return self.0.with(|p| unsafe { *p });
    }
}

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

/// Orders a SeqCst store or read-modify-write before a later SeqCst load
/// of another location (store buffering, Dekker's pattern). SeqCst accesses
/// alone do that in the C++ model, and on x86-64 they cost nothing extra
/// (the locked RMW or `xchg` is already a full barrier); loom models SeqCst
/// accesses as AcqRel, so under loom this is a SeqCst fence.
#[inline]
pub(crate) fn dekker_fence() {
    #[cfg(shmq_loom)]
    fence(Ordering::SeqCst);
}

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
                self.0.store(value, order);
                crash::after_write();
            }
            #[inline]
            pub(crate) fn swap(&self, value: $int, order: Ordering) -> $int {
                crash::after_write_returning(self.0.swap(value, order))
            }
            #[inline]
            pub(crate) fn fetch_add(&self, value: $int, order: Ordering) -> $int {
                crash::after_write_returning(self.0.fetch_add(value, order))
            }
            #[inline]
            pub(crate) fn fetch_or(&self, value: $int, order: Ordering) -> $int {
                crash::after_write_returning(self.0.fetch_or(value, order))
            }
            #[inline]
            pub(crate) fn fetch_sub(&self, value: $int, order: Ordering) -> $int {
                crash::after_write_returning(self.0.fetch_sub(value, order))
            }
            #[inline]
            pub(crate) fn compare_exchange(&self, current: $int, new: $int, success: Ordering, failure: Ordering) -> Result<$int, $int> {
                crash::after_write_returning(self.0.compare_exchange(current, new, success, failure))
            }
            #[inline]
            pub(crate) fn compare_exchange_weak(
                &self,
                current: $int,
                new: $int,
                success: Ordering,
                failure: Ordering,
            ) -> Result<$int, $int> {
                crash::after_write_returning(self.0.compare_exchange_weak(current, new, success, failure))
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

/// Crash points: under loom, a model can make a thread "die" (stop, as a
/// process killed with -9 stops) right after its k-th atomic write, to check
/// that every intermediate state of a protocol is recoverable. Outside loom
/// these are empty and inline away.
pub mod crash {
    /// Runs `f`, stopping it for good right after its `writes`-th atomic
    /// write (a store, swap, fetch-op or CAS, failed CASes included). Returns
    /// `None` if it was stopped there, `Some` if it finished first.
    ///
    /// # Examples
    /// ```
    /// // Outside loom nothing is counted, so `f` always finishes.
    /// assert_eq!(shmq::crash::die_after(1, || 7), Some(7));
    /// ```
    #[cfg(not(shmq_loom))]
    pub fn die_after<R>(_writes: u32, f: impl FnOnce() -> R) -> Option<R> {
        Some(f())
    }

    #[cfg(not(shmq_loom))]
    #[inline(always)]
    pub(crate) fn after_write() {}

    #[cfg(not(shmq_loom))]
    #[inline(always)]
    pub(crate) fn after_write_returning<T>(value: T) -> T {
        value
    }

    /// The unwinding payload of a crash point.
    #[cfg(shmq_loom)]
    pub struct Crashed;

    #[cfg(shmq_loom)]
    loom::thread_local! {
        static WRITES_LEFT: core::cell::Cell<Option<u32>> = core::cell::Cell::new(None);
    }

    /// See the non-loom version.
    #[cfg(shmq_loom)]
    pub fn die_after<R>(writes: u32, f: impl FnOnce() -> R) -> Option<R> {
        static QUIET: std::sync::Once = std::sync::Once::new();
        QUIET.call_once(|| {
            let default = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                if info.payload().downcast_ref::<Crashed>().is_none() {
                    default(info);
                }
            }));
        });
        if writes == 0 {
            return None;
        }
        WRITES_LEFT.with(|left| left.set(Some(writes)));
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        WRITES_LEFT.with(|left| left.set(None));
        match outcome {
            Ok(value) => Some(value),
            Err(payload) if payload.downcast_ref::<Crashed>().is_some() => None,
            Err(payload) => std::panic::resume_unwind(payload),
        }
    }

    #[cfg(shmq_loom)]
    pub(crate) fn after_write() {
        let crash = WRITES_LEFT.with(|left| match left.get() {
            Some(1) => {
                left.set(Some(0));
                true
            }
            Some(n) if n > 1 => {
                left.set(Some(n - 1));
                false
            }
            _ => false,
        });
        if crash {
            std::panic::panic_any(Crashed);
        }
    }

    #[cfg(shmq_loom)]
    pub(crate) fn after_write_returning<T>(value: T) -> T {
        after_write();
        value
    }
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
fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    use rustix::thread::futex;
    let timespec =
        timeout.map(|t| futex::Timespec { tv_sec: t.as_secs().min(i64::MAX as u64) as i64, tv_nsec: i64::from(t.subsec_nanos()) });
    // EAGAIN (value already changed), ETIMEDOUT and EINTR all mean "re-check":
    // the caller loops on its own condition and deadline.
    let _ = futex::wait(word.as_std(), futex::Flags::empty(), expected, timespec.as_ref());
}

/// Wake every sleeper on `word`, in any process.
#[cfg(not(shmq_loom))]
fn futex_wake_all(word: &AtomicU32) {
    use rustix::thread::futex;
    // An error here can only be EFAULT/EINVAL on a bad address, which a
    // reference into a live mapping never is; sleepers also time out.
    let _ = futex::wake(word.as_std(), futex::Flags::empty(), i32::MAX as u32);
}

/// loom's model of one futex word's wait queue. Each eventcount has its
/// own, so a wake on the wrong eventcount leaves the sleeper asleep and the
/// model deadlocks, as the kernel's per-address futex would.
#[cfg(shmq_loom)]
pub(crate) struct Parking {
    lock: loom::sync::Mutex<()>,
    cond: loom::sync::Condvar,
}

/// loom model of the futex wait: no timeout, so a lost wake-up deadlocks.
#[cfg(shmq_loom)]
fn futex_wait(parking: &Parking, word: &AtomicU32, expected: u32) {
    let guard = parking.lock.lock().unwrap();
    // The kernel compares the word under its hash-bucket lock; the mutex plays
    // that role here.
    if word.load(Ordering::SeqCst) == expected {
        drop(parking.cond.wait(guard).unwrap());
    }
}

/// loom model of the futex wake.
#[cfg(shmq_loom)]
fn futex_wake_all(parking: &Parking) {
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
    /// Under loom, this eventcount's own futex queue (heap instances only).
    #[cfg(shmq_loom)]
    parking: Parking,
}

/// Bit 0 of [`EventCount::seq`]: a waiter may sleep on the current value.
const ARMED: u32 = 1;

impl EventCount {
    /// A fresh eventcount (nobody armed).
    pub(crate) fn new() -> Self {
        Self {
            seq: AtomicU32::new(0),
            reserved: AtomicU32::new(0),
            #[cfg(shmq_loom)]
            parking: Parking { lock: loom::sync::Mutex::new(()), cond: loom::sync::Condvar::new() },
        }
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
                #[cfg(not(shmq_loom))]
                futex_wake_all(&self.seq);
                #[cfg(shmq_loom)]
                futex_wake_all(&self.parking);
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
        #[cfg(not(shmq_loom))]
        futex_wait(&self.seq, ticket, timeout);
        #[cfg(shmq_loom)]
        {
            let _ = timeout;
            futex_wait(&self.parking, &self.seq, ticket);
        }
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

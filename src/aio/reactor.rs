//! The reactor: turns futex wake-ups on shared-memory eventcounts into
//! [`Waker`] calls, so that an async task sleeps without a thread of its own
//! and without polling.
//!
//! A task that finds its queue empty (or full) arms the queue's eventcount
//! as a blocking caller would ([`EventCount::prepare_wait`]), re-checks,
//! and then, instead of `futex_wait`, registers `(word, ticket, waker,
//! deadline)` here. A reactor thread sleeps in one `futex_waitv(2)` on
//! every registered word at once (Linux ≥ 5.16; up to 128 words a call),
//! plus a private control word that a new registration bumps. Whatever
//! wakes it (a publisher's `notify` in any process, a deadline, a new
//! registration), it fires the registrations whose word moved off their
//! ticket or whose deadline passed, and sleeps again on the rest.
//!
//! One thread serves [`WORDS_PER_THREAD`] registrations; more registrations
//! start more threads (a thread per 127 sleeping tasks, never one per
//! consumer). Threads stay for the life of the process, asleep when idle.
//!
//! On a kernel without `futex_waitv` (ENOSYS), a thread falls back to
//! checking its words every [`FALLBACK_POLL`]: slower wake-ups, same
//! results.

use std::sync::{Arc, Mutex, OnceLock};
use std::task::Waker;
use std::time::{Duration, Instant};

use rustix::thread::futex;

use crate::sync::{AtomicU32, Ordering};

/// Registrations one reactor thread serves: `futex_waitv` takes at most
/// 128 words, and one is the thread's control word.
pub(crate) const WORDS_PER_THREAD: usize = 127;

/// How often a thread checks its words where `futex_waitv` is missing.
const FALLBACK_POLL: Duration = Duration::from_millis(1);

/// Keeps the mapping that holds a registered word alive while the reactor
/// may pass its address to the kernel or load it.
pub(crate) type KeepAlive = Arc<dyn Send + Sync>;

/// One sleeping task.
struct Registration {
    /// The word's address, inside the mapping `_keep` holds.
    word: *const AtomicU32,
    ticket: u32,
    deadline: Instant,
    waker: Waker,
    /// Set once the word moved or the deadline passed; the task sees it on
    /// its next poll.
    fired: bool,
    _keep: KeepAlive,
}

// SAFETY: `word` points into the mapping that `_keep` (Send + Sync) owns;
// the reactor only loads it atomically and hands its address to the kernel.
unsafe impl Send for Registration {}

impl Registration {
    /// True once the word no longer holds the ticket.
    fn moved(&self) -> bool {
        // SAFETY: `_keep` keeps the mapping, hence the word, alive.
        // SYNC POINT EC-WAKE (async side): Acquire pairs with the notifier's
        // Release CAS in `EventCount::notify`, as the blocking waiter's.
        unsafe { &*self.word }.load(Ordering::Acquire) != self.ticket
    }
}

/// One reactor thread's registrations.
struct Shard {
    slots: Mutex<Vec<Option<Registration>>>,
    /// Bumped (and woken) on every new registration, so the thread's
    /// `futex_waitv` takes it in.
    control: AtomicU32,
}

impl Shard {
    fn new() -> Self {
        let mut slots = Vec::with_capacity(WORDS_PER_THREAD);
        slots.resize_with(WORDS_PER_THREAD, || None);
        Self { slots: Mutex::new(slots), control: AtomicU32::new(0) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Option<Registration>>> {
        // A panic while holding the lock cannot leave the slots half-written
        // (each write is one assignment): keep going with them.
        self.slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Wakes the thread so that it re-reads its slots.
    fn kick(&self) {
        // SYNC POINT AIO-CONTROL: Release pairs with the thread's Acquire
        // load of `control` before it builds its wait list.
        self.control.fetch_add(1, Ordering::Release);
        let _ = futex::wake(self.control.as_std(), futex::Flags::PRIVATE, 1);
    }

    /// The thread's loop: sleep on every live registration, fire what moved.
    fn serve(&self) {
        let mut waits: Vec<futex::Wait> = Vec::with_capacity(WORDS_PER_THREAD + 1);
        let mut fallback = false;
        loop {
            // SYNC POINT AIO-CONTROL: see `kick`.
            let control = self.control.load(Ordering::Acquire);
            let mut deadline = None::<Instant>;
            waits.clear();
            waits.push(wait_on(&self.control, control, futex::WaitFlags::PRIVATE));
            for registration in self.lock().iter().flatten().filter(|r| !r.fired) {
                deadline = Some(deadline.map_or(registration.deadline, |d| d.min(registration.deadline)));
                // SAFETY: `_keep` keeps the word alive while it is registered;
                // the kernel only reads it.
                waits.push(wait_on(unsafe { &*registration.word }, registration.ticket, futex::WaitFlags::empty()));
            }
            if fallback {
                let slice = deadline.map_or(FALLBACK_POLL, |d| d.saturating_duration_since(Instant::now()).min(FALLBACK_POLL));
                let timeout = timespec(slice);
                let _ = futex::wait(self.control.as_std(), futex::Flags::PRIVATE, control, Some(&timeout));
            } else {
                let timeout = deadline.map(|d| absolute(d.saturating_duration_since(Instant::now())));
                let woken = futex::waitv(&waits, futex::WaitvFlags::empty(), timeout.as_ref(), rustix::time::ClockId::Monotonic);
                // Anything else (a woken word, a word that had moved already:
                // EAGAIN, a deadline: ETIMEDOUT, a signal: EINTR): look.
                fallback = woken == Err(rustix::io::Errno::NOSYS);
            }
            self.fire();
        }
    }

    /// Fires every registration whose word moved or deadline passed.
    fn fire(&self) {
        let now = Instant::now();
        let mut due = Vec::new();
        for registration in self.lock().iter_mut().flatten() {
            if !registration.fired && (registration.deadline <= now || registration.moved()) {
                registration.fired = true;
                due.push(registration.waker.clone());
            }
        }
        // Outside the lock: a waker may run the task's poll on this thread.
        due.into_iter().for_each(Waker::wake);
    }
}

/// A `futex_waitv` entry for a 32-bit word.
fn wait_on(word: &AtomicU32, value: u32, flags: futex::WaitFlags) -> futex::Wait {
    let mut wait = futex::Wait::new();
    wait.val = u64::from(value);
    wait.uaddr = futex::WaitPtr::new(word.as_std().as_ptr().cast());
    wait.flags = flags | futex::WaitFlags::SIZE_U32;
    wait
}

fn timespec(d: Duration) -> futex::Timespec {
    futex::Timespec { tv_sec: d.as_secs().min(i64::MAX as u64) as i64, tv_nsec: i64::from(d.subsec_nanos()) }
}

/// `futex_waitv` takes an absolute CLOCK_MONOTONIC time (`Instant`'s clock
/// on Linux): now plus `after`.
fn absolute(after: Duration) -> futex::Timespec {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let nanos = now.tv_nsec as u64 + u64::from(after.subsec_nanos());
    let secs = (now.tv_sec as u64).saturating_add(after.as_secs()).saturating_add(nanos / 1_000_000_000);
    futex::Timespec { tv_sec: secs.min(i64::MAX as u64) as i64, tv_nsec: (nanos % 1_000_000_000) as i64 }
}

/// The reactor threads of this process.
#[derive(Default)]
struct Reactor {
    /// The process the shards' threads run in, and the shards. A fork
    /// child inherits the list but not the threads: it starts its own.
    shards: Mutex<(u32, Vec<Arc<Shard>>)>,
}

fn reactor() -> &'static Reactor {
    static REACTOR: OnceLock<Reactor> = OnceLock::new();
    REACTOR.get_or_init(Reactor::default)
}

/// A task's place in the reactor; dropping it withdraws the registration.
pub(crate) struct Sleep {
    shard: Arc<Shard>,
    slot: usize,
}

impl Sleep {
    /// Registers `waker` to be woken once `word` no longer holds `ticket`
    /// or `deadline` passes. `keep` must own the memory `word` lives in.
    ///
    /// # Errors
    /// The OS refused a new reactor thread.
    pub(crate) fn register(keep: KeepAlive, word: &AtomicU32, ticket: u32, deadline: Instant, waker: &Waker) -> std::io::Result<Sleep> {
        let registration = Registration { word, ticket, deadline, waker: waker.clone(), fired: false, _keep: keep };
        let reactor = reactor();
        let mut guard = reactor.shards.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (pid, shards) = &mut *guard;
        if *pid != std::process::id() {
            // A fork child (or the first use): the parent's shards have no
            // thread here; their registrations were the parent's tasks.
            *pid = std::process::id();
            // Leaked, not dropped: their wakers belong to the parent's
            // executors, whose state here is a copy.
            std::mem::forget(std::mem::take(shards));
        }
        for shard in shards.iter() {
            let mut slots = shard.lock();
            if let Some(slot) = slots.iter().position(Option::is_none) {
                slots[slot] = Some(registration);
                drop(slots);
                shard.kick();
                return Ok(Sleep { shard: shard.clone(), slot });
            }
        }
        let shard = Arc::new(Shard::new());
        shard.lock()[0] = Some(registration);
        let serving = shard.clone();
        std::thread::Builder::new().name(format!("shmq-aio-{}", shards.len())).spawn(move || serving.serve())?;
        shards.push(shard.clone());
        Ok(Sleep { shard, slot: 0 })
    }

    /// True once the word moved or the deadline passed (checked here too:
    /// a poll can come before the reactor looked); else takes the newest
    /// waker.
    pub(crate) fn is_over(&self, waker: &Waker) -> bool {
        let mut slots = self.shard.lock();
        let Some(registration) = slots[self.slot].as_mut() else { return true };
        if registration.fired || registration.moved() || registration.deadline <= Instant::now() {
            return true;
        }
        if !registration.waker.will_wake(waker) {
            registration.waker.clone_from(waker);
        }
        false
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        // The thread drops the word from its next wait list; until then a
        // wake of it only costs a look.
        self.shard.lock()[self.slot] = None;
    }
}

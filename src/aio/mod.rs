//! Async consumers and publishers (feature `async`, or its alias `tokio`;
//! off by default).
//!
//! [`AsyncConsumer`] receives with `recv().await` or as a
//! [`Stream`](futures_core::Stream) of owned [`Message`]s;
//! [`AsyncProducer`] and [`AsyncPublisher`] publish with `.await` where a
//! blocking publish would wait for room (a `block` queue at its limit, the
//! namespace at its memory budget). Semantics are those of the blocking
//! handles they wrap, which stay reachable for acks and settings.
//!
//! No task busy-polls and no consumer gets a thread: an idle task is
//! registered with the process's reactor (one thread per 127 sleeping
//! tasks, started on first use) that sleeps in one `futex_waitv(2)` on the
//! eventcounts of all of them, and calls the task's `Waker` when a
//! publisher in any process notifies. The futures work on any executor;
//! tokio is the one tested. docs/ASYNC.md has the design and the measured
//! wake-up latency.
//!
//! # Examples
//! ```
//! # #[cfg(not(shmq_loom))] {
//! # let dir = std::env::temp_dir().join(format!("shmq-doc-aio-{}", std::process::id()));
//! use shmq::aio::{AsyncConsumer, AsyncProducer};
//! let ns = shmq::Namespace::open_dir(&dir).unwrap();
//! ns.declare_queue("jobs", &Default::default()).unwrap();
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
//! runtime.block_on(async {
//!     let mut consumer = AsyncConsumer::new(ns.consumer("jobs", Default::default()).unwrap());
//!     let mut producer = AsyncProducer::new(ns.producer("jobs").unwrap());
//!     producer.publish(b"hello").await.unwrap();
//!     let delivery = consumer.recv().await.unwrap();
//!     assert_eq!(delivery.body(), b"hello");
//! });
//! # std::fs::remove_dir_all(&dir).ok();
//! # }
//! ```

mod consumer;
mod producer;
mod reactor;

pub use consumer::{AsyncConsumer, Message, Messages};
pub use producer::{AsyncProducer, AsyncPublisher};

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use crate::queue::QueueHandle;
use crate::sync::EventCount;

/// Which of a ring's eventcounts a task sleeps on.
#[derive(Clone, Copy)]
pub(crate) enum Side {
    /// Consumers wait for messages.
    NotEmpty,
    /// Producers wait for room.
    NotFull,
}

impl Side {
    fn of(self, queue: &QueueHandle) -> &EventCount {
        match self {
            Side::NotEmpty => queue.ring.not_empty(),
            Side::NotFull => queue.ring.not_full(),
        }
    }
}

/// Resolves once an armed eventcount moved off `ticket` or `deadline`
/// passed (spurious completions are allowed; callers re-check).
pub(crate) struct Changed {
    queue: Arc<QueueHandle>,
    side: Side,
    ticket: u32,
    deadline: Instant,
    sleep: Option<reactor::Sleep>,
}

impl Changed {
    pub(crate) fn new(queue: Arc<QueueHandle>, side: Side, ticket: u32, deadline: Instant) -> Self {
        Self { queue, side, ticket, deadline, sleep: None }
    }
}

impl Future for Changed {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if let Some(sleep) = &this.sleep {
            return if sleep.is_over(cx.waker()) { Poll::Ready(()) } else { Poll::Pending };
        }
        let word = &this.side.of(&this.queue).seq;
        let keep: reactor::KeepAlive = this.queue.clone();
        match reactor::Sleep::register(keep, word, this.ticket, this.deadline, cx.waker()) {
            Ok(sleep) => {
                // The word may have moved before the reactor saw it.
                let over = sleep.is_over(cx.waker());
                this.sleep = Some(sleep);
                if over {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            }
            // No reactor thread (the OS refused one): sleep here, briefly,
            // rather than fail; the caller re-checks and comes back.
            Err(_) => {
                let slice = this.deadline.saturating_duration_since(Instant::now()).min(std::time::Duration::from_millis(1));
                this.side.of(&this.queue).wait(this.ticket, Some(slice));
                Poll::Ready(())
            }
        }
    }
}

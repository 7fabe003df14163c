//! Topic routing as publishers do it (the routing table compiled into the
//! router's NFA and lazy DFA cache), through the public API, against the
//! reference matcher of `topic_match`.
//!
//! Input: `binding keys \0 routing keys`, each list split on `\n`; at most
//! `MAX_BINDINGS` binding keys and `MAX_KEYS` routing keys, each at most
//! `MAX_KEY` bytes. Binding key `i` binds queue `q{i}` to a fresh topic
//! exchange; every routing key is then routed twice by one publisher (the
//! second time through its DFA cache).
//!
//! Checks: `route_count` equals the number of bound binding keys the
//! reference matcher matches; no panic or hang.
use std::cell::RefCell;
use std::path::PathBuf;

use shmq::{ExchangeKind, ExchangeOptions, Namespace, NamespaceOptions, Properties, QueueOptions, RoutingLimits};

#[path = "topic_match.rs"]
#[allow(dead_code)]
pub mod topic_match;

const MAX_BINDINGS: usize = 8;
const MAX_KEYS: usize = 8;
const MAX_KEY: usize = 255;

struct Fixture {
    root: PathBuf,
    ns: Namespace,
    exchanges: u64,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

thread_local! {
    static FIXTURE: RefCell<Option<Fixture>> = const { RefCell::new(None) };
}

fn fixture() -> Fixture {
    let thread: String = format!("{:?}", std::thread::current().id()).chars().filter(char::is_ascii_digit).collect();
    let root = std::env::temp_dir().join(format!("shmq-fuzz-route-{}-{thread}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let limits = RoutingLimits { max_exchanges: 64, max_queues: 64, max_bindings: 256, table_bytes: 64 << 10 };
    let ns = Namespace::open_dir_with(&root, NamespaceOptions::default().routing_limits(limits)).expect("open the fuzzing namespace");
    let small = QueueOptions::default().capacity_bytes(4096).max_message_bytes(512);
    for i in 0..MAX_BINDINGS {
        ns.declare_queue(&format!("q{i}"), &small).expect("declare a queue");
    }
    Fixture { root, ns, exchanges: 0 }
}

/// One input; panics on a failure.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Some((bindings, keys)) = text.split_once('\0') else { return };
    let bindings: Vec<&str> = bindings.split('\n').take(MAX_BINDINGS).collect();
    let keys: Vec<&str> = keys.split('\n').take(MAX_KEYS).collect();
    if bindings.iter().chain(&keys).any(|k| k.len() > MAX_KEY) {
        return;
    }
    FIXTURE.with(|cell| {
        let mut cell = cell.borrow_mut();
        let fx = cell.get_or_insert_with(fixture);
        fx.exchanges += 1;
        let exchange = format!("t{}", fx.exchanges);
        let ns = &fx.ns;
        ns.declare_exchange(&exchange, &ExchangeOptions::new(ExchangeKind::Topic)).expect("declare a topic exchange");
        let bound: Vec<&str> = bindings
            .iter()
            .enumerate()
            .filter(|(i, key)| ns.bind_queue(&format!("q{i}"), &exchange, key, &[]).is_ok())
            .map(|(_, key)| *key)
            .collect();
        let mut publisher = ns.publisher();
        for key in &keys {
            let expected = bound.iter().filter(|binding| topic_match::reference(binding, key)).count();
            for attempt in 0..2 {
                let got = publisher.route_count(&exchange, key, &Properties::new());
                assert_eq!(
                    got.as_ref().ok(),
                    Some(&expected),
                    "route_count({key:?}) on attempt {attempt} with bindings {bound:?} gives {got:?}, the reference {expected}"
                );
            }
        }
        ns.delete_exchange(&exchange, false).expect("delete the exchange");
    });
}

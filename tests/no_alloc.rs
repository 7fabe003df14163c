//! Backs the claim that publishing and consuming allocate nothing per
//! message: a counting global allocator watches this thread while it
//! publishes (with properties and headers), consumes, reads properties in
//! place, acks, drains a batch, and routes through a topic exchange.

mod common;

use common::TempNs;
use shmq::{ConsumerOptions, HeaderValue, Properties, QueueOptions};

#[path = "common/counting_alloc.rs"]
mod counting_alloc;

#[global_allocator]
static GLOBAL: counting_alloc::Counting = counting_alloc::Counting;

fn allocations_during(f: impl FnOnce()) -> usize {
    counting_alloc::allocated_during(f).1
}

#[test]
fn publish_and_consume_allocate_nothing_per_message() {
    let t = TempNs::new("noalloc");
    t.ns.declare_queue("q", &QueueOptions::default()).unwrap();
    t.ns.declare_queue("routed", &QueueOptions::default()).unwrap();
    t.ns.bind_queue("routed", "amq.topic", "orders.*", &[]).unwrap();
    let mut producer = t.ns.producer("q").unwrap();
    let manual = t.ns.consumer("q", ConsumerOptions::default().manual_ack()).unwrap();
    let routed = t.ns.consumer("routed", ConsumerOptions::default()).unwrap();
    let mut publisher = t.ns.publisher();
    let headers = [("attempt", HeaderValue::Int(1)), ("kind", HeaderValue::Str("order"))];
    let props = Properties::new().content_type("application/json").correlation_id("c-1").headers(&headers);
    let body = [7u8; 256];
    let round = |producer: &mut shmq::Producer, publisher: &mut shmq::Publisher| {
        producer.publish_with(&props, &body).unwrap();
        let d = manual.try_recv().unwrap();
        let p = d.properties();
        assert_eq!((p.correlation_id, p.headers.get("attempt")), (Some("c-1"), Some(HeaderValue::Int(1))));
        assert_eq!(d.body().len(), 256);
        d.ack().unwrap();
        producer.publish_batch(&[&body[..64], &body[..8]]).unwrap();
        assert_eq!(manual.drain(8, |d| d.ack().unwrap()).unwrap(), 2);
        assert_eq!(publisher.publish("amq.topic", "orders.created", &props, &body).unwrap().queues, 1);
        drop(routed.try_recv().unwrap());
    };
    // Warm up: the publisher compiles its routing snapshot and opens its
    // producer on first use.
    for _ in 0..10 {
        round(&mut producer, &mut publisher);
    }
    let allocations = allocations_during(|| {
        for _ in 0..1000 {
            round(&mut producer, &mut publisher);
        }
    });
    assert_eq!(allocations, 0, "allocations in 1000 rounds of publish/consume/ack/drain/route");
}

//! The seed's asynchronous-processing scenario, a worker:
//! `cargo run --example notification_service -- email [COUNT]` or `... sms`.
//!
//! Each service has its own durable queue bound to `user.registered`, so
//! each gets every registration, and each can run several competing workers.

use std::time::Duration;

use shmq::{ConsumerOptions, ExchangeKind, ExchangeOptions, QueueOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let kind = std::env::args().nth(1).unwrap_or_else(|| "email".into());
    let limit: Option<u64> = std::env::args().nth(2).map(|n| n.parse()).transpose()?;
    let ns = shmq::Namespace::open_default()?;
    ns.declare_exchange("user.registered", &ExchangeOptions::new(ExchangeKind::Fanout))?;
    let queue = format!("{kind}_service");
    ns.declare_queue(&queue, &QueueOptions::default())?;
    ns.bind_queue(&queue, "user.registered", "", &[])?;
    println!(" [{kind}] waiting for registrations");
    let consumer = ns.consumer(&queue, ConsumerOptions::default().manual_ack().prefetch(1))?;
    let mut done = 0;
    while limit.is_none_or(|l| done < l) {
        let d = consumer.recv()?;
        std::thread::sleep(Duration::from_millis(50)); // sending takes a while
        println!(" [{kind}] sent welcome {kind} to {}", String::from_utf8_lossy(d.body()));
        d.ack()?;
        done += 1;
    }
    Ok(())
}

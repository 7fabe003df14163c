//! RabbitMQ tutorial 3 (publish/subscribe), consumer:
//! `cargo run --example receive_logs -- [COUNT]`.
//!
//! Declares a server-named exclusive queue, binds it to `logs`, and prints
//! what arrives. The queue goes away when this program exits.

use shmq::{ConsumerOptions, ExchangeKind, ExchangeOptions, QueueOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let limit: Option<u64> = std::env::args().nth(1).map(|n| n.parse()).transpose()?;
    let ns = shmq::Namespace::open_default()?;
    ns.declare_exchange("logs", &ExchangeOptions::new(ExchangeKind::Fanout))?;
    let queue = ns.declare_queue("", &QueueOptions::default().exclusive(true))?.name;
    ns.bind_queue(&queue, "logs", "", &[])?;
    println!(" [*] Waiting for logs. To exit press CTRL+C");
    let consumer = ns.consumer(&queue, ConsumerOptions::default())?;
    let mut received = 0;
    while limit.is_none_or(|l| received < l) {
        let delivery = consumer.recv()?;
        println!(" [x] {}", String::from_utf8_lossy(delivery.body()));
        received += 1;
    }
    Ok(())
}

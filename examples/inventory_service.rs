//! The seed's decoupling scenario, the inventory system:
//! `cargo run --example inventory_service -- [COUNT]`.
//!
//! Started after orders were placed, it finds them all waiting in `orders`.

use shmq::{ConsumerOptions, QueueOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let limit: Option<u64> = std::env::args().nth(1).map(|n| n.parse()).transpose()?;
    let ns = shmq::Namespace::open_default()?;
    ns.declare_queue("orders", &QueueOptions::default())?;
    let consumer = ns.consumer("orders", ConsumerOptions::default().manual_ack())?;
    let mut done = 0;
    while limit.is_none_or(|l| done < l) {
        let d = consumer.recv()?;
        println!(" [inventory] reserved stock for {}", String::from_utf8_lossy(d.body()));
        d.ack()?;
        done += 1;
    }
    Ok(())
}

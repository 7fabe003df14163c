//! The seed's decoupling scenario, the order system:
//! `cargo run --example place_order -- [COUNT]`.
//!
//! Orders go to the `orders` queue whether or not the inventory service is
//! running: placing an order never fails because inventory is down.

use shmq::{Properties, QueueOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let count: u64 = std::env::args().nth(1).map(|n| n.parse()).transpose()?.unwrap_or(3);
    let ns = shmq::Namespace::open_default()?;
    ns.declare_queue("orders", &QueueOptions::default())?;
    let mut publisher = ns.publisher();
    for i in 1..=count {
        let order = format!("order-{i}: 1 x widget");
        publisher.publish_mandatory("", "orders", &Properties::new().delivery_mode(2), order.as_bytes())?;
        println!(" [orders] placed {order}");
    }
    Ok(())
}

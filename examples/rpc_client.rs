//! RabbitMQ tutorial 6 (RPC), client: `cargo run --example rpc_client -- [n]`.
//!
//! Sends `n` to `rpc_queue` with a private callback queue as `reply_to` and a
//! fresh `correlation_id`, then waits for the matching reply.

use std::time::Duration;

use shmq::{ConsumerOptions, Properties, QueueOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u64 = std::env::args().nth(1).map(|n| n.parse()).transpose()?.unwrap_or(30);
    let ns = shmq::Namespace::open_default()?;
    ns.declare_queue("rpc_queue", &QueueOptions::default().queue_type(shmq::QueueType::Quorum))?;
    let callback = ns.declare_queue("", &QueueOptions::default().exclusive(true))?.name;
    let consumer = ns.consumer(&callback, ConsumerOptions::default())?;
    let correlation_id = format!("{:x}-{n}", std::process::id());
    println!(" [x] Requesting fib({n})");
    let props = Properties::new().reply_to(&callback).correlation_id(&correlation_id);
    ns.publisher().publish("", "rpc_queue", &props, n.to_string().as_bytes())?;
    loop {
        let reply = consumer.recv_timeout(Duration::from_secs(30))?;
        if reply.properties().correlation_id == Some(correlation_id.as_str()) {
            println!(" [.] Got {}", String::from_utf8_lossy(reply.body()));
            return Ok(());
        }
    }
}

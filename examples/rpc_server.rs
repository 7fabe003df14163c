//! RabbitMQ tutorial 6 (RPC), server: `cargo run --example rpc_server -- [COUNT]`.
//!
//! Answers `fib(n)` requests from `rpc_queue`, replying to each request's
//! `reply_to` queue with its `correlation_id`.

use shmq::{ConsumerOptions, Properties, QueueOptions};

fn fib(n: u64) -> u64 {
    let (mut a, mut b) = (0u64, 1u64);
    for _ in 0..n {
        (a, b) = (b, a.wrapping_add(b));
    }
    a
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let limit: Option<u64> = std::env::args().nth(1).map(|n| n.parse()).transpose()?;
    let ns = shmq::Namespace::open_default()?;
    // A quorum queue, as RabbitMQ's tutorial declares it (and so interoperates with it).
    ns.declare_queue("rpc_queue", &QueueOptions::default().queue_type(shmq::QueueType::Quorum))?;
    let consumer = ns.consumer("rpc_queue", ConsumerOptions::default().manual_ack().prefetch(1))?;
    let mut publisher = ns.publisher();
    println!(" [x] Awaiting RPC requests");
    let mut served = 0;
    while limit.is_none_or(|l| served < l) {
        let request = consumer.recv()?;
        let n: u64 = std::str::from_utf8(request.body())?.trim().parse()?;
        println!(" [.] fib({n})");
        let props = request.properties();
        let reply = fib(n).to_string();
        if let Some(reply_to) = props.reply_to {
            let reply_props = Properties { correlation_id: props.correlation_id, ..Properties::new() };
            publisher.publish("", reply_to, &reply_props, reply.as_bytes())?;
        }
        request.ack()?;
        served += 1;
    }
    Ok(())
}

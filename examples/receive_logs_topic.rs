//! RabbitMQ tutorial 5 (topics), consumer:
//! `cargo run --example receive_logs_topic -- [--count N] "kern.*" "*.critical"`.
//!
//! `*` matches exactly one word, `#` zero or more.

use shmq::{ConsumerOptions, ExchangeKind, ExchangeOptions, QueueOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let limit = match args.iter().position(|a| a == "--count") {
        Some(i) if i + 1 < args.len() => {
            let n: u64 = args[i + 1].parse()?;
            args.drain(i..i + 2);
            Some(n)
        }
        _ => None,
    };
    if args.is_empty() {
        eprintln!("Usage: receive_logs_topic [--count N] [binding_key]...");
        std::process::exit(1);
    }
    let ns = shmq::Namespace::open_default()?;
    ns.declare_exchange("topic_logs", &ExchangeOptions::new(ExchangeKind::Topic))?;
    let queue = ns.declare_queue("", &QueueOptions::default().exclusive(true))?.name;
    for key in &args {
        ns.bind_queue(&queue, "topic_logs", key, &[])?;
    }
    println!(" [*] Waiting for logs. To exit press CTRL+C");
    let consumer = ns.consumer(&queue, ConsumerOptions::default())?;
    let mut received = 0;
    while limit.is_none_or(|l| received < l) {
        let d = consumer.recv()?;
        println!(" [x] {}:{}", d.properties().routing_key.unwrap_or(""), String::from_utf8_lossy(d.body()));
        received += 1;
    }
    Ok(())
}

//! RabbitMQ tutorial 4 (routing), consumer:
//! `cargo run --example receive_logs_direct -- [--count N] info warning error`.

use shmq::{ConsumerOptions, ExchangeKind, ExchangeOptions, QueueOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let limit = take_count(&mut args)?;
    if args.is_empty() {
        eprintln!("Usage: receive_logs_direct [--count N] [info] [warning] [error]");
        std::process::exit(1);
    }
    let ns = shmq::Namespace::open_default()?;
    ns.declare_exchange("direct_logs", &ExchangeOptions::new(ExchangeKind::Direct))?;
    let queue = ns.declare_queue("", &QueueOptions::default().exclusive(true))?.name;
    for severity in &args {
        ns.bind_queue(&queue, "direct_logs", severity, &[])?;
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

/// Removes `--count N` from the arguments.
fn take_count(args: &mut Vec<String>) -> Result<Option<u64>, Box<dyn std::error::Error>> {
    match args.iter().position(|a| a == "--count") {
        Some(i) if i + 1 < args.len() => {
            let n = args[i + 1].parse()?;
            args.drain(i..i + 2);
            Ok(Some(n))
        }
        _ => Ok(None),
    }
}

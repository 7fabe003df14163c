//! RabbitMQ tutorial 5 (topics), producer:
//! `cargo run --example emit_log_topic -- [routing.key] [message]`.

use shmq::{ExchangeKind, ExchangeOptions, Properties};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let key = args.first().cloned().unwrap_or_else(|| "anonymous.info".into());
    let message = if args.len() > 1 { args[1..].join(" ") } else { "Hello World!".into() };
    let ns = shmq::Namespace::open_default()?;
    ns.declare_exchange("topic_logs", &ExchangeOptions::new(ExchangeKind::Topic))?;
    ns.publisher().publish("topic_logs", &key, &Properties::new(), message.as_bytes())?;
    println!(" [x] Sent {key}:{message}");
    Ok(())
}

//! RabbitMQ tutorial 3 (publish/subscribe), producer:
//! `cargo run --example emit_log -- [message]`.
//!
//! Publishes to the fanout exchange `logs`: every bound queue gets a copy.

use shmq::{ExchangeKind, ExchangeOptions, Properties};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let message = if args.is_empty() { "info: Hello World!".to_string() } else { args.join(" ") };
    let ns = shmq::Namespace::open_default()?;
    ns.declare_exchange("logs", &ExchangeOptions::new(ExchangeKind::Fanout))?;
    ns.publisher().publish("logs", "", &Properties::new(), message.as_bytes())?;
    println!(" [x] Sent {message}");
    Ok(())
}

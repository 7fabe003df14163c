//! RabbitMQ tutorial 4 (routing), producer:
//! `cargo run --example emit_log_direct -- [severity] [message]`.

use shmq::{ExchangeKind, ExchangeOptions, Properties};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let severity = args.first().cloned().unwrap_or_else(|| "info".into());
    let message = if args.len() > 1 { args[1..].join(" ") } else { "Hello World!".into() };
    let ns = shmq::Namespace::open_default()?;
    ns.declare_exchange("direct_logs", &ExchangeOptions::new(ExchangeKind::Direct))?;
    ns.publisher().publish("direct_logs", &severity, &Properties::new(), message.as_bytes())?;
    println!(" [x] Sent {severity}:{message}");
    Ok(())
}

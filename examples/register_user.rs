//! The seed's asynchronous-processing scenario, the web side:
//! `cargo run --example register_user -- alice@example.com`.
//!
//! Registering a user publishes one event to the fanout exchange
//! `user.registered` and returns at once; the e-mail and SMS services (each
//! its own process) work on it in parallel.

use std::time::Instant;

use shmq::{ExchangeKind, ExchangeOptions, Properties};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let users: Vec<String> = std::env::args().skip(1).collect();
    let users = if users.is_empty() { vec!["alice@example.com".to_string()] } else { users };
    let ns = shmq::Namespace::open_default()?;
    ns.declare_exchange("user.registered", &ExchangeOptions::new(ExchangeKind::Fanout))?;
    let mut publisher = ns.publisher();
    for user in &users {
        let started = Instant::now();
        // (Saving the user to the database would happen here.)
        publisher.publish("user.registered", "", &Properties::new().content_type("text/plain"), user.as_bytes())?;
        println!(" [web] registered {user}; responded after {:?} (e-mail and SMS happen asynchronously)", started.elapsed());
    }
    Ok(())
}

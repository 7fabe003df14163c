//! Retry with delay through dead-lettering, the classic RabbitMQ pattern:
//! a job that fails is rejected; the work queue dead-letters it into a
//! delay queue whose TTL holds it for a while, and the delay queue
//! dead-letters it back. Each trip adds to the message's `x-death` record,
//! which gives the attempt count; a job that fails 3 times is given up.
//!
//! ```sh
//! cargo run --example retry_with_delay -- submit flaky-1 ok-1   # jobs whose name starts with "flaky" fail twice
//! cargo run --example retry_with_delay -- work 2                # stops after 2 jobs finished
//! ```
//!
//! The delay is 500 ms (`RETRY_DELAY_MS` changes it). Nobody consumes the
//! delay queue: shmq's housekeeping, run by any attached process (here the
//! worker), dead-letters its expired messages, as RabbitMQ's broker does.
//! examples/python/dead_lettering/retry_with_delay.py is the same with pika.

use std::time::Duration;

use shmq::{ConsumerOptions, HeaderValue, Properties, QueueOptions};

const MAX_ATTEMPTS: i64 = 3;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let delay_ms: u64 = std::env::var("RETRY_DELAY_MS").ok().map(|v| v.parse()).transpose()?.unwrap_or(500);
    let ns = shmq::Namespace::open_default()?;
    ns.declare_queue("jobs", &QueueOptions::default().dead_letter_exchange("").dead_letter_routing_key("jobs.retry"))?;
    ns.declare_queue(
        "jobs.retry",
        &QueueOptions::default().message_ttl(Duration::from_millis(delay_ms)).dead_letter_exchange("").dead_letter_routing_key("jobs"),
    )?;
    match args.first().map(String::as_str) {
        Some("submit") => {
            let mut publisher = ns.publisher();
            for job in &args[1..] {
                publisher.publish("", "jobs", &Properties::new(), job.as_bytes())?;
                println!(" [x] submitted {job}");
            }
            Ok(())
        }
        Some("work") => {
            let finished: usize = args.get(1).map(|n| n.parse()).transpose()?.unwrap_or(usize::MAX);
            let consumer = ns.consumer("jobs", ConsumerOptions::default().manual_ack().prefetch(1))?;
            let mut done = 0;
            while done < finished {
                let delivery = consumer.recv()?;
                let job = String::from_utf8_lossy(delivery.body()).into_owned();
                let attempt = rejections(&delivery.properties()) + 1;
                if job.starts_with("flaky") && attempt < MAX_ATTEMPTS {
                    println!(" [!] {job}: attempt {attempt} failed, retrying in {delay_ms} ms");
                    delivery.reject(false)?;
                } else {
                    println!(" [x] {job}: done after {attempt} attempt(s)");
                    delivery.ack()?;
                    done += 1;
                }
            }
            Ok(())
        }
        _ => Err("usage: retry_with_delay submit JOB... | retry_with_delay work [COUNT]".into()),
    }
}

/// How often the work queue rejected this message: its `x-death` entry
/// for (`jobs`, `rejected`) counts them.
fn rejections(properties: &shmq::PropertiesRef<'_>) -> i64 {
    let Some(HeaderValue::Array(deaths)) = properties.headers.get("x-death") else { return 0 };
    deaths
        .iter()
        .find_map(|death| match death {
            HeaderValue::Table(t)
                if t.get("queue") == Some(HeaderValue::Str("jobs")) && t.get("reason") == Some(HeaderValue::Str("rejected")) =>
            {
                match t.get("count") {
                    Some(HeaderValue::Int(n)) => Some(n),
                    _ => None,
                }
            }
            _ => None,
        })
        .unwrap_or(0)
}

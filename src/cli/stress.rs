//! Hidden helper processes for the kill -9 stress test (tests/stress.rs):
//! producers and consumers that log every step with one unbuffered write
//! each, so that the log survives SIGKILL at any instruction.

use std::io::Write;
use std::time::Duration;

use clap::Args;

use super::{Cli, CliResult};

#[derive(Args, Debug)]
pub struct StressArgs {
    /// producer-queue, producer-exchange or consumer.
    pub role: String,
    /// Queue (or exchange) name.
    pub target: String,
    /// Log file (appended).
    pub log: std::path::PathBuf,
    /// Message id prefix (unique per process incarnation).
    #[arg(long, default_value = "m")]
    pub prefix: String,
    /// Producers: pause between publishes, in microseconds (default 200).
    #[arg(long)]
    pub interval_us: Option<u64>,
    /// Consumers: how long to hold each message (or batch) before acking,
    /// in microseconds.
    #[arg(long, default_value_t = 0)]
    pub hold_us: u64,
    /// Consumers: take in batches with `drain` instead of one `recv` each.
    #[arg(long)]
    pub batch: bool,
    /// Consumers: reject each message without requeue (dead-lettering it)
    /// instead of acking it.
    #[arg(long)]
    pub reject: bool,
}

fn line(log: &mut std::fs::File, text: &str) -> std::io::Result<()> {
    // One write(2) per line on an O_APPEND file: whole lines or nothing.
    log.write_all(text.as_bytes())
}

pub fn run(cli: &Cli, args: &StressArgs) -> CliResult {
    let ns = shmq::Namespace::open(&cli.namespace)?;
    let mut log = std::fs::OpenOptions::new().create(true).append(true).open(&args.log)?;
    match args.role.as_str() {
        "producer-queue" | "producer-exchange" => {
            if args.batch || args.hold_us != 0 || args.reject {
                return Err("--batch, --hold-us and --reject are for the consumer role".into());
            }
            let mut producer = if args.role == "producer-queue" { Some(ns.producer(&args.target)?) } else { None };
            let mut publisher = ns.publisher();
            for seq in 0u64.. {
                let id = format!("{}-{seq}", args.prefix);
                line(&mut log, &format!("attempt {id}\n"))?;
                match &mut producer {
                    Some(p) => p.publish(id.as_bytes())?,
                    None => {
                        let routed = publisher.publish(&args.target, "", &shmq::Properties::new(), id.as_bytes())?;
                        if !routed.is_complete() {
                            return Err("a fanout queue was full".into());
                        }
                    }
                }
                line(&mut log, &format!("ok {id}\n"))?;
                std::thread::sleep(Duration::from_micros(args.interval_us.unwrap_or(200)));
            }
            Ok(())
        }
        "consumer" => {
            if args.interval_us.is_some() {
                return Err("--interval-us is for the producer roles".into());
            }
            let consumer = ns.consumer(&args.target, shmq::ConsumerOptions::default().manual_ack().prefetch(16))?;
            if args.batch {
                let mut tags = Vec::with_capacity(32);
                loop {
                    tags.clear();
                    let mut logged = Ok(());
                    consumer.drain(32, |delivery| {
                        let id = String::from_utf8_lossy(delivery.body()).into_owned();
                        if logged.is_ok() {
                            logged = line(&mut log, &format!("got {} {id} {}\n", args.target, u8::from(delivery.redelivered())));
                        }
                        tags.push(delivery.tag());
                    })?;
                    logged?;
                    if args.hold_us > 0 {
                        std::thread::sleep(Duration::from_micros(args.hold_us));
                    }
                    for &tag in &tags {
                        if args.reject {
                            consumer.nack(tag, false)?;
                        } else {
                            consumer.ack(tag)?;
                        }
                    }
                    if tags.is_empty() {
                        std::thread::sleep(Duration::from_micros(100));
                    }
                }
            }
            loop {
                let delivery = consumer.recv()?;
                let id = String::from_utf8_lossy(delivery.body()).into_owned();
                line(&mut log, &format!("got {} {id} {}\n", args.target, u8::from(delivery.redelivered())))?;
                if args.hold_us > 0 {
                    std::thread::sleep(Duration::from_micros(args.hold_us));
                }
                if args.reject {
                    delivery.reject(false)?;
                } else {
                    delivery.ack()?;
                }
            }
        }
        other => Err(format!("unknown stress role {other}").into()),
    }
}

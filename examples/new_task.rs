//! RabbitMQ tutorial 2, producer: `cargo run --example new_task -- First message....`
//!
//! Publishes a task to the `task_queue` work queue; each `.` in the message
//! is one second of work (tenths of a second with SHMQ_FAST_TASKS=1).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let message = if args.is_empty() { "Hello World!".to_string() } else { args.join(" ") };
    let ns = shmq::Namespace::open_default()?;
    // A quorum queue, as RabbitMQ's tutorial declares it (and so interoperates with it).
    ns.declare_queue("task_queue", &shmq::QueueOptions::default().queue_type(shmq::QueueType::Quorum))?;
    let mut producer = ns.producer("task_queue")?;
    // delivery_mode 2 = persistent, as in the tutorial; see docs/GUARANTEES.md.
    producer.publish_with(&shmq::Properties::new().delivery_mode(2), message.as_bytes())?;
    println!(" [x] Sent {message}");
    Ok(())
}

//! RabbitMQ tutorial 2, worker: `cargo run --example worker [COUNT]`.
//!
//! Competes with other workers for tasks on `task_queue`, one unacked task
//! at a time (prefetch 1), acking each after its work is done. Stops after
//! COUNT tasks if given, or after 2 s without a task if SHMQ_IDLE_EXIT=1.

use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let limit: Option<u64> = std::env::args().nth(1).map(|n| n.parse()).transpose()?;
    let fast = std::env::var("SHMQ_FAST_TASKS").is_ok_and(|v| v == "1");
    let idle_exit = std::env::var("SHMQ_IDLE_EXIT").is_ok_and(|v| v == "1");
    let ns = shmq::Namespace::open_default()?;
    // A quorum queue, as RabbitMQ's tutorial declares it (and so interoperates with it).
    ns.declare_queue("task_queue", &shmq::QueueOptions::default().queue_type(shmq::QueueType::Quorum))?;
    let consumer = ns.consumer("task_queue", shmq::ConsumerOptions::default().manual_ack().prefetch(1))?;
    println!(" [*] Waiting for messages. To exit press CTRL+C");
    let mut done = 0;
    while limit.is_none_or(|l| done < l) {
        let delivery = if idle_exit {
            match consumer.recv_timeout(Duration::from_secs(2)) {
                Ok(d) => d,
                Err(shmq::RecvError::Timeout) => break,
                Err(e) => return Err(e.into()),
            }
        } else {
            consumer.recv()?
        };
        let body = String::from_utf8_lossy(delivery.body()).into_owned();
        println!(" [x] Received {body}");
        let dots = body.matches('.').count() as u64;
        std::thread::sleep(if fast { Duration::from_millis(100 * dots) } else { Duration::from_secs(dots) });
        println!(" [x] Done");
        delivery.ack()?;
        done += 1;
    }
    Ok(())
}

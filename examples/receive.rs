//! RabbitMQ tutorial 1, consumer: `cargo run --example receive [COUNT]`.
//!
//! Waits for messages on `hello` and prints them; stops after COUNT messages
//! if given (the tutorial runs until Ctrl-C).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let limit: Option<u64> = std::env::args().nth(1).map(|n| n.parse()).transpose()?;
    let ns = shmq::Namespace::open_default()?;
    // A quorum queue, as RabbitMQ's tutorial declares it (and so interoperates with it).
    ns.declare_queue("hello", &shmq::QueueOptions::default().queue_type(shmq::QueueType::Quorum))?;
    let consumer = ns.consumer("hello", shmq::ConsumerOptions::default())?;
    println!(" [*] Waiting for messages. To exit press CTRL+C");
    let mut received = 0;
    while limit.is_none_or(|l| received < l) {
        let delivery = consumer.recv()?;
        println!(" [x] Received {}", String::from_utf8_lossy(delivery.body()));
        received += 1;
    }
    Ok(())
}

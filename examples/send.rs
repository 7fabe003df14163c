//! RabbitMQ tutorial 1, producer: `cargo run --example send`.
//!
//! Declares the `hello` queue and publishes one message to it, as the seed's
//! `channel.basic_publish(exchange='', routing_key='hello', body='Hello World')`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ns = shmq::Namespace::open_default()?;
    // A quorum queue, as RabbitMQ's tutorial declares it (and so interoperates with it).
    ns.declare_queue("hello", &shmq::QueueOptions::default().queue_type(shmq::QueueType::Quorum))?;
    let mut producer = ns.producer("hello")?;
    producer.publish(b"Hello World!")?;
    println!(" [x] Sent 'Hello World!'");
    Ok(())
}

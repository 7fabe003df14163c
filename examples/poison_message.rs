//! A poison message and a delivery limit: a message that makes every
//! worker fail is requeued, and requeued again, until it has been
//! delivered more often than the queue's `x-delivery-limit`; then it is
//! dead-lettered to a parking queue (reason `delivery_limit`) instead of
//! looping for ever, while the good messages go through.
//!
//! ```sh
//! cargo run --example poison_message -- submit order-1 poison order-2
//! cargo run --example poison_message -- work 2        # stops after 2 good orders
//! cargo run --example poison_message -- parked        # what was parked, and why
//! ```
//!
//! A quorum queue with `x-delivery-limit` 2, as in RabbitMQ: each
//! redelivery carries the count of earlier deliveries (`x-delivery-count`
//! in pika; `Delivery::delivery_count` here), and the third failure parks
//! it. examples/python/dead_lettering/poison_message.py is the same with pika.

use shmq::{ConsumerOptions, HeaderValue, Properties, QueueOptions, QueueType};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ns = shmq::Namespace::open_default()?;
    ns.declare_queue("orders.parked", &QueueOptions::default())?;
    let orders = QueueOptions::default()
        .queue_type(QueueType::Quorum)
        .delivery_limit(2)
        .dead_letter_exchange("")
        .dead_letter_routing_key("orders.parked");
    ns.declare_queue("orders", &orders)?;
    match args.first().map(String::as_str) {
        Some("submit") => {
            let mut publisher = ns.publisher();
            for order in &args[1..] {
                publisher.publish("", "orders", &Properties::new(), order.as_bytes())?;
                println!(" [x] submitted {order}");
            }
            Ok(())
        }
        Some("work") => {
            let good: usize = args.get(1).map(|n| n.parse()).transpose()?.unwrap_or(usize::MAX);
            let consumer = ns.consumer("orders", ConsumerOptions::default().manual_ack().prefetch(1))?;
            let mut done = 0;
            while done < good {
                let delivery = consumer.recv()?;
                let order = String::from_utf8_lossy(delivery.body()).into_owned();
                if order == "poison" {
                    println!(" [!] {order}: delivery {} failed", delivery.delivery_count() + 1);
                    delivery.nack(true)?;
                } else {
                    println!(" [x] {order}: processed");
                    delivery.ack()?;
                    done += 1;
                }
            }
            Ok(())
        }
        Some("parked") => {
            let consumer = ns.consumer("orders.parked", ConsumerOptions::default())?;
            while let Ok(delivery) = consumer.try_recv() {
                let p = delivery.properties();
                let reason = match p.headers.get("x-first-death-reason") {
                    Some(HeaderValue::Str(r)) => r,
                    _ => "?",
                };
                println!(" [x] parked {} ({reason})", String::from_utf8_lossy(delivery.body()));
            }
            Ok(())
        }
        _ => Err("usage: poison_message submit ORDER... | poison_message work [COUNT] | poison_message parked".into()),
    }
}

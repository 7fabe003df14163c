//! criterion benchmarks of routing: publishing through each exchange type,
//! the topic routing decision with 10 and 1000 bindings (and 1000 including
//! adversarial `#` patterns), and fanout to 1, 4
//! and 16 queues, next to publishing straight to a queue.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use shmq::{ArgValue, ConsumerOptions, ExchangeKind, ExchangeOptions, HeaderValue, Namespace, Properties, QueueOptions};

fn namespace(tag: &str) -> (std::path::PathBuf, Namespace) {
    let dir = std::path::PathBuf::from(format!("/dev/shm/shmq-criterion-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    (dir.clone(), Namespace::open_dir(&dir).unwrap())
}

fn small_queue() -> QueueOptions {
    QueueOptions::default().capacity_bytes(1 << 20).max_message_bytes(1024)
}

/// Publish one 64-byte message through `exchange`, then drain every queue.
fn exchange_types(c: &mut Criterion) {
    let (dir, ns) = namespace("xtypes");
    ns.declare_queue("q", &small_queue()).unwrap();
    ns.bind_queue("q", "amq.direct", "key", &[]).unwrap();
    ns.bind_queue("q", "amq.fanout", "", &[]).unwrap();
    ns.bind_queue("q", "amq.topic", "a.*.c", &[]).unwrap();
    let args = vec![("x-match".to_string(), ArgValue::Str("all".into())), ("format".to_string(), ArgValue::Str("pdf".into()))];
    ns.bind_queue("q", "amq.headers", "", &args).unwrap();
    let consumer = ns.consumer("q", ConsumerOptions::default()).unwrap();
    let mut publisher = ns.publisher();
    let mut direct_producer = ns.producer("q").unwrap();
    let body = [7u8; 64];
    let headers = [("format", HeaderValue::Str("pdf"))];
    let mut group = c.benchmark_group("routing/publish_via");
    group.throughput(Throughput::Elements(1));
    group.bench_function("queue_directly", |b| {
        b.iter(|| {
            direct_producer.publish(&body).unwrap();
            drop(consumer.try_recv().unwrap());
        })
    });
    for (name, exchange, key) in
        [("default", "", "q"), ("direct", "amq.direct", "key"), ("fanout", "amq.fanout", ""), ("topic", "amq.topic", "a.b.c")]
    {
        group.bench_function(name, |b| {
            b.iter(|| {
                publisher.publish(exchange, key, &Properties::new(), &body).unwrap();
                drop(consumer.try_recv().unwrap());
            })
        });
    }
    group.bench_function("headers", |b| {
        b.iter(|| {
            publisher.publish("amq.headers", "", &Properties::new().headers(&headers), &body).unwrap();
            drop(consumer.try_recv().unwrap());
        })
    });
    group.finish();
    drop((consumer, publisher, direct_producer));
    let _ = std::fs::remove_dir_all(dir);
}

/// The routing decision alone (`route_count`), topic exchange: 10 and 1000
/// ordinary bindings, then 1000 bindings of which 40 are adversarial (long
/// runs of `#`, `#.x.#.x.…`, `#.a.#.a.…`, `#.*.#.*.…`), decided for an
/// ordinary key, for keys that keep every adversarial binding alive, and for
/// keys that rotate (333 whose first word changes; 4096 random mixes of `x`
/// and `a`).
fn topic_decision(c: &mut Criterion) {
    let mut group = c.benchmark_group("routing/topic_decision");
    let ordinary = |i: u32| match i % 3 {
        // A spread of literal, `*` and `#` patterns; one matches below.
        0 => format!("stock.{i}.nyse"),
        1 => format!("stock.*.exchange{i}"),
        _ => format!("region{i}.#"),
    };
    for bindings in [10u32, 1000] {
        let (dir, ns) = namespace(&format!("topic{bindings}"));
        ns.declare_exchange("t", &ExchangeOptions::new(ExchangeKind::Topic)).unwrap();
        ns.declare_queue("q", &small_queue()).unwrap();
        for i in 0..bindings {
            ns.bind_queue("q", "t", &ordinary(i), &[]).unwrap();
        }
        let mut publisher = ns.publisher();
        assert_eq!(publisher.route_count("t", "stock.3.nyse", &Properties::new()).unwrap(), 1);
        group.bench_with_input(BenchmarkId::from_parameter(bindings), &bindings, |b, _| {
            b.iter(|| publisher.route_count("t", "stock.3.nyse", &Properties::new()).unwrap())
        });
        drop(publisher);
        let _ = std::fs::remove_dir_all(dir);
    }

    let (dir, ns) = namespace("topicadv");
    ns.declare_exchange("t", &ExchangeOptions::new(ExchangeKind::Topic)).unwrap();
    ns.declare_queue("q", &small_queue()).unwrap();
    ns.declare_queue("adversarial", &small_queue()).unwrap();
    let repeat = |word: &str, n: usize| vec![word; n].join(".");
    let mut adversarial = Vec::new();
    for n in 0..10 {
        adversarial.push(repeat("#", 18 + n)); // `#.#.#.…`: one `#` once collapsed
        adversarial.push(format!("#.{}.#.z", repeat("x.#", 2 + n))); // `#.x.#.x.….z`
        adversarial.push(format!("#.{}.b", repeat("a.#", 2 + n))); // `#.a.#.a.….b`
        adversarial.push(format!("#.{}", repeat("*.#", 2 + n))); // `#.*.#.*.…`
    }
    for key in &adversarial {
        ns.bind_queue("adversarial", "t", key, &[]).unwrap();
    }
    for i in 0..(1000 - adversarial.len() as u32) {
        ns.bind_queue("q", "t", &ordinary(i), &[]).unwrap();
    }
    let mut publisher = ns.publisher();
    let a_then_b = format!("{}.b", repeat("a", 19));
    let many_x = repeat("x", 20);
    for (name, key, queues) in [("ordinary_key", "stock.3.nyse", 2), ("a_x19_then_b", a_then_b.as_str(), 1), ("x_x20", many_x.as_str(), 1)]
    {
        assert_eq!(publisher.route_count("t", key, &Properties::new()).unwrap(), queues, "{name}");
        group.bench_function(BenchmarkId::new("1000_adversarial", name), |b| {
            b.iter(|| publisher.route_count("t", key, &Properties::new()).unwrap())
        });
    }
    // 333 keys `region<i>.x.….x` in rotation: the first word differs every
    // time (a new small DFA thread per key), the rest is cached.
    let rotating: Vec<String> = (0..1000).filter(|i| i % 3 == 2).map(|i| format!("region{i}.{}", repeat("x", 19))).collect();
    assert_eq!(publisher.route_count("t", &rotating[0], &Properties::new()).unwrap(), 2);
    // 4096 keys of 20 words, each word `x` or `a` by the bits of a random
    // number: every key a different walk through the adversarial chains.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mixed: Vec<String> = (0..4096)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (0..20).map(|bit| if seed >> bit & 1 == 1 { "x" } else { "a" }).collect::<Vec<_>>().join(".")
        })
        .collect();
    for (name, keys) in [("rotating_first_word", &rotating), ("random_x_a_mixes", &mixed)] {
        let mut next = 0;
        group.bench_function(BenchmarkId::new("1000_adversarial", name), |b| {
            b.iter(|| {
                next = (next + 1) % keys.len();
                publisher.route_count("t", &keys[next], &Properties::new()).unwrap()
            })
        });
    }
    drop(publisher);
    let _ = std::fs::remove_dir_all(dir);
    group.finish();
}

/// Fanout to N queues: publish + drain each queue.
fn fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("routing/fanout");
    for queues in [1usize, 4, 16] {
        let (dir, ns) = namespace(&format!("fanout{queues}"));
        ns.declare_exchange("f", &ExchangeOptions::new(ExchangeKind::Fanout)).unwrap();
        let consumers: Vec<_> = (0..queues)
            .map(|i| {
                let q = format!("q{i}");
                ns.declare_queue(&q, &small_queue()).unwrap();
                ns.bind_queue(&q, "f", "", &[]).unwrap();
                ns.consumer(&q, ConsumerOptions::default()).unwrap()
            })
            .collect();
        let mut publisher = ns.publisher();
        let body = [1u8; 64];
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(BenchmarkId::from_parameter(queues), &queues, |b, _| {
            b.iter(|| {
                publisher.publish("f", "", &Properties::new(), &body).unwrap();
                for c in &consumers {
                    drop(c.try_recv().unwrap());
                }
            })
        });
        drop((publisher, consumers));
        let _ = std::fs::remove_dir_all(dir);
    }
    group.finish();
}

criterion_group!(benches, exchange_types, topic_decision, fanout);
criterion_main!(benches);

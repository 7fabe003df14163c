//! `/metrics`: Prometheus's text format (version 0.0.4), with
//! rabbitmq_prometheus's metric names where shmq has the same figure
//! (per-object ones, as its `/metrics/per-object` endpoint gives them) and
//! `shmq_*` names for figures RabbitMQ does not have. Every family has
//! `# HELP` and `# TYPE` lines; counters end in `_total`. docs/MANAGEMENT.md
//! lists them.

use std::fmt::Write as _;

use super::stats::VhostSnapshot;

/// The content type Prometheus expects for this format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A label value with `\`, `"` and newlines escaped, as the format asks.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Writes one family: its HELP and TYPE lines, then one sample per
/// `(labels, value)`.
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: impl IntoIterator<Item = (String, u64)>) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
}

/// The metrics of `vhosts`, served by node `node` of cluster `cluster`.
pub fn render(node: &str, cluster: &str, vhosts: &[VhostSnapshot]) -> String {
    let mut out = String::new();
    let queue_labels = |v: &VhostSnapshot, q: &shmq::QueueStats| format!("vhost=\"{}\",queue=\"{}\"", escape(&v.name), escape(&q.name));
    let per_queue = |f: &dyn Fn(&shmq::QueueStats) -> u64| -> Vec<(String, u64)> {
        vhosts.iter().flat_map(|v| v.queues.iter().map(move |q| (queue_labels(v, q), f(q)))).collect()
    };
    let per_vhost = |f: &dyn Fn(&VhostSnapshot) -> u64| -> Vec<(String, u64)> {
        vhosts.iter().map(|v| (format!("vhost=\"{}\"", escape(&v.name)), f(v))).collect()
    };
    let global = |f: &dyn Fn(&VhostSnapshot) -> u64| -> Vec<(String, u64)> {
        vec![(String::new(), vhosts.iter().map(f).fold(0u64, u64::saturating_add))]
    };

    let _ = writeln!(out, "# HELP rabbitmq_identity_info RabbitMQ node & cluster identity info");
    let _ = writeln!(out, "# TYPE rabbitmq_identity_info untyped");
    let _ = writeln!(out, "rabbitmq_identity_info{{rabbitmq_node=\"{}\",rabbitmq_cluster=\"{}\"}} 1", escape(node), escape(cluster));
    family(
        &mut out,
        "shmq_build_info",
        "gauge",
        "The shmq version serving these metrics",
        [(format!("version=\"{}\"", env!("CARGO_PKG_VERSION")), 1)],
    );

    family(&mut out, "rabbitmq_queues", "gauge", "Queues available", global(&|v| v.queues.len() as u64));
    family(&mut out, "rabbitmq_consumers", "gauge", "Consumers currently connected", global(&|v| v.consumers()));
    family(
        &mut out,
        "rabbitmq_global_messages_received_total",
        "counter",
        "Total number of messages received from publishers (shmq: messages entering queues, once per queue they entered)",
        global(&|v| v.totals.published),
    );
    family(
        &mut out,
        "rabbitmq_global_messages_delivered_total",
        "counter",
        "Total number of messages delivered to consumers",
        global(&|v| v.totals.delivered),
    );
    family(
        &mut out,
        "rabbitmq_global_messages_acknowledged_total",
        "counter",
        "Total number of messages acknowledged by consumers",
        global(&|v| v.totals.acked),
    );
    family(
        &mut out,
        "rabbitmq_global_messages_redelivered_total",
        "counter",
        "Total number of messages redelivered to consumers",
        global(&|v| v.totals.redelivered),
    );
    family(
        &mut out,
        "rabbitmq_global_messages_unroutable_dropped_total",
        "counter",
        "Total number of messages published as non-mandatory into an exchange and dropped as unroutable",
        global(&|v| v.unroutable),
    );
    family(
        &mut out,
        "shmq_global_messages_dead_lettered_total",
        "counter",
        "Total number of messages dead-lettered, for any reason (rejected, expired, dropped at a limit, over the delivery limit)",
        global(&|v| v.totals.dead_lettered),
    );
    family(
        &mut out,
        "shmq_global_messages_expired_total",
        "counter",
        "Total number of messages that expired (dead-lettered or discarded)",
        global(&|v| v.totals.expired),
    );
    family(
        &mut out,
        "shmq_global_messages_dropped_total",
        "counter",
        "Total number of messages dropped from queue heads at a length limit",
        global(&|v| v.totals.dropped),
    );

    family(&mut out, "rabbitmq_queue_messages_ready", "gauge", "Messages ready to be delivered to consumers", per_queue(&|q| q.ready));
    family(
        &mut out,
        "rabbitmq_queue_messages_unacked",
        "gauge",
        "Messages delivered to consumers but not yet acknowledged",
        per_queue(&|q| q.unacked),
    );
    family(
        &mut out,
        "rabbitmq_queue_messages",
        "gauge",
        "Sum of ready and unacknowledged messages - total queue depth",
        per_queue(&|q| q.ready.saturating_add(q.unacked)),
    );
    family(&mut out, "rabbitmq_queue_consumers", "gauge", "Consumers on a queue", per_queue(&|q| u64::from(q.consumers)));
    family(
        &mut out,
        "rabbitmq_queue_messages_published_total",
        "counter",
        "Total number of messages published to queues",
        per_queue(&|q| q.published),
    );
    family(
        &mut out,
        "shmq_queue_messages_delivered_total",
        "counter",
        "Total number of deliveries from a queue, redeliveries included",
        per_queue(&|q| q.delivered),
    );
    family(
        &mut out,
        "shmq_queue_messages_acknowledged_total",
        "counter",
        "Total number of messages acknowledged from a queue",
        per_queue(&|q| q.acked),
    );
    family(
        &mut out,
        "shmq_queue_messages_redelivered_total",
        "counter",
        "Total number of redeliveries from a queue",
        per_queue(&|q| q.redelivered),
    );
    family(
        &mut out,
        "shmq_queue_messages_dropped_total",
        "counter",
        "Total number of messages dropped from a queue's head at its length limit",
        per_queue(&|q| q.dropped),
    );
    family(
        &mut out,
        "shmq_queue_messages_expired_total",
        "counter",
        "Total number of a queue's messages that expired",
        per_queue(&|q| q.expired),
    );
    family(
        &mut out,
        "shmq_queue_messages_dead_lettered_total",
        "counter",
        "Total number of a queue's messages dead-lettered",
        per_queue(&|q| q.dead_lettered),
    );
    family(&mut out, "shmq_queue_producers", "gauge", "Producer handles attached to a queue", per_queue(&|q| u64::from(q.producers)));
    family(
        &mut out,
        "shmq_queue_bytes_used",
        "gauge",
        "Data bytes a queue's rings hold (ready, unacked and not yet reclaimed)",
        per_queue(&|q| q.bytes_used),
    );
    family(
        &mut out,
        "shmq_queue_capacity_bytes",
        "gauge",
        "Data bytes of a queue's rings now (they grow and shrink with its backlog)",
        per_queue(&|q| q.capacity_bytes),
    );
    family(&mut out, "shmq_queue_rings", "gauge", "Rings in a queue's chain", per_queue(&|q| u64::from(q.rings)));

    family(
        &mut out,
        "shmq_memory_used_bytes",
        "gauge",
        "Bytes of a namespace's queue files, what counts against its memory budget",
        per_vhost(&|v| v.memory_in_use),
    );
    family(
        &mut out,
        "shmq_memory_budget_bytes",
        "gauge",
        "A namespace's memory budget: at it, publishers block",
        per_vhost(&|v| v.memory_budget),
    );
    family(
        &mut out,
        "shmq_peers",
        "gauge",
        "Processes attached to a namespace (dead ones await recovery)",
        vhosts.iter().flat_map(|v| {
            let vhost = escape(&v.name);
            [
                (format!("vhost=\"{vhost}\",state=\"alive\""), v.peers_alive as u64),
                (format!("vhost=\"{vhost}\",state=\"dead\""), v.peers_dead as u64),
            ]
        }),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> VhostSnapshot {
        VhostSnapshot {
            name: "a\"pp".into(),
            queues: vec![shmq::QueueStats { name: "q\\1".into(), ready: 3, unacked: 2, consumers: 1, published: 9, ..Default::default() }],
            unroutable: 4,
            memory_in_use: 10,
            memory_budget: 100,
            peers_alive: 1,
            peers_dead: 0,
            totals: super::super::stats::Counters { published: 12, ..Default::default() },
        }
    }

    #[test]
    fn every_family_has_help_and_type_and_labels_are_escaped() {
        let text = render("shmq@host", "shmq@host", &[snapshot()]);
        assert!(text.contains("rabbitmq_queue_messages_ready{vhost=\"a\\\"pp\",queue=\"q\\\\1\"} 3\n"), "{text}");
        assert!(text.contains("rabbitmq_queue_messages{vhost=\"a\\\"pp\",queue=\"q\\\\1\"} 5\n"));
        assert!(text.contains("rabbitmq_global_messages_received_total 12\n"));
        assert!(text.contains("rabbitmq_global_messages_unroutable_dropped_total 4\n"));
        let mut families = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut parts = rest.split(' ');
                let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
                assert!(text.contains(&format!("# HELP {name} ")), "{name} has no HELP");
                assert_eq!(kind == "counter", name.ends_with("_total"), "{name}: counters, and only they, end in _total");
                assert!(families.insert(name.to_owned()), "{name} twice");
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                assert!(families.contains(name), "sample {line} before its TYPE");
            }
        }
    }
}

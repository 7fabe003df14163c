//! Attacks on queue names as files, direct reply-to and definitions, from
//! their review; each failed before its fix: a message over half a ring
//! lost (replies of 32-64 KiB to a reply queue), a delete of a name whose
//! hash collides destroying another queue, an unbound auto-delete exchange
//! deleted by an unrelated queue's delete, a quorum queue exported
//! non-durable, control characters from a file reaching the terminal, an
//! exchange binding dropped from an export.

mod common;

use std::time::Duration;

use common::TempNs;
use shmq::{ConsumerOptions, ExchangeKind, ExchangeOptions, Properties, QueueOptions};

/// A reply of 40 000 bytes (a modest JSON document) to a direct reply-to
/// queue is published without error but never delivered: the reply queue's
/// first ring is 64 KiB (REPLY_QUEUE_BYTES) and a record over half a ring
/// is accepted by `try_claim` (it fits the ring) but refused by
/// `read_record` (`units <= max_record_units()`, half the ring), so the
/// consumer skips it as corrupt and the reply is lost.
#[test]
fn a_40k_reply_to_a_direct_reply_to_queue_is_delivered() {
    let t = TempNs::in_shm("r2-reply40k");
    let reply_to = t.ns.declare_reply_queue().unwrap();
    let replies = t.ns.consumer(&reply_to, ConsumerOptions::default()).unwrap();
    let body = vec![b'j'; 40_000];
    t.ns.publisher().publish("", &reply_to, &Properties::new(), &body).unwrap();
    let got = replies.recv_timeout(Duration::from_secs(2)).map(|d| d.body().len());
    assert_eq!(got, Ok(40_000), "the reply was accepted by the publish and then lost");
}

/// The same defect in a default queue (8 MiB first ring, 16 MiB largest
/// message): a 5 MiB message is accepted and then lost.
#[test]
fn a_message_over_half_the_first_ring_is_delivered() {
    let t = TempNs::in_shm("r2-halfring");
    t.ns.declare_queue("big", &QueueOptions::default()).unwrap();
    let body = vec![b'b'; 5 << 20];
    t.ns.producer("big").unwrap().publish(&body).unwrap();
    let consumer = t.ns.consumer("big", ConsumerOptions::default()).unwrap();
    let got = consumer.recv_timeout(Duration::from_secs(2)).map(|d| d.body().len());
    assert_eq!(got, Ok(5 << 20), "published, then lost: stats {:?}", t.ns.queue_stats("big").map(|s| (s.published, s.ready)));
}

/// Two queue names whose encoded file names are over 255 bytes and whose
/// FNV-1a-128 hashes collide (found in a second with LLL: FNV is linear
/// enough that collisions are cheap to construct). Deleting the second
/// name, which was never declared (a no-op in RabbitMQ), unlinks the
/// first queue's file: `remove_queue_file` falls back to unlinking
/// `queue_file_name(name)` whenever `open_queue` fails, including when the
/// file's header names another queue.
#[test]
fn deleting_a_name_that_hashes_like_another_queue_leaves_that_queue_alone() {
    let prefix = "/".repeat(90);
    let a = format!("{prefix}{}", r#"!!"!"!!"!!1(A!!#$!$#@#!""!!"!@!@!""!"#);
    let b = format!("{prefix}{}", r#"$ffb-ff!/"-&@>!|*!!(G=cc!l&8'EZA#;!>"#);
    assert_ne!(a, b);
    let t = TempNs::in_shm("r2-collide");
    t.ns.declare_queue(&a, &QueueOptions::default()).unwrap();
    t.ns.producer(&a).unwrap().publish(b"precious").unwrap();
    // The second name cannot be declared (its file is the first's)...
    let declared = t.ns.declare_queue(&b, &QueueOptions::default());
    // ...and deleting it must not touch the first queue.
    let _ = t.ns.delete_queue(&b);
    let left = t.ns.queue_stats(&a).map(|s| s.ready).map_err(|e| e.to_string());
    assert_eq!(left, Ok(1), "deleting '{b}' destroyed '{a}' (declaring it gave {declared:?})");
}

/// An auto-delete exchange goes when its last binding goes (RabbitMQ), not
/// before it ever had one: here any queue deletion anywhere in the
/// namespace (`Table::remove_queue` calls
/// `remove_unused_auto_delete_exchanges`) deletes every unbound
/// auto-delete exchange. Direct reply-to makes that routine: each reply
/// consumer's cancel or channel close deletes its reply queue.
#[test]
fn a_reply_queue_going_away_does_not_delete_an_unbound_auto_delete_exchange() {
    let t = TempNs::in_shm("r2-autodelx");
    t.ns.declare_exchange("events", &ExchangeOptions::new(ExchangeKind::Fanout).auto_delete(true)).unwrap();
    let reply_to = t.ns.declare_reply_queue().unwrap();
    t.ns.delete_queue(&reply_to).unwrap();
    assert!(t.ns.declare_exchange_passive("events").is_ok(), "an RPC client's reply queue going deleted 'events'");
}

/// `shmq export` leaves out the bindings of exclusive queues by name only:
/// an exchange-to-exchange binding whose destination exchange has the name
/// of an exclusive queue is silently dropped from the export.
#[test]
fn export_keeps_an_exchange_binding_whose_destination_shares_a_name_with_an_exclusive_queue() {
    let t = TempNs::in_shm("r2-exportx");
    t.ns.declare_queue("audit", &QueueOptions::default().exclusive(true)).unwrap();
    t.ns.declare_exchange("audit", &ExchangeOptions::new(ExchangeKind::Fanout)).unwrap();
    t.ns.declare_exchange("orders", &ExchangeOptions::new(ExchangeKind::Topic)).unwrap();
    t.ns.bind_exchange("audit", "orders", "#", &[]).unwrap();
    let out = t.shmq().args(["export"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let defs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kept = defs["bindings"].as_array().unwrap().iter().any(|b| b["source"] == "orders" && b["destination"] == "audit");
    assert!(kept, "the binding orders -> exchange audit is missing: {}", defs["bindings"]);
}

/// Definitions files are untrusted input shown to an operator: names of
/// users, policies, arguments and exchange types reach stderr raw, so a
/// file can rewrite the operator's terminal (here: erase the line that
/// says a policy was skipped). 9b5f299 refuses control characters in queue
/// names for exactly this reason.
#[test]
fn import_does_not_write_control_characters_from_the_file_to_the_terminal() {
    let t = TempNs::in_shm("r2-importesc");
    let file = t.path().with_extension("defs.json");
    std::fs::write(
        &file,
        r#"{"policies":[{"vhost":"/","name":"\r\u001b[2K\u001b[1Aha","pattern":".*","definition":{"max-length":1}}],
            "users":[{"name":"\u001b]0;owned\u0007"}]}"#,
    )
    .unwrap();
    let out = t.shmq().args(["import", "--skip-unsupported"]).arg(&file).output().unwrap();
    std::fs::remove_file(&file).ok();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains('\u{1b}') && !stderr.contains('\r') && !stderr.contains('\u{7}'), "raw control characters: {stderr:?}");
}

/// A queue declared with `x-queue-type=quorum` through the CLI (or an
/// imported file) is stored non-durable, and f638b4e's export writes that:
/// RabbitMQ's import_definitions reports success and silently creates no
/// such queue (a quorum queue must be durable). `QueueOptions::queue_type`
/// makes a quorum queue durable; `with_arguments` does not.
#[test]
fn a_quorum_queue_is_exported_durable() {
    let t = TempNs::in_shm("r2-quorum");
    let out = t.shmq().args(["declare-queue", "jobs", "--arg", "x-queue-type=quorum"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = t.shmq().args(["export"]).output().unwrap();
    let defs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let jobs = defs["queues"].as_array().unwrap().iter().find(|q| q["name"] == "jobs").cloned().unwrap();
    assert_eq!(jobs["durable"], true, "RabbitMQ drops a non-durable quorum queue on import: {jobs}");
}

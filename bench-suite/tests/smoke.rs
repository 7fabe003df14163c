//! The suite end to end on a small budget: every light system runs across
//! real processes, and the report, its target table and the plots come out.
//! (RabbitMQ needs a broker and is left to `run.sh`.)

use std::process::Command;

#[test]
fn quick_run_writes_a_report_with_every_system_measured() {
    let out = std::env::temp_dir().join(format!("shmq-suite-smoke-{}", std::process::id()));
    let status = Command::new(env!("CARGO_BIN_EXE_shmq-bench-suite"))
        .arg(&out)
        .env("SUITE_QUICK", "1")
        .env("SUITE_REPEAT", "2")
        .env("SUITE_SIZES", "64,65536")
        .env("SUITE_ONLY", "shmq,shmq-busy,shmq-batch,shmq-manual-batch,shmq-topic,iceoryx2,uds,pipe,mq,crossbeam,ring")
        .status()
        .expect("suite runs");
    assert!(status.success());
    let report = std::fs::read_to_string(out.join("results.md")).expect("results.md");
    for label in [
        "shmq (blocking)",
        "shmq (busy-poll)",
        "shmq (batches of 32)",
        "shmq (manual ack, batches of 32)",
        "shmq (topic, 1000 bindings)",
        "iceoryx2",
        "unix socket",
        "pipe",
        "crossbeam (threads)",
        "bare spsc ring",
    ] {
        let rows: Vec<&str> = report.lines().filter(|l| l.starts_with(&format!("| {label} |"))).collect();
        assert_eq!(rows.len(), 2, "{label}: one row per size in\n{report}");
        for row in rows {
            let rate: f64 = row.split('|').nth(2).unwrap().trim().parse().expect("a rate");
            assert!(rate > 0.0, "{row}");
        }
    }
    // POSIX mq may be refused by this machine's mqueue limits; then the
    // report must say why rather than drop it silently.
    assert!(report.contains("| POSIX mq |") || report.contains("POSIX mq at"), "{report}");
    assert!(report.contains("latency p50: shmq (busy-poll) ≤ 1.5× bare ring"));
    assert!(!report.contains("≤ 1.5× bare ring | not measured"), "{report}");
    for target in ["manual acks ÷ auto acks", "topic exchange with 1000 bindings ÷ publishing to the queue"] {
        let line = report.lines().find(|l| l.contains(target)).unwrap_or_else(|| panic!("{target} in\n{report}"));
        assert!(!line.contains("not measured"), "{line}");
    }
    for plot in ["latency-p50.svg", "latency-p99.svg", "latency-p999.svg", "throughput.svg", "fanout.svg", "workers.svg"] {
        let svg = std::fs::read_to_string(out.join(plot)).expect(plot);
        assert!(svg.starts_with("<svg") && svg.contains("polyline"), "{plot}");
    }
    std::fs::remove_dir_all(&out).ok();
}

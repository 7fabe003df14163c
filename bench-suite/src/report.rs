//! SVG plots and the Markdown report.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;

use crate::systems::System;
use crate::Row;

type R<T> = Result<T, Box<dyn std::error::Error>>;

const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(23, 190, 207),
    RGBColor(174, 199, 232),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(188, 189, 34),
    RGBColor(127, 127, 127),
];

fn size_label(size: usize) -> String {
    match size {
        s if s >= 1 << 20 => format!("{} MiB", s >> 20),
        s if s >= 1 << 10 => format!("{} KiB", s >> 10),
        s => format!("{s} B"),
    }
}

/// A log-log line chart of `value(row)` by message size, one line per system.
fn by_size(path: &Path, title: &str, y_desc: &str, rows: &[Row], value: impl Fn(&Row) -> f64) -> R<()> {
    let sizes: Vec<usize> = {
        let mut s: Vec<usize> = rows.iter().map(|r| r.size).collect();
        s.dedup();
        s
    };
    let values: Vec<f64> = rows.iter().map(&value).filter(|v| *v > 0.0).collect();
    let (lo, hi) = values.iter().fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(*v), b.max(*v)));
    let root = SVGBackend::new(path, (900, 540)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..(sizes.len() as f64 - 1.0), (lo / 2.0..hi * 2.0).log_scale())?;
    chart
        .configure_mesh()
        .x_labels(sizes.len())
        .x_label_formatter(&|x| sizes.get(x.round() as usize).map(|s| size_label(*s)).unwrap_or_default())
        .y_desc(y_desc)
        .draw()?;
    for (i, system) in System::ALL.iter().enumerate() {
        let points: Vec<(f64, f64)> = rows
            .iter()
            .filter(|r| r.system == *system)
            .map(|r| (sizes.iter().position(|s| *s == r.size).unwrap_or(0) as f64, value(r)))
            .collect();
        let color = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(system.label())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        chart.draw_series(points.into_iter().map(|p| Circle::new(p, 3, color.filled())))?;
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    root.present()?;
    Ok(())
}

fn scaling(path: &Path, title: &str, x_desc: &str, points: &[(usize, [f64; 3])]) -> R<()> {
    let hi = points.iter().map(|p| p.1[2]).fold(0.0, f64::max);
    let x_max = points.iter().map(|p| p.0).max().unwrap_or(1) as f64;
    let root = SVGBackend::new(path, (700, 440)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..x_max + 1.0, 0f64..hi * 1.15)?;
    chart.configure_mesh().x_desc(x_desc).y_desc("messages published per second").draw()?;
    let line: Vec<(f64, f64)> = points.iter().map(|(n, v)| (*n as f64, v[0])).collect();
    chart.draw_series(LineSeries::new(line.clone(), COLORS[0].stroke_width(2)))?;
    chart.draw_series(line.into_iter().map(|p| Circle::new(p, 4, COLORS[0].filled())))?;
    // min-max whiskers
    for (n, v) in points {
        chart.draw_series(LineSeries::new(vec![(*n as f64, v[1]), (*n as f64, v[2])], BLACK))?;
    }
    root.present()?;
    Ok(())
}

/// The seed's own stack, measured by python/benchmarks/bench.py just before
/// the suite in the same `run.sh` invocation.
pub struct Pika {
    pub msgs_per_sec: f64,
    pub one_way_median_ns: f64,
    pub python_shmq_msgs_per_sec: f64,
}

impl Pika {
    pub fn load(path: &Path) -> Option<Pika> {
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
        Some(Pika {
            msgs_per_sec: v["pika_msgs_per_sec"].as_f64()?,
            one_way_median_ns: v["pika_one_way_median_ns"].as_f64()?,
            python_shmq_msgs_per_sec: v["shmq_msgs_per_sec"].as_f64()?,
        })
    }
}

/// Per-repetition ratios `value(a, i) / value(b, i)` of two rows measured
/// side by side: median, min, max.
fn paired(a: &Row, b: &Row, value: impl Fn(&Row, usize) -> f64) -> Option<[f64; 3]> {
    let n = a.rates.len().min(b.rates.len());
    let ratios: Vec<f64> = (0..n).map(|i| value(a, i) / value(b, i)).filter(|r| r.is_finite()).collect();
    if ratios.is_empty() {
        return None;
    }
    let mut sorted = ratios;
    sorted.sort_by(f64::total_cmp);
    Some([sorted[sorted.len() / 2], sorted[0], sorted[sorted.len() - 1]])
}

fn rate(r: &Row, i: usize) -> f64 {
    r.rates[i]
}

fn p50(r: &Row, i: usize) -> f64 {
    r.p50s[i]
}

/// The targets at 64 B, each as a same-run ratio.
fn targets(md: &mut String, rows: &[Row], pika: Option<&Pika>) -> R<()> {
    let find = |system: System| rows.iter().find(|r| r.size == 64 && r.system == system);
    writeln!(md, "## Targets at 64 B (paired ratios: each repetition's pair measured back to back; median, min–max)\n")?;
    writeln!(md, "| target | measured | met |\n|---|---|---|")?;
    let mut line = |target: &str, ratio: Option<[f64; 3]>, unit: &str, ok: &dyn Fn(f64) -> bool| -> R<()> {
        match ratio {
            Some([m, lo, hi]) => writeln!(md, "| {target} | {m:.2}{unit} ({lo:.2}–{hi:.2}) | {} |", if ok(m) { "yes" } else { "**no**" })?,
            None => writeln!(md, "| {target} | not measured | — |")?,
        }
        Ok(())
    };
    let (busy, batch, blocking) = (find(System::ShmqBusy), find(System::ShmqBatch), find(System::ShmqBlocking));
    let (ring, ice, uds) = (find(System::BareRing), find(System::Iceoryx2), find(System::UnixSocket));
    let pair = |a: Option<&Row>, b: Option<&Row>, v: fn(&Row, usize) -> f64| a.zip(b).and_then(|(a, b)| paired(a, b, v));
    line("latency p50: shmq (busy-poll) ≤ 1.5× bare ring", pair(busy, ring, p50), "×", &|m| m <= 1.5)?;
    line("latency p50: shmq (busy-poll) below iceoryx2 (ratio < 1)", pair(busy, ice, p50), "×", &|m| m < 1.0)?;
    line("throughput: shmq (busy-poll, one message per call) ≥ 60 % of bare ring", pair(busy, ring, rate), "×", &|m| m >= 0.6)?;
    line("throughput: shmq (batches of 32) ≥ 60 % of bare ring", pair(batch, ring, rate), "×", &|m| m >= 0.6)?;
    line("throughput: shmq (busy-poll) ≥ 2× iceoryx2", pair(busy, ice, rate), "×", &|m| m >= 2.0)?;
    line("throughput: shmq (batches of 32) ≥ 2× iceoryx2", pair(batch, ice, rate), "×", &|m| m >= 2.0)?;
    line("throughput: shmq (busy-poll) ≥ 20× Unix socket", pair(busy, uds, rate), "×", &|m| m >= 20.0)?;
    line("throughput: shmq (batches of 32) ≥ 20× Unix socket", pair(batch, uds, rate), "×", &|m| m >= 20.0)?;
    line("blocking latency p50: shmq (blocking) ÷ Unix socket ≤ 1", pair(blocking, uds, p50), "×", &|m| m <= 1.0)?;
    let (manual, topic) = (find(System::ShmqManualBatch), find(System::ShmqTopic));
    line(
        "throughput: manual acks ÷ auto acks, batches of 32 (one `ack_multiple` per batch) ≥ 0.8",
        pair(manual, batch, rate),
        "×",
        &|m| m >= 0.8,
    )?;
    line(
        "throughput: topic exchange with 1000 bindings ÷ publishing to the queue, one message per call ≥ 0.85",
        pair(topic, busy, rate),
        "×",
        &|m| m >= 0.85,
    )?;
    match pika {
        Some(p) => {
            for (label, row) in [("busy-poll", busy), ("batches of 32", batch)] {
                let ratio = row.map(|r| [r.rate[0] / p.msgs_per_sec, r.rate[1] / p.msgs_per_sec, r.rate[2] / p.msgs_per_sec]);
                line(
                    &format!(
                        "throughput: shmq ({label}) ≥ 1000× pika + RabbitMQ ({:.0} msg/s, python/benchmarks/bench.py, same run.sh)",
                        p.msgs_per_sec
                    ),
                    ratio,
                    "×",
                    &|m| m >= 1000.0,
                )?;
            }
            writeln!(
                md,
                "\nThe seed's stack in the same invocation: pika + RabbitMQ {:.0} msg/s, {:.0} µs one-way median; Python shmq {:.0} msg/s ({:.0}×).",
                p.msgs_per_sec,
                p.one_way_median_ns / 1000.0,
                p.python_shmq_msgs_per_sec,
                p.python_shmq_msgs_per_sec / p.msgs_per_sec
            )?;
        }
        None => writeln!(md, "| ≥ 1000× pika + RabbitMQ | not measured (no docs/bench/python.json from this run) | — |")?,
    }
    writeln!(md)?;
    Ok(())
}

pub fn write(
    dir: &Path,
    rows: &[Row],
    fanout: &[(usize, [f64; 3])],
    workers: &[(usize, [f64; 3])],
    repeat: usize,
    skipped: &[String],
    pika: Option<&Pika>,
) -> R<()> {
    by_size(&dir.join("latency-p50.svg"), "One-way latency, median (ping-pong / 2)", "ns", rows, |r| r.latency[0])?;
    by_size(&dir.join("latency-p99.svg"), "One-way latency, p99", "ns", rows, |r| r.latency[1])?;
    by_size(&dir.join("latency-p999.svg"), "One-way latency, p99.9", "ns", rows, |r| r.latency[2])?;
    by_size(&dir.join("throughput.svg"), "One-way throughput, 1 producer → 1 consumer", "messages per second", rows, |r| r.rate[0])?;
    if !fanout.is_empty() {
        scaling(&dir.join("fanout.svg"), "shmq fanout: 64 B to N queues (one consumer each)", "queues", fanout)?;
        scaling(&dir.join("workers.svg"), "shmq work queue: 64 B, batches of 32, N competing workers", "workers", workers)?;
    }

    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned()))
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mut md = String::new();
    writeln!(md, "# Comparison suite results\n")?;
    writeln!(
        md,
        "Generated by `bench-suite/run.sh` at commit `{commit}` on {cores} cores ({cpu}). {repeat} repetitions, interleaved (repetition 1 of every system and size, then repetition 2, ...). Each figure is the median; throughput shows min–max over the repetitions beside it, a measure of how noisy the run was. The last column divides shmq (busy-poll) by this row, repetition by repetition, and gives the median.\n"
    )?;
    targets(&mut md, rows, pika)?;
    let mut sizes: Vec<usize> = rows.iter().map(|r| r.size).collect();
    sizes.dedup();
    for size in sizes {
        writeln!(md, "## {}\n", size_label(size))?;
        writeln!(md, "| system | msgs/s (median) | min–max | MB/s | one-way p50 | p99 | p99.9 | shmq busy ÷ this (throughput) |")?;
        writeln!(md, "|---|---|---|---|---|---|---|---|")?;
        let base = rows.iter().find(|r| r.size == size && r.system == System::ShmqBusy);
        for r in rows.iter().filter(|r| r.size == size) {
            let ratio = base.and_then(|b| paired(b, r, rate)).map(|m| format!("{:.2}×", m[0])).unwrap_or_else(|| "—".into());
            writeln!(
                md,
                "| {} | {:.0} | {:.0}–{:.0} | {:.0} | {:.0} ns | {:.0} ns | {:.0} ns | {} |",
                r.system.label(),
                r.rate[0],
                r.rate[1],
                r.rate[2],
                r.rate[0] * size as f64 / 1e6,
                r.latency[0],
                r.latency[1],
                r.latency[2],
                ratio
            )?;
        }
        writeln!(md)?;
    }
    if fanout.is_empty() {
        writeln!(md, "Scaling runs skipped (SUITE_SCALING=0).")?;
    } else {
        scaling_tables(&mut md, fanout, workers)?;
    }
    if !skipped.is_empty() {
        writeln!(md, "\nFailures in this run:\n")?;
        for s in skipped {
            writeln!(md, "- {s}")?;
        }
    }
    writeln!(md, "\n![latency p50](latency-p50.svg)\n![latency p99](latency-p99.svg)\n![latency p99.9](latency-p999.svg)\n![throughput](throughput.svg)")?;
    if !fanout.is_empty() {
        writeln!(md, "![fanout](fanout.svg)\n![workers](workers.svg)")?;
    }
    std::fs::write(dir.join("results.md"), md)?;
    Ok(())
}

fn scaling_tables(md: &mut String, fanout: &[(usize, [f64; 3])], workers: &[(usize, [f64; 3])]) -> R<()> {
    writeln!(md, "## shmq scaling\n")?;
    writeln!(md, "| fanout queues | msgs published/s | min–max |\n|---|---|---|")?;
    for (n, v) in fanout {
        writeln!(md, "| {n} | {:.0} | {:.0}–{:.0} |", v[0], v[1], v[2])?;
    }
    writeln!(md, "\n| competing workers | msgs/s | min–max |\n|---|---|---|")?;
    for (n, v) in workers {
        writeln!(md, "| {n} | {:.0} | {:.0}–{:.0} |", v[0], v[1], v[2])?;
    }
    Ok(())
}

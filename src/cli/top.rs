//! `shmq top`: a live dashboard of every queue's depth, rates and consumers,
//! the counterpart of RabbitMQ's management overview. Rates come from the
//! per-handle counters in shared memory, sampled each interval. On a
//! terminal it is interactive (q or Esc quits); piped, it prints each frame
//! as text, which is also how it is tested.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use clap::Args;
use ratatui::backend::{Backend, TestBackend};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Row, Sparkline, Table};
use ratatui::{Frame, Terminal};

use super::{namespace, Cli, CliResult};

#[derive(Args, Debug)]
pub struct TopArgs {
    /// Refresh interval in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub interval_ms: u64,
    /// Stop after this many refreshes (0: until q or Esc).
    #[arg(long, default_value_t = 0)]
    pub iterations: u64,
}

/// How many samples the sparkline keeps.
const HISTORY: usize = 120;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueueRow {
    pub name: String,
    pub ready: u64,
    pub unacked: u64,
    pub consumers: u32,
    pub bytes_used: u64,
    pub capacity: u64,
    pub publish_rate: f64,
    pub deliver_rate: f64,
    pub ack_rate: f64,
}

/// Everything one frame shows.
#[derive(Debug, Default)]
pub struct Dashboard {
    pub namespace: String,
    pub peers_alive: usize,
    pub peers_dead: usize,
    pub unroutable: u64,
    pub rows: Vec<QueueRow>,
    /// Total publish rate per interval, newest last.
    pub history: Vec<u64>,
    last: HashMap<String, (u64, u64, u64)>,
    last_at: Option<Instant>,
}

impl Dashboard {
    /// Takes a sample and updates rates and history.
    pub fn sample(&mut self, ns: &shmq::Namespace) -> Result<(), shmq::Error> {
        let now = Instant::now();
        let elapsed = self.last_at.map(|t| now.duration_since(t).as_secs_f64()).filter(|s| *s > 0.0);
        let mut rows = Vec::new();
        let mut next = HashMap::new();
        for name in ns.list_queues()? {
            let Ok(s) = ns.queue_stats(&name) else { continue };
            let counters = (s.published, s.delivered, s.acked);
            let rate = |now: u64, before: u64| elapsed.map_or(0.0, |secs| now.saturating_sub(before) as f64 / secs);
            let (p0, d0, a0) = self.last.get(&name).copied().unwrap_or(counters);
            rows.push(QueueRow {
                name: name.clone(),
                ready: s.ready,
                unacked: s.unacked,
                consumers: s.consumers,
                bytes_used: s.bytes_used,
                capacity: s.capacity_bytes,
                publish_rate: rate(s.published, p0),
                deliver_rate: rate(s.delivered, d0),
                ack_rate: rate(s.acked, a0),
            });
            next.insert(name, counters);
        }
        let peers = ns.peers();
        self.namespace = ns.name().to_owned();
        self.peers_alive = peers.iter().filter(|p| p.1).count();
        self.peers_dead = peers.len() - self.peers_alive;
        self.unroutable = ns.unroutable_count();
        if elapsed.is_some() {
            self.history.push(rows.iter().fold(0u64, |sum, r| sum.saturating_add(r.publish_rate as u64)));
            if self.history.len() > HISTORY {
                self.history.remove(0);
            }
        }
        self.rows = rows;
        self.last = next;
        self.last_at = Some(now);
        Ok(())
    }

    /// Draws the dashboard.
    pub fn render(&self, frame: &mut Frame<'_>) {
        let [header, table, spark] =
            Layout::vertical([Constraint::Length(3), Constraint::Min(5), Constraint::Length(6)]).areas(frame.area());
        let summary = format!(
            "namespace {}  |  queues {}  |  peers {} alive, {} dead  |  unroutable {}  |  q quits",
            self.namespace,
            self.rows.len(),
            self.peers_alive,
            self.peers_dead,
            self.unroutable
        );
        frame.render_widget(Paragraph::new(Line::from(summary)).block(Block::default().borders(Borders::ALL).title(" shmq top ")), header);
        let rows = self.rows.iter().map(|r| {
            Row::new(vec![
                r.name.clone(),
                r.ready.to_string(),
                r.unacked.to_string(),
                r.consumers.to_string(),
                format!("{:.0}", r.publish_rate),
                format!("{:.0}", r.deliver_rate),
                format!("{:.0}", r.ack_rate),
                format!("{}/{}", r.bytes_used, r.capacity),
            ])
        });
        let widths = [
            Constraint::Min(16),
            Constraint::Length(9),
            Constraint::Length(9),
            Constraint::Length(9),
            Constraint::Length(10),
            Constraint::Length(10),
            Constraint::Length(10),
            Constraint::Length(20),
        ];
        let header_row = Row::new(vec!["queue", "ready", "unacked", "consumers", "publish/s", "deliver/s", "ack/s", "bytes"])
            .style(Style::default().add_modifier(Modifier::BOLD));
        frame.render_widget(
            Table::new(rows, widths).header(header_row).block(Block::default().borders(Borders::ALL).title(" queues ")),
            table,
        );
        let peak = self.history.iter().max().copied().unwrap_or(0);
        frame.render_widget(
            Sparkline::default()
                .block(Block::default().borders(Borders::ALL).title(format!(" publish rate, all queues (peak {peak}/s) ")))
                .data(&self.history),
            spark,
        );
    }
}

/// Renders one frame into a text screen of `width` × `height`.
pub fn render_text(dashboard: &Dashboard, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test backend");
    terminal.draw(|f| dashboard.render(f)).expect("draw");
    let buffer = terminal.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..buffer.area.height {
        let line: String = (0..buffer.area.width).map(|x| buffer[(x, y)].symbol().to_string()).collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub fn run(cli: &Cli, args: &TopArgs) -> CliResult {
    let ns = namespace(cli)?;
    let interval = Duration::from_millis(args.interval_ms.max(50));
    let mut dashboard = Dashboard::default();
    dashboard.sample(&ns)?;
    if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        // Piped: print each frame as text.
        let mut n = 0;
        loop {
            std::thread::sleep(interval);
            dashboard.sample(&ns)?;
            println!("{}", render_text(&dashboard, 110, 24));
            n += 1;
            if args.iterations != 0 && n >= args.iterations {
                return Ok(());
            }
        }
    }
    let mut terminal = ratatui::init();
    let result = interactive(&ns, &mut terminal, &mut dashboard, interval, args.iterations);
    ratatui::restore();
    result
}

fn interactive<B: Backend>(
    ns: &shmq::Namespace,
    terminal: &mut Terminal<B>,
    dashboard: &mut Dashboard,
    interval: Duration,
    iterations: u64,
) -> CliResult
where
    B::Error: 'static,
{
    use crossterm::event::{self, Event, KeyCode};
    let mut n = 0;
    loop {
        terminal.draw(|f| dashboard.render(f))?;
        let deadline = Instant::now() + interval;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            if event::poll(left)? {
                if let Event::Key(key) = event::read()? {
                    if matches!(key.code, KeyCode::Char('q') | KeyCode::Esc) {
                        return Ok(());
                    }
                }
            }
        }
        dashboard.sample(ns)?;
        n += 1;
        if iterations != 0 && n >= iterations {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_queues_rates_and_the_sparkline() {
        let dashboard = Dashboard {
            namespace: "app".into(),
            peers_alive: 2,
            peers_dead: 1,
            unroutable: 4,
            rows: vec![QueueRow {
                name: "task_queue".into(),
                ready: 12,
                unacked: 3,
                consumers: 2,
                bytes_used: 640,
                capacity: 8388608,
                publish_rate: 1500.0,
                deliver_rate: 1400.0,
                ack_rate: 1390.0,
            }],
            history: vec![100, 800, 1500],
            ..Dashboard::default()
        };
        let screen = render_text(&dashboard, 110, 20);
        assert!(screen.contains("namespace app"), "{screen}");
        assert!(screen.contains("peers 2 alive, 1 dead"));
        assert!(screen.contains("unroutable 4"));
        let row = screen.lines().find(|l| l.contains("task_queue")).expect("a row for the queue");
        for cell in ["12", "3", "2", "1500", "1400", "1390", "640/8388608"] {
            assert!(row.contains(cell), "{cell} missing from {row}");
        }
        assert!(screen.contains("peak 1500/s"));
        // The sparkline's tallest bar is drawn with a full block.
        assert!(screen.contains('█'), "{screen}");
    }
}

//! `shmq top`: a live dashboard of every queue's depth, rates and consumers,
//! with tabs for exchanges, attached handles and shovels, the counterpart
//! of RabbitMQ's management overview. Rates come from the per-handle
//! counters in shared memory, sampled each interval. On a terminal it is
//! interactive (scroll, sort, filter; q quits); piped, it prints each frame
//! as text; with `--json` it prints one snapshot and exits.

mod sample;
mod view;

use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use ratatui::backend::{Backend, TestBackend};
use ratatui::Terminal;

use super::{namespace, Cli, CliResult};
use sample::{Dashboard, Section};
use view::{Action, View};

#[derive(Args, Debug)]
pub struct TopArgs {
    /// Refresh interval in milliseconds (with --json: the time between the
    /// two samples the rates come from).
    #[arg(long, default_value_t = 1000)]
    pub interval_ms: u64,
    /// Stop after this many refreshes (0: until q or Esc).
    #[arg(long, default_value_t = 0)]
    pub iterations: u64,
    /// What the queues are sorted by at start (s cycles, r reverses).
    #[arg(long, value_enum, default_value_t = QueueSort::Name)]
    pub sort: QueueSort,
    /// Reverse the sort: names z-a, numbers smallest first.
    #[arg(long)]
    pub reverse: bool,
    /// Show only rows whose name holds this text, ignoring case (/ edits
    /// it, Esc clears it).
    #[arg(long, default_value = "")]
    pub filter: String,
}

/// The queue sorts, in the order the `s` key cycles through them (that of
/// `view::QUEUE_SORTS`, which names them on screen).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum QueueSort {
    Name,
    Messages,
    Publish,
    Deliver,
    Consumers,
}

/// Renders one frame into a text screen of `width` × `height`.
fn render_text(dashboard: &Dashboard, view: &mut View, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test backend");
    terminal.draw(|f| view::render(dashboard, view, f)).expect("draw");
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
    if cli.json {
        // Two samples, for rates.
        dashboard.sample(&ns, &Section::ALL)?;
        std::thread::sleep(interval);
        dashboard.sample(&ns, &Section::ALL)?;
        println!("{}", dashboard.to_json(&ns));
        return Ok(());
    }
    let mut view = View::new(args.sort as usize, args.reverse, args.filter.clone());
    dashboard.sample(&ns, &[view.tab])?;
    if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        // Piped: print each frame as text.
        let mut n = 0;
        loop {
            std::thread::sleep(interval);
            dashboard.sample(&ns, &[view.tab])?;
            println!("{}", render_text(&dashboard, &mut view, 110, 24));
            n += 1;
            if args.iterations != 0 && n >= args.iterations {
                return Ok(());
            }
        }
    }
    let mut terminal = ratatui::init();
    let result = interactive(&ns, &mut terminal, &mut dashboard, &mut view, interval, args.iterations);
    ratatui::restore();
    result
}

/// Redraws at each key and each interval, when it samples again.
fn interactive<B: Backend>(
    ns: &shmq::Namespace,
    terminal: &mut Terminal<B>,
    dashboard: &mut Dashboard,
    view: &mut View,
    interval: Duration,
    iterations: u64,
) -> CliResult
where
    B::Error: 'static,
{
    use crossterm::event::{self, Event, KeyEventKind};
    let mut n = 0;
    loop {
        terminal.draw(|f| view::render(dashboard, view, f))?;
        let deadline = Instant::now() + interval;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            if !event::poll(left)? {
                break;
            }
            let redraw = match event::read()? {
                Event::Key(key) if key.kind != KeyEventKind::Release => match view.on_key(key) {
                    Action::Quit => return Ok(()),
                    Action::TabChanged => {
                        dashboard.sample_section(ns, view.tab)?;
                        true
                    }
                    Action::Redraw => true,
                    Action::Nothing => false,
                },
                Event::Resize(..) => true,
                _ => false,
            };
            if redraw {
                terminal.draw(|f| view::render(dashboard, view, f))?;
            }
        }
        dashboard.sample(ns, &[view.tab])?;
        n += 1;
        if iterations != 0 && n >= iterations {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    use super::sample::QueueRow;
    use super::*;

    fn queue(name: &str, ready: u64, publish_rate: f64) -> QueueRow {
        let stats = shmq::QueueStats { name: name.into(), ready, ..Default::default() };
        QueueRow { stats, publish_rate, ..Default::default() }
    }

    fn press(view: &mut View, keys: &str) {
        for c in keys.chars() {
            view.on_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
        }
    }

    /// The queue names in the order a frame shows them.
    fn shown_queues(screen: &str) -> Vec<String> {
        screen
            .lines()
            .filter_map(|l| l.strip_prefix('│')?.split_whitespace().next().filter(|w| w.starts_with("q-")).map(str::to_owned))
            .collect()
    }

    #[test]
    fn renders_queues_rates_counters_and_the_sparkline() {
        let mut dashboard = Dashboard::default();
        dashboard.namespace = "app".into();
        dashboard.peers = vec![(1, true, Some(10)), (2, true, Some(11)), (3, false, None)];
        dashboard.unroutable = 4;
        let stats = shmq::QueueStats {
            name: "task_queue".into(),
            ready: 12,
            unacked: 3,
            consumers: 2,
            bytes_used: 640,
            capacity_bytes: 8388608,
            dropped: 5,
            expired: 6,
            redelivered: 7,
            dead_lettered: 8,
            ..Default::default()
        };
        dashboard.queues = vec![QueueRow { stats, publish_rate: 1500.0, deliver_rate: 1400.0, ack_rate: 1390.0 }];
        dashboard.history = vec![100, 800, 1500];
        let screen = render_text(&dashboard, &mut View::new(0, false, String::new()), 110, 20);
        assert!(screen.contains("namespace app"), "{screen}");
        assert!(screen.contains("peers 2 alive, 1 dead"));
        assert!(screen.contains("unroutable 4"));
        let row = screen.lines().find(|l| l.contains("task_queue")).expect("a row for the queue");
        for cell in ["12", "3", "2", "1500", "1400", "1390", "5/6/7/8", "640/8388608"] {
            assert!(row.contains(cell), "{cell} missing from {row}");
        }
        assert!(screen.contains("peak 1500/s"));
        // The sparkline's tallest bar is drawn with a full block.
        assert!(screen.contains('█'), "{screen}");
    }

    #[test]
    fn a_long_name_is_shown_whole_when_the_terminal_is_wide_enough() {
        let long = format!("q-{}", "x".repeat(80));
        let mut dashboard = Dashboard::default();
        dashboard.queues = vec![queue(&long, 1, 0.0)];
        let screen = render_text(&dashboard, &mut View::new(0, false, String::new()), 200, 20);
        assert!(screen.contains(&long), "{screen}");
    }

    #[test]
    fn keys_sort_reverse_filter_and_scroll_the_queues() {
        let mut dashboard = Dashboard::default();
        dashboard.queues = (0..40).map(|i| queue(&format!("q-{i:02}"), (i * 7 % 40) as u64, f64::from(i))).collect();
        let mut view = View::new(0, false, String::new());
        let first = shown_queues(&render_text(&dashboard, &mut view, 110, 24));
        assert_eq!(first.first().map(String::as_str), Some("q-00"));
        assert!(first.len() < 40, "one page only: {first:?}");

        press(&mut view, "s"); // messages, largest first
        let by_depth = shown_queues(&render_text(&dashboard, &mut view, 110, 24));
        assert_eq!(by_depth[0], "q-17", "17 * 7 % 40 = 39 is the deepest");
        press(&mut view, "r");
        assert_eq!(shown_queues(&render_text(&dashboard, &mut view, 110, 24))[0], "q-00");
        press(&mut view, "rs"); // publish rate, largest first
        assert_eq!(shown_queues(&render_text(&dashboard, &mut view, 110, 24))[0], "q-39");

        press(&mut view, "sss"); // back to names
        view.on_key(KeyEvent::new(KeyCode::End, KeyModifiers::NONE));
        let last = shown_queues(&render_text(&dashboard, &mut view, 110, 24));
        assert_eq!(last.last().map(String::as_str), Some("q-39"), "End shows the last page");
        view.on_key(KeyEvent::new(KeyCode::PageUp, KeyModifiers::NONE));
        view.on_key(KeyEvent::new(KeyCode::Home, KeyModifiers::NONE));
        press(&mut view, "jj");
        assert_eq!(shown_queues(&render_text(&dashboard, &mut view, 110, 24))[0], "q-02");

        press(&mut view, "/3");
        let filtered = shown_queues(&render_text(&dashboard, &mut view, 110, 40));
        assert_eq!(filtered, ["q-03", "q-13", "q-23", "q-30", "q-31", "q-32", "q-33", "q-34", "q-35", "q-36", "q-37", "q-38", "q-39"]);
        view.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
        assert_eq!(view.on_key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)), Action::Redraw, "Esc clears the filter first");
        assert!(view.filter.is_empty());
        assert_eq!(view.on_key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)), Action::Quit, "then quits");
    }

    #[test]
    fn q_typed_into_the_filter_does_not_quit() {
        let mut view = View::new(0, false, String::new());
        press(&mut view, "/q");
        assert_eq!(view.filter, "q");
        assert_eq!(view.on_key(KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE)), Action::Redraw);
        view.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
        assert_eq!(view.on_key(KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE)), Action::Quit);
    }
}

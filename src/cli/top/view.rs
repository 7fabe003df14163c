//! How `shmq top` lays a [`Dashboard`] out: a tab per section, each a table
//! that scrolls, sorts and filters, and the keys that drive them. Only the
//! rows on screen are formatted, so 10 000 queues cost a sort, not a
//! redraw of 10 000 rows.

use std::cmp::Ordering;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Row, Sparkline, Table, Tabs};
use ratatui::Frame;

use super::sample::{Dashboard, ExchangeRow, QueueRow, Section};
use crate::shmq_cli::shovel::ShovelListing;

/// What a row sorts by: text ascends, numbers descend (largest first),
/// until reversed.
pub enum SortKey<'a> {
    Text(&'a str),
    Number(f64),
}

/// The rows of one tab.
trait Listing {
    /// Column titles, the name column first.
    const COLUMNS: &'static [&'static str];
    /// What `s` cycles through, the name first.
    const SORTS: &'static [&'static str];
    /// What the filter matches, and the tie-breaker of every sort.
    fn name(&self) -> &str;
    fn sort_key(&self, sort: usize) -> SortKey<'_>;
    fn cells(&self) -> Vec<String>;
}

/// The sorts of the queues tab, in the order `s` cycles through them.
pub const QUEUE_SORTS: &[&str] = &["name", "messages", "publish/s", "deliver/s", "consumers"];

impl Listing for QueueRow {
    const COLUMNS: &'static [&'static str] =
        &["queue", "ready", "unacked", "consumers", "publish/s", "deliver/s", "ack/s", "drop/exp/redel/dlx", "bytes"];
    const SORTS: &'static [&'static str] = QUEUE_SORTS;

    fn name(&self) -> &str {
        &self.stats.name
    }

    fn sort_key(&self, sort: usize) -> SortKey<'_> {
        let s = &self.stats;
        match sort {
            1 => SortKey::Number(s.ready.saturating_add(s.unacked) as f64),
            2 => SortKey::Number(self.publish_rate),
            3 => SortKey::Number(self.deliver_rate),
            4 => SortKey::Number(f64::from(s.consumers)),
            _ => SortKey::Text(&s.name),
        }
    }

    fn cells(&self) -> Vec<String> {
        let s = &self.stats;
        vec![
            s.name.clone(),
            s.ready.to_string(),
            s.unacked.to_string(),
            s.consumers.to_string(),
            format!("{:.0}", self.publish_rate),
            format!("{:.0}", self.deliver_rate),
            format!("{:.0}", self.ack_rate),
            format!("{}/{}/{}/{}", s.dropped, s.expired, s.redelivered, s.dead_lettered),
            format!("{}/{}", s.bytes_used, s.capacity_bytes),
        ]
    }
}

impl Listing for ExchangeRow {
    const COLUMNS: &'static [&'static str] = &["exchange", "type", "flags", "published", "unroutable"];
    const SORTS: &'static [&'static str] = &["name", "published", "unroutable"];

    fn name(&self) -> &str {
        &self.info.name
    }

    fn sort_key(&self, sort: usize) -> SortKey<'_> {
        match sort {
            1 => SortKey::Number(self.published as f64),
            2 => SortKey::Number(self.unroutable as f64),
            _ => SortKey::Text(&self.info.name),
        }
    }

    fn cells(&self) -> Vec<String> {
        let name = if self.info.name.is_empty() { "(default)".to_owned() } else { self.info.name.clone() };
        vec![
            name,
            self.info.options.kind.to_string(),
            crate::shmq_cli::admin::exchange_flags(&self.info),
            self.published.to_string(),
            self.unroutable.to_string(),
        ]
    }
}

impl Listing for shmq::HandleInfo {
    const COLUMNS: &'static [&'static str] =
        &["queue", "role", "pid", "state", "prefetch", "unacked", "published", "delivered", "acked", "active"];
    const SORTS: &'static [&'static str] = &["queue", "pid", "unacked", "delivered"];

    fn name(&self) -> &str {
        &self.queue
    }

    fn sort_key(&self, sort: usize) -> SortKey<'_> {
        match sort {
            1 => SortKey::Number(f64::from(self.pid)),
            2 => SortKey::Number(f64::from(self.unacked)),
            3 => SortKey::Number(self.delivered as f64),
            _ => SortKey::Text(&self.queue),
        }
    }

    fn cells(&self) -> Vec<String> {
        vec![
            self.queue.clone(),
            self.role.to_owned(),
            self.pid.to_string(),
            if self.alive { "alive" } else { "dead" }.to_owned(),
            self.prefetch.to_string(),
            self.unacked.to_string(),
            self.published.to_string(),
            self.delivered.to_string(),
            self.acked.to_string(),
            if self.role == "consumer" { self.active.to_string() } else { String::new() },
        ]
    }
}

impl Listing for ShovelListing {
    const COLUMNS: &'static [&'static str] = &["shovel", "state", "transferred", "last error", "source", "destination"];
    const SORTS: &'static [&'static str] = &["name", "state", "transferred"];

    fn name(&self) -> &str {
        &self.name
    }

    fn sort_key(&self, sort: usize) -> SortKey<'_> {
        match sort {
            1 => SortKey::Text(&self.state),
            2 => SortKey::Number(self.transferred.unwrap_or(0) as f64),
            _ => SortKey::Text(&self.name),
        }
    }

    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.state.clone(),
            self.transferred_text(),
            self.last_error.clone().unwrap_or_default(),
            self.src.clone(),
            self.dest.clone(),
        ]
    }
}

/// Where one tab is scrolled to and what it is sorted by.
#[derive(Clone, Copy, Debug, Default)]
struct TabState {
    /// Index into the tab's `SORTS`.
    sort: usize,
    reverse: bool,
    /// The first row shown.
    offset: usize,
}

/// What the operator chose: the tab, each tab's sort and scroll, the filter.
#[derive(Debug)]
pub struct View {
    pub tab: Section,
    tabs: [TabState; 4],
    /// Rows whose name holds this (ignoring case) are shown.
    pub filter: String,
    /// Keys go to the filter (after `/`, until Enter or Esc).
    pub editing_filter: bool,
    /// Rows the table showed last: what PgUp/PgDn move by.
    page: usize,
}

/// What a key asks of the caller.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    Quit,
    /// Another tab is shown: read its section now.
    TabChanged,
    Redraw,
    Nothing,
}

impl View {
    /// The queues tab sorted by `QUEUE_SORTS[queue_sort]`, and a filter.
    pub fn new(queue_sort: usize, reverse: bool, filter: String) -> View {
        let mut tabs = [TabState::default(); 4];
        tabs[0] = TabState { sort: queue_sort.min(QUEUE_SORTS.len() - 1), reverse, offset: 0 };
        View { tab: Section::Queues, tabs, filter, editing_filter: false, page: 1 }
    }

    fn tab_index(&self) -> usize {
        Section::ALL.iter().position(|s| *s == self.tab).unwrap_or(0)
    }

    fn state(&mut self) -> &mut TabState {
        let i = self.tab_index();
        &mut self.tabs[i]
    }

    fn sorts(&self) -> &'static [&'static str] {
        match self.tab {
            Section::Queues => QueueRow::SORTS,
            Section::Exchanges => ExchangeRow::SORTS,
            Section::Consumers => shmq::HandleInfo::SORTS,
            Section::Shovels => ShovelListing::SORTS,
        }
    }

    fn show_tab(&mut self, index: usize) -> Action {
        let tab = Section::ALL[index % Section::ALL.len()];
        if tab == self.tab {
            return Action::Nothing;
        }
        self.tab = tab;
        Action::TabChanged
    }

    /// Applies a key: q or Ctrl-C quits; Esc clears the filter, or quits
    /// when there is none; ←/→, Tab or 1-4 switch tabs; ↑/↓, j/k, PgUp/PgDn,
    /// Home/End (g/G) scroll; s cycles the sort, r reverses it; / edits the
    /// filter.
    pub fn on_key(&mut self, key: KeyEvent) -> Action {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Action::Quit;
        }
        if self.editing_filter {
            match key.code {
                KeyCode::Esc => {
                    self.filter.clear();
                    self.editing_filter = false;
                }
                KeyCode::Enter => self.editing_filter = false,
                KeyCode::Backspace => {
                    self.filter.pop();
                }
                KeyCode::Char(c) => self.filter.push(c),
                _ => return Action::Nothing,
            }
            self.state().offset = 0;
            return Action::Redraw;
        }
        let page = self.page.max(1);
        let tab = self.tab_index();
        let sorts = self.sorts().len();
        let state = &mut self.tabs[tab];
        match key.code {
            KeyCode::Char('q') => return Action::Quit,
            KeyCode::Esc if self.filter.is_empty() => return Action::Quit,
            KeyCode::Esc => {
                self.filter.clear();
                state.offset = 0;
            }
            KeyCode::Char('/') => self.editing_filter = true,
            KeyCode::Down | KeyCode::Char('j') => state.offset = state.offset.saturating_add(1),
            KeyCode::Up | KeyCode::Char('k') => state.offset = state.offset.saturating_sub(1),
            KeyCode::PageDown => state.offset = state.offset.saturating_add(page),
            KeyCode::PageUp => state.offset = state.offset.saturating_sub(page),
            KeyCode::Home | KeyCode::Char('g') => state.offset = 0,
            // Clamped to the last page when drawn.
            KeyCode::End | KeyCode::Char('G') => state.offset = usize::MAX,
            KeyCode::Char('s') => {
                state.sort = (state.sort + 1) % sorts;
                state.offset = 0;
            }
            KeyCode::Char('r') => {
                state.reverse = !state.reverse;
                state.offset = 0;
            }
            KeyCode::Right | KeyCode::Tab => return self.show_tab(tab + 1),
            KeyCode::Left | KeyCode::BackTab => return self.show_tab(tab + Section::ALL.len() - 1),
            KeyCode::Char(c @ '1'..='4') => return self.show_tab(c as usize - '1' as usize),
            _ => return Action::Nothing,
        }
        Action::Redraw
    }
}

/// Draws the dashboard as `view` asks, and keeps `view`'s scroll within
/// the rows there are.
pub fn render(dashboard: &Dashboard, view: &mut View, frame: &mut Frame<'_>) {
    let [header, tabs, table, spark] =
        Layout::vertical([Constraint::Length(4), Constraint::Length(1), Constraint::Min(5), Constraint::Length(6)]).areas(frame.area());
    let alive = dashboard.peers_alive();
    let summary = format!(
        "namespace {}  |  queues {}  |  peers {} alive, {} dead  |  unroutable {}  |  read in {} ms  |  q quits",
        dashboard.namespace,
        dashboard.queues.len(),
        alive,
        dashboard.peers.len() - alive,
        dashboard.unroutable,
        dashboard.sample_time.as_millis(),
    );
    let second = if view.editing_filter {
        format!("filter: {}▏  (Enter keeps it, Esc clears it)", view.filter)
    } else if !view.filter.is_empty() {
        format!("filter: {:?}  (/ edits it, Esc clears it)", view.filter)
    } else {
        "←/→ or 1-4 tabs  ↑/↓ j/k PgUp/PgDn Home/End scroll  s sort  r reverse  / filter".to_owned()
    };
    frame.render_widget(
        Paragraph::new(vec![Line::from(summary), Line::from(second)]).block(Block::default().borders(Borders::ALL).title(" shmq top ")),
        header,
    );
    let titles = ["1 queues", "2 exchanges", "3 consumers", "4 shovels"];
    frame
        .render_widget(Tabs::new(titles).select(view.tab_index()).highlight_style(Style::default().add_modifier(Modifier::REVERSED)), tabs);
    match view.tab {
        Section::Queues => render_table(&dashboard.queues, view, frame, table, "queues"),
        Section::Exchanges => render_table(&dashboard.exchanges, view, frame, table, "exchanges"),
        Section::Consumers => render_table(&dashboard.handles, view, frame, table, "consumers and producers"),
        Section::Shovels => render_table(&dashboard.shovels, view, frame, table, "shovels"),
    }
    let peak = dashboard.history.iter().max().copied().unwrap_or(0);
    frame.render_widget(
        Sparkline::default()
            .block(Block::default().borders(Borders::ALL).title(format!(" publish rate, all queues (peak {peak}/s) ")))
            .data(&dashboard.history),
        spark,
    );
}

/// The rows of `rows` the filter keeps, in the tab's order.
fn ordered<T: Listing>(rows: &[T], state: &TabState, filter: &str) -> Vec<usize> {
    let needle = filter.to_lowercase();
    let mut shown: Vec<usize> = (0..rows.len()).filter(|&i| needle.is_empty() || rows[i].name().to_lowercase().contains(&needle)).collect();
    shown.sort_by(|&a, &b| {
        let (a, b) = (&rows[a], &rows[b]);
        let first = match (a.sort_key(state.sort), b.sort_key(state.sort)) {
            (SortKey::Number(x), SortKey::Number(y)) => y.total_cmp(&x),
            (SortKey::Text(x), SortKey::Text(y)) => x.cmp(y),
            (SortKey::Number(_), SortKey::Text(_)) => Ordering::Less,
            (SortKey::Text(_), SortKey::Number(_)) => Ordering::Greater,
        };
        let first = if state.reverse { first.reverse() } else { first };
        first.then_with(|| a.name().cmp(b.name()))
    });
    shown
}

/// Spaces between table columns.
const COLUMN_GAP: u16 = 2;

/// Narrows the widest columns, never below their titles, until the
/// columns and the gaps between them fit in `room`: short columns stay
/// whole, long names and URIs give way.
fn fit(widths: &mut [usize], titles: &[&str], room: usize) {
    let floors: Vec<usize> = titles.iter().map(|t| Span::raw(*t).width()).collect();
    let gaps = usize::from(COLUMN_GAP) * widths.len().saturating_sub(1);
    loop {
        let excess = (widths.iter().sum::<usize>() + gaps).saturating_sub(room);
        let shrinkable = widths.iter().zip(&floors).enumerate().filter(|(_, (w, floor))| w > floor);
        let Some((widest, (&w, &floor))) = shrinkable.max_by_key(|(_, (w, _))| **w) else { return };
        if excess == 0 {
            return;
        }
        let second = widths.iter().enumerate().filter(|(i, _)| *i != widest).map(|(_, w)| *w).max().unwrap_or(0);
        let target = w.saturating_sub(excess).max(second).max(floor);
        widths[widest] = if target < w { target } else { w - 1 };
    }
}

/// One tab's table: the page of filtered, sorted rows at the tab's offset,
/// columns as wide as what they show, narrowed to the terminal's width.
fn render_table<T: Listing>(rows: &[T], view: &mut View, frame: &mut Frame<'_>, area: Rect, what: &str) {
    let filter = view.filter.clone();
    let state = view.state();
    let shown = ordered(rows, state, &filter);
    // Borders and the header row.
    let page = usize::from(area.height.saturating_sub(3)).max(1);
    state.offset = state.offset.min(shown.len().saturating_sub(page));
    let visible: Vec<Vec<String>> = shown.iter().skip(state.offset).take(page).map(|&i| rows[i].cells()).collect();

    let mut widths: Vec<usize> = T::COLUMNS.iter().map(|c| Span::raw(*c).width()).collect();
    for cells in &visible {
        for (w, cell) in widths.iter_mut().zip(cells) {
            *w = (*w).max(Span::raw(cell.as_str()).width());
        }
    }
    fit(&mut widths, T::COLUMNS, usize::from(area.width.saturating_sub(2)));
    let constraints: Vec<Constraint> = widths.iter().map(|w| Constraint::Length(u16::try_from(*w).unwrap_or(u16::MAX))).collect();

    let sort = T::SORTS[state.sort.min(T::SORTS.len() - 1)];
    let numeric = rows.first().is_some_and(|r| matches!(r.sort_key(state.sort), SortKey::Number(_)));
    let direction = match (numeric, state.reverse) {
        (true, false) => "largest first",
        (true, true) => "smallest first",
        (false, false) => "a-z",
        (false, true) => "z-a",
    };
    let range = if shown.is_empty() {
        "none".to_owned()
    } else {
        format!("{}-{} of {}", state.offset + 1, state.offset + visible.len(), shown.len())
    };
    let matching = if filter.is_empty() { String::new() } else { format!(" matching {filter:?}") };
    let title = format!(" {what} {range}{matching}, by {sort} {direction} ");
    view.page = page;

    let header = Row::new(T::COLUMNS.to_vec()).style(Style::default().add_modifier(Modifier::BOLD));
    let table = Table::new(visible.into_iter().map(Row::new), constraints)
        .header(header)
        .column_spacing(COLUMN_GAP)
        .block(Block::default().borders(Borders::ALL).title(title));
    frame.render_widget(table, area);
}

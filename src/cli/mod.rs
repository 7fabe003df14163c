//! Subcommands of the `shmq` binary: management (like rabbitmqctl), message
//! I/O, the demo and the load tool.

mod admin;
mod bench;
mod definitions;
mod demo;
mod io;
mod management;
mod shovel;
mod stress;
mod top;

use clap::{Parser, Subcommand};

/// shmq: RabbitMQ-style message queues in shared memory, with no broker.
#[derive(Parser, Debug)]
#[command(name = "shmq", version, about, propagate_version = true)]
pub struct Cli {
    /// Namespace: a name under /dev/shm/shmq-<uid> (your own root), or a directory path.
    #[arg(long, short = 'n', global = true, env = "SHMQ_NAMESPACE", default_value = "default")]
    pub namespace: String,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    pub json: bool,
    /// Memory budget in bytes for a namespace this command creates (default:
    /// 40 % of the file system's free space). Fixed at creation: a different
    /// one for an existing namespace is an error.
    #[arg(long, global = true, env = "SHMQ_MEMORY_BUDGET")]
    pub memory_budget: Option<u64>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run every pattern across real processes and print what each consumer got.
    Demo(demo::DemoArgs),
    /// Load test like RabbitMQ's PerfTest: producers, consumers, topology;
    /// rates and end-to-end latency every second.
    Bench(bench::BenchArgs),
    /// Namespace overview: queues, peers, memory.
    Status,
    /// List queues with depth, consumers, counters and (with --rates) rates;
    /// or, as `rabbitmqctl list_queues name messages consumers`, just the
    /// columns named.
    ListQueues {
        /// Sample the counters for one second and show per-second rates.
        #[arg(long)]
        rates: bool,
        /// Columns to show, in order (rabbitmqctl's names: name, messages,
        /// messages_ready, messages_unacknowledged, consumers, durable,
        /// auto_delete, exclusive, arguments, type, message_bytes; and
        /// shmq's counters: published, delivered, acked, redelivered,
        /// dropped, expired, dead_lettered).
        columns: Vec<String>,
    },
    /// List processes attached to the namespace.
    ListPeers,
    /// Declare a queue (idempotent; fails if it exists with other options).
    DeclareQueue(admin::DeclareArgs),
    /// Delete a queue.
    DeleteQueue {
        name: String,
        /// Refuse if the queue has consumers (exit 4).
        #[arg(long)]
        if_unused: bool,
        /// Refuse if the queue holds messages (exit 4).
        #[arg(long)]
        if_empty: bool,
    },
    /// Declare an exchange (idempotent; fails if it exists as another type).
    DeclareExchange(admin::ExchangeArgs),
    /// Delete an exchange.
    DeleteExchange {
        name: String,
        /// Refuse if the exchange still has bindings.
        #[arg(long)]
        if_unused: bool,
    },
    /// Bind a queue (or, with --to-exchange, an exchange) to an exchange.
    Bind(admin::BindArgs),
    /// Remove a binding.
    Unbind(admin::BindArgs),
    /// List exchanges.
    ListExchanges,
    /// List bindings.
    ListBindings,
    /// Discard a queue's ready messages.
    Purge { name: String },
    /// Reclaim what dead processes left (normally automatic).
    Gc,
    /// Remove the whole namespace.
    Reset {
        /// Remove it even while live processes are attached.
        #[arg(long)]
        force: bool,
    },
    /// Publish messages to a queue.
    Publish(io::PublishArgs),
    /// Consume messages from a queue and print them.
    Consume(io::ConsumeArgs),
    /// Take messages from a queue, then ack them or put them back.
    Get {
        queue: String,
        /// How many.
        #[arg(long, default_value_t = 1)]
        count: usize,
        /// Ack them (remove them); by default they are requeued.
        #[arg(long)]
        ack: bool,
    },
    /// Show ready messages without consuming them.
    Peek {
        queue: String,
        /// How many at most.
        #[arg(long, default_value_t = 10)]
        count: usize,
    },
    /// List attached consumers and producers.
    ListConsumers,
    /// Write the topology as RabbitMQ definitions JSON (to a file or stdout).
    Export {
        /// Output file; stdout if absent.
        file: Option<std::path::PathBuf>,
        /// The vhost to name in the file (a namespace is one vhost).
        #[arg(long, default_value = "/")]
        vhost: String,
    },
    /// Declare the topology in RabbitMQ definitions JSON (`-` for stdin):
    /// all of it or nothing; what shmq cannot honour is refused by name.
    Import {
        file: std::path::PathBuf,
        /// The vhost to import, for a file with several (a namespace is one
        /// vhost).
        #[arg(long)]
        vhost: Option<String>,
        /// Import what shmq supports and list on stderr what it leaves out
        /// (policies, users, permissions, parameters, unsupported arguments
        /// and exchange types), instead of refusing.
        #[arg(long)]
        skip_unsupported: bool,
    },
    /// Move messages between a queue here and RabbitMQ (or another
    /// namespace), as RabbitMQ's dynamic shovels do.
    Shovel {
        #[command(subcommand)]
        command: shovel::ShovelCommand,
    },
    /// Live dashboard of queue depths, rates and consumers (q quits).
    Top(top::TopArgs),
    /// HTTP server with RabbitMQ's management API (the part its tools use)
    /// and Prometheus metrics, serving namespaces as vhosts.
    Management(management::ManagementArgs),
    /// Print shell completions.
    Completions { shell: clap_complete::Shell },
    #[command(hide = true)]
    BenchAgent(bench::AgentArgs),
    #[command(hide = true)]
    StressAgent(stress::StressArgs),
}

/// Parses the command line, runs it and returns the exit code.
pub fn run() -> i32 {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Demo(args) => demo::run(&cli, args),
        Command::Bench(args) => bench::run(&cli, args),
        Command::BenchAgent(args) => bench::agent(&cli, args),
        Command::StressAgent(args) => stress::run(&cli, args),
        Command::Publish(args) => io::publish(&cli, args),
        Command::Consume(args) => io::consume(&cli, args),
        Command::Top(args) => top::run(&cli, args),
        Command::Management(args) => management::run(&cli, args),
        Command::Shovel { command } => shovel::run(&cli, command),
        Command::Get { queue, count, ack } => io::get(&cli, queue, *count, *ack),
        Command::Peek { queue, count } => io::peek(&cli, queue, *count),
        Command::Export { file, vhost } => definitions::export(&cli, file.as_deref(), vhost),
        Command::Import { file, vhost, skip_unsupported } => {
            definitions::import(&cli, file, &definitions::ImportOptions { vhost: vhost.clone(), skip_unsupported: *skip_unsupported })
        }
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut <Cli as clap::CommandFactory>::command(), "shmq", &mut std::io::stdout());
            Ok(())
        }
        _ => admin::run(&cli),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("shmq: {e}");
            exit_code(&*e)
        }
    }
}

/// Exit codes scripts can rely on (rabbitmqctl-like): 1 generic, 2 bad
/// input, 3 not found, 4 precondition failed (conflict, in use, locked),
/// 5 corrupt or incompatible, 6 no space, permission or full table,
/// 7 timeout or empty.
fn exit_code(e: &(dyn std::error::Error + 'static)) -> i32 {
    match e.downcast_ref::<shmq::Error>() {
        Some(shmq::Error::QueueNotFound { .. })
        | Some(shmq::Error::ExchangeNotFound { .. })
        | Some(shmq::Error::NoSuchNamespace { .. }) => 3,
        Some(shmq::Error::PreconditionFailed { .. })
        | Some(shmq::Error::ExchangeConflict { .. })
        | Some(shmq::Error::ExchangeInUse { .. })
        | Some(shmq::Error::QueueInUse { .. })
        | Some(shmq::Error::ExclusiveConsumer { .. })
        | Some(shmq::Error::ExclusiveQueue { .. }) => 4,
        Some(shmq::Error::AccessRefused { .. }) => 2,
        Some(shmq::Error::TableFull { .. }) => 6,
        Some(shmq::Error::Corrupt { .. }) | Some(shmq::Error::IncompatibleVersion { .. }) => 5,
        Some(shmq::Error::NoSpace { .. })
        | Some(shmq::Error::MemoryBudget { .. })
        | Some(shmq::Error::PermissionDenied { .. })
        | Some(shmq::Error::UnsafePath { .. }) => 6,
        Some(shmq::Error::LockTimeout { .. }) => 7,
        Some(
            shmq::Error::InvalidName { .. }
            | shmq::Error::InvalidOptions(_)
            | shmq::Error::InvalidArgument { .. }
            | shmq::Error::InvalidArgumentType { .. },
        ) => 2,
        _ if e.downcast_ref::<shmq::RecvError>().is_some() => 7,
        _ if e.downcast_ref::<Refused>().is_some() => e.downcast_ref::<Refused>().map_or(1, |r| r.code),
        _ => 1,
    }
}

pub type CliResult = Result<(), Box<dyn std::error::Error>>;

/// A command refused with the exit code it says (4: in use, as a failed
/// precondition; 2: bad input), and what to do.
#[derive(Debug)]
pub struct Refused {
    pub code: i32,
    pub message: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Refused {}

/// Opens the namespace the command line names. Only commands that declare
/// something (a queue, an exchange, a binding, imported definitions) may
/// create it; every other command needs it to exist and creates nothing.
pub fn namespace(cli: &Cli) -> Result<shmq::Namespace, shmq::Error> {
    let creates = match &cli.command {
        Command::DeclareQueue(_) | Command::DeclareExchange(_) | Command::Bind(_) | Command::Import { .. } => true,
        Command::Shovel { command } => matches!(command, shovel::ShovelCommand::Declare(_)),
        Command::Consume(args) => args.declare || args.queue.is_empty(),
        _ => false,
    };
    if creates {
        let options = shmq::NamespaceOptions { memory_budget: cli.memory_budget, ..Default::default() };
        shmq::Namespace::open_with(&cli.namespace, options)
    } else {
        shmq::Namespace::open_existing(&cli.namespace)
    }
}

/// Formats a table: a header row and aligned columns.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let text: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(text.join("  ").trim_end());
        out.push('\n');
    };
    line(headers.to_vec(), &mut out);
    for row in rows {
        line(row.iter().map(String::as_str).collect(), &mut out);
    }
    out
}

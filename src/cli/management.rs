//! `shmq management`: an HTTP server with the part of RabbitMQ's management
//! HTTP API that its tools use (`rabbitmqadmin`, curl scripts, monitoring)
//! and Prometheus metrics, over one or more namespaces, each served as a
//! RabbitMQ vhost. It reads and writes through the shmq library like any
//! other process; reading counters costs publishers and consumers nothing.
//!
//! - `http.rs`: the server (a fixed pool of threads, bounded inputs);
//! - `auth.rs`: basic auth, `guest` from loopback, a users file;
//! - `api.rs`: the `/api/...` routes and their JSON;
//! - `stats.rs`: rates and monotonic totals from the shared counters;
//! - `metrics.rs`: `/metrics` in Prometheus's text format;
//! - `ui.rs`: the web UI at `/` (files in `ui/`), a client of the API.
//!
//! docs/MANAGEMENT.md lists the endpoints and their RabbitMQ counterparts.

mod api;
mod auth;
mod http;
mod metrics;
mod stats;
mod ui;

use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};

use super::{Cli, CliResult, Refused};

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ManagementArgs {
    #[command(subcommand)]
    pub action: Option<ManagementAction>,
    /// Address to listen on (RabbitMQ's management.tcp.ip).
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Port to listen on; 0 picks a free one (the line printed at start
    /// names it).
    #[arg(long, default_value_t = 15672)]
    pub port: u16,
    /// A namespace to serve as a vhost of its name; repeat for more. The
    /// first is also vhost "/". Default: the namespace of the global
    /// --namespace ($SHMQ_NAMESPACE, else `default`).
    #[arg(long = "namespace", short = 'n', value_name = "NS")]
    pub namespace: Vec<String>,
    /// Users who may log in besides guest (guest/guest, from loopback
    /// only): one `name:hash` per line, RabbitMQ's password hashing
    /// (`shmq management hash-password NAME` makes a line).
    #[arg(long, value_name = "FILE")]
    pub users: Option<PathBuf>,
    /// Serve only /metrics (as RabbitMQ's rabbitmq_prometheus plugin).
    #[arg(long)]
    pub prometheus_only: bool,
    /// Seconds between samples of every queue's counters in the background
    /// (RabbitMQ's collect_statistics_interval is 5 s): they keep rates
    /// fresh and totals monotonic when queues are deleted. 0: sample only
    /// when a request asks.
    #[arg(long, default_value_t = 5)]
    pub sample_interval: u64,
    /// Worker threads serving requests.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub threads: u16,
}

#[derive(Subcommand, Debug)]
pub enum ManagementAction {
    /// Print a users-file line `NAME:HASH` for a password (from the
    /// argument, or the first line of stdin), hashed as RabbitMQ does.
    HashPassword {
        /// The user's name.
        name: String,
        /// The password; read from stdin if absent (keeps it out of the
        /// shell history and the process list).
        password: Option<String>,
    },
}

/// This machine's name, for the node name `shmq@<host>`.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

pub fn run(cli: &Cli, args: &ManagementArgs) -> CliResult {
    if let Some(ManagementAction::HashPassword { name, password }) = &args.action {
        return hash_password(name, password.as_deref());
    }
    let users = match &args.users {
        Some(path) => auth::Users::load(path).map_err(|message| Refused { code: 2, message })?,
        None => {
            eprintln!(
                "shmq management: no --users file: guest/guest is accepted from loopback, that is from every account \
                 on this machine (RabbitMQ's default); give --users FILE to allow only the users it lists"
            );
            auth::Users::builtin_guest()
        }
    };
    let names = if args.namespace.is_empty() { vec![cli.namespace.clone()] } else { args.namespace.clone() };
    let mut vhosts: Vec<api::Vhost> = Vec::new();
    for name in &names {
        let options = shmq::NamespaceOptions { memory_budget: cli.memory_budget, ..Default::default() };
        let ns = shmq::Namespace::open_with(name, options)?;
        let vhost = ns.name().to_owned();
        if vhosts.iter().any(|v| v.name == vhost) || vhost == "/" {
            let message = format!("two namespaces would be vhost '{vhost}': serve namespaces of different names");
            return Err(Box::new(Refused { code: 2, message }));
        }
        vhosts.push(api::Vhost::new(vhost, ns));
    }
    let listener = TcpListener::bind(SocketAddr::new(args.bind, args.port))
        .map_err(|e| format!("cannot listen on {}:{}: {e} (another server there? pick one with --port)", args.bind, args.port))?;
    let listen = listener.local_addr()?;
    let what = if args.prometheus_only { "/metrics" } else { "the management API and /metrics" };
    let served: Vec<String> = vhosts.iter().map(|v| format!("'{}' ({})", v.name, v.ns.path().display())).collect();
    println!("shmq management: serving {what} on http://{listen} for namespaces {} (the first is also vhost '/')", served.join(", "));
    std::io::stdout().flush()?;
    let api = Arc::new(api::Api {
        vhosts,
        users,
        sampler: stats::Sampler::default(),
        node: format!("shmq@{}", hostname()),
        prometheus_only: args.prometheus_only,
        listen,
    });
    if args.sample_interval > 0 {
        let api = api.clone();
        let interval = std::time::Duration::from_secs(args.sample_interval);
        std::thread::Builder::new().name("sampler".into()).spawn(move || loop {
            api.sample();
            std::thread::sleep(interval);
        })?;
    }
    http::serve(listener, usize::from(args.threads), Arc::new(move |request: &http::Request| api.handle(request)))?;
    Ok(())
}

fn hash_password(name: &str, password: Option<&str>) -> CliResult {
    if name.is_empty() || name.contains(':') || name.chars().any(char::is_whitespace) {
        return Err(Box::new(Refused { code: 2, message: format!("user name {name:?} must be non-empty, without ':' or spaces") }));
    }
    let password = match password {
        Some(p) => p.to_owned(),
        None => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    println!("{name}:{}", auth::hash_password(&password)?);
    Ok(())
}

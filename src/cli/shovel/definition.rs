//! Shovel definitions: RabbitMQ's dynamic-shovel parameters (`src-uri`,
//! `src-queue`, `dest-uri`, `ack-mode`, ...), validated, and kept in the
//! namespace as `shovels/<name>.json` (the parameter's `value` object, so an
//! export carries it as RabbitMQ's `parameters` entry of component
//! `shovel`). Files there are untrusted input: the folder must be no
//! link, a definition is read only if it is a regular file owned by the
//! user running the command (a member of a shared namespace's group cannot
//! plant one that runs with another member's rights), without following
//! links or blocking on a FIFO, bounded in size, and validated as a
//! caller's definition is.

use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::shmq_cli::Refused;

/// The largest definition file read (RabbitMQ's are a few hundred bytes).
const MAX_FILE_BYTES: u64 = 64 * 1024;

/// The keys a definition may have; any other is refused, not ignored.
const KEYS: &[&str] = &[
    "src-uri",
    "src-protocol",
    "src-queue",
    "src-exchange",
    "src-exchange-key",
    "src-prefetch-count",
    "src-delete-after",
    "dest-uri",
    "dest-protocol",
    "dest-queue",
    "dest-exchange",
    "dest-exchange-key",
    "ack-mode",
    "reconnect-delay",
    "dest-add-forward-headers",
    "dest-add-timestamp-header",
];

/// Where a shovel's messages come from or go to.
#[derive(Clone, Debug, PartialEq)]
pub enum Endpoint {
    /// A shmq namespace: a name (under /dev/shm) or, with a leading `/`, a
    /// directory.
    Shm(String),
    /// A RabbitMQ broker (`amqp://user:pass@host:port/vhost`), or the
    /// nodes of a cluster to connect to in turn (never empty).
    Amqp(Vec<String>),
}

impl Endpoint {
    /// The endpoint for connection attempt `attempt`: a cluster's URIs are
    /// tried in turn, so after a node fails the next attempt goes to
    /// another (RabbitMQ's shovel picks one at random).
    pub fn for_attempt(&self, attempt: usize) -> Endpoint {
        match self {
            Endpoint::Amqp(uris) if uris.len() > 1 => Endpoint::Amqp(vec![uris[attempt % uris.len()].clone()]),
            other => other.clone(),
        }
    }
}

/// When the source acknowledges a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckMode {
    /// Once the destination confirmed it (at-least-once; the default).
    OnConfirm,
    /// Once it was handed to the destination, before its confirm.
    OnPublish,
    /// At delivery (at-most-once).
    NoAck,
}

/// When a shovel stops by itself (`src-delete-after`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteAfter {
    Never,
    /// After moving as many messages as the source queue held at start.
    QueueLength,
    /// After moving this many.
    Count(u64),
}

/// A validated shovel definition.
#[derive(Clone, Debug)]
pub struct Shovel {
    pub name: String,
    pub src: Endpoint,
    pub src_queue: Option<String>,
    pub src_exchange: Option<String>,
    pub src_exchange_key: String,
    pub src_prefetch_count: u16,
    pub src_delete_after: DeleteAfter,
    pub dest: Endpoint,
    pub dest_queue: Option<String>,
    pub dest_exchange: Option<String>,
    pub dest_exchange_key: Option<String>,
    pub ack_mode: AckMode,
    pub reconnect_delay_secs: f64,
    pub add_forward_headers: bool,
    pub add_timestamp_header: bool,
    /// The definition as given (RabbitMQ's parameter value).
    pub value: Map<String, Value>,
}

fn bad(message: String) -> Refused {
    Refused { code: 2, message }
}

/// Checks a shovel name: 1 to 255 bytes of letters, digits, `.`, `_` and
/// `-`, not starting with `.` (it becomes a file name).
pub fn validate_name(name: &str) -> Result<(), Refused> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() || name.len() > 255 || name.starts_with('.') || !name.chars().all(ok_char) {
        return Err(bad(format!("shovel name {name:?}: use 1 to 255 letters, digits, '.', '_' or '-', not starting with '.'")));
    }
    Ok(())
}

/// `uri` with its password hidden (`amqp://user:***@host/...`), for
/// messages, logs, status and listings.
///
/// The user info ends at the *last* `@` in the URI: a password may hold
/// `@`, and unencoded `/` or `?` too (such a URI does not connect, but is
/// still shown). An `@` in the path or query then hides more than the
/// password, never less.
pub fn redact(uri: &str) -> String {
    let Some(scheme_end) = uri.find("://").map(|i| i + 3) else { return uri.to_owned() };
    let Some(at) = uri[scheme_end..].rfind('@').map(|i| scheme_end + i) else { return uri.to_owned() };
    let userinfo = &uri[scheme_end..at];
    match userinfo.split_once(':') {
        Some((user, _password)) if !user.contains(['/', '?', '#']) => format!("{}{user}:***{}", &uri[..scheme_end], &uri[at..]),
        // What looks like the user name is not one: hide it all.
        Some(_) => format!("{}***{}", &uri[..scheme_end], &uri[at..]),
        None => uri.to_owned(),
    }
}

/// Parses a `src-uri`/`dest-uri`.
fn endpoint(key: &str, uri: &str) -> Result<Endpoint, Refused> {
    let shown = redact(uri);
    if let Some(rest) = uri.strip_prefix("shm://") {
        // shm://NAME, or shm:///abs/dir
        if rest.is_empty() {
            return Err(bad(format!("{key} {shown:?}: name the namespace (shm://NAME or shm:///directory)")));
        }
        return Ok(Endpoint::Shm(rest.to_owned()));
    }
    if uri.starts_with("amqp://") || uri.starts_with("amqps://") {
        let scheme_end = uri.find("://").map_or(0, |i| i + 3);
        if let Some(at) = uri[scheme_end..].rfind('@') {
            if uri[scheme_end..scheme_end + at].contains(['/', '?', '#']) {
                return Err(bad(format!(
                    "{key} {shown:?}: its user name or password holds '/', '?' or '#': percent-encode them (%2F, %3F, %23)"
                )));
            }
        }
        super::tls::parse(uri).map_err(|e| bad(format!("{key} {shown:?}: {e}")))?;
        return Ok(Endpoint::Amqp(vec![uri.to_owned()]));
    }
    Err(bad(format!("{key} {shown:?}: expected shm://NAMESPACE, shm:///directory, amqp://user:pass@host:port/vhost or amqps://...")))
}

fn string(value: &Map<String, Value>, key: &str) -> Result<Option<String>, Refused> {
    match value.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(bad(format!("{key}: expected a string, got {other}"))),
    }
}

fn boolean(value: &Map<String, Value>, key: &str) -> Result<bool, Refused> {
    match value.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(bad(format!("{key}: expected true or false, got {other}"))),
    }
}

/// `src-uri` may be a string or, as RabbitMQ allows, a list of them: the
/// nodes of a RabbitMQ cluster, connected to in turn (see
/// [`Endpoint::for_attempt`]).
fn uri(value: &Map<String, Value>, key: &str) -> Result<Endpoint, Refused> {
    let texts = match value.get(key) {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(list)) if !list.is_empty() => list
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(bad(format!("{key}: expected a URI string, got {other}"))),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(Value::Array(_)) => return Err(bad(format!("{key}: the list of URIs is empty"))),
        Some(other) => return Err(bad(format!("{key}: expected a URI string, got {other}"))),
        None => return Err(bad(format!("{key} is required"))),
    };
    let mut uris = Vec::with_capacity(texts.len());
    for text in &texts {
        match endpoint(key, text)? {
            Endpoint::Amqp(one) => uris.extend(one),
            shm if texts.len() == 1 => return Ok(shm),
            _ => return Err(bad(format!("{key}: a list of URIs names the nodes of a RabbitMQ cluster; a shm:// end is one namespace"))),
        }
    }
    Ok(Endpoint::Amqp(uris))
}

impl Shovel {
    /// Validates a definition (RabbitMQ's parameter value object).
    pub fn from_value(name: &str, value: Map<String, Value>) -> Result<Shovel, Refused> {
        validate_name(name)?;
        if let Some(unknown) = value.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(bad(format!("shovel {name}: unknown or unsupported parameter {unknown:?} (supported: {})", KEYS.join(", "))));
        }
        for key in ["src-protocol", "dest-protocol"] {
            if let Some(p) = string(&value, key)? {
                if p != "amqp091" {
                    return Err(bad(format!("shovel {name}: {key} {p:?}: only amqp091 is supported")));
                }
            }
        }
        let src = uri(&value, "src-uri")?;
        let dest = uri(&value, "dest-uri")?;
        if matches!((&src, &dest), (Endpoint::Amqp(_), Endpoint::Amqp(_))) {
            return Err(bad(format!(
                "shovel {name}: both ends are RabbitMQ: use RabbitMQ's own shovel plugin; a shmq shovel has a shm:// end"
            )));
        }
        let src_queue = string(&value, "src-queue")?;
        let src_exchange = string(&value, "src-exchange")?;
        match (&src_queue, &src_exchange) {
            (Some(_), Some(_)) => return Err(bad(format!("shovel {name}: give src-queue or src-exchange, not both"))),
            (None, None) => return Err(bad(format!("shovel {name}: give src-queue, or src-exchange and src-exchange-key"))),
            _ => {}
        }
        let src_exchange_key = string(&value, "src-exchange-key")?;
        if src_exchange_key.is_some() && src_exchange.is_none() {
            return Err(bad(format!("shovel {name}: src-exchange-key needs src-exchange")));
        }
        let dest_queue = string(&value, "dest-queue")?;
        let dest_exchange = string(&value, "dest-exchange")?;
        if dest_queue.is_some() && dest_exchange.is_some() {
            return Err(bad(format!("shovel {name}: give dest-queue or dest-exchange, not both")));
        }
        let dest_exchange_key = string(&value, "dest-exchange-key")?;
        if dest_exchange_key.is_some() && dest_exchange.is_none() {
            return Err(bad(format!("shovel {name}: dest-exchange-key needs dest-exchange")));
        }
        let src_prefetch_count = match value.get("src-prefetch-count") {
            None | Some(Value::Null) => 1000,
            Some(v) => v
                .as_u64()
                .and_then(|n| u16::try_from(n).ok())
                .filter(|&n| n > 0)
                .ok_or_else(|| bad(format!("shovel {name}: src-prefetch-count {v}: expected 1 to 65535")))?,
        };
        let src_delete_after = match value.get("src-delete-after") {
            None | Some(Value::Null) => DeleteAfter::Never,
            Some(Value::String(s)) if s == "never" => DeleteAfter::Never,
            Some(Value::String(s)) if s == "queue-length" => DeleteAfter::QueueLength,
            Some(v) if v.as_u64().is_some_and(|n| n > 0) => DeleteAfter::Count(v.as_u64().unwrap_or(1)),
            Some(v) => return Err(bad(format!("shovel {name}: src-delete-after {v}: expected \"never\", \"queue-length\" or a count"))),
        };
        if src_delete_after == DeleteAfter::QueueLength && src_queue.is_none() {
            return Err(bad(format!("shovel {name}: src-delete-after \"queue-length\" needs src-queue")));
        }
        let ack_mode = match string(&value, "ack-mode")?.as_deref() {
            None | Some("on-confirm") => AckMode::OnConfirm,
            Some("on-publish") => AckMode::OnPublish,
            Some("no-ack") => AckMode::NoAck,
            Some(other) => return Err(bad(format!("shovel {name}: ack-mode {other:?}: expected on-confirm, on-publish or no-ack"))),
        };
        let reconnect_delay_secs = match value.get("reconnect-delay") {
            None | Some(Value::Null) => 5.0,
            // Below 0.1 s a broker that is down would be hammered.
            Some(v) => v
                .as_f64()
                .filter(|d| *d == 0.0 || (d.is_finite() && (0.1..=86_400.0).contains(d)))
                .ok_or_else(|| bad(format!("shovel {name}: reconnect-delay {v}: expected 0 (stop at a fault) or 0.1 to 86400 seconds")))?,
        };
        Ok(Shovel {
            name: name.to_owned(),
            src,
            src_queue,
            src_exchange,
            src_exchange_key: src_exchange_key.unwrap_or_else(|| "#".to_owned()),
            src_prefetch_count,
            src_delete_after,
            dest,
            dest_queue,
            dest_exchange,
            dest_exchange_key,
            ack_mode,
            reconnect_delay_secs,
            add_forward_headers: boolean(&value, "dest-add-forward-headers")?,
            add_timestamp_header: boolean(&value, "dest-add-timestamp-header")?,
            value,
        })
    }
}

/// Where a namespace keeps its shovels.
pub fn shovels_dir(ns: &shmq::Namespace) -> PathBuf {
    ns.path().join("shovels")
}

/// Refuses a `shovels` that is a link, no directory, or writable by every
/// user (anyone could have put a definition there).
fn check_dir(dir: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_dir() && m.mode() & 0o002 != 0 => Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("{} is writable by every user (mode {:o}): not trusted", dir.display(), m.mode() & 0o7777),
        )),
        Ok(m) if m.file_type().is_dir() => Ok(()),
        Ok(_) => Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{} is not a directory (a link?)", dir.display()))),
        Err(e) => Err(e),
    }
}

/// Opens a file of `shovels/`: no link followed, no blocking on a FIFO; a
/// regular file owned by this user only.
pub fn open_owned(path: &Path, write: bool) -> std::io::Result<std::fs::File> {
    if let Some(dir) = path.parent() {
        check_dir(dir)?;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(write)
        .create(write)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "not a regular file"));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("writable by others (mode {:o}): not trusted", meta.mode() & 0o7777),
        ));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("owned by uid {}, not by this user ({me}): not trusted", meta.uid()),
        ));
    }
    Ok(file)
}

fn file_of(dir: &Path, name: &str, suffix: &str) -> Result<PathBuf, Refused> {
    validate_name(name)?;
    Ok(dir.join(format!("{name}{suffix}")))
}

/// Reads a file of `shovels/` (see [`open_owned`]), at most
/// `MAX_FILE_BYTES`.
pub fn read_bounded(path: &Path) -> std::io::Result<String> {
    let file = open_owned(path, false)?;
    let mut text = String::new();
    file.take(MAX_FILE_BYTES + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("larger than {MAX_FILE_BYTES} bytes")));
    }
    Ok(text)
}

/// Writes `text` to `path` atomically (a temporary file renamed over it).
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(&tmp)?;
    file.write_all(text.as_bytes())?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Stores a validated definition (replacing one of the same name).
pub fn save(ns: &shmq::Namespace, shovel: &Shovel) -> Result<(), Box<dyn std::error::Error>> {
    let dir = shovels_dir(ns);
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e.into()),
    }
    check_dir(&dir)?;
    let text = serde_json::to_string_pretty(&Value::Object(shovel.value.clone()))?;
    write_atomically(&file_of(&dir, &shovel.name, ".json")?, &text)?;
    Ok(())
}

/// The queue a shovel with a shmq `src-exchange` binds to it: kept
/// between its sessions (so a fault loses nothing), removed with it.
pub fn exchange_queue(name: &str) -> String {
    format!("shovel.{name}")
}

/// Removes a definition (and its status, and the queue of a shmq
/// `src-exchange`).
pub fn remove(ns: &shmq::Namespace, name: &str) -> Result<(), Box<dyn std::error::Error>> {
    if let Ok(Shovel { src: Endpoint::Shm(src), src_exchange: Some(_), .. }) = load(ns, name) {
        let opened = if src.starts_with('/') { shmq::Namespace::open_dir(&src) } else { shmq::Namespace::open(&src) };
        if let Ok(src_ns) = opened {
            let _ = src_ns.delete_queue(&exchange_queue(name));
        }
    }
    let dir = shovels_dir(ns);
    match std::fs::remove_file(file_of(&dir, name, ".json")?) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Box::new(Refused { code: 3, message: format!("no shovel {name:?} in namespace {}", ns.path().display()) }))
        }
        Err(e) => return Err(e.into()),
    }
    let _ = std::fs::remove_file(file_of(&dir, name, ".status.json")?);
    Ok(())
}

/// One stored definition.
pub fn load(ns: &shmq::Namespace, name: &str) -> Result<Shovel, Box<dyn std::error::Error>> {
    let path = file_of(&shovels_dir(ns), name, ".json")?;
    let text = match read_bounded(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Box::new(Refused { code: 3, message: format!("no shovel {name:?} in namespace {}", ns.path().display()) }))
        }
        Err(e) => return Err(format!("{}: {e}", path.display()).into()),
    };
    let value = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err(format!("{}: not a JSON object", path.display()).into()),
        Err(e) => return Err(format!("{}: {e}", path.display()).into()),
    };
    Ok(Shovel::from_value(name, value)?)
}

/// The names of the stored definitions, sorted; files that are no valid
/// definition name are skipped.
pub fn names(ns: &shmq::Namespace) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let dir = shovels_dir(ns);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|f| f.strip_suffix(".json").filter(|n| !n.ends_with(".status")).map(str::to_owned))
        .filter(|n| validate_name(n).is_ok())
        .collect();
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_passwords_holding_at_slash_and_question_marks() {
        for (uri, shown) in [
            ("amqp://guest:secret@host:5672/%2f", "amqp://guest:***@host:5672/%2f"),
            ("amqp://guest:pa/ssSECRET@host/v", "amqp://guest:***@host/v"),
            ("amqp://guest:a@b/SECRET@host/v", "amqp://guest:***@host/v"),
            ("amqps://guest:pa?SECRET@host:5671/%2f", "amqps://guest:***@host:5671/%2f"),
            ("amqp://host/v", "amqp://host/v"),
            ("amqps://u:p@h/?cacertfile=/a@b/ca.pem", "amqps://u:***@b/ca.pem"),
        ] {
            assert_eq!(redact(uri), shown);
            assert!(!redact(uri).contains("SECRET"));
        }
    }

    fn def(pairs: &[(&str, Value)]) -> Map<String, Value> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
    }

    #[test]
    fn a_minimal_definition_takes_rabbitmqs_defaults() {
        let s = Shovel::from_value(
            "s",
            def(&[("src-uri", "shm://ns".into()), ("src-queue", "q".into()), ("dest-uri", "amqp://localhost".into())]),
        )
        .unwrap();
        assert_eq!((s.src_prefetch_count, s.ack_mode, s.src_delete_after), (1000, AckMode::OnConfirm, DeleteAfter::Never));
        assert_eq!(s.reconnect_delay_secs, 5.0);
        assert_eq!(s.src, Endpoint::Shm("ns".into()));
    }

    #[test]
    fn bad_definitions_are_refused_with_what_to_fix() {
        let base = [("src-uri", Value::from("shm://ns")), ("dest-uri", "amqp://h".into())];
        let cases: Vec<(Vec<(&str, Value)>, &str)> = vec![
            (vec![("src-queue", "q".into()), ("src-exchange", "x".into())], "not both"),
            (vec![], "give src-queue"),
            (vec![("src-queue", "q".into()), ("ack-mode", "sometimes".into())], "ack-mode"),
            (vec![("src-queue", "q".into()), ("src-prefetch-count", 0.into())], "1 to 65535"),
            (vec![("src-queue", "q".into()), ("colour", "red".into())], "unknown"),
            (vec![("src-queue", "q".into()), ("reconnect-delay", (-1).into())], "reconnect-delay"),
            (vec![("src-exchange", "x".into()), ("src-delete-after", "queue-length".into())], "needs src-queue"),
        ];
        for (extra, expected) in cases {
            let mut pairs = base.to_vec();
            pairs.extend(extra);
            let err = Shovel::from_value("s", def(&pairs)).unwrap_err();
            assert!(err.message.contains(expected), "{}", err.message);
            assert_eq!(err.code, 2);
        }
        let both_amqp = def(&[("src-uri", "amqp://a".into()), ("src-queue", "q".into()), ("dest-uri", "amqp://b".into())]);
        assert!(Shovel::from_value("s", both_amqp).unwrap_err().message.contains("both ends are RabbitMQ"));
        for name in ["", ".hidden", "a/b", "x y"] {
            assert!(validate_name(name).is_err(), "{name:?}");
        }
    }
}

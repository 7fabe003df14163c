//! `amqps://` URIs: TLS to RabbitMQ, with the TLS settings in the URI's
//! query as RabbitMQ's shovel takes them (`cacertfile`, `certfile`,
//! `keyfile`, `verify`, `server_name_indication`, `fail_if_no_peer_cert`).
//!
//! The broker's certificate is always verified (against `cacertfile` if
//! given, else the system's roots) and its name checked against the URI's
//! host: `verify=verify_none` is refused rather than honoured, and so is an
//! SNI name other than the host.

use std::path::{Path, PathBuf};

use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};

/// The query keys lapin itself reads (passed through to it).
const LAPIN_KEYS: &[&str] = &["heartbeat", "channel_max", "frame_max", "connection_timeout", "auth_mechanism"];

/// The most a certificate or key file may hold.
const MAX_PEM_BYTES: u64 = 1 << 20;

/// An AMQP URI split into what lapin connects to and the TLS files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AmqpTarget {
    /// The URI without the TLS query keys.
    pub uri: String,
    /// `amqps://`.
    pub tls: bool,
    /// `cacertfile`: the CA bundle to verify the broker with (PEM).
    pub ca: Option<PathBuf>,
    /// `certfile` and `keyfile`: a client certificate and its key (PEM).
    pub client: Option<(PathBuf, PathBuf)>,
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3).ok_or_else(|| format!("{text:?}: a '%' not followed by two hex digits"))?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| format!("{text:?}: a '%' not followed by two hex digits"))?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{text:?}: not UTF-8 once decoded"))
}

/// The URI's host (between the user info and the port or path).
fn host(uri: &str) -> &str {
    let rest = uri.split_once("://").map_or(uri, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host_port.split(':').next().unwrap_or(""),
    }
}

/// Splits and checks an `amqp://` or `amqps://` URI.
///
/// # Errors
/// A message naming the key to fix: TLS keys in an `amqp://` URI, an
/// unknown key, `verify_none`, an SNI name other than the host, `certfile`
/// without `keyfile`.
pub fn parse(uri: &str) -> Result<AmqpTarget, String> {
    let tls = uri.starts_with("amqps://");
    let (base, query) = uri.split_once('?').unwrap_or((uri, ""));
    let mut target = AmqpTarget { tls, ..AmqpTarget::default() };
    let (mut cert, mut key) = (None, None);
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(value)?;
        let tls_key = matches!(name, "cacertfile" | "certfile" | "keyfile" | "verify" | "server_name_indication" | "fail_if_no_peer_cert");
        if tls_key && !tls {
            return Err(format!("{name}: a TLS setting in an amqp:// URI; use amqps://"));
        }
        match name {
            "cacertfile" => target.ca = Some(PathBuf::from(value)),
            "certfile" => cert = Some(PathBuf::from(value)),
            "keyfile" => key = Some(PathBuf::from(value)),
            "verify" if value == "verify_peer" => {}
            "verify" => return Err(format!("verify={value}: shmq always verifies the broker's certificate (verify_peer)")),
            "server_name_indication" if value == host(base) => {}
            "server_name_indication" => {
                return Err(format!(
                    "server_name_indication={value}: shmq checks the broker's certificate against the URI's host {:?}; put that name in the URI",
                    host(base)
                ))
            }
            // A server-side option in RabbitMQ too: a client has no peer
            // certificate to require. Checked, so a typo is not ignored.
            "fail_if_no_peer_cert" if value == "true" || value == "false" => {}
            "fail_if_no_peer_cert" => return Err(format!("fail_if_no_peer_cert={value}: expected true or false")),
            _ if LAPIN_KEYS.contains(&name) => kept.push(pair),
            // Not named: an unencoded '?' in a password would make part of
            // the password this "key".
            _ => {
                return Err(format!(
                    "an unknown URI query key: shmq takes {} and, with amqps://, cacertfile, certfile, keyfile, verify, server_name_indication, fail_if_no_peer_cert (percent-encode any '?' in a password)",
                    LAPIN_KEYS.join(", ")
                ))
            }
        }
    }
    target.client = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => return Err("certfile and keyfile go together (a client certificate and its key)".into()),
    };
    // lapin knows amqps:// too: the scheme stays.
    target.uri = if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) };
    Ok(target)
}

/// Reads a PEM file, bounded.
fn read_pem(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    // Non-blocking: opening a FIFO with no writer would otherwise hang the
    // shovel; the type check below then refuses it.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| format!("{what} {}: {e}", path.display()))?;
    let metadata = file.metadata().map_err(|e| format!("{what} {}: {e}", path.display()))?;
    if !metadata.is_file() {
        return Err(format!("{what} {}: not a regular file", path.display()));
    }
    let mut bytes = Vec::new();
    file.take(MAX_PEM_BYTES + 1).read_to_end(&mut bytes).map_err(|e| format!("{what} {}: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        return Err(format!("{what} {}: over {MAX_PEM_BYTES} bytes", path.display()));
    }
    Ok(bytes)
}

impl AmqpTarget {
    /// lapin's TLS settings, with the files read now.
    ///
    /// # Errors
    /// A file that cannot be read, is not a regular file, is too large, or
    /// (the CA bundle) is not UTF-8 PEM text.
    pub fn tls_config(&self) -> Result<OwnedTLSConfig, String> {
        let cert_chain = match &self.ca {
            Some(path) => {
                Some(String::from_utf8(read_pem(path, "cacertfile")?).map_err(|_| format!("cacertfile {}: not PEM text", path.display()))?)
            }
            None => None,
        };
        let identity = match &self.client {
            Some((cert, key)) => Some(OwnedIdentity::PKCS8 { pem: read_pem(cert, "certfile")?, key: read_pem(key, "keyfile")? }),
            None => None,
        };
        Ok(OwnedTLSConfig { identity, cert_chain })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_keys_are_split_off_and_lapin_keys_kept() {
        let t =
            parse("amqps://u:p@broker:5671/%2f?cacertfile=%2Ftmp%2Fca.pem&heartbeat=10&verify=verify_peer&certfile=/c&keyfile=/k").unwrap();
        assert_eq!(t.uri, "amqps://u:p@broker:5671/%2f?heartbeat=10");
        assert!(t.tls);
        assert_eq!(t.ca, Some(PathBuf::from("/tmp/ca.pem")));
        assert_eq!(t.client, Some((PathBuf::from("/c"), PathBuf::from("/k"))));
    }

    #[test]
    fn what_would_weaken_tls_or_be_ignored_is_refused() {
        assert!(parse("amqps://h/?verify=verify_none").unwrap_err().contains("always verifies"));
        assert!(parse("amqp://h/?cacertfile=/x").unwrap_err().contains("use amqps://"));
        assert!(parse("amqps://h/?certfile=/x").unwrap_err().contains("go together"));
        assert!(parse("amqps://h/?server_name_indication=other").unwrap_err().contains("\"h\""));
        assert!(parse("amqps://h:1/?server_name_indication=h").is_ok());
        assert!(parse("amqps://h/?colour=blue").unwrap_err().contains("unknown URI query key"));
        assert!(!parse("amqps://h/?colour=blue").unwrap_err().contains("colour"), "key names are not echoed");
        assert!(parse("amqps://h/?cacertfile=%zz").unwrap_err().contains("hex"));
    }

    #[test]
    fn hosts_are_found_behind_user_info_and_before_ports() {
        assert_eq!(host("amqps://u:p@w@broker.example:5671/v"), "broker.example");
        assert_eq!(host("amqps://[::1]:5671"), "::1");
        assert_eq!(host("amqps://h?x=1"), "h");
    }
}

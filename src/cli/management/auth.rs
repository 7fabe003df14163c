//! Authentication for `shmq management`, as RabbitMQ's management plugin
//! does it: HTTP basic auth; without a users file, the `guest`/`guest`
//! user, only from loopback peers (RabbitMQ's `loopback_users`); with one,
//! only the users it lists (guest too only if it lists guest), from a file of
//! `name:hash` lines, where the hash is RabbitMQ's default
//! (`rabbit_password_hashing_sha256`): base64(salt ++ sha256(salt ++
//! password)) with a 4-byte random salt. `shmq management hash-password`
//! makes such lines, and RabbitMQ's `password_hash` values from a
//! definitions export can be pasted in as they are.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// Bytes of salt in a RabbitMQ password hash.
const SALT_BYTES: usize = 4;

/// Who may log in.
#[derive(Debug)]
pub struct Users {
    /// Salted hashes by user name.
    hashes: HashMap<String, Vec<u8>>,
    /// `guest`/`guest` without a users file: every local account can use
    /// it (loopback), as with RabbitMQ's default.
    builtin_guest: bool,
}

/// Why a request was not let in: RabbitMQ's reasons.
#[derive(Debug, PartialEq, Eq)]
pub enum Denied {
    /// No (or no basic) credentials: a bare 401 that asks for them.
    NoCredentials,
    /// Unknown user or wrong password.
    LoginFailed,
    /// `guest` from a peer that is not loopback.
    LoopbackOnly,
}

impl Users {
    /// No users file: `guest`/`guest` from loopback only.
    pub fn builtin_guest() -> Users {
        Users { hashes: HashMap::new(), builtin_guest: true }
    }

    /// Reads a users file: one `name:hash` per line; blank lines and lines
    /// starting with `#` are skipped.
    ///
    /// # Errors
    /// The file cannot be read, or a line is not `name:hash` with a hash
    /// in RabbitMQ's format (its number is given).
    pub fn load(path: &Path) -> Result<Users, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read users file {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("users file {}: {e}", path.display()))
    }

    /// Parses the text of a users file (see [`load`](Users::load)).
    ///
    /// # Errors
    /// As [`load`](Users::load).
    pub fn parse(text: &str) -> Result<Users, String> {
        let mut users = Users { hashes: HashMap::new(), builtin_guest: false };
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, hash) = line.split_once(':').ok_or_else(|| format!("line {} is not name:hash", number + 1))?;
            let decoded =
                STANDARD.decode(hash.trim()).ok().filter(|d| d.len() == SALT_BYTES + 32).ok_or_else(|| {
                    format!("line {}: the hash of '{name}' is not base64 of a 4-byte salt and a SHA-256 digest", number + 1)
                })?;
            users.hashes.insert(name.to_owned(), decoded);
        }
        Ok(users)
    }

    /// Checks a request's `Authorization` header from `peer`; the user's
    /// name if it may come in.
    ///
    /// # Errors
    /// Why not, as [`Denied`].
    pub fn check(&self, authorization: Option<&str>, peer: IpAddr) -> Result<String, Denied> {
        let encoded = authorization
            .and_then(|a| a.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
            .map(|(_, rest)| rest.trim())
            .ok_or(Denied::NoCredentials)?;
        let decoded = STANDARD.decode(encoded).map_err(|_| Denied::LoginFailed)?;
        let text = String::from_utf8(decoded).map_err(|_| Denied::LoginFailed)?;
        let (name, password) = text.split_once(':').ok_or(Denied::LoginFailed)?;
        if let Some(hash) = self.hashes.get(name) {
            if !verify(hash, password) {
                return Err(Denied::LoginFailed);
            }
        } else if !(self.builtin_guest && name == "guest" && password == "guest") {
            return Err(Denied::LoginFailed);
        }
        if name == "guest" && !is_loopback(peer) {
            return Err(Denied::LoopbackOnly);
        }
        Ok(name.to_owned())
    }
}

/// True for 127.0.0.0/8, ::1 and IPv4-mapped loopback.
fn is_loopback(peer: IpAddr) -> bool {
    match peer {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

/// RabbitMQ's hash of `password` with `salt`.
fn salted(salt: &[u8], password: &str) -> Vec<u8> {
    let mut out = salt.to_vec();
    out.extend_from_slice(&Sha256::new().chain_update(salt).chain_update(password.as_bytes()).finalize());
    out
}

/// Compares in time independent of where the bytes differ.
fn verify(stored: &[u8], password: &str) -> bool {
    let computed = salted(&stored[..SALT_BYTES], password);
    computed.len() == stored.len() && computed.iter().zip(stored).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// A new salted hash of `password`, in RabbitMQ's format.
///
/// # Errors
/// The system's random source failed.
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; SALT_BYTES];
    rustix::rand::getrandom(&mut salt, rustix::rand::GetRandomFlags::empty()).map_err(|e| format!("no random salt: {e}"))?;
    Ok(STANDARD.encode(salted(&salt, password)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, password: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
    }

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const REMOTE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 7));

    #[test]
    fn verifies_rabbitmqs_own_hash_of_guest() {
        // `password_hash` of guest from a RabbitMQ 3.10 definitions export.
        let users = Users::parse("guest:nrhftScTaf8rwmAyfC1kF5O+U5Jiox0xxE7DBpc6sUjQbjjl\n").unwrap();
        assert_eq!(users.check(Some(&basic("guest", "guest")), LOCAL), Ok("guest".into()));
        assert_eq!(users.check(Some(&basic("guest", "nope")), LOCAL), Err(Denied::LoginFailed));
    }

    #[test]
    fn guest_only_from_loopback_and_file_users_from_anywhere() {
        let line = format!("# operators\n\nalice:{}\n", hash_password("s3cret").unwrap());
        let users = Users::parse(&line).unwrap();
        // A users file that does not list guest turns guest off.
        assert_eq!(users.check(Some(&basic("guest", "guest")), LOCAL), Err(Denied::LoginFailed));
        let builtin = Users::builtin_guest();
        assert_eq!(builtin.check(Some(&basic("guest", "guest")), LOCAL), Ok("guest".into()));
        assert_eq!(builtin.check(Some(&basic("guest", "guest")), REMOTE), Err(Denied::LoopbackOnly));
        assert_eq!(builtin.check(Some(&basic("alice", "s3cret")), LOCAL), Err(Denied::LoginFailed));
        assert_eq!(users.check(Some(&basic("alice", "s3cret")), REMOTE), Ok("alice".into()));
        assert_eq!(users.check(Some(&basic("alice", "wrong")), LOCAL), Err(Denied::LoginFailed));
        assert_eq!(users.check(Some(&basic("bob", "x")), LOCAL), Err(Denied::LoginFailed));
        assert_eq!(users.check(None, LOCAL), Err(Denied::NoCredentials));
        assert_eq!(users.check(Some("Bearer abc"), LOCAL), Err(Denied::NoCredentials));
        assert_eq!(users.check(Some("Basic !!!"), LOCAL), Err(Denied::LoginFailed));
        let mapped = IpAddr::V6(std::net::Ipv4Addr::LOCALHOST.to_ipv6_mapped());
        assert_eq!(builtin.check(Some(&basic("guest", "guest")), mapped), Ok("guest".into()));
    }

    #[test]
    fn refuses_malformed_lines_by_number() {
        assert!(Users::parse("alice\n").unwrap_err().contains("line 1"));
        assert!(Users::parse("ok:nrhftScTaf8rwmAyfC1kF5O+U5Jiox0xxE7DBpc6sUjQbjjl\nbob:c2hvcnQ=\n").unwrap_err().contains("line 2"));
    }
}

//! The namespace directory: the one place where shmq touches the file
//! system inside a namespace.
//!
//! A namespace is resolved once into directory handles (the namespace
//! itself and its `queues/`, `peers/` and `tmp/`), each opened with
//! `O_NOFOLLOW` and checked with `fstat` (a directory, owned by this user or
//! shared with one of its groups, never writable by others). Every file
//! operation after that is relative to a handle (`openat`, `linkat`,
//! `renameat`, `unlinkat`), takes a name that passed [`validate_name`], and
//! checks what it opened with `fstat`: a regular file, owned by a trusted
//! user, not writable by others. Nothing here follows a symbolic link, blocks
//! on a FIFO or reads more than a caller's bound. docs/SECURITY.md gives the
//! threat model these checks implement.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat, CWD};
use rustix::io::Errno;

use crate::error::Error;

/// Where namespaces given by name live: `/dev/shm/shmq-<uid>`, one
/// directory per user, created 0700 by its owner and checked on every open.
///
/// # Examples
/// ```
/// let root = shmq::default_root();
/// assert!(root.to_string_lossy().starts_with(shmq::DEFAULT_ROOT_PREFIX));
/// ```
pub fn default_root() -> PathBuf {
    PathBuf::from(format!("{DEFAULT_ROOT_PREFIX}{}", rustix::process::geteuid().as_raw()))
}

/// The system directory holding every user's default root.
const SHM_DIR: &str = "/dev/shm";
/// [`default_root`] is this followed by the effective uid.
///
/// # Examples
/// ```
/// let uid = shmq::default_root().to_string_lossy().strip_prefix(shmq::DEFAULT_ROOT_PREFIX).map(str::to_owned);
/// assert!(uid.is_some_and(|uid| uid.parse::<u32>().is_ok()));
/// ```
pub const DEFAULT_ROOT_PREFIX: &str = "/dev/shm/shmq-";

/// Checks a queue, namespace or file name: 1–255 bytes, no `/`, NUL or
/// control character (newline, tab, ESC, DEL, ...), not `.` or `..`. Names
/// read from shared memory pass the same check before they name a file.
///
/// # Errors
/// `Error::InvalidName` saying what is wrong (and, for a control
/// character, which one at which byte).
///
/// # Examples
/// ```
/// assert!(shmq::validate_name("queue", "hello").is_ok());
/// assert!(shmq::validate_name("queue", "a/b").is_err());
/// assert!(shmq::validate_name("queue", "a\nb").unwrap_err().to_string().contains("U+000A at byte 1"));
/// assert!(shmq::validate_name("queue", &"x".repeat(256)).is_err());
/// ```
pub fn validate_name(what: &'static str, name: &str) -> Result<(), Error> {
    let reason: Option<std::borrow::Cow<'static, str>> = if name.is_empty() {
        Some("a name is required".into())
    } else if name.len() > 255 {
        Some("names are at most 255 bytes".into())
    } else if name.contains('/') {
        Some("names may not contain '/'".into())
    } else if name.contains('\0') {
        Some("names may not contain NUL".into())
    } else if name == "." || name == ".." {
        Some("'.' and '..' are reserved".into())
    } else if let Some((at, c)) = name.char_indices().find(|(_, c)| c.is_control()) {
        Some(format!("names may not contain control characters, found U+{:04X} at byte {at}", c as u32).into())
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidName { what, name: name.to_owned(), reason }),
        None => Ok(()),
    }
}

/// Checks a queue name as RabbitMQ does (1–255 bytes of UTF-8), except
/// that NUL and control characters are refused (they would reach
/// terminals and logs). `/`, `%`, `.` and `..` are fine: a queue's file is
/// named by its percent-encoded form (docs/LAYOUT.md), never by the name itself.
///
/// # Errors
/// `Error::InvalidName` saying what is wrong.
///
/// # Examples
/// ```
/// assert!(shmq::validate_queue_name("orders/eu").is_ok());
/// assert!(shmq::validate_queue_name("..").is_ok());
/// assert!(shmq::validate_queue_name("a\nb").is_err());
/// assert!(shmq::validate_queue_name("").is_err());
/// ```
pub fn validate_queue_name(name: &str) -> Result<(), Error> {
    let reason: Option<std::borrow::Cow<'static, str>> = if name.is_empty() {
        Some("a name is required".into())
    } else if name.len() > 255 {
        Some("names are at most 255 bytes".into())
    } else if let Some((at, c)) = name.char_indices().find(|(_, c)| c.is_control()) {
        Some(format!("names may not contain control characters, found U+{:04X} at byte {at}", c as u32).into())
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidName { what: "queue", name: name.to_owned(), reason }),
        None => Ok(()),
    }
}

/// The file name under `queues/` of the (validated) queue `name`: the name
/// itself, with `%` and `/` percent-encoded and `.`/`..` as `%2E`/`%2E%2E`;
/// if that is over 255 bytes, `%h` and 32 hex digits of a 128-bit hash of
/// the name (the segment's header holds the name, checked on open). Only
/// `[^/%]`, `%XX` and `%h…` come out: never a path of more than one part,
/// never `.` or `..`.
pub(crate) fn queue_file_name(name: &str) -> String {
    if name == "." || name == ".." {
        return "%2E".repeat(name.len());
    }
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '%' => out.push_str("%25"),
            '/' => out.push_str("%2F"),
            c => out.push(c),
        }
    }
    if out.len() <= 255 {
        return out;
    }
    // FNV-1a, 128 bits: stable across builds and processes.
    let mut hash: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for b in name.bytes() {
        hash ^= u128::from(b);
        hash = hash.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013B);
    }
    format!("%h{hash:032x}")
}

/// The queue name a file under `queues/` stands for, the inverse of
/// [`queue_file_name`]; `None` for a hashed name (read the segment's
/// header) or a file no queue name gives.
pub(crate) fn queue_name_of_file(file: &str) -> Option<String> {
    if file.starts_with("%h") {
        return None;
    }
    let mut out = Vec::with_capacity(file.len());
    let bytes = file.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                let b = u8::from_str_radix(hex, 16).ok()?;
                if !matches!(b, b'%' | b'/' | b'.') {
                    return None;
                }
                out.push(b);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    let name = String::from_utf8(out).ok()?;
    (queue_file_name(&name) == file).then_some(name)
}

/// One of the namespace's directories.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sub {
    /// The namespace directory itself (`shmq.ns`, `routing`, `routing.lock`).
    Root,
    /// `queues/`: one segment per queue.
    Queues,
    /// `peers/`: one liveness file per attached process.
    Peers,
    /// `tmp/`: files under construction.
    Tmp,
    /// `extents/`: the later rings of growing queues, `<queue id>.<seq>`.
    Extents,
}

impl Sub {
    fn name(self) -> Option<&'static str> {
        match self {
            Sub::Root => None,
            Sub::Queues => Some("queues"),
            Sub::Peers => Some("peers"),
            Sub::Tmp => Some("tmp"),
            Sub::Extents => Some("extents"),
        }
    }
}

/// Whether an open may create what is missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Create {
    /// Create the namespace (and the per-user root) if missing.
    Yes,
    /// Only open an existing namespace: a missing one is `NoSuchNamespace`.
    No,
}

/// Who is trusted inside one namespace: this process's user, the
/// namespace's owner, and (in a group-shared namespace) its group.
#[derive(Clone, Copy, Debug)]
struct Trust {
    euid: u32,
    owner: u32,
    group: Option<u32>,
}

/// A resolved namespace directory. Every file operation inside a namespace
/// goes through one of these.
#[derive(Debug)]
pub(crate) struct NamespaceDir {
    path: PathBuf,
    root: OwnedFd,
    queues: OwnedFd,
    peers: OwnedFd,
    tmp: OwnedFd,
    extents: OwnedFd,
    trust: Trust,
    file_mode: u32,
}

fn mode_of(stat: &Stat) -> u32 {
    stat.st_mode & 0o7777
}

fn is_dir(stat: &Stat) -> bool {
    stat.st_mode & libc_mode::S_IFMT == libc_mode::S_IFDIR
}

fn is_reg(stat: &Stat) -> bool {
    stat.st_mode & libc_mode::S_IFMT == libc_mode::S_IFREG
}

/// File type bits (as in `<sys/stat.h>`), without depending on libc.
mod libc_mode {
    pub(super) const S_IFMT: u32 = 0o170_000;
    pub(super) const S_IFDIR: u32 = 0o040_000;
    pub(super) const S_IFREG: u32 = 0o100_000;
}

fn kind_of(stat: &Stat) -> &'static str {
    match stat.st_mode & libc_mode::S_IFMT {
        0o040_000 => "a directory",
        0o100_000 => "a regular file",
        0o120_000 => "a symbolic link",
        0o010_000 => "a FIFO",
        0o020_000 => "a character device",
        0o060_000 => "a block device",
        0o140_000 => "a socket",
        _ => "of an unknown type",
    }
}

fn in_my_groups(gid: u32) -> bool {
    rustix::process::getegid().as_raw() == gid || rustix::process::getgroups().is_ok_and(|groups| groups.iter().any(|g| g.as_raw() == gid))
}

fn unsafe_path(path: &Path, stat: &Stat, why: String) -> Error {
    Error::UnsafePath { path: path.to_owned(), owner: stat.st_uid, mode: mode_of(stat), why }
}

/// Opens `name` in `dir` as a directory without following a symbolic link.
fn open_dir_at(dir: impl AsFd, name: &str, path: &Path) -> Result<OwnedFd, Error> {
    let dir = dir.as_fd();
    rustix::fs::openat(dir, name, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty()).map_err(|e| {
        match e {
            Errno::LOOP | Errno::NOTDIR => not_followed(dir, name, path, "a directory"),
            e => Error::io(path, e.into()),
        }
    })
}

/// The error for a name that is a symbolic link or another kind of file
/// than expected, naming its owner and mode (read without following it).
fn not_followed(dir: std::os::fd::BorrowedFd<'_>, name: &str, path: &Path, expected: &str) -> Error {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => unsafe_path(
            path,
            &stat,
            format!("it is {}, not {expected}; shmq never follows links inside a namespace: remove it", kind_of(&stat)),
        ),
        Err(e) => Error::io(path, e.into()),
    }
}

/// Checks an opened namespace (or sub-) directory and returns who is trusted
/// in it.
fn check_dir(fd: &OwnedFd, path: &Path, euid: u32) -> Result<Trust, Error> {
    let stat = rustix::fs::fstat(fd).map_err(|e| Error::io(path, e.into()))?;
    if !is_dir(&stat) {
        return Err(unsafe_path(path, &stat, format!("it is {}, not a directory; remove it", kind_of(&stat))));
    }
    let mode = mode_of(&stat);
    if mode & 0o002 != 0 {
        return Err(unsafe_path(path, &stat, "it is writable by every user; remove it, or `chmod o-w` it if it is yours".into()));
    }
    let group_shared = mode & 0o070 == 0o070;
    if stat.st_uid != euid && !(group_shared && in_my_groups(stat.st_gid)) {
        return Err(unsafe_path(
            path,
            &stat,
            format!(
                "it belongs to another user and is not shared with any of your groups (its group is gid {}); use your own namespace, or ask its owner to share it with your group",
                stat.st_gid
            ),
        ));
    }
    let group = (mode & 0o020 != 0).then_some(stat.st_gid);
    Ok(Trust { euid, owner: stat.st_uid, group })
}

/// Opens (creating if asked) the caller's per-user default root and checks
/// that it is theirs alone.
pub(crate) fn open_default_root(create: Create) -> Result<(OwnedFd, PathBuf), Error> {
    let path = default_root();
    let shm = rustix::fs::openat(CWD, SHM_DIR, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Error::io(SHM_DIR, e.into()))?;
    let name = path.file_name().and_then(OsStr::to_str).unwrap_or_default().to_owned();
    let created = create == Create::Yes && mkdir_new(&shm, &name, 0o700, &path)?;
    let fd = match open_dir_at(&shm, &name, &path) {
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NoSuchNamespace { name: path.display().to_string(), did_you_mean: None });
        }
        other => other?,
    };
    if created {
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o700)).map_err(|e| Error::io(&path, e.into()))?;
    }
    let stat = rustix::fs::fstat(&fd).map_err(|e| Error::io(&path, e.into()))?;
    let euid = rustix::process::geteuid().as_raw();
    if !is_dir(&stat) {
        return Err(unsafe_path(&path, &stat, format!("it is {}, not a directory; remove it", kind_of(&stat))));
    }
    if stat.st_uid != euid {
        return Err(unsafe_path(
            &path,
            &stat,
            "another user created your shmq root before you did; have it removed (root can), or open namespaces by a path you own".into(),
        ));
    }
    if mode_of(&stat) & 0o022 != 0 {
        return Err(unsafe_path(&path, &stat, "your shmq root is writable by others; `chmod go-w` it".into()));
    }
    Ok((fd, path))
}

/// `mkdirat` that reports whether this call created the directory.
fn mkdir_new(dir: impl AsFd, name: &str, mode: u32, path: &Path) -> Result<bool, Error> {
    match rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(mode)) {
        Ok(()) => Ok(true),
        Err(Errno::EXIST) => Ok(false),
        Err(e) => Err(Error::io(path, e.into())),
    }
}

/// Names of the entries of a directory handle that pass [`validate_name`]
/// and are of the kind asked for (regular files, or directories).
fn list_fd(fd: &OwnedFd, path: &Path, want: FileType) -> Result<Vec<String>, Error> {
    let dir = rustix::fs::Dir::read_from(fd).map_err(|e| Error::io(path, e.into()))?;
    let mut names = Vec::new();
    for entry in dir {
        let entry = entry.map_err(|e| Error::io(path, e.into()))?;
        let Ok(name) = entry.file_name().to_str() else { continue };
        if validate_name("file", name).is_err() {
            continue;
        }
        let kind = match entry.file_type() {
            FileType::Unknown => match rustix::fs::statat(fd, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(stat) => FileType::from_raw_mode(stat.st_mode),
                Err(_) => continue,
            },
            kind => kind,
        };
        if kind == want {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

impl NamespaceDir {
    /// Resolves the namespace called `name` under the caller's default root.
    pub(crate) fn open_named(name: &str, create: Create, group_shared: bool) -> Result<NamespaceDir, Error> {
        validate_name("namespace", name)?;
        let (root, root_path) = match open_default_root(create) {
            Err(Error::NoSuchNamespace { .. }) => {
                return Err(Error::NoSuchNamespace { name: name.to_owned(), did_you_mean: None });
            }
            other => other?,
        };
        if group_shared && create == Create::Yes {
            // Group members must be able to pass through the root to reach
            // a shared namespace (not to list it: 0711).
            let _ = rustix::fs::fchmod(&root, Mode::from_raw_mode(0o711));
        }
        match Self::open_in(&root, &root_path.join(name), name, create, group_shared) {
            Err(Error::NoSuchNamespace { .. }) => {
                let did_you_mean = list_fd(&root, &root_path, FileType::Directory).ok().and_then(|names| closest(name, &names));
                Err(Error::NoSuchNamespace { name: name.to_owned(), did_you_mean })
            }
            other => other,
        }
    }

    /// Resolves a namespace given by its directory path. The path's parents
    /// are the caller's choice and are followed; the namespace directory
    /// itself is not followed if it is a symbolic link.
    pub(crate) fn open_path(path: &Path, create: Create, group_shared: bool) -> Result<NamespaceDir, Error> {
        let path = if path.is_absolute() { path.to_owned() } else { std::env::current_dir().map_err(|e| Error::io(path, e))?.join(path) };
        let name = path.file_name().and_then(OsStr::to_str).ok_or_else(|| Error::InvalidName {
            what: "namespace",
            name: path.display().to_string(),
            reason: "a namespace path must end in a UTF-8 directory name".into(),
        })?;
        validate_name("namespace", name)?;
        let parent = path.parent().unwrap_or(Path::new("/"));
        let parent_fd = match rustix::fs::openat(CWD, parent, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) if create == Create::Yes => {
                std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
                    .create(parent)
                    .map_err(|e| Error::io(parent, e))?;
                rustix::fs::openat(CWD, parent, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
                    .map_err(|e| Error::io(parent, e.into()))?
            }
            Err(Errno::NOENT) => return Err(Error::NoSuchNamespace { name: path.display().to_string(), did_you_mean: None }),
            Err(e) => return Err(Error::io(parent, e.into())),
        };
        let name = name.to_owned();
        Self::open_in(&parent_fd, &path, &name, create, group_shared)
    }

    fn open_in(parent: &OwnedFd, path: &Path, name: &str, create: Create, group_shared: bool) -> Result<NamespaceDir, Error> {
        let (dir_mode, file_mode) = if group_shared { (0o2770, 0o660) } else { (0o700, 0o600) };
        let created = create == Create::Yes && mkdir_new(parent, name, dir_mode & 0o777, path)?;
        let root = match open_dir_at(parent, name, path) {
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NoSuchNamespace { name: path.display().to_string(), did_you_mean: None });
            }
            other => other?,
        };
        let euid = rustix::process::geteuid().as_raw();
        if created {
            rustix::fs::fchmod(&root, Mode::from_raw_mode(dir_mode)).map_err(|e| Error::io(path, e.into()))?;
        }
        let mut trust = check_dir(&root, path, euid)?;
        if group_shared && trust.group.is_none() && trust.owner == euid {
            // Sharing an existing private namespace of ours, as asked.
            rustix::fs::fchmod(&root, Mode::from_raw_mode(dir_mode)).map_err(|e| Error::io(path, e.into()))?;
            trust = check_dir(&root, path, euid)?;
        }
        if create == Create::No {
            match rustix::fs::statat(&root, "shmq.ns", AtFlags::SYMLINK_NOFOLLOW) {
                Ok(_) => {}
                Err(Errno::NOENT) => {
                    return Err(Error::NoSuchNamespace { name: path.display().to_string(), did_you_mean: None });
                }
                Err(e) => return Err(Error::io(path.join("shmq.ns"), e.into())),
            }
        }
        // A shared namespace's files are the group's; its directories keep
        // the group (setgid), and peers/ is sticky so that no member can
        // remove or replace another member's liveness file.
        let shared = trust.group.is_some();
        let file_mode = if shared { 0o660 } else { file_mode & 0o600 };
        let sub_mode = |sub: Sub| match (shared, sub) {
            (true, Sub::Peers) => 0o3770,
            (true, _) => 0o2770,
            (false, _) => 0o700,
        };
        let open_sub = |sub: Sub| -> Result<OwnedFd, Error> {
            let sub_name = sub.name().unwrap_or(".");
            let sub_path = path.join(sub_name);
            let made = mkdir_new(&root, sub_name, sub_mode(sub) & 0o777, &sub_path)?;
            let fd = open_dir_at(&root, sub_name, &sub_path)?;
            if made || (shared && trust.owner == euid) {
                let _ = rustix::fs::fchmod(&fd, Mode::from_raw_mode(sub_mode(sub)));
            }
            check_dir(&fd, &sub_path, euid)?;
            Ok(fd)
        };
        let queues = open_sub(Sub::Queues)?;
        let peers = open_sub(Sub::Peers)?;
        let tmp = open_sub(Sub::Tmp)?;
        let extents = open_sub(Sub::Extents)?;
        Ok(NamespaceDir { path: path.to_owned(), root, queues, peers, tmp, extents, trust, file_mode })
    }

    /// The namespace directory's path, for messages and tools.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn fd(&self, sub: Sub) -> &OwnedFd {
        match sub {
            Sub::Root => &self.root,
            Sub::Queues => &self.queues,
            Sub::Peers => &self.peers,
            Sub::Tmp => &self.tmp,
            Sub::Extents => &self.extents,
        }
    }

    /// The path of `name` in `sub`, for messages only: never opened.
    pub(crate) fn path_of(&self, sub: Sub, name: &str) -> PathBuf {
        match sub.name() {
            Some(dir) => self.path.join(dir).join(OsStr::from_bytes(name.as_bytes())),
            None => self.path.join(name),
        }
    }

    /// Checks an opened file: regular, owned by a trusted user, not writable
    /// by others.
    fn check_file(&self, fd: &OwnedFd, path: &Path) -> Result<Stat, Error> {
        let stat = rustix::fs::fstat(fd).map_err(|e| Error::io(path, e.into()))?;
        if !is_reg(&stat) {
            return Err(unsafe_path(path, &stat, format!("it is {}, not a regular file; remove it", kind_of(&stat))));
        }
        if mode_of(&stat) & 0o002 != 0 {
            return Err(unsafe_path(path, &stat, "it is writable by every user; remove it".into()));
        }
        let t = &self.trust;
        let trusted = stat.st_uid == t.euid || stat.st_uid == t.owner || t.group.is_some_and(|g| g == stat.st_gid);
        if !trusted {
            return Err(unsafe_path(
                path,
                &stat,
                "it belongs to a user this namespace does not trust (neither you, nor its owner, nor its group); remove it".into(),
            ));
        }
        Ok(stat)
    }

    fn open_raw(&self, sub: Sub, name: &str, flags: OFlags) -> Result<OwnedFd, Error> {
        validate_name("file", name)?;
        let path = self.path_of(sub, name);
        let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY;
        rustix::fs::openat(self.fd(sub), name, flags, Mode::from_raw_mode(self.file_mode)).map_err(|e| match e {
            Errno::LOOP => not_followed(self.fd(sub).as_fd(), name, &path, "a regular file"),
            e => Error::io(path, e.into()),
        })
    }

    /// Opens an existing file read-write (or read-only), checked.
    pub(crate) fn open_file(&self, sub: Sub, name: &str, write: bool) -> Result<(File, Stat), Error> {
        let fd = self.open_raw(sub, name, if write { OFlags::RDWR } else { OFlags::RDONLY })?;
        let stat = self.check_file(&fd, &self.path_of(sub, name))?;
        Ok((File::from(fd), stat))
    }

    /// Opens a file read-write, creating it with the namespace's mode if
    /// missing (never through a symbolic link).
    pub(crate) fn open_or_create_file(&self, sub: Sub, name: &str) -> Result<File, Error> {
        let fd = self.open_raw(sub, name, OFlags::RDWR | OFlags::CREATE)?;
        let path = self.path_of(sub, name);
        let stat = self.check_file(&fd, &path)?;
        if stat.st_uid == self.trust.euid && mode_of(&stat) != self.file_mode {
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(self.file_mode)).map_err(|e| Error::io(&path, e.into()))?;
        }
        Ok(File::from(fd))
    }

    /// Creates a new file (failing if it exists) with the namespace's mode,
    /// set explicitly whatever the umask.
    pub(crate) fn create_file(&self, sub: Sub, name: &str) -> Result<File, Error> {
        let fd = self.open_raw(sub, name, OFlags::RDWR | OFlags::CREATE | OFlags::EXCL)?;
        let path = self.path_of(sub, name);
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(self.file_mode)).map_err(|e| Error::io(&path, e.into()))?;
        Ok(File::from(fd))
    }

    /// Reads at most `max` bytes of a file, checked as by
    /// [`open_file`](Self::open_file).
    pub(crate) fn read_bounded(&self, sub: Sub, name: &str, max: usize) -> Result<Vec<u8>, Error> {
        let (file, _) = self.open_file(sub, name, false)?;
        let mut bytes = Vec::with_capacity(max.min(4096));
        std::io::Read::read_to_end(&mut std::io::Read::take(&file, max as u64), &mut bytes)
            .map_err(|e| Error::io(self.path_of(sub, name), e))?;
        Ok(bytes)
    }

    /// Hard-links `from` to `to`. `Ok(false)` if `to` exists.
    pub(crate) fn link(&self, from_sub: Sub, from: &str, to_sub: Sub, to: &str) -> Result<bool, Error> {
        validate_name("file", from)?;
        validate_name("file", to)?;
        match rustix::fs::linkat(self.fd(from_sub), from, self.fd(to_sub), to, AtFlags::empty()) {
            Ok(()) => Ok(true),
            Err(Errno::EXIST) => Ok(false),
            Err(e) => Err(Error::io(self.path_of(to_sub, to), e.into())),
        }
    }

    /// Renames `from` to `to`, replacing it.
    pub(crate) fn rename(&self, from_sub: Sub, from: &str, to_sub: Sub, to: &str) -> Result<(), Error> {
        validate_name("file", from)?;
        validate_name("file", to)?;
        rustix::fs::renameat(self.fd(from_sub), from, self.fd(to_sub), to).map_err(|e| Error::io(self.path_of(to_sub, to), e.into()))
    }

    /// Removes a file. False if it was not there (or the name is invalid).
    pub(crate) fn unlink(&self, sub: Sub, name: &str) -> bool {
        validate_name("file", name).is_ok() && rustix::fs::unlinkat(self.fd(sub), name, AtFlags::empty()).is_ok()
    }

    /// `stat` of a name without following it.
    pub(crate) fn stat(&self, sub: Sub, name: &str) -> Option<Stat> {
        self.stat_errno(sub, name).ok()
    }

    /// As [`stat`](NamespaceDir::stat), saying why it failed (an invalid
    /// name is `EINVAL`).
    pub(crate) fn stat_errno(&self, sub: Sub, name: &str) -> Result<Stat, rustix::io::Errno> {
        validate_name("file", name).map_err(|_| rustix::io::Errno::INVAL)?;
        rustix::fs::statat(self.fd(sub), name, AtFlags::SYMLINK_NOFOLLOW)
    }

    /// Whether `name` exists in `sub` (as anything).
    pub(crate) fn exists(&self, sub: Sub, name: &str) -> bool {
        self.stat(sub, name).is_some()
    }

    /// Names of the regular files in one of the namespace's directories:
    /// links, FIFOs, devices, sockets, directories and invalid names are
    /// skipped.
    pub(crate) fn list(&self, sub: Sub) -> Result<Vec<String>, Error> {
        list_fd(self.fd(sub), &self.path_of(sub, "."), FileType::RegularFile)
    }

    /// Bytes free for an unprivileged user on the namespace's file system.
    pub(crate) fn available_bytes(&self) -> Option<u64> {
        rustix::fs::fstatvfs(&self.root).ok().map(|s| s.f_bavail.saturating_mul(s.f_frsize))
    }
}

/// The closest of `names` to `name`, if one is close (for did-you-mean).
pub(crate) fn closest(name: &str, names: &[String]) -> Option<String> {
    names.iter().map(|n| (edit_distance(n, name), n)).filter(|(d, n)| *d > 0 && *d <= 2.max(n.len() / 4)).min().map(|(_, n)| n.clone())
}

/// Levenshtein distance, for did-you-mean suggestions.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("hello", "helo"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }

    #[test]
    fn validate_name_rejects_control_characters_naming_the_byte() {
        for (name, code, at) in [("a\nb", "U+000A", 1), ("\tx", "U+0009", 0), ("ok\u{1b}[31m", "U+001B", 2), ("del\u{7f}", "U+007F", 3)] {
            let err = validate_name("queue", name).unwrap_err().to_string();
            assert!(err.contains(&format!("{code} at byte {at}")), "{err}");
        }
        assert!(validate_name("queue", "fine-name.with_dots").is_ok());
    }

    #[test]
    fn queue_file_names_are_one_safe_part_and_decode_back() {
        let long_slashes = "/".repeat(200);
        for name in ["plain", "orders/eu", "50%", "%2F", ".", "..", "../../etc", "a/./b", long_slashes.as_str(), "é/ü"] {
            let file = queue_file_name(name);
            assert!(!file.contains('/') && file != "." && file != ".." && !file.is_empty() && file.len() <= 255, "{name:?} -> {file:?}");
            if file.starts_with("%h") {
                assert_eq!(queue_name_of_file(&file), None);
            } else {
                assert_eq!(queue_name_of_file(&file).as_deref(), Some(name), "{file:?}");
            }
        }
        assert_eq!(queue_file_name("orders/eu"), "orders%2Feu");
        assert_ne!(queue_file_name(&"/".repeat(200)), queue_file_name(&"/".repeat(201)));
        // Files no name gives are not names.
        for file in ["%2", "%zz", "%41", "a%2fb"] {
            assert_eq!(queue_name_of_file(file), None, "{file:?}");
        }
    }

    #[test]
    fn validate_name_rejects_path_escapes() {
        for name in ["../../x", "/x", "..", ".", "a/b", ""] {
            assert!(validate_name("queue", name).is_err(), "{name:?}");
        }
    }
}

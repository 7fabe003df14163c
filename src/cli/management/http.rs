//! A small HTTP/1.1 server for `shmq management`: a fixed pool of worker
//! threads behind one accepting thread, with every input bounded. Requests
//! are parsed by `httparse`; everything around it (limits, timeouts,
//! keep-alive, bodies) is here, because the ready-made sync servers bound
//! none of it (docs/MANAGEMENT.md, "Why this server").
//!
//! Limits: a request head (request line and headers) of at most
//! [`MAX_HEAD_BYTES`] and [`MAX_HEADERS`] headers (else 431), a body of at
//! most [`MAX_BODY_BYTES`] (else 413, checked before it is read), the head
//! within [`HEAD_DEADLINE`] and the whole request within
//! [`REQUEST_DEADLINE`] of the connection's acceptance (or of the previous
//! response), else the connection is closed; and at most [`MAX_PENDING`]
//! accepted connections waiting for a worker (else 503). A worker serving a
//! keep-alive connection hands it back (closes it) after a response when
//! other connections wait. So a silent or slow client holds a worker for at
//! most `HEAD_DEADLINE`; enough of them (the pool's size) can still delay
//! others by that much, which is why the server binds to loopback by
//! default.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The largest request head: request line plus headers.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// The most headers a request may have.
pub const MAX_HEADERS: usize = 64;
/// The largest request body (RabbitMQ's default limit is 20 MB).
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// A request's head must arrive within this time of the wait's start.
pub const HEAD_DEADLINE: Duration = Duration::from_secs(5);
/// A request must arrive whole within this time of the wait's start.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(30);
/// Accepted connections that may wait for a free worker.
pub const MAX_PENDING: usize = 64;
/// How long writing a response may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// One HTTP request, its head decoded and its body read whole.
#[derive(Debug)]
pub struct Request {
    /// The method, as sent (`GET`, `PUT`, ...); `HEAD` arrives as `GET`.
    pub method: String,
    /// The path of the request target, still percent-encoded.
    pub path: String,
    /// The query string (after `?`), still encoded; empty if none.
    pub query: String,
    /// Headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// The client's address.
    pub peer: SocketAddr,
    /// An HTTP/1.0 request (keeps the connection only if asked to).
    pub http10: bool,
}

impl Request {
    /// The first header of that (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// A response to write.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Extra headers (content-length and connection are added when written).
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with a body of that content type.
    pub fn new(status: u16, content_type: &str, body: Vec<u8>) -> Response {
        Response { status, headers: vec![("content-type", content_type.to_owned())], body }
    }

    /// A response with no body.
    pub fn empty(status: u16) -> Response {
        Response { status, headers: Vec::new(), body: Vec::new() }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }
}

/// What a connection's worker calls for each request.
pub type Handler = dyn Fn(&Request) -> Response + Send + Sync;

/// Serves `listener` for ever with `threads` workers.
///
/// # Errors
/// Only if the worker threads cannot be started; errors of single
/// connections are answered or end that connection.
pub fn serve(listener: TcpListener, threads: usize, handler: Arc<Handler>) -> std::io::Result<()> {
    let (sender, receiver): (SyncSender<TcpStream>, Receiver<TcpStream>) = sync_channel(MAX_PENDING);
    let receiver = Arc::new(Mutex::new(receiver));
    // Connections accepted and not yet taken by a worker: a hint for
    // keep-alive (Relaxed: no data is published through it).
    let pending = Arc::new(AtomicUsize::new(0));
    for index in 0..threads.max(1) {
        let receiver = receiver.clone();
        let handler = handler.clone();
        let pending = pending.clone();
        std::thread::Builder::new().name(format!("http-{index}")).spawn(move || loop {
            let next = receiver.lock().unwrap_or_else(|e| e.into_inner()).recv();
            let Ok(stream) = next else { return };
            pending.fetch_sub(1, Ordering::Relaxed);
            serve_connection(stream, &*handler, &pending);
        })?;
    }
    for stream in listener.incoming() {
        let Ok(stream) = stream else {
            // Out of file descriptors, say: wait rather than spin.
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        pending.fetch_add(1, Ordering::Relaxed);
        match sender.try_send(stream) {
            Ok(()) => {}
            Err(TrySendError::Full(mut stream)) | Err(TrySendError::Disconnected(mut stream)) => {
                pending.fetch_sub(1, Ordering::Relaxed);
                let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
                let body = br#"{"error":"service_unavailable","reason":"too many connections waiting; retry"}"#.to_vec();
                let _ = write_response(&mut stream, &Response::new(503, "application/json", body), false, false);
            }
        }
    }
    Ok(())
}

/// Why reading a request stopped.
enum ReadError {
    /// The client closed the connection or went quiet: close it, silently.
    Gone,
    /// A request the server refuses: answer, then close.
    Refuse(u16, &'static str),
}

/// Serves the requests of one connection until it closes, errs, or other
/// connections wait.
fn serve_connection(mut stream: TcpStream, handler: &Handler, pending: &AtomicUsize) {
    let Ok(peer) = stream.peer_addr() else { return };
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    // Bytes read past the end of the previous request (pipelining).
    let mut buffer: Vec<u8> = Vec::new();
    loop {
        let request = match read_request(&mut stream, &mut buffer, peer) {
            Ok(r) => r,
            Err(ReadError::Gone) => return,
            Err(ReadError::Refuse(status, reason)) => {
                let body = serde_json::json!({"error": "bad_request", "reason": reason}).to_string().into_bytes();
                let _ = write_response(&mut stream, &Response::new(status, "application/json", body), false, false);
                linger(&mut stream);
                return;
            }
        };
        let head = request.method == "HEAD";
        let mut request = request;
        if head {
            request.method = "GET".to_owned();
        }
        let keep_alive = wants_keep_alive(&request) && pending.load(Ordering::Relaxed) == 0;
        let response = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(&request))).unwrap_or_else(|_| {
            Response::new(500, "application/json", br#"{"error":"internal_error","reason":"the request failed"}"#.to_vec())
        });
        if write_response(&mut stream, &response, keep_alive, head).is_err() || !keep_alive {
            return;
        }
    }
}

/// Closes a connection whose request was refused unread without resetting
/// it: a close with unread input sends a reset, which can destroy the
/// response before the client reads it. So: end our side, then read and
/// drop what the client still sends, for a bounded time and amount.
fn linger(stream: &mut TcpStream) {
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut sink = [0u8; 16384];
    let mut drained = 0usize;
    while drained < 1 << 20 {
        let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) else { return };
        if stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(n) => drained += n,
        }
    }
}

/// HTTP/1.1 keeps a connection open unless told to close; 1.0 only if asked.
fn wants_keep_alive(request: &Request) -> bool {
    let connection = request.header("connection").unwrap_or("").to_ascii_lowercase();
    if request.http10 {
        connection.contains("keep-alive")
    } else {
        !connection.contains("close")
    }
}

/// Reads more bytes into `buffer` before `deadline`.
fn fill(stream: &mut TcpStream, buffer: &mut Vec<u8>, deadline: Instant) -> Result<(), ReadError> {
    let left = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()).ok_or(ReadError::Gone)?;
    stream.set_read_timeout(Some(left)).map_err(|_| ReadError::Gone)?;
    let mut chunk = [0u8; 8192];
    match stream.read(&mut chunk) {
        Ok(0) | Err(_) => Err(ReadError::Gone),
        Ok(n) => {
            buffer.extend_from_slice(&chunk[..n]);
            Ok(())
        }
    }
}

/// Reads one request: its head within [`HEAD_DEADLINE`] of the wait's
/// start (an idle keep-alive connection is closed then too), its body
/// within [`REQUEST_DEADLINE`].
fn read_request(stream: &mut TcpStream, buffer: &mut Vec<u8>, peer: SocketAddr) -> Result<Request, ReadError> {
    let started = Instant::now();
    let head_deadline = started + HEAD_DEADLINE;
    if buffer.is_empty() {
        fill(stream, buffer, head_deadline)?;
    }
    let deadline = started + REQUEST_DEADLINE;
    // The head.
    let (head_len, method, path, query, headers, version) = loop {
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Request::new(&mut slots);
        match parsed.parse(buffer) {
            Ok(httparse::Status::Complete(len)) => {
                let method = parsed.method.unwrap_or("GET").to_owned();
                let target = parsed.path.unwrap_or("/");
                let (path, query) = target.split_once('?').unwrap_or((target, ""));
                let headers: Vec<(String, String)> = parsed
                    .headers
                    .iter()
                    .map(|h| (h.name.to_ascii_lowercase(), String::from_utf8_lossy(h.value).trim().to_owned()))
                    .collect();
                break (len, method, path.to_owned(), query.to_owned(), headers, parsed.version.unwrap_or(1));
            }
            Ok(httparse::Status::Partial) if buffer.len() >= MAX_HEAD_BYTES => {
                return Err(ReadError::Refuse(431, "request head too large"));
            }
            Ok(httparse::Status::Partial) => fill(stream, buffer, head_deadline)?,
            Err(httparse::Error::TooManyHeaders) => return Err(ReadError::Refuse(431, "too many headers")),
            Err(_) => return Err(ReadError::Refuse(400, "malformed HTTP request")),
        }
    };
    if head_len > MAX_HEAD_BYTES {
        return Err(ReadError::Refuse(431, "request head too large"));
    }
    buffer.drain(..head_len);
    let mut request = Request { method, path, query, headers, body: Vec::new(), peer, http10: version == 0 };
    let chunked = request.header("transfer-encoding").is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    let length = match request.header("content-length") {
        Some(text) if !chunked => Some(text.parse::<usize>().map_err(|_| ReadError::Refuse(400, "invalid content-length"))?),
        _ => None,
    };
    if length.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(ReadError::Refuse(413, "request body too large (16 MiB at most)"));
    }
    let expects_continue = request.header("expect").is_some_and(|e| e.eq_ignore_ascii_case("100-continue"));
    if expects_continue && (chunked || length.is_some_and(|n| n > buffer.len())) {
        stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").map_err(|_| ReadError::Gone)?;
    }
    if chunked {
        request.body = read_chunked(stream, buffer, deadline)?;
    } else if let Some(length) = length {
        while buffer.len() < length {
            fill(stream, buffer, deadline)?;
        }
        request.body = buffer.drain(..length).collect();
    }
    Ok(request)
}

/// Decodes a chunked body, at most [`MAX_BODY_BYTES`] of it.
fn read_chunked(stream: &mut TcpStream, buffer: &mut Vec<u8>, deadline: Instant) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    loop {
        // The size line.
        let line_end = loop {
            if let Some(at) = buffer.windows(2).position(|w| w == b"\r\n") {
                break at;
            }
            if buffer.len() > 1024 {
                return Err(ReadError::Refuse(400, "malformed chunk size"));
            }
            fill(stream, buffer, deadline)?;
        };
        let line = String::from_utf8_lossy(&buffer[..line_end]).into_owned();
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| ReadError::Refuse(400, "malformed chunk size"))?;
        buffer.drain(..line_end + 2);
        if size == 0 {
            // Trailers, up to the empty line.
            loop {
                if let Some(at) = buffer.windows(2).position(|w| w == b"\r\n") {
                    let empty = at == 0;
                    buffer.drain(..at + 2);
                    if empty {
                        return Ok(body);
                    }
                    continue;
                }
                if buffer.len() > MAX_HEAD_BYTES {
                    return Err(ReadError::Refuse(431, "chunk trailers too large"));
                }
                fill(stream, buffer, deadline)?;
            }
        }
        if body.len().saturating_add(size) > MAX_BODY_BYTES {
            return Err(ReadError::Refuse(413, "request body too large (16 MiB at most)"));
        }
        while buffer.len() < size + 2 {
            fill(stream, buffer, deadline)?;
        }
        body.extend_from_slice(&buffer[..size]);
        if &buffer[size..size + 2] != b"\r\n" {
            return Err(ReadError::Refuse(400, "malformed chunk"));
        }
        buffer.drain(..size + 2);
    }
}

/// The reason phrase of a status code.
fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

fn write_response(stream: &mut TcpStream, response: &Response, keep_alive: bool, head_only: bool) -> std::io::Result<()> {
    let mut out = format!("HTTP/1.1 {} {}\r\nserver: shmq/{}\r\n", response.status, reason(response.status), env!("CARGO_PKG_VERSION"));
    for (name, value) in &response.headers {
        // Header values are ours, but may carry names: no line breaks.
        let value: String = value.chars().filter(|c| *c != '\r' && *c != '\n').collect();
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!("content-length: {}\r\n", response.body.len()));
    if !keep_alive {
        out.push_str("connection: close\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    if !head_only {
        bytes.extend_from_slice(&response.body);
    }
    stream.write_all(&bytes)?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(handler: Arc<Handler>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || serve(listener, 2, handler));
        addr
    }

    fn exchange(addr: SocketAddr, bytes: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(bytes).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn answers_pipelined_requests_and_decodes_chunked_bodies() {
        let addr = server(Arc::new(|r: &Request| {
            Response::new(200, "text/plain", format!("{} {} {}", r.method, r.path, r.body.len()).into_bytes())
        }));
        let out = exchange(
            addr,
            b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nGET /c HTTP/1.1\r\nConnection: close\r\n\r\n",
        );
        assert!(out.contains("GET /a 0"), "{out}");
        assert!(out.contains("POST /b 5"), "{out}");
        assert!(out.contains("GET /c 0"), "{out}");
    }

    #[test]
    fn refuses_oversized_heads_and_bodies_before_reading_them() {
        let addr = server(Arc::new(|_: &Request| Response::empty(204)));
        let big_header = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(MAX_HEAD_BYTES));
        assert!(exchange(addr, big_header.as_bytes()).starts_with("HTTP/1.1 431"));
        let big_body = format!("PUT / HTTP/1.1\r\nContent-Length: {}\r\n\r\n", MAX_BODY_BYTES + 1);
        assert!(exchange(addr, big_body.as_bytes()).starts_with("HTTP/1.1 413"));
        assert!(exchange(addr, b"NOT HTTP AT ALL\r\n\r\n").starts_with("HTTP/1.1 400"));
        let bad_length = "PUT / HTTP/1.1\r\nContent-Length: many\r\n\r\n";
        assert!(exchange(addr, bad_length.as_bytes()).starts_with("HTTP/1.1 400"));
    }

    #[test]
    fn a_panicking_handler_is_a_500_and_the_server_goes_on() {
        let addr = server(Arc::new(|r: &Request| if r.path == "/boom" { panic!("boom") } else { Response::empty(204) }));
        assert!(exchange(addr, b"GET /boom HTTP/1.1\r\nConnection: close\r\n\r\n").starts_with("HTTP/1.1 500"));
        assert!(exchange(addr, b"GET /ok HTTP/1.1\r\nConnection: close\r\n\r\n").starts_with("HTTP/1.1 204"));
    }
}

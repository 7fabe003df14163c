//! Message properties: what a publisher sets ([`Properties`]) and what a
//! consumer reads back ([`PropertiesRef`]), encoded without heap allocation.
//!
//! Wire format (docs/LAYOUT.md, "Record"): a sequence of fields, each a tag
//! byte then its value. Short strings are `len: u8` + bytes (AMQP's
//! shortstr, so 255 bytes at most); integers are little-endian.

use crate::error::PublishError;

mod headers;
pub(crate) use headers::{encode_array_unchecked, Reader};
pub use headers::{HeaderArray, HeaderArrayIter, HeaderValue, Headers, HeadersIter, MAX_DEPTH as MAX_HEADER_DEPTH};

const TAG_ROUTING_KEY: u8 = 1;
const TAG_CONTENT_TYPE: u8 = 2;
const TAG_CONTENT_ENCODING: u8 = 3;
const TAG_CORRELATION_ID: u8 = 4;
const TAG_REPLY_TO: u8 = 5;
const TAG_MESSAGE_ID: u8 = 6;
const TAG_EXPIRATION: u8 = 7;
const TAG_TIMESTAMP: u8 = 8;
const TAG_PRIORITY: u8 = 9;
const TAG_DELIVERY_MODE: u8 = 10;
const TAG_TYPE: u8 = 11;
const TAG_USER_ID: u8 = 12;
const TAG_APP_ID: u8 = 13;
const TAG_EXCHANGE: u8 = 14;
const TAG_HEADERS: u8 = 20;

/// Properties a publisher attaches to a message, borrowed from the caller so
/// that publishing allocates nothing. Mirrors AMQP's basic properties.
///
/// # Examples
/// ```
/// use shmq::{HeaderValue, Properties};
/// let headers = [("attempt", HeaderValue::Int(1))];
/// let props = Properties::new()
///     .content_type("application/json")
///     .correlation_id("req-42")
///     .reply_to("amq.gen-reply")
///     .headers(&headers);
/// assert_eq!(props.correlation_id, Some("req-42"));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Properties<'a> {
    /// The routing key the message was published with.
    pub routing_key: Option<&'a str>,
    /// The exchange the message was published to (set by routing).
    pub exchange: Option<&'a str>,
    /// MIME type of the body.
    pub content_type: Option<&'a str>,
    /// Encoding of the body (e.g. gzip).
    pub content_encoding: Option<&'a str>,
    /// Correlates an RPC reply with its request.
    pub correlation_id: Option<&'a str>,
    /// Queue to send an RPC reply to.
    pub reply_to: Option<&'a str>,
    /// Application message id.
    pub message_id: Option<&'a str>,
    /// Per-message TTL in milliseconds, as a decimal string (as in AMQP).
    pub expiration: Option<&'a str>,
    /// Seconds since the Unix epoch.
    pub timestamp: Option<u64>,
    /// 0–9 (carried; queues deliver in FIFO order).
    pub priority: Option<u8>,
    /// 1 = transient, 2 = persistent (carried; see docs/GUARANTEES.md).
    pub delivery_mode: Option<u8>,
    /// Application message type.
    pub kind: Option<&'a str>,
    /// Publishing user.
    pub user_id: Option<&'a str>,
    /// Publishing application.
    pub app_id: Option<&'a str>,
    /// The headers table.
    pub headers: &'a [(&'a str, HeaderValue<'a>)],
}

macro_rules! setters {
    ($($name:ident: $ty:ty),* $(,)?) => {
        $(
            #[doc = concat!("Sets `", stringify!($name), "`.")]
            ///
            /// # Examples
            /// ```
            /// let p = shmq::Properties::new();
            #[doc = concat!("assert!(p.", stringify!($name), ".is_none());")]
            /// ```
            #[must_use]
            pub fn $name(mut self, value: $ty) -> Self {
                self.$name = Some(value);
                self
            }
        )*
    };
}

impl<'a> Properties<'a> {
    /// No properties set.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(shmq::Properties::new(), shmq::Properties::default());
    /// ```
    pub const fn new() -> Self {
        Self {
            routing_key: None,
            exchange: None,
            content_type: None,
            content_encoding: None,
            correlation_id: None,
            reply_to: None,
            message_id: None,
            expiration: None,
            timestamp: None,
            priority: None,
            delivery_mode: None,
            kind: None,
            user_id: None,
            app_id: None,
            headers: &[],
        }
    }

    setters! {
        routing_key: &'a str, exchange: &'a str, content_type: &'a str, content_encoding: &'a str,
        correlation_id: &'a str, reply_to: &'a str, message_id: &'a str, expiration: &'a str,
        timestamp: u64, priority: u8, delivery_mode: u8, kind: &'a str, user_id: &'a str, app_id: &'a str,
    }

    /// Sets the headers table.
    ///
    /// # Examples
    /// ```
    /// let h = [("x", shmq::HeaderValue::Bool(true))];
    /// assert_eq!(shmq::Properties::new().headers(&h).headers.len(), 1);
    /// ```
    #[must_use]
    pub fn headers(mut self, headers: &'a [(&'a str, HeaderValue<'a>)]) -> Self {
        self.headers = headers;
        self
    }

    fn short_strings(&self) -> [(u8, Option<&'a str>); 12] {
        [
            (TAG_ROUTING_KEY, self.routing_key),
            (TAG_EXCHANGE, self.exchange),
            (TAG_CONTENT_TYPE, self.content_type),
            (TAG_CONTENT_ENCODING, self.content_encoding),
            (TAG_CORRELATION_ID, self.correlation_id),
            (TAG_REPLY_TO, self.reply_to),
            (TAG_MESSAGE_ID, self.message_id),
            (TAG_EXPIRATION, self.expiration),
            (TAG_TYPE, self.kind),
            (TAG_USER_ID, self.user_id),
            (TAG_APP_ID, self.app_id),
            (0, None),
        ]
    }

    /// The per-message TTL in milliseconds, if `expiration` is set.
    ///
    /// # Errors
    /// `InvalidProperty` if `expiration` is not a non-negative integer.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(shmq::Properties::new().expiration("1500").ttl_ms(), Ok(Some(1500)));
    /// assert!(shmq::Properties::new().expiration("soon").ttl_ms().is_err());
    /// ```
    pub fn ttl_ms(&self) -> Result<Option<u64>, PublishError> {
        match self.expiration {
            None => Ok(None),
            Some(text) => match text.parse::<u64>() {
                Ok(ms) if ms <= crate::options::MAX_TTL_MS => Ok(Some(ms)),
                Ok(_) => Err(PublishError::InvalidProperty("expiration is over 4294967295 ms, RabbitMQ's limit")),
                Err(_) => Err(PublishError::InvalidProperty("expiration must be a whole number of milliseconds, e.g. \"60000\"")),
            },
        }
    }

    /// Bytes these properties take encoded.
    ///
    /// # Errors
    /// `InvalidProperty` if a string is over 255 bytes or the headers table
    /// is too large.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(shmq::Properties::new().encoded_len(), Ok(0));
    /// assert_eq!(shmq::Properties::new().content_type("a").encoded_len(), Ok(3));
    /// ```
    pub fn encoded_len(&self) -> Result<usize, PublishError> {
        let mut len = 0usize;
        for (_, value) in self.short_strings() {
            if let Some(s) = value {
                if s.len() > 255 {
                    return Err(PublishError::InvalidProperty("a property string is over 255 bytes"));
                }
                len += 2 + s.len();
            }
        }
        len += self.timestamp.map_or(0, |_| 9);
        len += self.priority.map_or(0, |_| 2);
        len += self.delivery_mode.map_or(0, |_| 2);
        if !self.headers.is_empty() {
            len += 5 + headers::table_len(self.headers)?;
        }
        Ok(len)
    }

    /// Encodes into `out`, which must be exactly [`encoded_len`] bytes.
    ///
    /// [`encoded_len`]: Properties::encoded_len
    pub(crate) fn encode(&self, out: &mut [u8]) {
        let mut w = Writer { out, at: 0 };
        for (tag, value) in self.short_strings() {
            if let Some(s) = value {
                w.put(&[tag, s.len() as u8]);
                w.put(s.as_bytes());
            }
        }
        if let Some(t) = self.timestamp {
            w.put(&[TAG_TIMESTAMP]);
            w.put(&t.to_le_bytes());
        }
        if let Some(p) = self.priority {
            w.put(&[TAG_PRIORITY, p]);
        }
        if let Some(m) = self.delivery_mode {
            w.put(&[TAG_DELIVERY_MODE, m]);
        }
        if !self.headers.is_empty() {
            // Checked by `encoded_len` before the claim; the size alone now.
            let len = headers::table_size(self.headers) as u32;
            w.put(&[TAG_HEADERS]);
            w.put(&len.to_le_bytes());
            headers::write_table(&mut w, self.headers);
        }
        debug_assert_eq!(w.at, w.out.len());
    }
}

pub(crate) struct Writer<'o> {
    pub(crate) out: &'o mut [u8],
    pub(crate) at: usize,
}

impl Writer<'_> {
    #[inline]
    pub(crate) fn put(&mut self, bytes: &[u8]) {
        self.out[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len();
    }
}

/// Properties of a received message, borrowed from the message's bytes in
/// shared memory. Parsed and validated once, allocation-free.
///
/// # Examples
/// ```
/// # #[cfg(not(shmq_loom))] {
/// # let dir = std::env::temp_dir().join(format!("shmq-doc-props-{}", std::process::id()));
/// # let ns = shmq::Namespace::open_dir(&dir).unwrap();
/// ns.declare_queue("q", &shmq::QueueOptions::default()).unwrap();
/// let mut producer = ns.producer("q").unwrap();
/// producer.publish_with(&shmq::Properties::new().message_id("m1"), b"x").unwrap();
/// let consumer = ns.consumer("q", shmq::ConsumerOptions::default()).unwrap();
/// let delivery = consumer.try_recv().unwrap();
/// assert_eq!(delivery.properties().message_id, Some("m1"));
/// # drop(delivery); drop(consumer); drop(producer);
/// # std::fs::remove_dir_all(&dir).ok();
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PropertiesRef<'a> {
    /// See [`Properties::routing_key`].
    pub routing_key: Option<&'a str>,
    /// See [`Properties::exchange`].
    pub exchange: Option<&'a str>,
    /// See [`Properties::content_type`].
    pub content_type: Option<&'a str>,
    /// See [`Properties::content_encoding`].
    pub content_encoding: Option<&'a str>,
    /// See [`Properties::correlation_id`].
    pub correlation_id: Option<&'a str>,
    /// See [`Properties::reply_to`].
    pub reply_to: Option<&'a str>,
    /// See [`Properties::message_id`].
    pub message_id: Option<&'a str>,
    /// See [`Properties::expiration`].
    pub expiration: Option<&'a str>,
    /// See [`Properties::timestamp`].
    pub timestamp: Option<u64>,
    /// See [`Properties::priority`].
    pub priority: Option<u8>,
    /// See [`Properties::delivery_mode`].
    pub delivery_mode: Option<u8>,
    /// See [`Properties::kind`].
    pub kind: Option<&'a str>,
    /// See [`Properties::user_id`].
    pub user_id: Option<&'a str>,
    /// See [`Properties::app_id`].
    pub app_id: Option<&'a str>,
    /// The headers table.
    pub headers: Headers<'a>,
}

impl<'a> PropertiesRef<'a> {
    /// Parses and validates encoded properties (as
    /// [`Delivery::properties_bytes`](crate::Delivery::properties_bytes)
    /// gives them); `None` if malformed.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(shmq::PropertiesRef::parse(&[]), Some(shmq::PropertiesRef::default()));
    /// assert_eq!(shmq::PropertiesRef::parse(&[0xff]), None);
    /// ```
    pub fn parse(bytes: &'a [u8]) -> Option<Self> {
        let mut p = PropertiesRef::default();
        let mut r = Reader { bytes, at: 0 };
        while !r.done() {
            match r.byte()? {
                TAG_ROUTING_KEY => p.routing_key = Some(r.short_str()?),
                TAG_EXCHANGE => p.exchange = Some(r.short_str()?),
                TAG_CONTENT_TYPE => p.content_type = Some(r.short_str()?),
                TAG_CONTENT_ENCODING => p.content_encoding = Some(r.short_str()?),
                TAG_CORRELATION_ID => p.correlation_id = Some(r.short_str()?),
                TAG_REPLY_TO => p.reply_to = Some(r.short_str()?),
                TAG_MESSAGE_ID => p.message_id = Some(r.short_str()?),
                TAG_EXPIRATION => p.expiration = Some(r.short_str()?),
                TAG_TYPE => p.kind = Some(r.short_str()?),
                TAG_USER_ID => p.user_id = Some(r.short_str()?),
                TAG_APP_ID => p.app_id = Some(r.short_str()?),
                TAG_TIMESTAMP => p.timestamp = Some(r.u64()?),
                TAG_PRIORITY => p.priority = Some(r.byte()?),
                TAG_DELIVERY_MODE => p.delivery_mode = Some(r.byte()?),
                TAG_HEADERS => {
                    let len = r.u32()? as usize;
                    p.headers = Headers::from_encoded(r.take(len)?)?;
                }
                _ => return None,
            }
        }
        Some(p)
    }

    /// Borrows these as publishable [`Properties`], e.g. to forward a
    /// message; the headers table is left empty.
    ///
    /// # Examples
    /// ```
    /// let received = shmq::PropertiesRef::default();
    /// assert_eq!(received.to_properties(), shmq::Properties::new());
    /// ```
    pub fn to_properties(&self) -> Properties<'a> {
        Properties {
            routing_key: self.routing_key,
            exchange: self.exchange,
            content_type: self.content_type,
            content_encoding: self.content_encoding,
            correlation_id: self.correlation_id,
            reply_to: self.reply_to,
            message_id: self.message_id,
            expiration: self.expiration,
            timestamp: self.timestamp,
            priority: self.priority,
            delivery_mode: self.delivery_mode,
            kind: self.kind,
            user_id: self.user_id,
            app_id: self.app_id,
            headers: &[],
        }
    }
}

#[cfg(all(test, not(shmq_loom)))]
mod tests {
    use super::*;

    #[test]
    fn every_property_round_trips() {
        let headers = [
            ("s", HeaderValue::Str("text")),
            ("b", HeaderValue::Bytes(&[0, 1, 2])),
            ("i", HeaderValue::Int(-5)),
            ("f", HeaderValue::Float(2.5)),
            ("t", HeaderValue::Bool(true)),
            ("v", HeaderValue::Void),
        ];
        let props = Properties::new()
            .routing_key("rk")
            .exchange("ex")
            .content_type("ct")
            .content_encoding("ce")
            .correlation_id("cid")
            .reply_to("rt")
            .message_id("mid")
            .expiration("100")
            .timestamp(1_700_000_000)
            .priority(7)
            .delivery_mode(2)
            .kind("ty")
            .user_id("u")
            .app_id("a")
            .headers(&headers);
        let mut buf = vec![0u8; props.encoded_len().unwrap()];
        props.encode(&mut buf);
        let parsed = PropertiesRef::parse(&buf).unwrap();
        assert_eq!(parsed.to_properties(), Properties { headers: &[], ..props });
        let got: Vec<_> = parsed.headers.iter().collect();
        assert_eq!(got, headers.to_vec());
        assert_eq!(parsed.headers.get("i"), Some(HeaderValue::Int(-5)));
    }

    #[test]
    fn overlong_strings_are_rejected() {
        let long = "x".repeat(256);
        assert!(Properties::new().reply_to(&long).encoded_len().is_err());
        let headers = [(long.as_str(), HeaderValue::Void)];
        assert!(Properties::new().headers(&headers).encoded_len().is_err());
    }

    /// Every length in the encoding is read from shared memory: one claiming
    /// more than the bytes hold is refused (the parser borrows, so nothing
    /// is ever allocated for a claimed length).
    #[test]
    fn lengths_beyond_the_bytes_are_refused() {
        let max = u32::MAX.to_le_bytes();
        let mut headers_claim_4gib = vec![TAG_HEADERS];
        headers_claim_4gib.extend_from_slice(&max);
        headers_claim_4gib.extend_from_slice(&[0; 16]);
        assert!(PropertiesRef::parse(&headers_claim_4gib).is_none());
        for value in [headers::VALUE_STR, headers::VALUE_BYTES] {
            let mut entry = vec![1, b'k', value];
            entry.extend_from_slice(&max);
            entry.extend_from_slice(b"short");
            let mut bytes = vec![TAG_HEADERS];
            bytes.extend_from_slice(&(entry.len() as u32).to_le_bytes());
            bytes.extend_from_slice(&entry);
            assert!(PropertiesRef::parse(&bytes).is_none(), "value type {value}");
        }
        assert!(PropertiesRef::parse(&[TAG_MESSAGE_ID, 255, b'x']).is_none());
    }

    #[test]
    fn truncated_or_garbage_bytes_do_not_parse() {
        let props = Properties::new().content_type("text/plain").timestamp(5);
        let mut buf = vec![0u8; props.encoded_len().unwrap()];
        props.encode(&mut buf);
        for cut in 0..buf.len() {
            // Every strict prefix either parses (ends on a field boundary) or
            // is rejected; none panics.
            let _ = PropertiesRef::parse(&buf[..cut]);
        }
        assert!(PropertiesRef::parse(&[99]).is_none());
        assert!(PropertiesRef::parse(&[TAG_CONTENT_TYPE, 5, b'a']).is_none());
        assert!(PropertiesRef::parse(&[TAG_CONTENT_TYPE, 1, 0xFF]).is_none());
    }
}

#[cfg(all(test, not(shmq_loom)))]
mod proptests {
    use super::*;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 4000, failure_persistence: None, ..Default::default() })]

        /// Properties read from shared memory are untrusted: any bytes parse
        /// or are rejected, and iterating a parsed headers table never panics.
        #[test]
        fn parse_survives_arbitrary_bytes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            if let Some(p) = PropertiesRef::parse(&bytes) {
                let _ = p.headers.iter().count();
            }
        }
    }
}

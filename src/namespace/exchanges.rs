//! Declaring, deleting, binding and listing exchanges: the routing-table
//! side of [`Namespace`].

use crate::error::Error;
use crate::namespace::Namespace;
use crate::nsdir::validate_name;
use crate::routing::{ArgValue, Binding, Destination, ExchangeInfo, ExchangeOptions, Table};

fn validate_key(what: &'static str, key: &str) -> Result<(), Error> {
    if key.len() > 255 {
        return Err(Error::InvalidName { what, name: key.to_owned(), reason: "keys are at most 255 bytes".into() });
    }
    Ok(())
}

fn describe(options: &ExchangeOptions) -> String {
    let mut text = options.kind.to_string();
    if options.auto_delete {
        text.push_str(", auto-delete");
    }
    if options.durable {
        text.push_str(", durable");
    }
    if options.internal {
        text.push_str(", internal");
    }
    if let Some(a) = &options.alternate_exchange {
        text.push_str(&format!(", alternate-exchange {a}"));
    }
    text
}

impl Namespace {
    fn no_exchange(&self, table: &Table, name: &str) -> Error {
        let names: Vec<String> = table.exchanges.iter().map(|e| e.name.clone()).collect();
        let did_you_mean = crate::nsdir::closest(name, &names);
        Error::ExchangeNotFound { exchange: name.to_owned(), namespace: self.name().to_owned(), did_you_mean }
    }

    /// Declares an exchange: creates it, or checks that the existing one has
    /// the same options.
    ///
    /// # Errors
    /// `InvalidName`; `AccessRefused` for new `amq.*` names and the default
    /// exchange; `ExchangeConflict` if it exists with other options;
    /// `ExchangeNotFound` for a missing alternate exchange; `TableFull`.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-dx-{}", std::process::id()));
    /// use shmq::{ExchangeKind, ExchangeOptions};
    /// let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// ns.declare_exchange("logs", &ExchangeOptions::new(ExchangeKind::Fanout)).unwrap();
    /// let err = ns.declare_exchange("logs", &ExchangeOptions::new(ExchangeKind::Topic)).unwrap_err();
    /// assert!(matches!(err, shmq::Error::ExchangeConflict { .. }));
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn declare_exchange(&self, name: &str, options: &ExchangeOptions) -> Result<(), Error> {
        if name.is_empty() {
            return Err(Error::AccessRefused {
                name: name.to_owned(),
                reason: "the default exchange always exists and cannot be declared",
            });
        }
        validate_name("exchange", name)?;
        self.update_table(|table| {
            if let Some(existing) = table.exchange(name) {
                if existing.options != *options {
                    return Err(Error::ExchangeConflict {
                        exchange: name.to_owned(),
                        existing: describe(&existing.options),
                        requested: describe(options),
                    });
                }
                return Ok(());
            }
            if name.starts_with("amq.") {
                return Err(Error::AccessRefused { name: name.to_owned(), reason: "names starting with 'amq.' belong to shmq" });
            }
            if let Some(alternate) = &options.alternate_exchange {
                if table.exchange(alternate).is_none() {
                    return Err(self.no_exchange(table, alternate));
                }
            }
            table.exchanges.push(ExchangeInfo { name: name.to_owned(), options: options.clone(), builtin: false });
            Ok(())
        })
    }

    /// Checks that an exchange exists (passive declare) and returns it.
    ///
    /// # Errors
    /// `ExchangeNotFound`.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-dxp-{}", std::process::id()));
    /// let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// assert_eq!(ns.declare_exchange_passive("amq.topic").unwrap().options.kind, shmq::ExchangeKind::Topic);
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn declare_exchange_passive(&self, name: &str) -> Result<ExchangeInfo, Error> {
        let (_, table) = self.shared.routing.read()?;
        table.exchange(name).cloned().ok_or_else(|| self.no_exchange(&table, name))
    }

    /// Deletes an exchange and every binding from or to it.
    ///
    /// # Errors
    /// `ExchangeNotFound`; `ExchangeInUse` with `if_unused` while it is the
    /// source of bindings; `AccessRefused` for built-in exchanges.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-delx-{}", std::process::id()));
    /// use shmq::{ExchangeKind, ExchangeOptions};
    /// let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// ns.declare_exchange("x", &ExchangeOptions::new(ExchangeKind::Direct)).unwrap();
    /// ns.delete_exchange("x", true).unwrap();
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn delete_exchange(&self, name: &str, if_unused: bool) -> Result<(), Error> {
        self.update_table(|table| {
            let Some(existing) = table.exchange(name) else {
                return Err(self.no_exchange(table, name));
            };
            if existing.builtin {
                return Err(Error::AccessRefused { name: name.to_owned(), reason: "built-in exchanges cannot be deleted" });
            }
            let uses = table.bindings.iter().filter(|b| b.source == name).count();
            if if_unused && uses > 0 {
                return Err(Error::ExchangeInUse { exchange: name.to_owned(), bindings: uses });
            }
            table.exchanges.retain(|e| e.name != name);
            table.bindings.retain(|b| b.source != name && b.destination != Destination::Exchange(name.to_owned()));
            Ok(())
        })
    }

    /// Binds queue `queue` to `exchange` with `key` (and, for headers
    /// exchanges, `arguments`). Idempotent.
    ///
    /// # Errors
    /// `QueueNotFound`, `ExchangeNotFound`, `InvalidName` for a key over 255
    /// bytes, `AccessRefused` for the default exchange, `TableFull`.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-bind-{}", std::process::id()));
    /// let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// ns.declare_queue("errors", &Default::default()).unwrap();
    /// ns.bind_queue("errors", "amq.direct", "error", &[]).unwrap();
    /// assert_eq!(ns.list_bindings().unwrap().len(), 1);
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn bind_queue(&self, queue: &str, exchange: &str, key: &str, arguments: &[(String, ArgValue)]) -> Result<(), Error> {
        self.bind(Destination::Queue(queue.to_owned()), exchange, key, arguments, true)
    }

    /// Removes a queue binding (same exchange, key and arguments).
    ///
    /// # Errors
    /// `QueueNotFound`, `ExchangeNotFound`.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-unbind-{}", std::process::id()));
    /// let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// ns.declare_queue("q", &Default::default()).unwrap();
    /// ns.bind_queue("q", "amq.direct", "k", &[]).unwrap();
    /// ns.unbind_queue("q", "amq.direct", "k", &[]).unwrap();
    /// assert!(ns.list_bindings().unwrap().is_empty());
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn unbind_queue(&self, queue: &str, exchange: &str, key: &str, arguments: &[(String, ArgValue)]) -> Result<(), Error> {
        self.bind(Destination::Queue(queue.to_owned()), exchange, key, arguments, false)
    }

    /// Binds exchange `destination` to exchange `source` (exchange-to-exchange).
    ///
    /// # Errors
    /// As [`bind_queue`](Namespace::bind_queue).
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-bindx-{}", std::process::id()));
    /// let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// ns.bind_exchange("amq.fanout", "amq.topic", "#", &[]).unwrap();
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn bind_exchange(&self, destination: &str, source: &str, key: &str, arguments: &[(String, ArgValue)]) -> Result<(), Error> {
        self.bind(Destination::Exchange(destination.to_owned()), source, key, arguments, true)
    }

    /// Removes an exchange-to-exchange binding.
    ///
    /// # Errors
    /// As [`unbind_queue`](Namespace::unbind_queue).
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-unbindx-{}", std::process::id()));
    /// let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// ns.bind_exchange("amq.fanout", "amq.topic", "#", &[]).unwrap();
    /// ns.unbind_exchange("amq.fanout", "amq.topic", "#", &[]).unwrap();
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn unbind_exchange(&self, destination: &str, source: &str, key: &str, arguments: &[(String, ArgValue)]) -> Result<(), Error> {
        self.bind(Destination::Exchange(destination.to_owned()), source, key, arguments, false)
    }

    fn bind(&self, destination: Destination, source: &str, key: &str, arguments: &[(String, ArgValue)], add: bool) -> Result<(), Error> {
        validate_key("binding key", key)?;
        if source.is_empty() {
            return Err(Error::AccessRefused { name: String::new(), reason: "the default exchange binds every queue by name implicitly" });
        }
        self.update_table(|table| {
            if table.exchange(source).is_none() {
                return Err(self.no_exchange(table, source));
            }
            match &destination {
                Destination::Queue(q) if table.queue(q).is_none() => {
                    return Err(Error::QueueNotFound {
                        queue: q.clone(),
                        namespace: self.name().to_owned(),
                        did_you_mean: self.closest_queue(q),
                    });
                }
                Destination::Exchange(x) if table.exchange(x).is_none() => return Err(self.no_exchange(table, x)),
                _ => {}
            }
            if add && table.exchange(source).is_some_and(|x| x.options.kind == crate::ExchangeKind::Headers) {
                if let Some(None) = crate::routing::x_match(arguments) {
                    let value = arguments.iter().find(|(k, _)| k == "x-match").map(|(_, v)| v.to_string()).unwrap_or_default();
                    return Err(Error::InvalidArgument {
                        queue: destination.name().to_owned(),
                        argument: "x-match".to_owned(),
                        reason: format!("invalid x-match field value '{value}'; expected all, any, all-with-x, or any-with-x"),
                    });
                }
            }
            let binding =
                Binding { source: source.to_owned(), destination: destination.clone(), key: key.to_owned(), arguments: arguments.to_vec() };
            let present = table.bindings.contains(&binding);
            if add && !present {
                table.bindings.push(binding);
            } else if !add && present {
                table.remove_bindings(|b| *b == binding);
            }
            Ok(())
        })
    }

    /// Every exchange, built-in ones included (the default exchange `""` is
    /// implicit and not listed).
    ///
    /// # Errors
    /// `Corrupt` if the routing segment is damaged.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-lx-{}", std::process::id()));
    /// let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// let names: Vec<String> = ns.list_exchanges().unwrap().into_iter().map(|e| e.name).collect();
    /// assert!(names.contains(&"amq.topic".to_string()));
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn list_exchanges(&self) -> Result<Vec<ExchangeInfo>, Error> {
        Ok(self.shared.routing.read()?.1.exchanges)
    }

    /// Every binding.
    ///
    /// # Errors
    /// `Corrupt` if the routing segment is damaged.
    ///
    /// # Examples
    /// See [`bind_queue`](Namespace::bind_queue).
    pub fn list_bindings(&self) -> Result<Vec<Binding>, Error> {
        Ok(self.shared.routing.read()?.1.bindings)
    }

    /// `(published, unroutable)` messages counted for an exchange, summed
    /// over every process. Each publisher adds its counts every 64 publishes
    /// and when dropped, so a live one may not have added its latest yet.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-xstats-{}", std::process::id()));
    /// let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// let mut publisher = ns.publisher();
    /// publisher.publish("amq.direct", "nobody", &shmq::Properties::new(), b"x").unwrap();
    /// drop(publisher);
    /// assert_eq!(ns.exchange_stats("amq.direct"), (1, 1));
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn exchange_stats(&self, name: &str) -> (u64, u64) {
        self.shared.routing.exchange_counts(name)
    }

    /// The routing table's generation: it changes on every change.
    ///
    /// # Errors
    /// None today; reserved for damaged segments.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-gen-{}", std::process::id()));
    /// let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// let before = ns.routing_generation();
    /// ns.declare_queue("q", &Default::default()).unwrap();
    /// assert!(ns.routing_generation() > before);
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn routing_generation(&self) -> u64 {
        self.shared.routing.current_generation()
    }

    /// Messages published to an exchange that matched no queue (and were not
    /// mandatory), dropped and counted, in this namespace.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-unr-{}", std::process::id()));
    /// let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// ns.publisher().publish("amq.direct", "nobody", &shmq::Properties::new(), b"x").unwrap();
    /// assert_eq!(ns.unroutable_count(), 1);
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn unroutable_count(&self) -> u64 {
        self.shared.routing.unroutable().load(crate::sync::Ordering::Relaxed)
    }
}

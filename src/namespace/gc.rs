//! Garbage collection for tools (`shmq gc`): recovering what dead
//! processes left, and listing the processes attached.

use super::Namespace;
use crate::error::Error;
use crate::liveness;
use crate::nsdir::Sub;

impl Namespace {
    /// Recovers what dead processes left in every queue: requeues their
    /// unacked messages, skips their half-written ones, frees their handles
    /// and removes their liveness files. Attached handles do this on their
    /// own; this is for tools (`shmq gc`).
    ///
    /// # Errors
    /// `Io` if the namespace cannot be listed.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-gc-{}", std::process::id()));
    /// let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// assert_eq!(ns.collect_garbage().unwrap().requeued, 0);
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn collect_garbage(&self) -> Result<crate::ring::Recovered, Error> {
        let mut total = crate::ring::Recovered::default();
        let dir = &self.shared.dir;
        // Sweepers lock the rows they free with their own liveness token.
        let me = self.shared.peer()?;
        let mut live_ids = std::collections::HashSet::new();
        let extents = dir.list(Sub::Extents).unwrap_or_default();
        for name in self.list_queues()? {
            let Ok(chain) = self.chain(&name) else { continue };
            let prefix = format!("{:016x}.", chain.first.segment().config.queue_id);
            // A priority queue's levels, then its own chain.
            let levels: Vec<_> =
                crate::queue::priority::existing_levels(&chain.first).into_iter().map(crate::queue::chain::Chain::new).collect();
            for each in levels.iter().chain(std::iter::once(&chain)) {
                for handle in each.segments() {
                    let ring = &handle.ring;
                    let report = ring.recover(me.token, &mut |token| liveness::is_alive(dir, token));
                    ring.reclaim();
                    total.requeued += report.requeued;
                    total.abandoned += report.abandoned;
                    total.agents_freed += report.agents_freed;
                }
                each.retire();
            }
            // Rings behind a chain's head are retired: a retirer killed
            // between its `head` CAS and its unlink left the file (data and
            // all) where no retirer looks again. Remove it (never a chain's
            // ring 0, which holds the chain's state); give ring 0's data
            // pages back.
            let head_of = |level: u8| {
                if level == 0 {
                    return Some(chain.head());
                }
                levels.iter().find(|l| l.first.segment().config.level == level).map(|l| l.head())
            };
            for extent in &extents {
                let Some((level, seq)) = extent.strip_prefix(prefix.as_str()).and_then(crate::segment::parse_extent_name) else { continue };
                if seq > 0 && head_of(level).is_some_and(|head| seq < head) {
                    dir.unlink(Sub::Extents, extent);
                }
            }
            for each in levels.iter().chain(std::iter::once(&chain)) {
                if each.head() > 0 {
                    each.first.segment().release_data();
                }
            }
            live_ids.insert(prefix);
        }
        // Later rings of queues that are gone (a deleter that died midway);
        // a minute old at least, so not those of a queue declared since.
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let stale =
            |sub: Sub, name: &str| dir.stat(sub, name).is_some_and(|s| u64::try_from(s.st_mtime).is_ok_and(|t| now.saturating_sub(t) > 60));
        for extent in dir.list(Sub::Extents).unwrap_or_default() {
            if !live_ids.iter().any(|prefix| extent.starts_with(prefix.as_str())) && stale(Sub::Extents, &extent) {
                dir.unlink(Sub::Extents, &extent);
            }
        }
        // Exclusive and auto-delete queues of dead processes go with the
        // next table change; make one that changes nothing else.
        self.update_table(|_| Ok(()))?;
        // Segments a creator was building when it died stay in tmp/; nothing
        // builds one for a minute.
        for name in dir.list(Sub::Tmp).unwrap_or_default() {
            if stale(Sub::Tmp, &name) {
                dir.unlink(Sub::Tmp, &name);
            }
        }
        // Dead peers' files are removed by the liveness check itself.
        let _ = liveness::list_peers(dir);
        Ok(total)
    }

    /// `(token, alive, pid)` of every process attached to the namespace.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-peers-{}", std::process::id()));
    /// let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// assert!(ns.peers().is_empty());
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn peers(&self) -> Vec<(u64, bool, Option<u32>)> {
        liveness::list_peers(&self.shared.dir)
    }
}

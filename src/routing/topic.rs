//! Topic matching, exactly as RabbitMQ does it: words split on `.`, empty
//! words are words, the empty key is zero words, `*` is exactly one word,
//! `#` is zero or more words, and wildcards count only as whole words.

use std::collections::HashMap as StdHashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::HashMap;

/// Splits a key into words; the empty key has none.
fn words(key: &str) -> impl Iterator<Item = &str> + Clone {
    let mut split = key.split('.');
    let empty = key.is_empty();
    std::iter::from_fn(move || if empty { None } else { split.next() })
}

/// True if `routing_key` matches the topic `binding_key`.
///
/// Runs in time proportional to (binding-key words × routing-key words)
/// whatever the input: consecutive `#` words count as one, and the match is
/// a single dynamic-programming pass, never a backtracking search.
///
/// # Examples
/// ```
/// use shmq::topic_matches;
/// assert!(topic_matches("*.orange.*", "quick.orange.rabbit"));
/// assert!(topic_matches("lazy.#", "lazy"));
/// assert!(topic_matches("a.#.b", "a.b"));
/// assert!(topic_matches("#", ""));
/// assert!(!topic_matches("*", ""));
/// assert!(topic_matches("a.*.c", "a..c")); // the empty word is a word
/// assert!(!topic_matches("a#b", "a.x.b")); // `#` only counts as a whole word
/// assert!(topic_matches("#.#.#", "x")); // `#.#` is `#`
/// ```
pub fn topic_matches(binding_key: &str, routing_key: &str) -> bool {
    let key: Vec<&str> = words(routing_key).collect();
    // reach[j]: the binding-key words seen so far match the first j words
    // of the routing key.
    let mut reach = vec![false; key.len() + 1];
    reach[0] = true;
    let mut after_hash = false;
    for pattern in words(binding_key) {
        if pattern == "#" {
            if !after_hash {
                // Zero or more words: every j at or after a reachable one.
                for j in 1..reach.len() {
                    reach[j] |= reach[j - 1];
                }
            }
            after_hash = true;
            continue;
        }
        after_hash = false;
        for j in (1..reach.len()).rev() {
            reach[j] = reach[j - 1] && (pattern == "*" || pattern == key[j - 1]);
        }
        reach[0] = false;
        if !reach.contains(&true) {
            return false;
        }
    }
    reach[key.len()]
}

/// No such node (or word).
const NONE: u32 = u32::MAX;
/// `Node::word`: more than one literal child, look them up in `edges`.
const MANY: u32 = u32::MAX - 1;

/// A trie of topic binding keys, compiled once per routing-table generation
/// and matched as an NFA (see [`TopicTrie::matches`]).
#[derive(Debug)]
pub(crate) struct TopicTrie<T> {
    /// Random, set by the first insert (0: no bindings): names this trie in
    /// a caller's [`TopicScratch`] cache, which outlives any one trie.
    id: u64,
    nodes: Vec<Node>,
    /// Per node: the values of the binding keys that end there.
    values: Vec<Vec<T>>,
    /// Literal edges of nodes with several: `(node << 32) | word id` to the
    /// child node.
    edges: StdHashMap<u64, u32, BuildHasherDefault<EdgeHasher>>,
    /// Every literal word of every binding key, numbered.
    vocabulary: HashMap<Box<str>, u32>,
}

/// A trie node, kept small: the walk touches every active node per word.
#[derive(Clone, Copy, Debug)]
struct Node {
    /// Child through a `*` word, or `NONE`.
    star: u32,
    /// Child through a `#` word, or `NONE`.
    hash: u32,
    /// The word id of the only literal child, `NONE` or `MANY`.
    word: u32,
    /// The only literal child (when `word` is an id).
    word_child: u32,
    /// Reached through a `#` word: stays active on any further word.
    is_hash: bool,
    /// Some binding key ends here.
    has_values: bool,
}

impl Node {
    fn new(is_hash: bool) -> Self {
        Self { star: NONE, hash: NONE, word: NONE, word_child: NONE, is_hash, has_values: false }
    }

    /// Whether the node does anything in a set: consumes a word or ends a
    /// binding key. A node whose only edge is `#` (the `x` in `#.x.#`) only
    /// passes on to its `#` child, which `enter` adds anyway.
    fn in_sets(&self) -> bool {
        self.is_hash || self.star != NONE || self.word != NONE || self.has_values
    }
}

/// splitmix64's finaliser for the `u64` edge keys (FNV would hash them a
/// byte at a time).
#[derive(Default)]
pub(crate) struct EdgeHasher(u64);

impl Hasher for EdgeHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, v: u64) {
        let mut z = (self.0 ^ v).wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        self.0 = z ^ (z >> 31);
    }
}

/// Per-caller scratch space for [`TopicTrie::matches`]: the NFA's active
/// node sets, a mark per node, and a cache of the DFA states met so far,
/// reused across calls so matching allocates only when it first meets a
/// topic exchange or a larger trie.
#[derive(Debug, Default)]
pub(crate) struct TopicScratch {
    active: Vec<u32>,
    next: Vec<u32>,
    /// `marks[node] == epoch`: already in the set being built.
    marks: Vec<u32>,
    epoch: u32,
    /// Of the set being built: an order-independent hash of its nodes, and
    /// the distinct word ids of its literal edges (`set_any_word`: too many
    /// to list, or a node with several).
    set_hash: u64,
    set_words: [u32; STATE_WORDS],
    set_word_count: usize,
    set_any_word: bool,
    dfa: DfaCache,
}

/// Most literal word ids a DFA state lists (see `DfaState::word_count`).
const STATE_WORDS: usize = 8;

impl TopicScratch {
    /// Starts a new node set (a new epoch), sized for `nodes` nodes.
    fn begin(&mut self, nodes: usize) {
        if self.marks.len() < nodes {
            self.marks.resize(nodes, 0);
            self.active.reserve(nodes.saturating_sub(self.active.len()));
            self.next.reserve(nodes.saturating_sub(self.next.len()));
        }
        if self.epoch == u32::MAX {
            self.marks.fill(0);
            self.epoch = 0;
        }
        self.epoch += 1;
        self.next.clear();
        self.set_hash = 0;
        self.set_word_count = 0;
        self.set_any_word = false;
    }

    /// Notes that the set being built has a node whose literal edge is
    /// `word` (an id, `MANY` or `NONE`).
    #[inline]
    fn note_word(&mut self, word: u32) {
        match word {
            NONE => {}
            _ if self.set_any_word => {}
            MANY => self.set_any_word = true,
            id if self.set_words[..self.set_word_count].contains(&id) => {}
            _ if self.set_word_count == STATE_WORDS => self.set_any_word = true,
            id => {
                self.set_words[self.set_word_count] = id;
                self.set_word_count += 1;
            }
        }
    }

    /// The set just built (now `active`, marked with `epoch`) as a cached
    /// DFA state of `trie`; see [`DfaCache::intern`].
    fn intern_active(&mut self, trie: u64) -> Option<u32> {
        let Self { active, marks, epoch, set_hash, set_words, set_word_count, set_any_word, dfa, .. } = self;
        let words = (!*set_any_word).then_some(&set_words[..*set_word_count]);
        dfa.intern(trie, active, *set_hash, words, |node| marks[node as usize] == *epoch)
    }
}

/// Capacity of a [`DfaCache`]: states, node-set words, transitions. Reserved
/// once; when full the cache is emptied (never grown).
#[derive(Clone, Copy, Debug)]
struct DfaLimits {
    states: usize,
    set_words: usize,
    transitions: usize,
}

const DFA_LIMITS: DfaLimits = DfaLimits { states: 1024, set_words: 1 << 13, transitions: 2048 };

/// A lazily built DFA over the trie's NFA, as a bounded cache: each state is
/// a set of active trie nodes; each transition, (state, word id) to
/// state. A routing key seen before costs one lookup per word; a new one
/// costs the NFA step once per new (state, word) and fills the cache.
#[derive(Debug)]
struct DfaCache {
    limits: DfaLimits,
    states: Vec<DfaState>,
    /// The states' node sets, back to back.
    sets: Vec<u32>,
    /// The states' literal word ids, back to back.
    words: Vec<u32>,
    /// Hash of (trie id, node set) to a state with that set (checked).
    by_set: StdHashMap<u64, u32, BuildHasherDefault<EdgeHasher>>,
    /// `(state << 32) | word class` to the next state; the class is the word
    /// id if some node of the state has a literal edge for it, else `NONE`.
    transitions: StdHashMap<u64, u32, BuildHasherDefault<EdgeHasher>>,
    /// Times emptied: a state id held across an `intern` is stale if this
    /// moved.
    clears: u64,
}

#[derive(Clone, Copy, Debug)]
struct DfaState {
    trie: u64,
    /// Its node set: `sets[start..start + len]`.
    start: u32,
    len: u32,
    /// The word ids of its nodes' literal edges: `words[words_start..][..
    /// word_count]`, or every word if `word_count` is `ANY_WORD`. Words not
    /// listed all step alike, so they share one transition.
    words_start: u32,
    word_count: u32,
}

const ANY_WORD: u32 = u32::MAX;

impl Default for DfaCache {
    fn default() -> Self {
        Self::with_limits(DFA_LIMITS)
    }
}

impl DfaCache {
    fn with_limits(limits: DfaLimits) -> Self {
        Self {
            limits,
            states: Vec::new(),
            sets: Vec::new(),
            words: Vec::new(),
            by_set: Default::default(),
            transitions: Default::default(),
            clears: 0,
        }
    }

    fn clear(&mut self) {
        self.states.clear();
        self.sets.clear();
        self.words.clear();
        self.by_set.clear();
        self.transitions.clear();
        self.clears += 1;
    }

    fn set(&self, state: u32) -> &[u32] {
        let s = self.states[state as usize];
        &self.sets[s.start as usize..(s.start + s.len) as usize]
    }

    /// The class of a word in `state`: its id (looked up by `id` only if
    /// needed) if the state has a literal edge for it, else `NONE`.
    #[inline]
    fn class(&self, state: u32, id: impl FnOnce() -> u32) -> u32 {
        let s = self.states[state as usize];
        match s.word_count {
            0 => NONE,
            ANY_WORD => id(),
            n => {
                let id = id();
                let listed = &self.words[s.words_start as usize..(s.words_start + n) as usize];
                if listed.contains(&id) {
                    id
                } else {
                    NONE
                }
            }
        }
    }

    /// The state of trie `trie` whose node set is `set`, created if new
    /// (emptying a full cache first); `None` if the set is too large to be
    /// worth caching. `hash` is an order-independent hash of `set`, `in_set`
    /// tells membership (so sets compare without sorting), and `words` lists
    /// its literal word ids (`None`: any word).
    fn intern(&mut self, trie: u64, set: &[u32], hash: u64, words: Option<&[u32]>, in_set: impl Fn(u32) -> bool) -> Option<u32> {
        if self.states.capacity() == 0 {
            self.states.reserve_exact(self.limits.states);
            self.sets.reserve_exact(self.limits.set_words);
            self.words.reserve_exact(self.limits.states * STATE_WORDS);
            self.by_set.reserve(self.limits.states);
            self.transitions.reserve(self.limits.transitions);
        }
        if set.len() > self.limits.set_words / 8 {
            return None;
        }
        let mut hasher = EdgeHasher(hash);
        hasher.write_u64(trie);
        let hash = hasher.finish();
        if let Some(&state) = self.by_set.get(&hash) {
            let candidate = self.states[state as usize];
            // Same trie, same size, and every node of the candidate is in
            // `set`: the same set.
            if candidate.trie == trie && candidate.len as usize == set.len() && self.set(state).iter().all(|&n| in_set(n)) {
                return Some(state);
            }
        }
        if self.states.len() == self.limits.states || self.sets.len() + set.len() > self.limits.set_words {
            self.clear();
        }
        let state = self.states.len() as u32;
        let (words_start, word_count) = match words {
            Some(words) => (self.words.len() as u32, words.len() as u32),
            None => (0, ANY_WORD),
        };
        self.states.push(DfaState { trie, start: self.sets.len() as u32, len: set.len() as u32, words_start, word_count });
        self.sets.extend_from_slice(set);
        self.words.extend_from_slice(words.unwrap_or_default());
        self.by_set.insert(hash, state);
        Some(state)
    }
}

impl<T: Copy> TopicTrie<T> {
    pub(crate) fn new() -> Self {
        Self { id: 0, nodes: vec![Node::new(false)], values: vec![Vec::new()], edges: Default::default(), vocabulary: HashMap::default() }
    }

    /// The literal child of `at` for word id `id`, or `NONE`.
    #[inline]
    fn literal_child(&self, at: usize, id: u32) -> u32 {
        match self.nodes[at].word {
            NONE => NONE,
            MANY => self.edges.get(&edge(at, id)).copied().unwrap_or(NONE),
            only if only == id => self.nodes[at].word_child,
            _ => NONE,
        }
    }

    /// Adds a binding key, with consecutive `#` words collapsed to one
    /// (`#.#` matches exactly what `#` matches).
    pub(crate) fn insert(&mut self, binding_key: &str, value: T) {
        if self.id == 0 {
            self.id = crate::liveness::random_token();
        }
        let mut at = 0usize;
        let mut after_hash = false;
        for word in words(binding_key) {
            if word == "#" && after_hash {
                continue;
            }
            after_hash = word == "#";
            let id = match word {
                "*" | "#" => NONE,
                w => {
                    let next_id = u32::try_from(self.vocabulary.len()).ok().filter(|&n| n < MANY).expect("fewer than 2^32 - 2 words");
                    *self.vocabulary.entry(w.into()).or_insert(next_id)
                }
            };
            let existing = match word {
                "*" => self.nodes[at].star,
                "#" => self.nodes[at].hash,
                _ => self.literal_child(at, id),
            };
            if existing != NONE {
                at = existing as usize;
                continue;
            }
            let child = u32::try_from(self.nodes.len()).ok().filter(|&n| n < MANY).expect("fewer than 2^32 - 2 trie nodes");
            self.nodes.push(Node::new(word == "#"));
            self.values.push(Vec::new());
            let node = &mut self.nodes[at];
            match word {
                "*" => node.star = child,
                "#" => node.hash = child,
                _ => match node.word {
                    NONE => (node.word, node.word_child) = (id, child),
                    MANY => {
                        self.edges.insert(edge(at, id), child);
                    }
                    only => {
                        let only_child = node.word_child;
                        node.word = MANY;
                        self.edges.insert(edge(at, only), only_child);
                        self.edges.insert(edge(at, id), child);
                    }
                },
            }
            at = child as usize;
        }
        self.values[at].push(value);
        self.nodes[at].has_values = true;
    }

    /// Appends every value whose binding key matches `routing_key`, each
    /// matching binding key once (values shared by several keys may repeat;
    /// the caller dedups).
    ///
    /// The trie is an NFA: after each routing-key word, the set of trie
    /// nodes the words so far can reach, each node at most once (marked with
    /// the word's epoch). A `#` node stays in the set on every word and is
    /// entered without consuming one. So a step costs at most one visit per
    /// trie node and the walk is O(routing-key words × trie nodes) whatever
    /// the wildcards.
    ///
    /// Steps are cached in `scratch` as DFA transitions, so a key whose
    /// words lead through states met before costs a lookup per word. The
    /// root's `#`, `*` and literal subtries never share a node, so each is
    /// run as its own DFA thread: a first word that varies from key to key
    /// (`region17.x.x…`) then only makes new states in its own small
    /// thread, not new copies of the `#` thread's states. Allocation-free
    /// once `scratch` has met this trie.
    pub(crate) fn matches(&self, routing_key: &str, scratch: &mut TopicScratch, out: &mut Vec<T>) {
        if self.id == 0 {
            return; // no bindings
        }
        if !self.match_cached(routing_key, scratch, out) {
            self.match_uncached(routing_key, scratch, out);
        }
    }

    /// `matches` through the DFA cache; false (having added nothing) if a
    /// set was too large to cache or the cache emptied meanwhile.
    fn match_cached(&self, routing_key: &str, scratch: &mut TopicScratch, out: &mut Vec<T>) -> bool {
        let root = self.nodes[0];
        // Live threads: DFA states (up to three: the root's `#`, `*` and
        // literal subtries).
        let mut threads = [0u32; 3];
        let mut live = 0;
        if root.hash != NONE {
            let Some(state) = self.start_state(root.hash as usize, scratch) else { return false };
            threads[0] = state;
            live = 1;
        }
        let mut rest = words(routing_key);
        let Some(first) = rest.next() else {
            // The empty key: the root's own values (binding key "") and the
            // `#` subtrie's start.
            out.extend_from_slice(&self.values[0]);
            for &state in &threads[..live] {
                self.collect(scratch.dfa.set(state), out);
            }
            return true;
        };
        let mut first_id = None;
        if live == 1 {
            match self.advance(threads[0], first, &mut first_id, scratch) {
                Some(next) if scratch.dfa.states[next as usize].len == 0 => live = 0,
                Some(next) => threads[0] = next,
                None => return false,
            }
        }
        let literal = match root.word {
            NONE => NONE,
            _ => {
                let id = *first_id.get_or_insert_with(|| self.vocabulary.get(first).copied().unwrap_or(NONE));
                if id == NONE {
                    NONE
                } else {
                    self.literal_child(0, id)
                }
            }
        };
        for child in [root.star, literal] {
            if child != NONE {
                let Some(state) = self.start_state(child as usize, scratch) else { return false };
                threads[live] = state;
                live += 1;
            }
        }
        for word in rest {
            let mut id = None;
            let mut kept = 0;
            for i in 0..live {
                match self.advance(threads[i], word, &mut id, scratch) {
                    Some(next) if scratch.dfa.states[next as usize].len == 0 => {} // dead
                    Some(next) => {
                        threads[kept] = next;
                        kept += 1;
                    }
                    None => return false,
                }
            }
            live = kept;
            if live == 0 {
                return true;
            }
        }
        for &state in &threads[..live] {
            self.collect(scratch.dfa.set(state), out);
        }
        true
    }

    /// The cached state for the set `{at}` and what it reaches through `#`;
    /// `None` if the set is too large to cache or the cache had to be
    /// emptied (the caller's other state ids are stale then).
    fn start_state(&self, at: usize, scratch: &mut TopicScratch) -> Option<u32> {
        scratch.begin(self.nodes.len());
        self.enter(at, scratch);
        std::mem::swap(&mut scratch.active, &mut scratch.next);
        let clears = scratch.dfa.clears;
        scratch.intern_active(self.id).filter(|_| scratch.dfa.clears == clears)
    }

    /// The state after `word` from `state` (`id`: the word's id, looked up
    /// once per word if needed), from the cache or by one NFA step; `None`
    /// if the next set is too large to cache or the cache had to be emptied
    /// (the caller's other state ids are stale then).
    fn advance(&self, state: u32, word: &str, id: &mut Option<u32>, scratch: &mut TopicScratch) -> Option<u32> {
        let class = scratch.dfa.class(state, || *id.get_or_insert_with(|| self.vocabulary.get(word).copied().unwrap_or(NONE)));
        let key = u64::from(state) << 32 | u64::from(class);
        if let Some(&next) = scratch.dfa.transitions.get(&key) {
            return Some(next);
        }
        scratch.active.clear();
        let TopicScratch { active, dfa, .. } = &mut *scratch;
        active.extend_from_slice(dfa.set(state));
        self.step(word, Some(class), scratch);
        let clears = scratch.dfa.clears;
        if scratch.dfa.transitions.len() >= scratch.dfa.limits.transitions {
            scratch.dfa.clear();
        }
        let next = scratch.intern_active(self.id)?;
        if scratch.dfa.clears != clears {
            return None;
        }
        scratch.dfa.transitions.insert(key, next);
        Some(next)
    }

    /// `matches` by plain NFA steps, for sets too large to cache.
    fn match_uncached(&self, routing_key: &str, scratch: &mut TopicScratch, out: &mut Vec<T>) {
        scratch.begin(self.nodes.len());
        self.enter(0, scratch);
        std::mem::swap(&mut scratch.active, &mut scratch.next);
        for word in words(routing_key) {
            self.step(word, None, scratch);
            if scratch.active.is_empty() {
                return;
            }
        }
        self.collect(&scratch.active, out);
    }

    fn collect(&self, set: &[u32], out: &mut Vec<T>) {
        for &at in set {
            out.extend_from_slice(&self.values[at as usize]);
        }
    }

    /// One NFA step over `word` (its id if known) from `scratch.active`,
    /// leaving the next set in `scratch.active`.
    fn step(&self, word: &str, mut word_id: Option<u32>, scratch: &mut TopicScratch) {
        scratch.begin(self.nodes.len());
        for i in 0..scratch.active.len() {
            let at = scratch.active[i] as usize;
            let node = self.nodes[at];
            if node.is_hash {
                self.enter(at, scratch);
            }
            if node.star != NONE {
                self.enter(node.star as usize, scratch);
            }
            if node.word != NONE {
                // Looked up once per word, and only if some node has literal edges.
                let id = *word_id.get_or_insert_with(|| self.vocabulary.get(word).copied().unwrap_or(NONE));
                if id != NONE {
                    let child = self.literal_child(at, id);
                    if child != NONE {
                        self.enter(child as usize, scratch);
                    }
                }
            }
        }
        std::mem::swap(&mut scratch.active, &mut scratch.next);
    }

    /// Adds `at` to the set being built (unless it could do nothing there),
    /// with the `#` children it reaches without consuming a word. Inlined:
    /// the NFA step calls it up to three times per active node (-25 % on
    /// an uncached adversarial key).
    #[inline(always)]
    fn enter(&self, mut at: usize, scratch: &mut TopicScratch) {
        loop {
            if scratch.marks[at] == scratch.epoch {
                return;
            }
            scratch.marks[at] = scratch.epoch;
            let node = self.nodes[at];
            if node.in_sets() {
                scratch.next.push(at as u32);
                // Fibonacci hashing, summed: order-independent, and cheap
                // (collisions only cost a failed comparison in `intern`).
                scratch.set_hash = scratch.set_hash.wrapping_add((at as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
                scratch.note_word(node.word);
            }
            match node.hash {
                NONE => return,
                hash => at = hash as usize,
            }
        }
    }
}

fn edge(node: usize, word: u32) -> u64 {
    (node as u64) << 32 | u64::from(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RabbitMQ's own table: rabbitmq-server deps/rabbit/test/routing_SUITE.erl,
    /// `topic1`, first matching round (before bindings are removed).
    const BINDINGS: &[(&str, &str)] = &[
        ("a.b.c", "t1"),
        ("a.*.c", "t2"),
        ("a.#.b", "t3"),
        ("a.b.b.c", "t4"),
        ("#", "t5"),
        ("#.#", "t6"),
        ("#.b", "t7"),
        ("*.*", "t8"),
        ("a.*", "t9"),
        ("*.b.c", "t10"),
        ("a.#", "t11"),
        ("a.#.#", "t12"),
        ("b.b.c", "t13"),
        ("a.b.b", "t14"),
        ("a.b", "t15"),
        ("b.c", "t16"),
        ("", "t17"),
        ("*.*.*", "t18"),
        ("vodka.martini", "t19"),
        ("a.b.c", "t20"),
        ("*.#", "t21"),
        ("#.*.#", "t22"),
        ("*.#.#", "t23"),
        ("*", "t25"),
        ("#.b.#", "t26"),
        ("args-test", "t27"),
    ];

    const EXPECTED: &[(&str, &[&str])] = &[
        ("a.b.c", &["t1", "t2", "t5", "t6", "t10", "t11", "t12", "t18", "t20", "t21", "t22", "t23", "t26"]),
        ("a.b", &["t3", "t5", "t6", "t7", "t8", "t9", "t11", "t12", "t15", "t21", "t22", "t23", "t26"]),
        ("a.b.b", &["t3", "t5", "t6", "t7", "t11", "t12", "t14", "t18", "t21", "t22", "t23", "t26"]),
        ("", &["t5", "t6", "t17"]),
        ("b.c.c", &["t5", "t6", "t18", "t21", "t22", "t23", "t26"]),
        ("a.a.a.a.a", &["t5", "t6", "t11", "t12", "t21", "t22", "t23"]),
        ("vodka.gin", &["t5", "t6", "t8", "t21", "t22", "t23"]),
        ("vodka.martini", &["t5", "t6", "t8", "t19", "t21", "t22", "t23"]),
        ("b.b.c", &["t5", "t6", "t10", "t13", "t18", "t21", "t22", "t23", "t26"]),
        ("nothing.here.at.all", &["t5", "t6", "t21", "t22", "t23"]),
        ("oneword", &["t5", "t6", "t21", "t22", "t23", "t25"]),
        ("args-test", &["t5", "t6", "t21", "t22", "t23", "t25", "t27"]),
    ];

    /// The second round, after removing bindings 1, 5, 11, 19, 21 and 27
    /// (1-based positions in the suite's list, which has t27 twice).
    const REMOVED: &[usize] = &[0, 4, 10, 18, 20];
    const EXPECTED_AFTER_REMOVAL: &[(&str, &[&str])] = &[
        ("a.b.c", &["t2", "t6", "t10", "t12", "t18", "t20", "t22", "t23", "t26"]),
        ("a.b", &["t3", "t6", "t7", "t8", "t9", "t12", "t15", "t22", "t23", "t26"]),
        ("a.b.b", &["t3", "t6", "t7", "t12", "t14", "t18", "t22", "t23", "t26"]),
        ("", &["t6", "t17"]),
        ("b.c.c", &["t6", "t18", "t22", "t23", "t26"]),
        ("a.a.a.a.a", &["t6", "t12", "t22", "t23"]),
        ("vodka.gin", &["t6", "t8", "t22", "t23"]),
        ("vodka.martini", &["t6", "t8", "t22", "t23"]),
        ("b.b.c", &["t6", "t10", "t13", "t18", "t22", "t23", "t26"]),
        ("nothing.here.at.all", &["t6", "t22", "t23"]),
        ("oneword", &["t6", "t22", "t23", "t25"]),
        ("args-test", &["t6", "t22", "t23", "t25", "t27"]),
    ];

    fn check(bindings: &[(&str, &str)], expected: &[(&str, &[&str])]) {
        let mut trie = TopicTrie::new();
        for (i, (key, _)) in bindings.iter().enumerate() {
            trie.insert(key, i);
        }
        for (key, want) in expected {
            let mut by_fn: Vec<&str> = bindings.iter().filter(|(b, _)| topic_matches(b, key)).map(|(_, q)| *q).collect();
            by_fn.sort_unstable();
            by_fn.dedup();
            let mut scratch = TopicScratch::default();
            let mut hits = Vec::new();
            trie.matches(key, &mut scratch, &mut hits);
            let mut by_trie: Vec<&str> = hits.iter().map(|&i| bindings[i].1).collect();
            by_trie.sort_unstable();
            by_trie.dedup();
            let mut want: Vec<&str> = want.to_vec();
            want.sort_unstable();
            assert_eq!(by_fn, want, "topic_matches, routing key {key:?}");
            assert_eq!(by_trie, want, "trie, routing key {key:?}");
        }
    }

    #[test]
    fn rabbitmq_routing_suite_topic_table() {
        check(BINDINGS, EXPECTED);
    }

    #[test]
    fn rabbitmq_routing_suite_after_removing_bindings() {
        let kept: Vec<(&str, &str)> = BINDINGS.iter().enumerate().filter(|(i, _)| !REMOVED.contains(i)).map(|(_, b)| *b).collect();
        check(&kept, EXPECTED_AFTER_REMOVAL);
    }

    /// The trie's answer for one routing key: the sorted distinct values.
    fn trie_hits(trie: &TopicTrie<usize>, key: &str, scratch: &mut TopicScratch) -> Vec<usize> {
        let mut hits = Vec::new();
        trie.matches(key, scratch, &mut hits);
        hits.sort_unstable();
        hits.dedup();
        hits
    }

    fn repeat(word: &str, n: usize) -> String {
        vec![word; n].join(".")
    }

    /// Before the NFA walk, 18 `#` words took over a minute for one key.
    #[test]
    fn many_hash_words_match_without_backtracking() {
        let all_hashes = repeat("#", 40);
        let hashes_then_z = format!("{}.z", repeat("#", 40));
        let key = repeat("a", 60);
        assert!(topic_matches(&all_hashes, &key));
        assert!(!topic_matches(&hashes_then_z, &key));
        assert!(topic_matches(&hashes_then_z, &format!("{key}.z")));
        let mut trie = TopicTrie::new();
        trie.insert(&all_hashes, 0);
        trie.insert(&hashes_then_z, 1);
        let mut scratch = TopicScratch::default();
        assert_eq!(trie_hits(&trie, &key, &mut scratch), vec![0]);
        assert_eq!(trie_hits(&trie, &format!("{key}.z"), &mut scratch), vec![0, 1]);
        assert_eq!(trie_hits(&trie, "", &mut scratch), vec![0]);
    }

    /// `#.a.#.a.…` against `a.a.….b`: every split of the `a`s is a candidate,
    /// which a backtracking matcher tries one by one.
    #[test]
    fn alternating_hash_and_word_patterns_match_without_backtracking() {
        let pattern = format!("#.{}.#", repeat("a.#", 20));
        let many_a = repeat("a", 60);
        let then_b = format!("{many_a}.b");
        assert!(topic_matches(&pattern, &many_a));
        assert!(!topic_matches(&pattern, &repeat("a", 19)));
        assert!(topic_matches(&pattern, &then_b));
        let strict = format!("#.{}", repeat("a.#", 20)) + ".c";
        assert!(!topic_matches(&strict, &then_b));
        let mut trie = TopicTrie::new();
        trie.insert(&pattern, 0);
        trie.insert(&strict, 1);
        for i in 0..1000 {
            trie.insert(&format!("#.x{i}.#.a.#"), 2 + i);
        }
        let mut scratch = TopicScratch::default();
        assert_eq!(trie_hits(&trie, &then_b, &mut scratch), vec![0]);
        assert_eq!(trie_hits(&trie, &format!("{many_a}.c"), &mut scratch), vec![0, 1]);
        assert_eq!(trie_hits(&trie, "q.x7.a", &mut scratch), vec![9]);
    }

    /// The trie collapses `#.#` to `#` when a binding is inserted: a trie
    /// holding the long form must answer as the reference matcher does.
    #[test]
    fn consecutive_hash_words_are_one() {
        let mut scratch = TopicScratch::default();
        for (a, b) in [("#.#", "#"), ("a.#.#.b", "a.#.b"), ("#.#.*.#.#", "#.*.#"), ("#.#.#.a", "#.a")] {
            let mut trie = TopicTrie::new();
            trie.insert(a, 1usize);
            for key in ["", "a", "a.b", "a..b", "x.a.y.b", "b", "b.a", "x.y.z.a"] {
                let expected = if super::proptests::reference_matches(b, key) { vec![1] } else { vec![] };
                assert_eq!(trie_hits(&trie, key, &mut scratch), expected, "{a} (as {b}) on {key:?}");
                assert_eq!(
                    super::proptests::reference_matches(a, key),
                    super::proptests::reference_matches(b, key),
                    "reference: {a} vs {b} on {key:?}"
                );
            }
        }
    }

    /// One publisher's scratch serves every topic exchange (and every
    /// recompiled trie): cached states never leak between tries.
    #[test]
    fn one_scratch_serves_several_tries() {
        let mut first = TopicTrie::new();
        first.insert("a.*", 0);
        let mut second = TopicTrie::new();
        second.insert("a.b.#", 1);
        let mut scratch = TopicScratch::default();
        for _ in 0..3 {
            assert_eq!(trie_hits(&first, "a.b", &mut scratch), vec![0]);
            assert_eq!(trie_hits(&second, "a.b", &mut scratch), vec![1]);
            assert_eq!(trie_hits(&first, "a.b.c", &mut scratch), Vec::<usize>::new());
            assert_eq!(trie_hits(&second, "a.b.c", &mut scratch), vec![1]);
        }
        assert_eq!(trie_hits(&TopicTrie::new(), "a", &mut scratch), Vec::<usize>::new());
    }

    #[test]
    fn scratch_survives_epoch_wrap() {
        let mut trie = TopicTrie::new();
        trie.insert("a.#", 0);
        trie.insert("*.b", 1);
        let mut scratch = TopicScratch { epoch: u32::MAX - 3, ..TopicScratch::default() };
        for _ in 0..4 {
            assert_eq!(trie_hits(&trie, "a.b", &mut scratch), vec![0, 1]);
            assert_eq!(trie_hits(&trie, "c.b", &mut scratch), vec![1]);
        }
    }

    #[test]
    fn edge_cases_of_words_and_wildcards() {
        assert!(topic_matches("a.#.b", "a.b"));
        assert!(topic_matches("a.*.b", "a..b"));
        assert!(!topic_matches("a.*.b", "a.b"));
        assert!(topic_matches("a#b", "a#b"));
        assert!(!topic_matches("a#b", "a.b"));
        assert!(topic_matches("#", "..."));
        assert!(topic_matches("*.*.*.*", "..."));
        assert!(!topic_matches("", "a"));
        assert!(topic_matches("", ""));
        assert!(topic_matches("#.#.#", ""));
        assert!(topic_matches("*.*", "."));
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    /// The textbook definition, exponential but obviously right.
    fn reference(pattern: &[&str], key: &[&str]) -> bool {
        match pattern.split_first() {
            None => key.is_empty(),
            Some((&"#", rest)) => (0..=key.len()).any(|skip| reference(rest, &key[skip..])),
            Some((&"*", rest)) => !key.is_empty() && reference(rest, &key[1..]),
            Some((word, rest)) => key.first() == Some(word) && reference(rest, &key[1..]),
        }
    }

    pub(super) fn reference_matches(binding_key: &str, routing_key: &str) -> bool {
        let pattern: Vec<&str> = words(binding_key).collect();
        let key: Vec<&str> = words(routing_key).collect();
        reference(&pattern, &key)
    }

    fn pattern() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(vec!["a", "b", "", "*", "#", "#", "a#"]), 0..7).prop_map(|w| w.join("."))
    }

    fn key() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(vec!["a", "b", "", "*", "#"]), 0..7).prop_map(|w| w.join("."))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..Default::default() })]

        /// `topic_matches` and the trie (several bindings at once) agree with
        /// the reference on random keys with `*`, `#` and empty words.
        #[test]
        fn trie_and_topic_matches_agree_with_the_reference(
            patterns in prop::collection::vec(pattern(), 1..8),
            keys in prop::collection::vec(key(), 1..6),
        ) {
            let mut trie = TopicTrie::new();
            for (i, p) in patterns.iter().enumerate() {
                trie.insert(p, i);
            }
            let mut scratch = TopicScratch::default();
            // A cache so small that it empties all the time and most sets
            // are too large for it (plain NFA steps).
            let tiny = DfaLimits { states: 3, set_words: 16, transitions: 4 };
            let mut tiny_scratch = TopicScratch { dfa: DfaCache::with_limits(tiny), ..TopicScratch::default() };
            // Twice over: the second round answers from the cached DFA.
            for k in keys.iter().chain(&keys) {
                let want: Vec<usize> = (0..patterns.len()).filter(|&i| reference_matches(&patterns[i], k)).collect();
                let by_fn: Vec<usize> = (0..patterns.len()).filter(|&i| topic_matches(&patterns[i], k)).collect();
                prop_assert_eq!(&by_fn, &want, "topic_matches, key {:?}, patterns {:?}", k, patterns);
                for scratch in [&mut scratch, &mut tiny_scratch] {
                    let mut by_trie = Vec::new();
                    trie.matches(k, scratch, &mut by_trie);
                    by_trie.sort_unstable();
                    by_trie.dedup();
                    prop_assert_eq!(&by_trie, &want, "trie, key {:?}, patterns {:?}", k, patterns);
                }
            }
        }
    }
}

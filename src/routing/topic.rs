//! Topic matching, exactly as RabbitMQ does it: words split on `.`, empty
//! words are words, the empty key is zero words, `*` is exactly one word,
//! `#` is zero or more words, and wildcards count only as whole words.

use super::HashMap;

/// Splits a key into words; the empty key has none.
fn words(key: &str) -> impl Iterator<Item = &str> + Clone {
    let mut split = key.split('.');
    let empty = key.is_empty();
    std::iter::from_fn(move || if empty { None } else { split.next() })
}

/// True if `routing_key` matches the topic `binding_key`.
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
/// ```
pub fn topic_matches(binding_key: &str, routing_key: &str) -> bool {
    let pattern: Vec<&str> = words(binding_key).collect();
    let key: Vec<&str> = words(routing_key).collect();
    match_words(&pattern, &key)
}

fn match_words(pattern: &[&str], key: &[&str]) -> bool {
    match pattern.split_first() {
        None => key.is_empty(),
        Some((&"#", rest)) => (0..=key.len()).any(|skip| match_words(rest, &key[skip..])),
        Some((&"*", rest)) => !key.is_empty() && match_words(rest, &key[1..]),
        Some((word, rest)) => key.first() == Some(word) && match_words(rest, &key[1..]),
    }
}

/// A trie of topic binding keys, compiled once per routing-table generation.
#[derive(Debug, Default)]
pub(crate) struct TopicTrie<T> {
    nodes: Vec<Node<T>>,
}

#[derive(Debug)]
struct Node<T> {
    words: HashMap<String, usize>,
    star: Option<usize>,
    hash: Option<usize>,
    values: Vec<T>,
}

impl<T> Default for Node<T> {
    fn default() -> Self {
        Self { words: HashMap::default(), star: None, hash: None, values: Vec::new() }
    }
}

impl<T: Copy> TopicTrie<T> {
    pub(crate) fn new() -> Self {
        Self { nodes: vec![Node::default()] }
    }

    pub(crate) fn insert(&mut self, binding_key: &str, value: T) {
        let mut at = 0;
        for word in words(binding_key) {
            let next = match word {
                "*" => self.nodes[at].star,
                "#" => self.nodes[at].hash,
                w => self.nodes[at].words.get(w).copied(),
            };
            at = match next {
                Some(n) => n,
                None => {
                    let n = self.nodes.len();
                    self.nodes.push(Node::default());
                    match word {
                        "*" => self.nodes[at].star = Some(n),
                        "#" => self.nodes[at].hash = Some(n),
                        w => {
                            self.nodes[at].words.insert(w.to_owned(), n);
                        }
                    }
                    n
                }
            };
        }
        self.nodes[at].values.push(value);
    }

    /// Appends every value whose binding key matches; duplicates possible
    /// (the caller dedups). `spans` is scratch space for the key's words.
    pub(crate) fn matches(&self, routing_key: &str, spans: &mut Vec<(usize, usize)>, out: &mut Vec<T>) {
        spans.clear();
        if !routing_key.is_empty() {
            let mut start = 0;
            for (i, b) in routing_key.bytes().enumerate() {
                if b == b'.' {
                    spans.push((start, i));
                    start = i + 1;
                }
            }
            spans.push((start, routing_key.len()));
        }
        self.walk(0, routing_key, spans, out);
    }

    fn walk(&self, node: usize, key: &str, spans: &[(usize, usize)], out: &mut Vec<T>) {
        let n = &self.nodes[node];
        if spans.is_empty() {
            out.extend_from_slice(&n.values);
        }
        if let Some(hash) = n.hash {
            for skip in 0..=spans.len() {
                self.walk(hash, key, &spans[skip..], out);
            }
        }
        if let Some((&(start, end), rest)) = spans.split_first() {
            if let Some(star) = n.star {
                self.walk(star, key, rest, out);
            }
            if let Some(&next) = n.words.get(&key[start..end]) {
                self.walk(next, key, rest, out);
            }
        }
    }
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
            let mut scratch = Vec::new();
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

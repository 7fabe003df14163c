//! Topic matching (`shmq::topic_matches`) against a reference matcher
//! written here: a dynamic program over words, linear in
//! pattern words × key words, with RabbitMQ's rules (words split on `.`,
//! the empty key has no words, empty words are words, `*` is exactly one
//! word, `#` is zero or more, wildcards only as whole words).
//!
//! Input: `binding_key \n routing_key`, both UTF-8 and at most
//! `MAX_KEY` bytes (AMQP short strings are at most 255 bytes). A slow match
//! is a hang (`-timeout`).
const MAX_KEY: usize = 255;

fn words(key: &str) -> Vec<&str> {
    if key.is_empty() {
        Vec::new()
    } else {
        key.split('.').collect()
    }
}

/// `m[i][j]`: the first `i` pattern words match the first `j` key words.
pub fn reference(binding_key: &str, routing_key: &str) -> bool {
    let p = words(binding_key);
    let k = words(routing_key);
    let mut m = vec![vec![false; k.len() + 1]; p.len() + 1];
    m[0][0] = true;
    for i in 1..=p.len() {
        for j in 0..=k.len() {
            m[i][j] = match p[i - 1] {
                "#" => m[i - 1][j] || (j > 0 && m[i][j - 1]),
                "*" => j > 0 && m[i - 1][j - 1],
                word => j > 0 && m[i - 1][j - 1] && k[j - 1] == word,
            };
        }
    }
    m[p.len()][k.len()]
}

/// One input; panics on a failure.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Some((binding_key, routing_key)) = text.split_once('\n') else { return };
    if binding_key.len() > MAX_KEY || routing_key.len() > MAX_KEY {
        return;
    }
    let expected = reference(binding_key, routing_key);
    assert_eq!(
        shmq::topic_matches(binding_key, routing_key),
        expected,
        "topic_matches({binding_key:?}, {routing_key:?}) disagrees with the reference"
    );
}

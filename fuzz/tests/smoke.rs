//! The CI smoke run of every fuzz target (stable Rust, no coverage guidance): each committed
//! corpus file, then seeded mutations of them (bit flips, interesting values, inserts, cuts,
//! splices). `FV_FUZZ_EXECS=N` sets the mutations per target (default 10 000; 2000 for
//! vhost_user, whose inputs are whole connections, and 4000 for flow_offload); a failing input is
//! written to `target/fuzz-smoke/<target>-<n>` for `cargo +nightly fuzz run` to replay. The
//! coverage-guided runs are `fuzz/cargo-fuzz/` (docs/RELIABILITY.md).

use fpga_virtio_fuzz::TARGETS;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: &[u64] = &[
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0x1ff,
    0x200,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_fe00,
    0xffff_ffff,
    1 << 46,
    u64::MAX,
];

fn mutate(rng: &mut Rng, corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut v = corpus[rng.below(corpus.len())].clone();
    for _ in 0..1 + rng.below(8) {
        let at = rng.below(v.len().max(1));
        match rng.below(7) {
            0 if !v.is_empty() => v[at] ^= 1 << rng.below(8),
            1 if !v.is_empty() => v[at] = rng.next() as u8,
            2 => {
                let x = INTERESTING[rng.below(INTERESTING.len())].to_le_bytes();
                let n = [1, 2, 4, 8][rng.below(4)];
                for (k, b) in x.iter().take(n).enumerate() {
                    if let Some(slot) = v.get_mut(at + k) {
                        *slot = *b;
                    }
                }
            }
            3 => {
                let n = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                let at = at.min(v.len());
                v.splice(at..at, bytes);
            }
            4 if !v.is_empty() => {
                let n = (1 + rng.below(64)).min(v.len() - at);
                v.drain(at..at + n);
            }
            5 => {
                let other = &corpus[rng.below(corpus.len())];
                if !other.is_empty() {
                    let from = rng.below(other.len());
                    let n = (1 + rng.below(256)).min(other.len() - from);
                    let at = at.min(v.len());
                    let end = (at + n).min(v.len());
                    v.splice(at..end, other[from..from + n].iter().copied());
                }
            }
            _ => v.truncate(at),
        }
    }
    v
}

fn corpus(name: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(name);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

fn save(name: &str, n: usize, input: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fuzz-smoke");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(format!("{name}-{n}"));
    std::fs::write(&p, input).unwrap();
    p
}

fn smoke(name: &str, target: fn(&[u8])) {
    let seeds = corpus(name);
    assert!(!seeds.is_empty(), "{name}: empty corpus");
    // A vhost-user input is a whole connection (threads, a simulated device), a flow_offload
    // one a whole card run to the end of every timeout: fewer of them.
    let default = match name {
        "vhost_user" => 2000,
        "flow_offload" => 4000,
        _ => 10_000,
    };
    let execs: usize = std::env::var("FV_FUZZ_EXECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    let mut rng = Rng(0x5eed ^ name.len() as u64);
    let start = std::time::Instant::now();
    let inputs = seeds
        .iter()
        .cloned()
        .chain((0..execs).map(|_| mutate(&mut rng, &seeds)));
    for (n, input) in inputs.enumerate() {
        if catch_unwind(AssertUnwindSafe(|| target(&input))).is_err() {
            let p = save(name, n, &input);
            panic!("{name}: input {n} failed; saved to {}", p.display());
        }
    }
    eprintln!(
        "{name}: {} corpus inputs and {execs} mutations, no failure ({:.1?})",
        seeds.len(),
        start.elapsed()
    );
}

#[test]
fn every_target_survives_its_corpus_and_mutations_of_it() {
    for (name, target) in TARGETS {
        smoke(name, *target);
    }
}

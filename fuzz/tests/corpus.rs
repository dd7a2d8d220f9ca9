//! Replays the committed corpus and regressions of each fuzz target through the same function
//! the fuzzer runs, on stable Rust and without a fuzzing engine, so that every finding stays
//! fixed: `cargo test --manifest-path fuzz/Cargo.toml`.

use std::io::Write;
use std::path::Path;

/// Runs every file of `corpus/<target>` and `regressions/<target>` through `run`; returns how
/// many there were.
fn replay(target: &str, run: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut inputs: Vec<_> = ["corpus", "regressions"]
        .iter()
        .filter_map(|folder| std::fs::read_dir(root.join(folder).join(target)).ok())
        .flatten()
        .map(|entry| entry.expect("a readable corpus folder").path())
        .collect();
    inputs.sort();
    for input in &inputs {
        let data = std::fs::read(input).expect("a readable input");
        println!("replaying {}", input.display());
        run(&data);
    }
    // Written to stderr itself, past the test harness's capture, so that a passing run shows it;
    // the lines above show only when an input fails.
    let _ = writeln!(std::io::stderr(), "replayed {} inputs of {target}", inputs.len());
    inputs.len()
}

#[test]
fn abi_sequence_corpus_replays() {
    assert!(replay("abi_sequence", liblease_fuzz::abi_sequence) > 0, "the corpus is committed");
}

#[test]
fn values_corpus_replays() {
    assert!(replay("values", liblease_fuzz::values) > 0, "the corpus is committed");
}

//! Replays the committed corpus of each fuzz target through the same function the fuzzer runs,
//! on stable Rust and without a fuzzing engine: `cargo test --manifest-path fuzz/Cargo.toml`.

mod replay;

use replay::replay;

#[test]
fn abi_sequence_corpus_replays() {
    assert!(replay("corpus", "abi_sequence", liblease_fuzz::abi_sequence) > 0, "the corpus is committed");
}

#[test]
fn values_corpus_replays() {
    assert!(replay("corpus", "values", liblease_fuzz::values) > 0, "the corpus is committed");
}

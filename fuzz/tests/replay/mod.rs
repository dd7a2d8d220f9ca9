//! Replaying a folder of fuzz inputs, for tests/corpus.rs and tests/regressions.rs.

use std::io::Write;
use std::path::Path;

/// Runs every file of `<folder>/<target>` through `run`; returns how many there were.
pub fn replay(folder: &str, target: &str, run: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut inputs: Vec<_> = std::fs::read_dir(root.join(folder).join(target))
        .into_iter()
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
    let _ = writeln!(std::io::stderr(), "replayed {} inputs of {folder}/{target}", inputs.len());
    inputs.len()
}

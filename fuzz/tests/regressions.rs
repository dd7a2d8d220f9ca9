//! Replays the inputs that found bugs (regressions/<target>/), so that every finding stays
//! fixed (tests/findings.rs has them reduced). A test binary of its own: an input that fails
//! leaves liblease's state behind (guards held, say), which would fail the corpus's next inputs.

mod replay;

use replay::replay;

#[test]
fn abi_sequence_regressions_stay_fixed() {
    replay("regressions", "abi_sequence", liblease_fuzz::abi_sequence);
}

#[test]
fn values_regressions_stay_fixed() {
    replay("regressions", "values", liblease_fuzz::values);
}

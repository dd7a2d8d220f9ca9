//! The soak, run for a few seconds: it passes, and it prints its figures; and with a planted
//! bug (`--unsafe-writes`: a stopped and continued holder writes without the fence) its
//! stopped-holder check fails.

use std::process::{Command, Output};
use std::sync::Mutex;

/// One soak at a time: each runs eight processes, and the machine's cores are few.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const FIGURES: [&str; 12] = [
    "run time:",
    "processes:",
    "acquisitions:",
    "kills:",
    "stops:",
    "overlaps:",
    "lost detections:",
    "stopped holders' loss:",
    "rows committed:",
    "rows found:",
    "committed rows missing:",
    "integrity_check:",
];

fn soak(args: &[&str]) -> (Output, String) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let output =
        Command::new(env!("CARGO_BIN_EXE_lease-soak")).args(args).output().expect("lease-soak starts");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    eprintln!("lease-soak {}:\n{stdout}{}", args.join(" "), String::from_utf8_lossy(&output.stderr));
    (output, stdout)
}

/// The figure line that begins with `name`.
fn figure<'a>(stdout: &'a str, name: &str) -> &'a str {
    stdout.lines().find(|line| line.starts_with(name)).unwrap_or_else(|| panic!("no '{name}' line"))
}

#[test]
fn a_short_soak_passes_and_prints_its_figures() {
    let (output, stdout) = soak(&["--seconds", "5"]);
    assert!(output.status.success(), "the soak failed: {}", output.status);
    for name in FIGURES {
        figure(&stdout, name);
    }
    assert!(figure(&stdout, "overlaps:").ends_with(" 0"));
    assert!(figure(&stdout, "committed rows missing:").ends_with(" 0"));
    assert!(figure(&stdout, "integrity_check:").ends_with(" ok"));
    assert!(stdout.lines().any(|line| line == "result: PASS"));
}

#[test]
fn writes_without_the_fence_after_a_stop_fail_the_stopped_holder_check() {
    // The bug shows only where a holder was stopped past its lease and replaced; a run with no
    // such stop (they are drawn at random) proves nothing, and is run again.
    for attempt in 1..=3 {
        // A failed run keeps its directory: here it is the test's, removed once read.
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("unsafe-writes-{}-{attempt}", std::process::id()));
        let (output, stdout) = soak(&["--seconds", "12", "--unsafe-writes", "--dir", dir.to_str().unwrap()]);
        std::fs::remove_dir_all(&dir).expect("the run's directory is removed");
        let replaced = figure(&stdout, "stops:");
        if output.status.success() && replaced.contains(" 0 of them replaced") {
            eprintln!("attempt {attempt}: no holder was replaced while stopped; again");
            continue;
        }
        assert_eq!(output.status.code(), Some(1), "the soak did not fail its checks: {}", output.status);
        assert!(
            stdout
                .lines()
                .any(|line| line.starts_with("FAILED: stopped holder: ") && line.contains("before any loss")),
            "no stopped holder was caught writing before it saw the loss"
        );
        assert!(stdout.lines().any(|line| line == "result: FAIL"));
        return;
    }
    panic!("in three runs no holder was replaced while stopped");
}

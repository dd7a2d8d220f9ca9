//! Scenario 8: footprint. The size of the stripped shared library, with SQLite bundled and built
//! for the system's SQLite; the resident memory that opening a store, taking a lock, holding it,
//! and writing and reading a row add to a fresh process; and the threads the library starts.
//!
//! The shared libraries are built first (`cargo build --release -p liblease --lib`, and the same
//! with `--no-default-features --features system-sqlite`, no-ops when they are current), since
//! building this benchmark builds liblease only as a Rust library. Each is built into a target
//! directory of its own, `<target>/lease-bench-cdylib` and `<target>/lease-bench-cdylib-system`:
//! building the library's crate types in the shared one rewrites the rlib this benchmark links,
//! so that the next `cargo run` would rebuild the benchmark. Memory and threads are read from
//! /proc/self in a fresh worker process at each step.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::scenario_dir;
use crate::child::Worker;
use crate::contender::LockKind;
use crate::plot::Plot;
use crate::procfs;
use crate::report::{Figure, Measure, Section, Side};
use crate::worker::parse_fields;
use crate::{Config, Result};

type Steps = std::collections::HashMap<String, f64>;

pub fn run(config: &Config, _plots: &mut Vec<Plot>) -> Section {
    let hold = config.pick(Duration::from_millis(2_500), Duration::from_millis(300));
    let mut section = Section::new(8, "footprint");
    section.parameter("hold_s", hold.as_secs_f64());
    let Some(dir) = scenario_dir(&mut section, "footprint") else { return section };

    let libraries =
        [SqliteBuild::Bundled, SqliteBuild::System].map(|build| (build, shared_library(dir.path(), build)));
    let against = "the predecessor's lock";
    let no_library = Measure::Text("none (Rust only)".into());
    for (build, library) in &libraries {
        let (stripped, unstripped) = match library {
            Ok(sizes) => (
                match &sizes.stripped {
                    Ok(bytes) => Measure::Value(*bytes as f64 / 1024.0),
                    Err(why) => Measure::Unavailable(why.clone()),
                },
                Measure::Value(sizes.unstripped as f64 / 1024.0),
            ),
            Err(why) => (why.clone(), why.clone()),
        };
        section.figures.push(
            Figure::new(against, format!("liblease.so{}, stripped", build.label()), "KiB")
                .liblease(stripped, None)
                .baseline(no_library.clone(), None),
        );
        section.figures.push(
            Figure::new(against, format!("liblease.so{}, as built (not stripped)", build.label()), "KiB")
                .liblease(unstripped, None)
                .baseline(no_library.clone(), None),
        );
    }

    let side = |kind: LockKind| {
        let db = dir.path().join(format!("{}.db", kind.name()));
        Side::unless(procfs::unavailable(), || steps(kind, &db, hold))
    };
    let (liblease, predecessor) = (side(LockKind::Liblease), side(LockKind::Predecessor));
    let held = format!("open + take + hold {:.1} s", hold.as_secs_f64());
    let used = "that, then a row written and read";
    let rows = [
        ("resident memory added: opening a store".to_owned(), "rss_open", "rss_start", "KiB"),
        ("resident memory added: taking the lock".to_owned(), "rss_lock", "rss_open", "KiB"),
        (format!("resident memory added: {held}"), "rss_held", "rss_start", "KiB"),
        (format!("threads started: {held}"), "threads_held", "threads_start", "threads"),
        (format!("resident memory added (VmRSS): {used}"), "rss_used", "rss_start", "KiB"),
        (format!("dirty memory added (RssAnon): {used}"), "anon_used", "anon_start", "KiB"),
        (format!("threads started: {used}"), "threads_used", "threads_start", "threads"),
    ];
    for (metric, after, before, unit) in rows {
        let delta =
            |steps: &Steps| steps.get(after).unwrap_or(&f64::NAN) - steps.get(before).unwrap_or(&f64::NAN);
        section.figures.push(
            Figure::new(against, metric, unit)
                .liblease(liblease.measure(delta), liblease.count(|_| 1))
                .baseline(predecessor.measure(delta), predecessor.count(|_| 1)),
        );
    }
    for (build, library) in &libraries {
        if let Ok(sizes) = library {
            section.note(format!("library{}: {}", build.label(), sizes.path.display()));
        }
    }
    section.note(
        "memory and threads: VmRSS and RssAnon of /proc/self/status and the entries of /proc/self/task, read by a \
         fresh worker process (this benchmark's binary, SQLite linked in) before anything, after \
         opening (liblease: Store::open; baseline: its connection and table), after taking the lock \
         (liblease: Lock::new + try_acquire; baseline: its first acquire, which starts its heartbeat \
         thread), after holding it, and after writing a row and reading it back (liblease: \
         Database::open, execute, query; baseline: a plain rusqlite connection); one process each \
         (samples = processes). RssAnon counts the heap, stacks and private dirty pages, not code.",
    );
    section
}

fn steps(kind: LockKind, db: &Path, hold: Duration) -> Result<Steps> {
    let mut worker = Worker::spawn(
        "footprint",
        "footprint",
        &[
            ("kind", kind.name().to_owned()),
            ("db", db.display().to_string()),
            ("hold_ms", hold.as_millis().to_string()),
        ],
    )?;
    let steps = parse_fields(&worker.expect("footprint", hold + Duration::from_secs(15))?)?;
    worker.finish(Duration::from_secs(5))?;
    Ok(steps)
}

struct Sizes {
    path: PathBuf,
    unstripped: u64,
    /// The size of a stripped copy, or why there is none.
    stripped: std::result::Result<u64, String>,
}

/// Which SQLite a build of the shared library uses.
#[derive(Debug, Clone, Copy)]
enum SqliteBuild {
    /// Compiled in (the default feature, `bundled`).
    Bundled,
    /// The platform's libsqlite3 (`--no-default-features --features system-sqlite`).
    System,
}

impl SqliteBuild {
    /// How a figure names the build: nothing for the default.
    fn label(self) -> &'static str {
        match self {
            SqliteBuild::Bundled => "",
            SqliteBuild::System => " (system-SQLite build)",
        }
    }
}

/// Builds the shared library if cargo is at hand, then measures it and a stripped copy. The error
/// is the figure to show instead (unavailable or failed). Each build has a target directory of
/// its own, so that neither rebuilds the other.
fn shared_library(scratch: &Path, build: SqliteBuild) -> std::result::Result<Sizes, Measure> {
    let Some(cargo) = std::env::var_os("CARGO") else {
        return Err(Measure::Unavailable("run through cargo, which builds liblease.so first".into()));
    };
    let name = format!("{}lease{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX);
    let exe = std::env::current_exe().map_err(|e| Measure::Failed(e.to_string()))?;
    // This binary is <target>/<profile directory>/lease-bench.
    let (Some(profile_dir), Some(target)) = (exe.parent(), exe.parent().and_then(Path::parent)) else {
        return Err(Measure::Failed(format!("{} is not in a target directory", exe.display())));
    };
    let (target, features): (_, &[&str]) = match build {
        SqliteBuild::Bundled => (target.join("lease-bench-cdylib"), &[]),
        SqliteBuild::System => (
            target.join("lease-bench-cdylib-system"),
            &["--no-default-features", "--features", "system-sqlite"],
        ),
    };
    let path = target.join(profile_dir.file_name().unwrap_or_default()).join(&name);
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("bench/ is in the workspace");
    let profile = if cfg!(debug_assertions) { "dev" } else { "release" };
    let output = Command::new(cargo)
        .current_dir(workspace)
        .env("CARGO_TARGET_DIR", &target)
        .args(["build", "--quiet", "--profile", profile, "-p", "liblease", "--lib"])
        .args(features)
        .output()
        .map_err(|e| Measure::Failed(format!("cannot run cargo: {e}")))?;
    if !output.status.success() {
        return Err(Measure::Failed(format!(
            "cargo build of the library failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let unstripped = std::fs::metadata(&path)
        .map_err(|e| Measure::Failed(format!("cargo built no {}: {e}", path.display())))?
        .len();
    let copy = scratch.join(format!("{build:?}-{name}"));
    let stripped = match Command::new("strip").arg("-o").arg(&copy).arg(&path).output() {
        Ok(output) if output.status.success() => std::fs::metadata(&copy)
            .map(|m| m.len())
            .map_err(|e| format!("the stripped copy is missing: {e}")),
        Ok(output) => Err(format!("strip failed: {}", String::from_utf8_lossy(&output.stderr).trim())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err("strip is not installed".into()),
        Err(e) => Err(format!("cannot run strip: {e}")),
    };
    Ok(Sizes { path, unstripped, stripped })
}

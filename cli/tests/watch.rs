//! `lease watch` against a real holder: woken by the holder's commit, not by its timer.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use support::child::{run_role, PATIENCE};
use support::{hold, scratch, text, LONG};

#[test]
#[ignore = "not a test: the other process of the tests in this file, which run it with --ignored"]
fn child_process() {
    run_role(&[("holder", support::holder)]);
}

#[test]
fn a_lease_taken_while_watching_is_shown_at_once_without_waiting_for_the_next_refresh() {
    let (_dir, db) = scratch();
    drop(lease::Store::open(&db).unwrap());
    // Refreshed by its timer only every hour: a second frame within the test's patience can only
    // have been woken by the commit.
    let mut watch = Command::new(env!("CARGO_BIN_EXE_lease"))
        .args(["watch", text(&db), "--every", "3600"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (line, lines) = mpsc::channel();
    let stdout = watch.stdout.take().unwrap();
    std::thread::spawn(move || {
        for read in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.send(read).is_err() {
                break;
            }
        }
    });
    let next = || lines.recv_timeout(PATIENCE).expect("lease watch said more within the patience");
    // The first frame: no lease yet.
    while next() != "no leases" {}
    let (mut holder, _) = hold(&db, "sync", "app", LONG, "1000");
    let pid = holder.pid().to_string();
    let shown = loop {
        let line = next();
        if line.starts_with("sync ") {
            break line;
        }
    };
    let cells: Vec<&str> = shown.split_whitespace().collect();
    assert_eq!(&cells[..5], ["sync", "app", pid.as_str(), "yes", "held"], "{shown}");
    assert!(watch.try_wait().unwrap().is_none(), "lease watch goes on until interrupted");
    watch.kill().unwrap();
    watch.wait().unwrap();
    holder.finish();
}

#[test]
fn a_count_of_frames_ends_the_watch() {
    let (_dir, db) = scratch();
    drop(lease::Store::open(&db).unwrap());
    let ran = support::lease(&["watch", text(&db), "--every", "0.01", "--count", "3"]);
    assert_eq!(ran.code, 0, "{ran:?}");
    assert_eq!(ran.stdout.matches("--- lease watch: ").count(), 3, "{}", ran.stdout);
}

#[test]
fn watch_refuses_a_missing_database_and_a_bad_interval() {
    let (_dir, db) = scratch();
    let ran = support::lease(&["watch", text(&db), "--count", "1"]);
    assert_eq!(ran.code, 3, "{ran:?}");
    assert!(ran.stderr.starts_with("lease: "), "{ran:?}");
    let ran = support::lease(&["watch", text(&db), "--every", "0"]);
    assert_eq!(ran.code, 2, "{ran:?}");
}

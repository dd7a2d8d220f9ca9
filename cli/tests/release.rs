//! `lease release` against real holders: a live one is refused without --force and loses its
//! lease with it (its heartbeat and its fenced transactions both see LOST); a killed one, and a
//! stopped one whose lease ran out, are broken without it; a waiter gets the broken lease.

mod support;

use support::child::{run_role, Child};
use support::{await_entry, hold, lease, lease_entry, scratch, text, LONG};

#[test]
#[ignore = "not a test: the other process of the tests in this file, which run it with --ignored"]
fn child_process() {
    run_role(&[("holder", support::holder), ("acquirer", support::acquirer)]);
}

#[test]
fn a_live_holder_is_refused_without_force() {
    let (_dir, db) = scratch();
    let (mut holder, generation) = hold(&db, "sync", "app", LONG, "100");
    let ran = lease(&["release", text(&db), "sync"]);
    assert_eq!(ran.code, 1, "{ran:?}");
    assert!(ran.stdout.is_empty(), "{ran:?}");
    let pid = holder.pid();
    assert_eq!(
        ran.stderr,
        format!("lease: 'sync' is held by pid {pid} ('app'), which is alive; --force breaks it, and its holder loses it\n")
    );
    let entry = lease_entry(&db, "sync");
    assert_eq!((entry["held"].clone(), entry["generation"].clone()), (true.into(), generation.into()));
    holder.send("check");
    assert_eq!(holder.expect("CHECK"), "CHECK ok");
    holder.finish();
}

#[test]
fn force_breaks_a_live_holders_lease_and_its_heartbeat_finds_it_lost() {
    let (_dir, db) = scratch();
    let (mut holder, generation) = hold(&db, "sync", "app", LONG, "100");
    let ran = lease(&["release", text(&db), "sync", "--force"]);
    assert_eq!(ran.code, 0, "{ran:?}");
    let pid = holder.pid();
    assert!(
        ran.stderr.starts_with(&format!("lease: warning: breaking 'sync', held by pid {pid} ('app')")),
        "{ran:?}"
    );
    assert_eq!(ran.stderr.lines().count(), 1, "{ran:?}");
    assert_eq!(
        ran.stdout,
        format!(
            "released 'sync' (held, pid {pid} ('app'), which is alive): it is free, generation {}\n",
            generation + 1
        )
    );
    let entry = lease_entry(&db, "sync");
    assert_eq!(entry["state"], "free");
    assert_eq!(entry["generation"], generation + 1, "a takeover's generation");
    assert_eq!(entry["label"], lease::inspect::BREAKER_LABEL);

    // Its lease would last an hour: only the break can have ended it.
    holder.send("await-lost");
    let lost = holder.expect("LOST");
    assert!(lost.starts_with("LOST lost another holder took the lease on 'sync'"), "{lost}");
    holder.finish();
}

#[test]
fn force_fails_the_old_holders_fenced_transaction_at_once() {
    let (_dir, db) = scratch();
    // Renewed every half hour: the fence, not the heartbeat, finds the lease gone.
    let (mut holder, _) = hold(&db, "sync", "app", LONG, "1800000");
    holder.send("fence");
    assert_eq!(holder.expect("FENCED"), "FENCED ok");
    let ran = lease(&["release", text(&db), "sync", "--force"]);
    assert_eq!(ran.code, 0, "{ran:?}");
    holder.send("fence");
    let fenced = holder.expect("FENCED");
    assert!(fenced.starts_with("FENCED lost another holder took the lease on 'sync'"), "{fenced}");
    holder.send("check");
    assert!(holder.expect("CHECK").starts_with("CHECK lost"), "the failed fence marks the hold lost");
    holder.finish();
}

#[test]
fn force_lets_a_waiting_acquirer_in() {
    let (_dir, db) = scratch();
    let (mut holder, generation) = hold(&db, "sync", "app", LONG, "100");
    let mut waiter = Child::spawn("waiter", "acquirer", &[text(&db), "sync", "ext"]);
    waiter.expect("REFUSED");
    let ran = lease(&["release", text(&db), "sync", "--force"]);
    assert_eq!(ran.code, 0, "{ran:?}");
    // The waiter waits for an hour's lease at most twice the harness's patience: it can only
    // have got it through the break.
    assert_eq!(waiter.expect("ACQUIRED"), format!("ACQUIRED {}", generation + 2));
    let entry = lease_entry(&db, "sync");
    assert_eq!((entry["label"].clone(), entry["pid"].clone()), ("ext".into(), waiter.pid().into()));
    holder.send("await-lost");
    assert!(holder.expect("LOST").starts_with("LOST lost"));
    holder.finish();
    waiter.finish();
}

#[test]
fn a_killed_holders_lease_is_broken_without_force_and_taken_next() {
    let (_dir, db) = scratch();
    let (mut holder, generation) = hold(&db, "sync", "app", LONG, "1000");
    holder.signal(libc::SIGKILL);
    holder.wait();
    let ran = lease(&["release", text(&db), "sync"]);
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(ran.stderr.is_empty(), "no warning for a dead holder: {ran:?}");
    assert!(ran.stdout.contains("which is dead"), "{ran:?}");
    assert_eq!(lease_entry(&db, "sync")["state"], "free");
    let mut next = Child::spawn("next", "acquirer", &[text(&db), "sync", "ext"]);
    assert_eq!(next.expect("TOOK"), format!("TOOK {}", generation + 2));
    next.finish();
}

#[test]
fn a_stopped_holder_whose_lease_ran_out_is_broken_without_force_and_loses_it_when_continued() {
    let (_dir, db) = scratch();
    let (mut holder, generation) = hold(&db, "sync", "app", "300", "100");
    holder.signal(libc::SIGSTOP);
    holder.wait_until_stopped();
    await_entry(&db, "sync", "expired", |entry| entry["state"] == "expired");
    let ran = lease(&["release", text(&db), "sync"]);
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(ran.stderr.is_empty(), "a lease that ran out is broken without a warning: {ran:?}");
    assert!(ran.stdout.starts_with("released 'sync' (run out, "), "{ran:?}");
    assert_eq!(lease_entry(&db, "sync")["generation"], generation + 1);
    holder.signal(libc::SIGCONT);
    holder.send("await-lost");
    assert!(holder.expect("LOST").starts_with("LOST lost"));
    holder.finish();
}

#[test]
fn a_free_lease_is_left_alone_and_an_unknown_key_is_an_error() {
    let (_dir, db) = scratch();
    let (mut holder, generation) = hold(&db, "sync", "app", LONG, "1000");
    let pid = holder.pid();
    holder.finish();
    let ran = lease(&["release", text(&db), "sync"]);
    assert_eq!(ran.code, 0, "{ran:?}");
    assert_eq!(ran.stdout, format!("'sync' is free already (given back by pid {pid} ('app'))\n"));
    assert_eq!(lease_entry(&db, "sync")["generation"], generation, "nothing written");

    let ran = lease(&["release", text(&db), "export"]);
    assert_eq!(ran.code, 4, "{ran:?}");
    assert_eq!(ran.stderr, format!("lease: {}: no lease 'export'\n", db.display()));
}

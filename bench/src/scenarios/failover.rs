//! Scenario 4: failover. A holder process is killed (SIGKILL), or stopped (SIGSTOP), while
//! another process waits in acquire; the figure is the time from the signal to the waiter
//! holding the lease.
//!
//! Each trial: a holder takes the lease and idles; a waiter starts waiting; after 300 ms plus a
//! pause drawn up to one renewal period (so the signal falls at any phase of the holder's
//! heartbeat), the parent takes its CLOCK_MONOTONIC time and sends the signal; the waiter
//! answers with its time just after acquire returns. A stopped holder is then continued and
//! asked what it believes about its hold, and killed.

use std::path::Path;
use std::time::Duration;

use lease::LockOptions;

use super::handover::PREDECESSOR;
use super::scenario_dir;
use crate::baselines::predecessor_lock;
use crate::child::Worker;
use crate::clock::{ms_between, now_ns};
use crate::contender::LockKind;
use crate::plot::Plot;
use crate::report::{distribution, Figure, Measure, Section, Side};
use crate::rng::Rng;
use crate::stats::Stat;
use crate::{Config, Result};

const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long past the lease a waiter may take before the trial counts as a failure.
const GRACE: Duration = Duration::from_secs(10);

/// The outcome of one side's trials.
#[derive(Debug, Clone)]
struct Trials {
    /// Signal -> holding, in ms, of the trials that completed.
    latencies: Vec<f64>,
    /// What each continued holder said of its hold (SIGSTOP only).
    beliefs: Vec<String>,
    /// Errors of the trials that did not complete.
    failures: Vec<String>,
}

pub fn run(config: &Config, plots: &mut Vec<Plot>) -> Section {
    let trials = config.pick(20, 1);
    // The quick run only checks the code paths: a short lease keeps it short.
    let options = config.pick(
        LockOptions::DEFAULT,
        LockOptions {
            lease: Duration::from_millis(1_000),
            renew_every: Duration::from_millis(300),
            max_backoff: Duration::from_millis(50),
        },
    );
    let options_text = format!(
        "{}/{}/{}",
        options.lease.as_millis(),
        options.renew_every.as_millis(),
        options.max_backoff.as_millis()
    );
    let mut section = Section::new(4, "failover after SIGKILL / SIGSTOP of the holder");
    section.parameter("trials_per_signal", trials);
    section.parameter("liblease_lease_renew_backoff_ms", options_text.clone());
    section.parameter(
        "predecessor_lease_renew_backoff_ms",
        format!(
            "{}/{}/{}..{}",
            predecessor_lock::LEASE.as_millis(),
            predecessor_lock::RENEW_EVERY.as_millis(),
            predecessor_lock::FIRST_BACKOFF.as_millis(),
            predecessor_lock::MAX_BACKOFF.as_millis()
        ),
    );
    let Some(dir) = scenario_dir(&mut section, "failover") else { return section };
    let mut plot = Plot::new(
        "failover.svg",
        "Failover: holder killed or stopped -> held by the waiting process",
        "milliseconds from the signal to held (log scale)",
    );
    section.figures.push(
        Figure::new(PREDECESSOR, "lease / renewal / max backoff", "ms")
            .liblease(Measure::Text(options_text.clone()), None)
            .baseline(
                Measure::Text(format!(
                    "{}/{}/{}",
                    predecessor_lock::LEASE.as_millis(),
                    predecessor_lock::RENEW_EVERY.as_millis(),
                    predecessor_lock::MAX_BACKOFF.as_millis()
                )),
                None,
            ),
    );
    for (signal, name) in [(libc::SIGKILL, "SIGKILL"), (libc::SIGSTOP, "SIGSTOP")] {
        let side = |kind: LockKind| {
            let db = dir.path().join(format!("{}-{name}.db", kind.name()));
            trials_of(kind, signal, options, trials, &db)
        };
        let (liblease, predecessor) = (side(LockKind::Liblease), side(LockKind::Predecessor));
        plot.add(&format!("liblease, {name}"), Some(&liblease.latencies));
        plot.add(&format!("predecessor, {name}"), Some(&predecessor.latencies));
        let latencies = |t: &Trials| match t.failures.first() {
            Some(error) if t.latencies.is_empty() => Side::Failed(error.clone()),
            _ => Side::Measured(t.latencies.clone()),
        };
        section.figures.extend(distribution(
            PREDECESSOR,
            &format!("{name} -> waiter holds"),
            "ms",
            &latencies(&liblease).summary(),
            Some(&latencies(&predecessor).summary()),
            &[Stat::P50, Stat::P90, Stat::Max],
        ));
        section.figures.push(
            Figure::new(
                PREDECESSOR,
                format!("{name}: trials failed (no hold within lease + 10 s)"),
                "trials",
            )
            .liblease(Measure::Value(liblease.failures.len() as f64), Some(trials as u64))
            .baseline(Measure::Value(predecessor.failures.len() as f64), Some(trials as u64)),
        );
        if signal == libc::SIGSTOP {
            let beliefs = |t: &Trials| Measure::Text(tally(&t.beliefs));
            section.figures.push(
                Figure::new(PREDECESSOR, "SIGSTOP: continued holder says", "")
                    .liblease(beliefs(&liblease), Some(liblease.beliefs.len() as u64))
                    .baseline(beliefs(&predecessor), Some(predecessor.beliefs.len() as u64)),
            );
        }
        for (kind, trials) in [("liblease", &liblease), ("baseline", &predecessor)] {
            if let Some(error) = trials.failures.first() {
                section.note(format!(
                    "{name}, {kind}: {} trial(s) failed; the first: {error}",
                    trials.failures.len()
                ));
            }
        }
    }
    plots.push(plot);
    section.note(format!(
        "{trials} trial(s) per signal and lock, each with fresh holder and waiter processes; the signal \
         is sent 300 ms + 0..renewal period after the waiter starts waiting; signal -> waiter holds \
         is the waiter's CLOCK_MONOTONIC time just after acquire returns minus the parent's just \
         before kill(2)."
    ));
    section.note(format!(
        "liblease with lease/renewal/max backoff {options_text} ms ({}); a stopped holder is continued \
         after the waiter holds and asked Guard::check (\"lost\" is LEASE_LOST); the predecessor \
         cannot tell, so its holder still believes it holds (\"believes-held\").",
        if config.quick { "shortened for the quick run" } else { "liblease's defaults" }
    ));
    section
}

/// Counts of each answer, e.g. "lost 20/20".
fn tally(answers: &[String]) -> String {
    let mut kinds: Vec<&String> = answers.iter().collect();
    kinds.sort();
    kinds.dedup();
    let counts: Vec<String> = kinds
        .iter()
        .map(|kind| format!("{kind} {}/{}", answers.iter().filter(|a| a == kind).count(), answers.len()))
        .collect();
    if counts.is_empty() {
        "-".into()
    } else {
        counts.join(", ")
    }
}

fn trials_of(kind: LockKind, signal: libc::c_int, options: LockOptions, trials: usize, db: &Path) -> Trials {
    let mut rng = Rng::seeded();
    let mut outcome = Trials { latencies: Vec::new(), beliefs: Vec::new(), failures: Vec::new() };
    for number in 0..trials {
        match trial(kind, signal, options, db, &format!("failover-{number}"), &mut rng) {
            Ok((latency, belief)) => {
                outcome.latencies.push(latency);
                outcome.beliefs.extend(belief);
            }
            Err(e) => outcome.failures.push(e.to_string()),
        }
    }
    outcome
}

/// One trial: signal -> holding in ms, and what a continued holder believes.
fn trial(
    kind: LockKind,
    signal: libc::c_int,
    options: LockOptions,
    db: &Path,
    key: &str,
    rng: &mut Rng,
) -> Result<(f64, Option<String>)> {
    let (lease, renew_every) = match kind {
        LockKind::Liblease => (options.lease, options.renew_every),
        LockKind::Predecessor => (predecessor_lock::LEASE, predecessor_lock::RENEW_EVERY),
    };
    let limit = lease + GRACE;
    let mut args = vec![
        ("kind", kind.name().to_owned()),
        ("db", db.display().to_string()),
        ("key", key.to_owned()),
        ("lease_ms", options.lease.as_millis().to_string()),
        ("renew_ms", options.renew_every.as_millis().to_string()),
        ("backoff_ms", options.max_backoff.as_millis().to_string()),
    ];
    let mut holder = Worker::spawn("holder", "hold", &args)?;
    holder.expect("holding", START_TIMEOUT)?;
    args.push(("timeout_ms", limit.as_millis().to_string()));
    let mut waiter = Worker::spawn("waiter", "wait", &args)?;
    waiter.expect("waiting", START_TIMEOUT)?;
    let phase = rng.in_range(0..=renew_every.as_millis() as u64);
    std::thread::sleep(Duration::from_millis(300 + phase));

    let signalled = now_ns();
    holder.signal(signal)?;
    let acquired = waiter.expect("acquired", limit + Duration::from_secs(5));
    let belief = if signal == libc::SIGSTOP {
        holder.signal(libc::SIGCONT)?;
        holder.send("check")?;
        Some(holder.expect("check", START_TIMEOUT)?.join(" "))
    } else {
        None
    };
    let acquired: u64 = acquired?.first().ok_or("'acquired' without a time")?.parse()?;
    // Dropping the workers kills and reaps them.
    Ok((ms_between(signalled, acquired), belief))
}

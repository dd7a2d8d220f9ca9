//! `lease release`: breaks a stuck lease. The lease is read first, read-only, and judged as a
//! waiter would; then it is broken (`lease::inspect::break_lease`) if its holder is dead or it
//! ran out, or if the user insists.

use std::path::Path;

use lease::inspect::{self, Lease, LeaseState, Liveness, ReadOnlyDatabase};
use lease::BootClock;

use crate::{warn, Exit, Failure, Report};

pub fn run(db: &Path, key: &str, force: bool) -> Result<Report, Failure> {
    let clock = BootClock::system().map_err(Failure::unreadable(db))?;
    let database = ReadOnlyDatabase::open(db).map_err(Failure::unreadable(db))?;
    let lease = database.lease(key, &*clock).map_err(Failure::unreadable(db))?;
    let Some(lease) = lease else {
        return Err(Failure::new(Exit::NoSuchLease, format!("{}: no lease '{key}'", db.display())));
    };
    let holder = holder(&lease);
    match (lease.state, lease.holder) {
        (LeaseState::Released, _) => {
            let text = format!("'{key}' is free already (given back by {})\n", who(&lease));
            return Ok(Report { text, exit: Exit::Ok });
        }
        (LeaseState::Held, Liveness::Alive | Liveness::Unknown) if !force => {
            return Err(Failure::new(
                Exit::Wrong,
                format!("'{key}' is held by {holder}; --force breaks it, and its holder loses it"),
            ));
        }
        (LeaseState::Held, Liveness::Alive | Liveness::Unknown) => warn(format!(
            "warning: breaking '{key}', held by {holder}: it loses the lease at its next renewal, \
             and its fenced transactions fail from now on"
        )),
        _ => {}
    }
    match inspect::break_lease(db, key, &lease.row) {
        Ok(Some(generation)) => {
            let was = match lease.state {
                LeaseState::Held => "held",
                _ => "run out",
            };
            let text = format!("released '{key}' ({was}, {holder}): it is free, generation {generation}\n");
            Ok(Report { text, exit: Exit::Ok })
        }
        Ok(None) => Err(Failure::new(
            Exit::Wrong,
            format!("'{key}' changed hands while it was being released; see `lease status`"),
        )),
        Err(error) => Err(Failure::unreadable(db)(error)),
    }
}

/// "pid 4242 ('app')".
fn who(lease: &Lease) -> String {
    let row = &lease.row;
    let pid = if row.pid == 0 { "a process of unknown pid".to_owned() } else { format!("pid {}", row.pid) };
    format!("{pid} ('{}')", row.label)
}

/// "pid 4242 ('app'), which is alive".
fn holder(lease: &Lease) -> String {
    let liveness = match lease.holder {
        Liveness::Alive => "which is alive",
        Liveness::Dead => "which is dead",
        Liveness::Unknown => "which may be alive (that cannot be told from here)",
    };
    format!("{}, {liveness}", who(lease))
}

//! The scenarios, one file per group. Each returns its section of the report: figures beside
//! their baselines, notes on what was measured, and the parameters used. None asserts a time.

pub mod changes;
pub mod contention;
pub mod failover;
pub mod footprint;
pub mod handover;
pub mod heartbeat;
pub mod lock_ops;
pub mod plain_writer;
pub mod suspension;
pub mod write_cost;
pub mod writers_across;
pub mod writers_local;

use crate::report::{Figure, Measure, Section};
use crate::Result;

/// A fresh temporary directory for a scenario's databases; removed when dropped.
pub fn temp_dir(name: &str) -> Result<tempfile::TempDir> {
    Ok(tempfile::Builder::new().prefix(&format!("lease-bench-{name}-")).tempdir()?)
}

/// A fresh temporary directory for a scenario's databases (see [`temp_dir`]); when none can be
/// made, `None`, and `section` says that the scenario could not even start.
pub fn scenario_dir(section: &mut Section, name: &str) -> Option<tempfile::TempDir> {
    match temp_dir(name) {
        Ok(dir) => Some(dir),
        Err(e) => {
            let error = Measure::Failed(e.to_string());
            section
                .figures
                .push(Figure::new("", "scenario", "").liblease(error.clone(), None).baseline(error, None));
            None
        }
    }
}

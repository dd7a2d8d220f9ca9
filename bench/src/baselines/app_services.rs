//! The application-services writer design, written here from its description in issue 3: the
//! writer connections of one process share a mutex that is held only while `BEGIN IMMEDIATE` is
//! obtained; a long job commits once its chunk has lasted a second (`maybe_commit`) and begins
//! again through the mutex, so that the other writers get a chance in between. Connections keep
//! SQLite's busy timeout for writers of other processes.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::plain_sqlite::PlainWriter;
use crate::Result;

/// A writer of the design: a plain SQLite writer whose `BEGIN IMMEDIATE` is obtained under
/// `begin_mutex`, shared by the writers of the process.
pub fn open(path: &Path, begin_mutex: Arc<Mutex<()>>, job_period: Option<Duration>) -> Result<PlainWriter> {
    PlainWriter::open_with(path, Some(begin_mutex), job_period)
}

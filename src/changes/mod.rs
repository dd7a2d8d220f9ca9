//! Knowing what changed: telling a process that another one (or any connection) committed to
//! the database, with the tables it changed.
//!
//! Writers keep a durable record in the file, the table `liblease_change`: one row per
//! application table, with the count of commits when it last changed, and a row named `''`
//! holding that count itself. A liblease writer adds to it inside the very transaction that
//! changes the tables ([`ChangeLog::record`]), so the record is exactly as committed as the
//! changes, even for a writer that crashes right after its commit. The lease table counts its
//! own commits with triggers (see the store's schema). Which tables a statement writes comes
//! from SQLite's authorizer, called while the statement is prepared ([`ChangeLog::prepare`]).
//!
//! An observer ([`Observer`]) looks at the record whenever it may have changed, and reports the
//! tables whose count is past the one it saw last: a wake-up it missed (its process was stopped,
//! say) loses nothing, because the next look finds everything since the last one. A commit by a
//! writer outside liblease leaves no record; the observer tells it from the count of commits that
//! SQLite itself keeps in the WAL index (`iChange`, see [`wal_index`]): more commits than
//! recorded ones means someone else wrote, and the tables are then unknown.
//!
//! Wake-ups: on Linux an observer waits with inotify for the bell a liblease writer rings after
//! each commit (see [`WriterBoard::ring`](crate::writer_board::WriterBoard::ring)) and for writes
//! to the WAL, which every writer makes; elsewhere it looks every [`POLL`](wake::POLL).

mod look;
mod observer;
mod record;
mod wake;
mod wal_index;

pub(crate) use observer::observe;
pub use observer::{ChangeCallback, Observer};
pub(crate) use record::{count_commit, create_change_table, ChangeLog};

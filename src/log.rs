//! The library's diagnostics: one process-wide sink that the host sets (`lease_set_log_callback`,
//! [`set_sink`]), told what the locks, writers and observers do.
//!
//! A message is built only when its level is wanted: `log!` asks `enabled` first, one atomic
//! load, so logging costs nothing on any path while it is off (the default). Messages go to the
//! sink on the thread where the event happened (a caller's, or the library's own). A message
//! logged from inside the sink (the host's callback called back into liblease) is dropped, not
//! delivered in a loop.

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use crate::sync::MutexExt;

/// How severe a message is; a sink gets those at its level and more severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u32)]
pub enum Level {
    /// Something failed.
    Error = 1,
    /// Something went wrong that the library copes with: a lease lost, a late renewal.
    Warn = 2,
    /// What the locks do: acquired, released, taken over.
    Info = 3,
    /// Wake-ups, renewals, checkpoints.
    Debug = 4,
}

impl Level {
    /// The level of a number from C, if it is one.
    pub fn from_number(number: u32) -> Option<Level> {
        [Level::Error, Level::Warn, Level::Info, Level::Debug]
            .into_iter()
            .find(|level| *level as u32 == number)
    }
}

/// What a sink is: called with each message's level and text.
pub type Sink = dyn Fn(Level, &str) + Send + Sync;

/// The most verbose level wanted; 0 while logging is off.
static MAX_LEVEL: AtomicU32 = AtomicU32::new(0);
static SINK: Mutex<Option<Arc<Sink>>> = Mutex::new(None);

thread_local! {
    /// True while this thread runs the sink.
    static IN_SINK: Cell<bool> = const { Cell::new(false) };
}

/// Sets the process's sink, at `max_level` and more severe; `None` turns logging off. The sink
/// it replaces is dropped (and so whatever it owns) once no call of it is running: at once, or
/// when the last such call returns.
pub fn set_sink(max_level: Level, sink: Option<Box<Sink>>) {
    let mut slot = SINK.locked();
    MAX_LEVEL.store(if sink.is_some() { max_level as u32 } else { 0 }, Ordering::Release);
    let old = std::mem::replace(&mut *slot, sink.map(Arc::from));
    drop(slot);
    drop(old);
}

/// True when messages of `level` are wanted.
#[inline]
pub(crate) fn enabled(level: Level) -> bool {
    level as u32 <= MAX_LEVEL.load(Ordering::Relaxed)
}

/// Gives `message` to the sink, if there is one and this is not a call from inside it.
pub(crate) fn emit(level: Level, message: &str) {
    if IN_SINK.with(Cell::get) {
        return;
    }
    let Some(sink) = SINK.locked().clone() else { return };
    IN_SINK.with(|in_sink| in_sink.set(true));
    // A Rust sink that panics loses its message, not the caller's work.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sink(level, message)));
    IN_SINK.with(|in_sink| in_sink.set(false));
}

/// Logs a message at a level, formatting it only when that level is wanted:
/// `log!(Info, "{key}: acquired")`.
macro_rules! log {
    ($level:ident, $($message:tt)+) => {
        if $crate::log::enabled($crate::log::Level::$level) {
            $crate::log::emit($crate::log::Level::$level, &format!($($message)+));
        }
    };
}
pub(crate) use log;

/// Says once per process that another copy of SQLite is loaded beside liblease's own (see the
/// header's ONE SQLITE PER PROCESS): the two would not see each other's locks on one file.
/// Looked for at each connection while warnings are wanted (a lookup of one symbol), so that a
/// SQLite loaded after the first connection is seen too.
pub(crate) fn warn_of_another_sqlite() {
    use std::sync::atomic::AtomicBool;
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !enabled(Level::Warn) || WARNED.load(Ordering::Relaxed) {
        return;
    }
    if let Some(other) = another_sqlite() {
        if !WARNED.swap(true, Ordering::Relaxed) {
            log!(
                Warn,
                "another SQLite ({other}) is loaded in this process beside liblease's own: the two do not \
                 see each other's locks on one database file; open a file shared with that SQLite's users \
                 from other processes, or build liblease against that SQLite (the system-sqlite build)"
            );
        }
    }
}

/// The version of a SQLite loaded in this process that is not the one liblease calls, if any.
#[cfg(feature = "bundled")]
fn another_sqlite() -> Option<String> {
    // liblease's copy is its own (hidden in liblease.so); the name, looked up in the whole
    // process, finds another one if there is one.
    // SAFETY: dlsym with RTLD_DEFAULT and a C string; the result is only compared and called as
    // the function SQLite documents under that name.
    let found = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"sqlite3_libversion".as_ptr()) };
    let ours = rusqlite::ffi::sqlite3_libversion as *const () as *mut libc::c_void;
    if found.is_null() || found == ours {
        return None;
    }
    // SAFETY: `found` is a `const char *sqlite3_libversion(void)`, returning a static string.
    let version = unsafe {
        let libversion: unsafe extern "C" fn() -> *const libc::c_char = std::mem::transmute(found);
        std::ffi::CStr::from_ptr(libversion())
    };
    Some(version.to_string_lossy().into_owned())
}

/// The system-SQLite build uses the process's SQLite, whichever other users it has.
#[cfg(not(feature = "bundled"))]
fn another_sqlite() -> Option<String> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sink is process-wide: the tests that set it run one at a time.
    pub(crate) static ONE_SINK: Mutex<()> = Mutex::new(());

    #[test]
    fn messages_reach_the_sink_at_its_level_and_more_severe_only() {
        let _one = ONE_SINK.locked();
        let heard = Arc::new(Mutex::new(Vec::new()));
        let sink = heard.clone();
        set_sink(
            Level::Warn,
            Some(Box::new(move |level, message| sink.locked().push((level, message.to_owned())))),
        );
        log!(Error, "e");
        log!(Warn, "w");
        log!(Info, "i");
        log!(Debug, "d");
        set_sink(Level::Debug, None);
        log!(Error, "after");
        assert_eq!(*heard.locked(), [(Level::Error, "e".to_owned()), (Level::Warn, "w".to_owned())]);
        assert!(!enabled(Level::Error), "no sink, no logging");
    }

    #[test]
    fn a_message_from_inside_the_sink_is_dropped_and_a_replaced_sink_is_dropped_after_its_call() {
        let _one = ONE_SINK.locked();
        struct Owned(Arc<Mutex<bool>>);
        impl Drop for Owned {
            fn drop(&mut self) {
                *self.0.locked() = true;
            }
        }
        let dropped = Arc::new(Mutex::new(false));
        let owned = Owned(dropped.clone());
        let calls = Arc::new(AtomicU32::new(0));
        let counted = calls.clone();
        set_sink(
            Level::Info,
            Some(Box::new(move |_, _| {
                let _owned = &owned;
                counted.fetch_add(1, Ordering::SeqCst);
                log!(Error, "from inside");
                // Replaced while it runs: dropped once it returns, not before.
                set_sink(Level::Info, None);
                assert!(!*_owned.0.locked());
            })),
        );
        log!(Info, "once");
        assert_eq!(calls.load(Ordering::SeqCst), 1, "the nested message was dropped");
        assert!(*dropped.locked(), "the replaced sink went once its call returned");
    }
}

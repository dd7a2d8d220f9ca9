//! The library's one background thread.
//!
//! Heartbeats, asynchronous acquisitions and lost-lease callbacks run on a current-thread tokio
//! runtime driven by a single thread named `liblease`. It is started on first need (a held lease
//! or an asynchronous acquisition), never by merely opening a store: a notification extension
//! with 24 MB of memory should not pay for a thread it does not use. [`shutdown`] stops and joins
//! it once nothing needs it, so a host can unload the library without relying on destructors
//! running at `dlclose`.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use crate::error::{Error, Result};
use crate::fork_local::ForkLocal;
use crate::sync::MutexExt;

/// The name of the library's thread, on which every callback into foreign code runs.
pub const THREAD_NAME: &str = "liblease";

struct Running {
    handle: tokio::runtime::Handle,
    stop: oneshot::Sender<()>,
    thread: JoinHandle<()>,
}

struct RuntimeSlot {
    running: Mutex<Option<Running>>,
    /// Tasks spawned and not yet finished: heartbeats, waits, callbacks.
    tasks: AtomicUsize,
}

static RUNTIME: ForkLocal<RuntimeSlot> = ForkLocal::new();

fn slot() -> Result<&'static RuntimeSlot> {
    RUNTIME.get_or_try_init(|| Ok(RuntimeSlot { running: Mutex::new(None), tasks: AtomicUsize::new(0) }))
}

/// Runs `task` on the library thread, starting the thread if it is not running.
pub(crate) fn spawn<F>(task: F) -> Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let slot = slot()?;
    let mut running = slot.running.locked();
    if running.is_none() {
        *running = Some(start()?);
    }
    let handle = &running.as_ref().expect("started above").handle;
    slot.tasks.fetch_add(1, Ordering::SeqCst);
    handle.spawn(async move {
        // Counted down however the task ends: finished, panicked or cancelled.
        let _counted = TaskCount(&slot.tasks);
        task.await;
    });
    Ok(())
}

struct TaskCount(&'static AtomicUsize);

impl Drop for TaskCount {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

thread_local! {
    static ON_LIBRARY_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn start() -> Result<Running> {
    let (stop, stopped) = oneshot::channel::<()>();
    // The runtime is built on its own thread, so that nothing of it is tied to the caller's; the
    // caller waits for it on a condition variable (which, unlike a channel, asks nothing of the
    // caller's thread: it may be a foreign one).
    let built = Arc::new((Mutex::new(None::<Result<tokio::runtime::Handle, String>>), Condvar::new()));
    let report = built.clone();
    let thread = std::thread::Builder::new()
        .name(THREAD_NAME.into())
        .stack_size(256 * 1024)
        .spawn(move || {
            ON_LIBRARY_THREAD.with(|flag| flag.set(true));
            let runtime = tokio::runtime::Builder::new_current_thread().enable_time().enable_io().build();
            let (result, runtime) = match runtime {
                Ok(runtime) => (Ok(runtime.handle().clone()), Some(runtime)),
                Err(e) => (Err(e.to_string()), None),
            };
            *report.0.locked() = Some(result);
            report.1.notify_one();
            // Any message or the sender being dropped ends the thread; dropping the runtime then
            // cancels whatever tasks are left.
            if let Some(runtime) = runtime {
                let _ = runtime.block_on(stopped);
            }
        })
        .map_err(|e| Error::Misuse(format!("cannot start the library's thread: {e}")))?;
    let (result, ready) = &*built;
    let mut result = result.locked();
    while result.is_none() {
        result = ready.wait(result).unwrap_or_else(|p| p.into_inner());
    }
    let handle = result
        .take()
        .expect("set before notifying")
        .map_err(|e| Error::Misuse(format!("cannot start the library's runtime: {e}")))?;
    Ok(Running { handle, stop, thread })
}

/// True when called on the library's thread (inside a callback, say).
pub fn on_library_thread() -> bool {
    ON_LIBRARY_THREAD.with(|flag| flag.get())
}

/// True while the library's thread is running.
pub fn is_running() -> bool {
    slot().is_ok_and(|slot| slot.running.locked().is_some())
}

/// Stops and joins the library's thread.
///
/// Fails with `Misuse` while it has work: a held lease (its heartbeat), an asynchronous
/// acquisition not yet called back, or a callback running; and when called on the library's own
/// thread. The thread starts again on next need. Does nothing when it is not running.
pub fn shutdown() -> Result<()> {
    if on_library_thread() {
        return Err(Error::Misuse("shutdown cannot be called on the library's own thread".into()));
    }
    let slot = slot()?;
    // A heartbeat whose lease was just released ends a moment later, on the library's thread:
    // give such tasks a little time. The runtime's lock is not held meanwhile, because a
    // finishing task may itself spawn (a lost-lease callback, say).
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(100);
    while slot.tasks.load(Ordering::SeqCst) > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let mut running = slot.running.locked();
    let busy = slot.tasks.load(Ordering::SeqCst);
    if busy > 0 {
        return Err(Error::Misuse(format!(
            "the library's thread still has {busy} task(s): release every guard, free every \
             observer and wait for asynchronous acquisitions before shutting down"
        )));
    }
    if let Some(Running { stop, thread, .. }) = running.take() {
        let _ = stop.send(());
        thread.join().map_err(|_| Error::Misuse("the library's thread panicked".into()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_that_panics_is_counted_out() {
        let tasks = &slot().unwrap().tasks;
        let before = tasks.load(Ordering::SeqCst);
        spawn(async { panic!("a task panicked on purpose") }).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while tasks.load(Ordering::SeqCst) > before {
            assert!(std::time::Instant::now() < deadline, "the panicked task is still counted");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

//! Surviving a side file truncated under our mappings.
//!
//! liblease maps two kinds of shared files into memory: SQLite's `-shm` (the WAL index) and its
//! own `-liblease` board. If another program truncates one of them while it is mapped (a backup
//! tool copying files back, an app's reset writing an empty file over it), touching a page past
//! the new end raises SIGBUS, which kills the process: SQLite itself dies that way. A library
//! must not crash its host because a side file was truncated, so the mapped regions are
//! registered here, and a SIGBUS inside one of them replaces the region with private zeroed
//! memory and marks it broken: the faulting access then completes, and the region's owner sees
//! that it is broken and stops using it (the board gives up fairness; liblease's SQLite files
//! refuse to take locks, so that the connection's work fails with an I/O error and nothing is
//! written from a stale index). A SIGBUS anywhere else goes to the handler that was installed
//! before ours, or kills the process as it would have without us.
//!
//! The handler is installed the first time a region is registered. The registry is a fixed
//! array of atomics, so that the handler needs no lock and no allocation.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Once;

/// How many regions can be guarded at once: a board and a few WAL-index regions per open file.
const SLOTS: usize = 256;

struct Slot {
    /// The region's first address; 0 for a free slot.
    start: AtomicUsize,
    len: AtomicUsize,
    broken: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE: Slot =
    Slot { start: AtomicUsize::new(0), len: AtomicUsize::new(0), broken: AtomicBool::new(false) };
static REGISTRY: [Slot; SLOTS] = [FREE; SLOTS];

static INSTALL: Once = Once::new();
/// The SIGBUS action before ours, to hand other faults to; set once, before ours is installed.
static mut PREVIOUS: Option<libc::sigaction> = None;

/// A region of shared memory guarded against truncation while this lives.
#[derive(Debug)]
pub(crate) struct Region {
    slot: usize,
}

impl Region {
    /// Guards `len` bytes at `start`, the whole of a shared file mapping (or a part of it that
    /// is mapped on its own). `None` when every slot is taken: the region then works unguarded,
    /// as any mapping does without liblease.
    pub(crate) fn guard(start: *const u8, len: usize) -> Option<Region> {
        install();
        let start = start as usize;
        // A region mapped again at the same address (by another connection of the same file)
        // is as broken as the first one: it is the same memory.
        let broken = is_broken(start);
        for (index, slot) in REGISTRY.iter().enumerate() {
            if slot.start.compare_exchange(0, usize::MAX, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                slot.len.store(len, Ordering::Release);
                slot.broken.store(broken, Ordering::Release);
                slot.start.store(start, Ordering::Release);
                return Some(Region { slot: index });
            }
        }
        None
    }

    pub(crate) fn start(&self) -> usize {
        REGISTRY[self.slot].start.load(Ordering::Acquire)
    }

    /// True once its file was truncated under it: it is private zeroed memory now.
    pub(crate) fn is_broken(&self) -> bool {
        REGISTRY[self.slot].broken.load(Ordering::Acquire)
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        let slot = &REGISTRY[self.slot];
        slot.start.store(usize::MAX, Ordering::Release);
        slot.len.store(0, Ordering::Release);
        slot.broken.store(false, Ordering::Release);
        slot.start.store(0, Ordering::Release);
    }
}

/// True when a guarded region starting at `start` is broken.
fn is_broken(start: usize) -> bool {
    REGISTRY
        .iter()
        .any(|slot| slot.start.load(Ordering::Acquire) == start && slot.broken.load(Ordering::Acquire))
}

fn install() {
    INSTALL.call_once(|| {
        // SAFETY: a zeroed sigaction is a valid value to fill in; the handler below is
        // async-signal-safe (atomics, mmap, sigaction, and the previous handler).
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigbus as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            let mut previous: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut previous) == 0 {
                // Written before ours is installed, and never again.
                PREVIOUS = Some(previous);
                libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut());
            }
        }
    });
}

extern "C" fn on_sigbus(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for a SA_SIGINFO handler.
    let address = unsafe { (*info).si_addr() } as usize;
    let mut handled = false;
    for slot in &REGISTRY {
        let start = slot.start.load(Ordering::Acquire);
        let len = slot.len.load(Ordering::Acquire);
        if start == 0 || start == usize::MAX || address < start || address >= start.saturating_add(len) {
            continue;
        }
        // Every registration of the memory is marked; the first one found is replaced.
        if !handled {
            // SAFETY: replaces exactly a registered shared mapping, which its owner keeps until it
            // unregisters it, with private zeroed pages at the same address.
            let mapped = unsafe {
                libc::mmap(
                    start as *mut libc::c_void,
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                    -1,
                    0,
                )
            };
            if mapped == libc::MAP_FAILED {
                break;
            }
            handled = true;
        }
        slot.broken.store(true, Ordering::Release);
    }
    if handled {
        return;
    }
    // Not ours: as if we were not here.
    // SAFETY: PREVIOUS was written before this handler was installed and is only read here.
    let previous = unsafe { *std::ptr::addr_of!(PREVIOUS) };
    match previous {
        Some(previous) if previous.sa_flags & libc::SA_SIGINFO != 0 && previous.sa_sigaction > 1 => {
            // SAFETY: the previous handler, called as the kernel would have called it.
            let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                unsafe { std::mem::transmute(previous.sa_sigaction) };
            handler(signal, info, context);
        }
        Some(previous) if previous.sa_sigaction > 1 => {
            // SAFETY: as above, for a handler that takes only the signal.
            let handler: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(previous.sa_sigaction) };
            handler(signal);
        }
        _ => {
            // The default (or an ignored SIGBUS, which the kernel does not honour for a fault):
            // restore it and return, so that the faulting access faults again and the process
            // ends as it would have.
            // SAFETY: a zeroed sigaction is SIG_DFL with no flags.
            unsafe {
                let mut default: libc::sigaction = std::mem::zeroed();
                default.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(libc::SIGBUS, &default, std::ptr::null_mut());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mapping_whose_file_is_truncated_becomes_broken_instead_of_killing() {
        use std::os::fd::AsRawFd;
        let file = tempfile::tempfile().unwrap();
        file.set_len(4096).unwrap();
        // SAFETY: maps 4096 bytes of a file of that size.
        let address = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        assert_ne!(address, libc::MAP_FAILED);
        let region = Region::guard(address.cast(), 4096).unwrap();
        let word = address.cast::<u32>();
        // SAFETY: within the mapping.
        unsafe { word.write_volatile(7) };
        assert!(!region.is_broken());
        file.set_len(0).unwrap();
        // Without the guard this read kills the test process with SIGBUS.
        // SAFETY: within the mapping, whose file was truncated.
        let read = unsafe { word.read_volatile() };
        assert_eq!(read, 0, "private zeroed memory took the file's place");
        assert!(region.is_broken());
        let again = Region::guard(address.cast(), 4096).unwrap();
        assert!(again.is_broken(), "the same memory guarded again is as broken");
        drop((region, again));
        // SAFETY: unmaps what was mapped above.
        unsafe { libc::munmap(address, 4096) };
    }
}

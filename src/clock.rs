//! Time for leases.
//!
//! A lease's expiry is written to the shared database and read by other processes, so every
//! process must read the same clock. Wall-clock time will not do: users set it forward and back.
//! Rust's `Instant` will not do either: on Linux it stops while the machine sleeps, so a lease
//! taken before a sleep would look fresh after it. The system clock used here is shared by all
//! processes of one boot, never goes back, and keeps counting through sleep:
//!
//! - Linux and Android: `CLOCK_BOOTTIME`; the boot is named by `/proc/sys/kernel/random/boot_id`.
//! - Apple platforms: `CLOCK_MONOTONIC`, which on Darwin counts through sleep (it is
//!   `mach_continuous_time`); the boot is named by the `kern.bootsessionuuid` sysctl.
//!
//! Because such a clock restarts at every boot, each lease also records the boot it was taken in,
//! and a lease of another boot counts as expired.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::sync::MutexExt;

/// The time source of a store. Tests inject a [`ManualClock`]; everything else uses [`BootClock`].
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since an origin shared by every process of this boot. Never goes back.
    fn now_ms(&self) -> u64;
    /// Names the current boot. A lease stamped with another boot has expired.
    fn boot_id(&self) -> Arc<str>;
}

/// The system's boot clock (see the module documentation).
#[derive(Debug)]
pub struct BootClock {
    boot_id: Arc<str>,
}

impl BootClock {
    /// The clock of this machine's current boot.
    pub fn system() -> Result<Arc<BootClock>> {
        static SYSTEM: Mutex<Option<Arc<BootClock>>> = Mutex::new(None);
        let mut system = SYSTEM.locked();
        if let Some(clock) = system.as_ref() {
            return Ok(clock.clone());
        }
        let clock = Arc::new(BootClock { boot_id: read_boot_id()?.into() });
        boot_time_ms()?;
        *system = Some(clock.clone());
        Ok(clock)
    }
}

impl Clock for BootClock {
    fn now_ms(&self) -> u64 {
        // Checked once in `system()`; the clock id is a constant, so it cannot start failing.
        boot_time_ms().unwrap_or(0)
    }

    fn boot_id(&self) -> Arc<str> {
        self.boot_id.clone()
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) const LEASE_CLOCK: libc::clockid_t = libc::CLOCK_BOOTTIME;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) const LEASE_CLOCK: libc::clockid_t = libc::CLOCK_MONOTONIC;

fn boot_time_ms() -> Result<u64> {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid, writable timespec.
    if unsafe { libc::clock_gettime(LEASE_CLOCK, &mut now) } != 0 {
        return Err(Error::Misuse(format!(
            "the system's boot clock is unavailable: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(now.tv_sec as u64 * 1000 + now.tv_nsec as u64 / 1_000_000)
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn read_boot_id() -> Result<String> {
    if let Ok(id) = std::fs::read_to_string("/proc/sys/kernel/random/boot_id") {
        let id = id.trim();
        if !id.is_empty() {
            return Ok(id.to_owned());
        }
    }
    // Some sandboxes hide boot_id. The boot's start time in whole seconds is fixed for the boot
    // (the kernel does not move `btime` when the wall clock is set).
    let stat = std::fs::read_to_string("/proc/stat")
        .map_err(|e| Error::Misuse(format!("cannot name the current boot: {e}")))?;
    stat.lines()
        .find_map(|line| line.strip_prefix("btime "))
        .map(|btime| format!("btime-{}", btime.trim()))
        .ok_or_else(|| Error::Misuse("cannot name the current boot: no btime in /proc/stat".into()))
}

#[cfg(any(
    target_os = "macos",
    target_os = "ios",
    target_os = "tvos",
    target_os = "watchos",
    target_os = "visionos"
))]
fn read_boot_id() -> Result<String> {
    let mut buffer = [0u8; 64];
    let mut len = buffer.len();
    // SAFETY: the name is NUL-terminated; `buffer` and `len` describe writable memory.
    let rc = unsafe {
        libc::sysctlbyname(
            c"kern.bootsessionuuid".as_ptr(),
            buffer.as_mut_ptr().cast(),
            &mut len,
            std::ptr::null_mut(),
            0,
        )
    };
    if rc != 0 {
        return Err(Error::Misuse(format!(
            "cannot name the current boot: {}",
            std::io::Error::last_os_error()
        )));
    }
    let text = &buffer[..len];
    let text = text.split(|&b| b == 0).next().unwrap_or(text);
    Ok(String::from_utf8_lossy(text).into_owned())
}

/// A clock that moves only when told to, for tests of expiry, clock jumps and sleep.
#[derive(Debug)]
pub struct ManualClock {
    now_ms: AtomicU64,
    boot_id: Mutex<Arc<str>>,
}

impl ManualClock {
    /// A clock at `start_ms` in a boot named `boot_id`.
    pub fn new(start_ms: u64, boot_id: &str) -> Arc<ManualClock> {
        Arc::new(ManualClock { now_ms: AtomicU64::new(start_ms), boot_id: Mutex::new(boot_id.into()) })
    }

    /// Moves the clock forward, as time passing or a machine sleeping does.
    pub fn advance(&self, by: Duration) {
        self.now_ms.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }

    /// Simulates a reboot: a new boot whose clock starts again at `start_ms`.
    pub fn reboot(&self, boot_id: &str, start_ms: u64) {
        *self.boot_id.locked() = boot_id.into();
        self.now_ms.store(start_ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now_ms.load(Ordering::SeqCst)
    }

    fn boot_id(&self) -> Arc<str> {
        self.boot_id.locked().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_clock_names_the_boot_and_moves_forward() {
        let clock = BootClock::system().unwrap();
        assert!(!clock.boot_id().is_empty());
        let first = clock.now_ms();
        std::thread::sleep(Duration::from_millis(20));
        assert!(clock.now_ms() >= first + 20);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn boot_clock_is_shared_with_other_processes() {
        // CLOCK_BOOTTIME is system-wide: a child process reads the same time (within its start-up).
        let before = BootClock::system().unwrap().now_ms();
        let out = std::process::Command::new("cat").arg("/proc/uptime").output().unwrap();
        let uptime: f64 =
            String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().parse().unwrap();
        // /proc/uptime is CLOCK_BOOTTIME in seconds with two decimals.
        assert!((uptime * 1000.0 - before as f64).abs() < 2_000.0, "uptime {uptime} s, clock {before} ms");
    }

    #[test]
    fn manual_clock_moves_and_reboots() {
        let clock = ManualClock::new(1_000, "boot-a");
        clock.advance(Duration::from_millis(250));
        assert_eq!(clock.now_ms(), 1_250);
        clock.reboot("boot-b", 5);
        assert_eq!(clock.now_ms(), 5);
        assert_eq!(&*clock.boot_id(), "boot-b");
    }
}

//! One attempt to take a lease, in four steps: join this process's hold if it has a valid one;
//! otherwise look at the lease row; unless a live holder keeps the lease, take it in one
//! statement; then install the new hold and its heartbeat.

use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

use super::guard::Guard;
use super::heartbeat;
use super::hold::{Hold, KeySlot, LeaseSlots, SlotState, Taken};
use super::inner::LockInner;
use crate::error::{Error, Result};
use crate::liveness::Identity;
use crate::log::log;
use crate::store::lease_table::{self, Claim, EndedHold, HoldName};
use crate::suspension;
use crate::writer_board::{LeaseNotice, WriterBoard};

/// The outcome of one attempt to take the lease.
pub(super) enum Attempt {
    Taken(Guard),
    /// Held by another holder (or the database busy).
    Held(Held),
}

/// Why an attempt did not take the lease, and when to look again: after a change, or after
/// `retry_in` at the latest (the holder's expiry).
pub(super) struct Held {
    pub retry_in: Duration,
    /// The holding process, when known: a waiter also wakes when it ends.
    pub holder: Option<Identity>,
    pub why: String,
}

/// What the lease row says.
enum Look {
    /// Free, expired, of another boot, or this holder's own: take it. `from` names another
    /// holder whose lease ran out, for the log.
    Free {
        from: Option<String>,
    },
    /// Held by a hold that is over before its lease expires: its process is certainly dead, or
    /// it was given back on the board (`handed`). Take that exact hold over.
    Ended {
        from: String,
        holder_id: String,
        hold: u64,
        handed: Option<u64>,
    },
    Held(Held),
}

impl LockInner {
    /// One attempt; waits for the database's write lock until `write_deadline` (`None`: not at
    /// all), never for another holder's lease.
    /// `asked` is when the acquisition began, for the log.
    /// `notice` is the acquisition's place among the processes waiting for the lease, if it
    /// has one: a free lease is left to a waiter of another process that has waited longer.
    pub(super) fn attempt(
        self: &Arc<Self>,
        write_deadline: Option<Instant>,
        asked: Instant,
        notice: Option<LeaseNotice>,
    ) -> Result<Attempt> {
        let store = &self.store.inner;
        store.check_fork()?;
        let slot = store.file.leases::<LeaseSlots>().slot(&self.key);
        let mut state = slot.lock();
        // Under the slot's mutex, which a suspension takes (after setting the flag) to give the
        // holds back: an acquisition either installs its hold before, or is refused.
        suspension::check()?;
        if let Some(guard) = self.join(&mut state) {
            return Ok(Attempt::Taken(guard));
        }
        let (ended, handed, from) = match self.look()? {
            Look::Free { from } => (None, None, from.map(|from| format!("from {from}, whose lease ran out"))),
            Look::Ended { from, holder_id, hold, handed } => {
                let how = if handed.is_some() { "which handed it over" } else { "whose process ended" };
                (Some((holder_id, hold)), handed, Some(format!("from {from}, {how}")))
            }
            Look::Held(held) => return Ok(Attempt::Held(held)),
        };
        if let Some(held) = self.waited_longer_by_another(notice) {
            return Ok(Attempt::Held(held));
        }
        let ended = ended.as_ref().map(|(holder_id, hold)| EndedHold { holder_id, hold: *hold });
        match self.take(write_deadline, ended.as_ref())? {
            Ok(taken) => {
                if let (Some(board), Some(handed)) = (self.board(), handed) {
                    // Taken over: its holder need not write the release.
                    board.unmark_handed_back(handed);
                }
                let generation = taken.generation;
                let guard = self.install(&slot, state, taken)?;
                log!(
                    Info,
                    "{}: '{}': acquired by '{}' after waiting {} ms: generation {generation}, {}{}",
                    self.store.inner.name(),
                    self.key,
                    self.label,
                    asked.elapsed().as_millis(),
                    if guard.is_dirty() { "dirty" } else { "clean" },
                    from.map(|from| format!(", taken over {from}")).unwrap_or_default()
                );
                Ok(Attempt::Taken(guard))
            }
            Err(held) => Ok(Attempt::Held(held)),
        }
    }

    /// Joins this process's current hold if it is still valid: a re-entrant acquisition, never
    /// dirty. A hold found lost is let go, so that the next one starts afresh (dirty).
    fn join(self: &Arc<Self>, state: &mut SlotState) -> Option<Guard> {
        let hold = state.hold.clone()?;
        if hold.check().is_ok() {
            hold.add_guard(state, &self.lost);
            return Some(Guard::new(hold, false));
        }
        // Lost: its remaining guards see that.
        state.hold = None;
        state.last_generation = None;
        None
    }

    /// `Some` when a waiter of another process has waited longer than `notice` (than anyone,
    /// for an acquisition that has not waited): the lease is its to take.
    fn waited_longer_by_another(&self, notice: Option<LeaseNotice>) -> Option<Held> {
        let board = self.board()?;
        if board.has_lease_turn(self.key_hash, notice) {
            return None;
        }
        Some(Held {
            retry_in: Duration::MAX,
            holder: None,
            why: format!("'{}' is left to a process that has waited longer for it", self.key),
        })
    }

    fn board(&self) -> Option<&Arc<WriterBoard>> {
        self.store.inner.file.queue().board()
    }

    /// Reads the lease row: a lease that a live holder keeps is not worth the write lock.
    fn look(&self) -> Result<Look> {
        let store = &self.store.inner;
        let Some(row) = store.read(|connection| lease_table::read(connection, &self.key))? else {
            return Ok(Look::Free { from: None });
        };
        let now_ms = store.clock.now_ms();
        let others = row.holder_id != store.holder.id() && *row.boot == *store.clock.boot_id();
        let described = || format!("'{}' (pid {})", row.label, row.pid);
        if !others || row.expires_ms == 0 {
            return Ok(Look::Free { from: None });
        }
        if row.expires_ms <= now_ms {
            return Ok(Look::Free { from: Some(described()) });
        }
        let name = HoldName { key: &self.key, holder_id: &row.holder_id, hold: row.hold, boot: &row.boot };
        let handed = name.board_hash();
        if self.board().is_some_and(|board| board.was_handed_back(handed)) {
            // Given back on the board, to the waiter whose turn it is (the attempt checks).
            let from = described();
            return Ok(Look::Ended { from, holder_id: row.holder_id, hold: row.hold, handed: Some(handed) });
        }
        let holder = row.identity();
        if self.known_alive.is_certainly_dead(&holder, store.holder.identity()) {
            // The holder crashed: its lease may be taken now rather than when it expires.
            return Ok(Look::Ended {
                from: described(),
                holder_id: row.holder_id,
                hold: row.hold,
                handed: None,
            });
        }
        Ok(Look::Held(Held {
            retry_in: Duration::from_millis(row.expires_ms - now_ms + 1),
            holder: Some(holder),
            why: format!("'{}' is held by '{}' (another process)", self.key, row.label),
        }))
    }

    /// Takes the lease in one statement, through the writer queue. `Err(Held)` inside `Ok` when
    /// it changed hands since the look, or the database stayed busy.
    fn take(&self, write_deadline: Option<Instant>, dead: Option<&EndedHold>) -> Result<Result<Taken, Held>> {
        let store = &self.store.inner;
        let now_ms = store.clock.now_ms();
        let boot = store.clock.boot_id();
        let claim = Claim {
            name: HoldName {
                key: &self.key,
                holder_id: store.holder.id(),
                hold: store.holder.next_hold_number(),
                boot: &boot,
            },
            label: &self.label,
            now_ms,
            expires_ms: now_ms + self.options.lease.as_millis() as u64,
        };
        let taken = store.write(write_deadline, |connection| {
            lease_table::take(connection, &claim, store.holder.identity(), dead)
        });
        Ok(match taken {
            Ok(Some(generation)) => Ok(Taken {
                number: claim.name.hold,
                generation,
                boot: boot.clone(),
                expires_ms: claim.expires_ms,
            }),
            // It changed hands between the look and the take: look again at once.
            Ok(None) => Err(Held {
                retry_in: Duration::ZERO,
                holder: None,
                why: format!("'{}' changed hands", self.key),
            }),
            Err(Error::Busy(why)) => Err(Held { retry_in: Duration::MAX, holder: None, why }),
            Err(e) => return Err(e),
        })
    }

    /// Makes the new hold this process's, with its first guard, and starts its heartbeat.
    fn install(
        self: &Arc<Self>,
        slot: &Arc<KeySlot>,
        mut state: MutexGuard<'_, SlotState>,
        taken: Taken,
    ) -> Result<Guard> {
        let dirty = state.last_generation != Some(taken.generation);
        state.last_generation = Some(taken.generation);
        let hold = Hold::new(self.store.inner.clone(), slot.clone(), self.key.clone(), self.options, taken);
        hold.add_guard(&state, &self.lost);
        state.hold = Some(hold.clone());
        drop(state);
        let guard = Guard::new(hold.clone(), dirty);
        // Without a heartbeat the lease would silently run out: give it back (the guard's drop)
        // and fail.
        heartbeat::start(&hold)?;
        Ok(guard)
    }
}

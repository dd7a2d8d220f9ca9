//! What a lock is, shared with its acquisitions under way.

use std::sync::{Arc, Mutex};

use super::lost::LostSlot;
use super::options::LockOptions;
use crate::liveness::KnownAlive;
use crate::store::Store;
use crate::wait::ChangeWait;
use crate::writer_board;

/// What a lock is, shared with its acquisitions under way.
pub(crate) struct LockInner {
    pub(super) store: Store,
    pub(super) key: String,
    /// How the board names the key (see `writer_board::key_hash`).
    pub(super) key_hash: u64,
    pub(super) label: String,
    pub(super) options: LockOptions,
    pub(super) lost: Arc<LostSlot>,
    /// The wake-up sources of the last acquisition that had to wait, kept for the next one.
    pub(super) idle_wait: Mutex<Option<ChangeWait>>,
    /// The holder a look last found alive (see [`KnownAlive`]).
    pub(super) known_alive: KnownAlive,
}

impl LockInner {
    pub(super) fn new(store: Store, key: &str, label: &str, options: LockOptions) -> LockInner {
        LockInner {
            store,
            key: key.to_owned(),
            key_hash: writer_board::key_hash(key),
            label: label.to_owned(),
            options,
            lost: Arc::default(),
            idle_wait: Mutex::new(None),
            known_alive: KnownAlive::new(),
        }
    }
}

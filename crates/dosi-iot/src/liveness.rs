//! When each device was last heard from, and whether its entity says it is
//! online: the state behind `deviceState` (FIWARE Smart Data Models `Device`).
//!
//! The hot path ([`Liveness::seen`]) takes a read lock and stores two atomics;
//! only a device's first measure takes the write lock. Whoever watches for
//! silent devices (the API's background task) reads [`Liveness::entries`],
//! writes the transitions to the entities and records them with
//! [`Seen::set_reported`]. The table is persisted as one blob (see
//! [`Liveness::to_bytes`]) at most every few seconds, not per measure.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

/// What a device's entity says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reported {
    /// Nothing written yet.
    Unknown,
    /// `deviceState` is `online`.
    Online,
    /// `deviceState` is `offline`.
    Offline,
}

impl Reported {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Online,
            2 => Self::Offline,
            _ => Self::Unknown,
        }
    }
    fn to_u8(self) -> u8 {
        match self {
            Self::Unknown => 0,
            Self::Online => 1,
            Self::Offline => 2,
        }
    }
}

/// One device's liveness.
#[derive(Debug)]
pub struct Seen {
    last_ms: AtomicI64,
    interval_secs: AtomicU64,
    reported: AtomicU8,
}

impl Seen {
    /// When it was last heard from (Unix milliseconds).
    pub fn last_ms(&self) -> i64 {
        self.last_ms.load(Ordering::Relaxed)
    }
    /// Its silence limit in seconds (0: not watched), as of its last measure.
    pub fn interval_secs(&self) -> u64 {
        self.interval_secs.load(Ordering::Relaxed)
    }
    /// What its entity says.
    pub fn reported(&self) -> Reported {
        Reported::from_u8(self.reported.load(Ordering::Relaxed))
    }
    /// Records what was written to its entity.
    pub fn set_reported(&self, r: Reported) {
        self.reported.store(r.to_u8(), Ordering::Relaxed);
    }
    /// Whether it is online at `now_ms` by its interval (always when not watched).
    pub fn online_at(&self, now_ms: i64) -> bool {
        let iv = self.interval_secs();
        iv == 0 || now_ms.saturating_sub(self.last_ms()) <= (iv as i64).saturating_mul(1000)
    }
}

#[derive(Serialize, Deserialize)]
struct Row {
    service: String,
    device: String,
    last_ms: i64,
    interval_secs: u64,
    reported: Reported,
}

/// The last-seen table of every device heard from.
#[derive(Default)]
pub struct Liveness {
    // service → device id → state (nested so a lookup needs no allocation).
    map: RwLock<HashMap<String, HashMap<String, Arc<Seen>>>>,
    dirty: AtomicBool,
}

impl Liveness {
    /// Records a measure from (`service`, `device`) at `now_ms`, with its
    /// silence limit. Returns true when its entity does not say `online` yet
    /// (the watcher should run now).
    pub fn seen(&self, service: &str, device: &str, now_ms: i64, interval_secs: u64) -> bool {
        if !self.dirty.load(Ordering::Relaxed) {
            self.dirty.store(true, Ordering::Relaxed);
        }
        let existing = self
            .map
            .read()
            .get(service)
            .and_then(|m| m.get(device))
            .cloned();
        let s = match existing {
            Some(s) => s,
            None => self
                .map
                .write()
                .entry(service.to_string())
                .or_default()
                .entry(device.to_string())
                .or_insert_with(|| {
                    Arc::new(Seen {
                        last_ms: AtomicI64::new(now_ms),
                        interval_secs: AtomicU64::new(interval_secs),
                        reported: AtomicU8::new(0),
                    })
                })
                .clone(),
        };
        s.last_ms.fetch_max(now_ms, Ordering::Relaxed);
        if s.interval_secs() != interval_secs {
            s.interval_secs.store(interval_secs, Ordering::Relaxed);
        }
        interval_secs > 0 && s.reported() != Reported::Online
    }

    /// One device's liveness, if it was ever heard from.
    pub fn get(&self, service: &str, device: &str) -> Option<Arc<Seen>> {
        self.map.read().get(service)?.get(device).cloned()
    }

    /// Forgets a device (deleted).
    pub fn remove(&self, service: &str, device: &str) {
        if let Some(m) = self.map.write().get_mut(service) {
            m.remove(device);
        }
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// Every device heard from: (service, device id, state).
    pub fn entries(&self) -> Vec<(String, String, Arc<Seen>)> {
        let g = self.map.read();
        let mut out = Vec::new();
        for (svc, m) in g.iter() {
            for (id, s) in m {
                out.push((svc.clone(), id.clone(), s.clone()));
            }
        }
        out
    }

    /// The watched devices whose entity does not say what their silence
    /// says at `now_ms`: (service, device id, state, what it should say).
    /// Walks the table under its read lock, copying only those.
    pub fn transitions(&self, now_ms: i64) -> Vec<(String, String, Arc<Seen>, Reported)> {
        let g = self.map.read();
        let mut out = Vec::new();
        for (svc, m) in g.iter() {
            for (id, s) in m {
                if s.interval_secs() == 0 {
                    continue;
                }
                let want = if s.online_at(now_ms) {
                    Reported::Online
                } else {
                    Reported::Offline
                };
                if s.reported() != want {
                    out.push((svc.clone(), id.clone(), s.clone(), want));
                }
            }
        }
        out
    }

    /// Whether anything changed since the last [`Liveness::take_dirty`].
    pub fn take_dirty(&self) -> bool {
        self.dirty.swap(false, Ordering::Relaxed)
    }

    /// The table as bytes (JSON rows), for persisting.
    pub fn to_bytes(&self) -> Vec<u8> {
        let rows: Vec<Row> = self
            .entries()
            .into_iter()
            .map(|(service, device, s)| Row {
                service,
                device,
                last_ms: s.last_ms(),
                interval_secs: s.interval_secs(),
                reported: s.reported(),
            })
            .collect();
        serde_json::to_vec(&rows).unwrap_or_default()
    }

    /// Loads a table written by [`Liveness::to_bytes`]; unreadable bytes give an empty table.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let rows: Vec<Row> = serde_json::from_slice(bytes).unwrap_or_default();
        let mut map: HashMap<String, HashMap<String, Arc<Seen>>> = HashMap::new();
        for r in rows {
            map.entry(r.service).or_default().insert(
                r.device,
                Arc::new(Seen {
                    last_ms: AtomicI64::new(r.last_ms),
                    interval_secs: AtomicU64::new(r.interval_secs),
                    reported: AtomicU8::new(r.reported.to_u8()),
                }),
            );
        }
        Self {
            map: RwLock::new(map),
            dirty: AtomicBool::new(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_goes_stale_and_round_trips() {
        let l = Liveness::default();
        assert!(l.seen("city", "d1", 1_000, 1), "not reported yet");
        let s = l.get("city", "d1").unwrap();
        assert!(s.online_at(2_000));
        assert!(!s.online_at(2_001));
        s.set_reported(Reported::Online);
        assert!(!l.seen("city", "d1", 1_500, 1));
        assert_eq!(s.last_ms(), 1_500);
        assert!(!l.seen("city", "d2", 0, 0), "not watched");
        assert!(l.transitions(2_000).is_empty());
        assert_eq!(l.transitions(2_600)[0].3, Reported::Offline);
        assert!(l.take_dirty());
        let again = Liveness::from_bytes(&l.to_bytes());
        let s2 = again.get("city", "d1").unwrap();
        assert_eq!(
            (s2.last_ms(), s2.reported(), s2.interval_secs()),
            (1_500, Reported::Online, 1)
        );
        again.remove("city", "d1");
        assert!(again.get("city", "d1").is_none());
        assert_eq!(Liveness::from_bytes(b"junk").entries().len(), 0);
    }
}

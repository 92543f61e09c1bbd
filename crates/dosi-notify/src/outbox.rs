//! The durable outbox: notifications appended (and fsynced) before the write
//! that caused them is acknowledged, removed when delivered or discarded.

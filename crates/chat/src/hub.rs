//! Rooms on this replica. Each room with local members runs two tasks: `ingest` (what local
//! members send, appended to the room's log in batches and published to the room's broker
//! topic) and `room` (the members, and in-order delivery of what the broker carries).
//! `registry` holds the rooms by name and starts a room's tasks on its first join; `replica`
//! is what the tasks share (the log, the broker, the settings, the SLO budgets, the metric
//! handles and the clock).
//!
//! The tasks do not know the registry: a room whose task ends calls back to be forgotten, so
//! the registry imports the tasks and nothing imports it back.

pub mod ingest;
pub mod registry;
mod replica;
pub mod room;

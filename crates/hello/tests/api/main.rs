//! hello's HTTP test suite: one binary (zero2prod style), one module per concern.

mod birthdays;
mod cli;
mod faults;
mod helpers;
mod stack;

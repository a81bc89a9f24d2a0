//! Building blocks for services' own tests (feature `testing`): [`TestApp`] runs the real
//! start-up path — configuration, storage, stack, admin — on random ports inside the test;
//! [`ServiceProcess`] runs a service binary; [`FaultProxy`] cuts a service off a shared server;
//! [`ServerProcess`] runs a private instance of a real server that a test may stop and start,
//! and [`backend_restart`] drives writes through such an outage.
//!
//! - `app`: the service under test, in process or as its binary, and assertions on its answers;
//! - `servers`: which backends a test runs on, and private real servers it may stop;
//! - `outage`: cutting a service off its backend, and writes driven through an outage;
//! - `browser`: headless Chromium over WebDriver;
//! - `tools`: external tools (promtool, …) and the check that generated SLO files are current.

mod app;
mod browser;
mod outage;
mod servers;
mod tools;

pub use app::{
    Readiness, ServiceProcess, TestApp, assert_problem, client_trusting, eventually,
    eventually_within, temp_path,
};
pub use browser::Browser;
pub use outage::{
    FaultProxy, OUTAGE_ANSWER_LIMIT, OutageReport, Refusal, acknowledged_until_killed,
    backend_restart,
};
pub use servers::{Backend, Server, ServerProcess, unique_dynamodb_table};
pub use tools::{assert_generated_slo_files, promtool, require, run_tool};

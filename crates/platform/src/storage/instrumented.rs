//! The wrapper every key–value backend runs inside: it bounds each operation by a timeout and
//! records its duration and outcome, so no backend re-implements either. Its `Meter` does the
//! same for the log and pub/sub wrappers.
//!
//! Metric: the histogram `db_client_operation_duration_seconds` (OpenTelemetry's
//! `db.client.operation.duration`) with the labels `db_system_name` (the convention's names:
//! `postgresql`, `mysql`, `sqlite`, `redis`, `aws.dynamodb`; `memory` for the in-process store,
//! `nats` for the broker), `db_operation_name` (`get`, `put`, `put_if_absent`, `delete`, `scan`,
//! `write_batch`, `ping`) and `outcome` (`ok`, `not_found` for a `get` that found nothing or a
//! `delete` of a missing key, `error`). `outcome` is the project's own: the convention's
//! `error.type` names failures only, and a `not_found` is not one. Every label value is a
//! `&'static str`, so the label set stays bounded.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{BatchOutcome, BatchWrite, KeyValue, ScanPage, StorageError};

use crate::metrics::LabelHashing;
use crate::metrics::names::DB_CLIENT_OPERATION_DURATION as OPERATION_DURATION;

/// A [`KeyValue`] that times, bounds and counts every call to the one it wraps.
pub struct Instrumented {
    inner: Arc<dyn KeyValue>,
    meter: Meter,
}

const OPERATIONS: [&str; 7] = [
    "get",
    "put",
    "put_if_absent",
    "delete",
    "scan",
    "write_batch",
    "ping",
];
const OUTCOMES: [&str; 3] = ["ok", "not_found", "error"];

impl Instrumented {
    /// Wraps `inner`; with a `timeout`, each operation that takes longer is abandoned and
    /// reported as [`StorageError::Unavailable`]. `None` is for backends that cannot stall (the
    /// in-process memory store), which then pay for no timer.
    pub fn new(inner: Arc<dyn KeyValue>, timeout: Option<Duration>) -> Instrumented {
        let meter = Meter::new(inner.backend(), timeout, &OPERATIONS, &OUTCOMES);
        Instrumented { inner, meter }
    }

    async fn observe<T>(
        &self,
        operation: &'static str,
        future: impl Future<Output = Result<T, StorageError>>,
        classify: fn(&T) -> &'static str,
    ) -> Result<T, StorageError> {
        self.meter.observe(operation, future, classify).await
    }
}

/// The timing, timeout and histogram of one backend's operations, shared by the wrappers of
/// every storage trait (this one, `log::instrumented` and `pubsub::instrumented`).
pub(crate) struct Meter {
    backend: &'static str,
    timeout: Option<Duration>,
    /// One handle per (operation, outcome), made once, so a call does no registry lookup.
    histograms: HashMap<(&'static str, &'static str), metrics::Histogram, LabelHashing>,
}

impl Meter {
    /// Registers the histogram of every pair of `operations` and `outcomes` for `backend`.
    pub(crate) fn new(
        backend: &'static str,
        timeout: Option<Duration>,
        operations: &[&'static str],
        outcomes: &[&'static str],
    ) -> Meter {
        let histograms = operations
            .iter()
            .flat_map(|operation| outcomes.iter().map(move |outcome| (*operation, *outcome)))
            .map(|(operation, outcome)| {
                let histogram = metrics::histogram!(
                    OPERATION_DURATION,
                    "db_system_name" => system_name(backend),
                    "db_operation_name" => operation,
                    "outcome" => outcome,
                );
                ((operation, outcome), histogram)
            })
            .collect();
        Meter {
            backend,
            timeout,
            histograms,
        }
    }

    /// Runs one operation under the timeout and records it.
    /// `classify` names the outcome of a success (`ok` or `not_found`).
    pub(crate) async fn observe<T>(
        &self,
        operation: &'static str,
        future: impl Future<Output = Result<T, StorageError>>,
        classify: fn(&T) -> &'static str,
    ) -> Result<T, StorageError> {
        let backend = self.backend;
        let started = Instant::now();
        let result = match self.timeout {
            None => future.await,
            Some(timeout) => match tokio::time::timeout(timeout, future).await {
                Ok(result) => result,
                Err(_) => Err(StorageError::Unavailable(
                    format!("{backend} {operation} timed out after {timeout:?}").into(),
                )),
            },
        };
        let outcome = match &result {
            Ok(value) => classify(value),
            Err(error) => {
                tracing::debug!(backend, operation, %error, "Storage operation failed.");
                "error"
            }
        };
        let elapsed = started.elapsed().as_secs_f64();
        match self.histograms.get(&(operation, outcome)) {
            Some(histogram) => histogram.record(elapsed),
            // An operation the service names (a `SqlDatabase` statement's), not known up front.
            None => metrics::histogram!(
                OPERATION_DURATION,
                "db_system_name" => system_name(backend),
                "db_operation_name" => operation,
                "outcome" => outcome,
            )
            .record(elapsed),
        }
        result
    }
}

/// OpenTelemetry's `db.system.name` for a backend's name, where the convention has one.
fn system_name(backend: &'static str) -> &'static str {
    match backend {
        "postgres" => "postgresql",
        "dynamodb" => "aws.dynamodb",
        other => other,
    }
}

impl std::fmt::Debug for Meter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meter")
            .field("backend", &self.backend)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl std::fmt::Debug for Instrumented {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instrumented")
            .field("backend", &self.meter.backend)
            .field("timeout", &self.meter.timeout)
            .finish()
    }
}

pub(crate) fn ok<T>(_: &T) -> &'static str {
    "ok"
}

fn found<T>(value: &Option<T>) -> &'static str {
    if value.is_some() { "ok" } else { "not_found" }
}

fn existed(existed: &bool) -> &'static str {
    if *existed { "ok" } else { "not_found" }
}

#[async_trait]
impl KeyValue for Instrumented {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        self.observe("get", self.inner.get(key), found).await
    }

    async fn put(&self, key: &str, value: &[u8]) -> Result<(), StorageError> {
        self.observe("put", self.inner.put(key, value), ok).await
    }

    async fn put_if_absent(&self, key: &str, value: &[u8]) -> Result<bool, StorageError> {
        self.observe("put_if_absent", self.inner.put_if_absent(key, value), ok)
            .await
    }

    async fn delete(&self, key: &str) -> Result<bool, StorageError> {
        self.observe("delete", self.inner.delete(key), existed)
            .await
    }

    async fn scan(&self, after: Option<&str>, limit: usize) -> Result<ScanPage, StorageError> {
        self.observe("scan", self.inner.scan(after, limit), ok)
            .await
    }

    async fn write_batch(&self, writes: &[BatchWrite]) -> Result<BatchOutcome, StorageError> {
        self.observe("write_batch", self.inner.write_batch(writes), ok)
            .await
    }

    async fn ping(&self) -> Result<(), StorageError> {
        self.observe("ping", self.inner.ping(), ok).await
    }

    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
}

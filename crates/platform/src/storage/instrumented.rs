//! TEMP stub, replaced by the storage work.
use super::{KeyValue, ScanPage, StorageError};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
/// stub
pub struct Instrumented {
    inner: Arc<dyn KeyValue>,
}
impl Instrumented {
    /// stub
    pub fn new(inner: Arc<dyn KeyValue>, _t: Duration) -> Self {
        Self { inner }
    }
}
#[async_trait]
impl KeyValue for Instrumented {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        self.inner.get(key).await
    }
    async fn put(&self, key: &str, value: &[u8]) -> Result<(), StorageError> {
        self.inner.put(key, value).await
    }
    async fn put_if_absent(&self, key: &str, value: &[u8]) -> Result<bool, StorageError> {
        self.inner.put_if_absent(key, value).await
    }
    async fn delete(&self, key: &str) -> Result<bool, StorageError> {
        self.inner.delete(key).await
    }
    async fn scan(&self, after: Option<&str>, limit: usize) -> Result<ScanPage, StorageError> {
        self.inner.scan(after, limit).await
    }
    async fn ping(&self) -> Result<(), StorageError> {
        self.inner.ping().await
    }
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
}

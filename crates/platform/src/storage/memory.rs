//! TEMP stub, replaced by the storage work.
use super::{KeyValue, ScanPage, StorageError};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Mutex;
/// stub
#[derive(Default)]
pub struct MemoryKeyValue(Mutex<BTreeMap<String, Vec<u8>>>);
#[async_trait]
impl KeyValue for MemoryKeyValue {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self
            .0
            .lock()
            .map_err(|e| StorageError::Backend(e.to_string().into()))?
            .get(key)
            .cloned())
    }
    async fn put(&self, key: &str, value: &[u8]) -> Result<(), StorageError> {
        self.0
            .lock()
            .map_err(|e| StorageError::Backend(e.to_string().into()))?
            .insert(key.into(), value.into());
        Ok(())
    }
    async fn put_if_absent(&self, _key: &str, _value: &[u8]) -> Result<bool, StorageError> {
        Ok(false)
    }
    async fn delete(&self, _key: &str) -> Result<bool, StorageError> {
        Ok(false)
    }
    async fn scan(&self, _after: Option<&str>, _limit: usize) -> Result<ScanPage, StorageError> {
        Ok(ScanPage::default())
    }
    async fn ping(&self) -> Result<(), StorageError> {
        Ok(())
    }
    fn backend(&self) -> &'static str {
        "memory"
    }
}

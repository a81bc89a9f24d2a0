//! TEMP stub, replaced by the storage work.
use super::{ConnectOptions, StorageError};
/// stub
pub struct RedisKeyValue;
impl RedisKeyValue {
    /// stub
    pub async fn connect(
        _url: &str,
        _ns: &str,
        _o: &ConnectOptions,
    ) -> Result<super::memory::MemoryKeyValue, StorageError> {
        Ok(super::memory::MemoryKeyValue::default())
    }
}

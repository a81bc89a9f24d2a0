//! TEMP stub, replaced by the storage work.
use super::{ConnectOptions, StorageError};
/// stub
pub struct MysqlKeyValue;
impl MysqlKeyValue {
    /// stub
    pub async fn connect(
        _url: &str,
        _ns: &str,
        _migrate: bool,
        _o: &ConnectOptions,
    ) -> Result<super::memory::MemoryKeyValue, StorageError> {
        Ok(super::memory::MemoryKeyValue::default())
    }
}

//! messages' own data migration, run by `migrate` (or `storage.migrate`): the listing moves
//! from its old namespace into the store beside the records.

use platform::storage::{BatchWrite, KeyValue, StorageError};

use crate::domain;

/// Where versions before one namespace kept the listing.
pub const LEGACY_LISTING_NAMESPACE: &str = "messages_listing";

/// Moves the entries of the listing's old namespace into the store beside the records, page by
/// page, each page in one atomic write that also deletes it from the old namespace, so a
/// migration cut short resumes where it stopped. Returns how many entries moved.
pub async fn move_legacy_listing(
    legacy: &dyn KeyValue,
    store: &dyn KeyValue,
) -> Result<usize, StorageError> {
    let mut moved = 0;
    loop {
        let page = legacy.scan(None, 500).await?;
        if page.entries.is_empty() {
            break;
        }
        let mut copies = Vec::with_capacity(page.entries.len());
        for (key, _) in &page.entries {
            if let Ok(listed) = domain::ListingKey::parse_cursor(key) {
                copies.push(BatchWrite::put(listed.stored(), Vec::new()));
            }
        }
        store.write_batch(&copies).await?;
        let removals: Vec<BatchWrite> = page
            .entries
            .iter()
            .map(|(key, _)| BatchWrite::delete(key.as_str()))
            .collect();
        legacy.write_batch(&removals).await?;
        moved += copies.len();
    }
    if moved > 0 {
        tracing::info!(moved, "Listing moved beside the records.");
    }
    Ok(moved)
}

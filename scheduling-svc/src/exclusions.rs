//! Priority-target exclusion lists (R7) held in memory: per campaign, the set of excluded
//! person keys, looked up in constant time on the eligibility hot path. A list is replaced as a
//! whole (a new version), so a reader sees the old list or the new one, never a mix.
//!
//! To keep a million entries small, the set holds a 128-bit digest of each key (the first 16
//! bytes of its SHA-256) instead of the key itself: about 34 MiB per million people (measured,
//! docs/benchmarks.md) instead of about 100. Two different keys would share a digest about
//! once in 2^64 keys; the keys themselves stay in the store.

use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, PoisonError, RwLock};

use sha2::{Digest, Sha256};

/// The in-memory form of one person key.
pub type KeyDigest = [u8; 16];

/// The digest of `person_key` as held in an [`ExclusionSet`].
pub fn key_digest(person_key: &str) -> KeyDigest {
    let full = Sha256::digest(person_key.as_bytes());
    let mut digest = [0; 16];
    digest.copy_from_slice(&full[..16]);
    digest
}

/// The digests are already uniformly spread: hashing them again would only cost time, so the
/// table takes their first eight bytes as the hash.
#[derive(Default)]
pub struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
        }
    }
}

type DigestSet = HashSet<KeyDigest, BuildHasherDefault<DigestHasher>>;

/// One campaign's exclusion list as of one version.
#[derive(Debug, Default)]
pub struct ExclusionSet {
    version: i64,
    digests: DigestSet,
}

impl ExclusionSet {
    pub fn new<'a>(version: i64, person_keys: impl IntoIterator<Item = &'a str>) -> Self {
        let keys = person_keys.into_iter();
        let mut digests =
            DigestSet::with_capacity_and_hasher(keys.size_hint().0, Default::default());
        digests.extend(keys.map(key_digest));
        Self { version, digests }
    }

    /// From digests already computed (the streaming import builds these as keys arrive).
    pub fn from_digests(version: i64, digests: impl IntoIterator<Item = KeyDigest>) -> Self {
        let mut set = DigestSet::default();
        set.extend(digests);
        Self {
            version,
            digests: set,
        }
    }

    pub fn version(&self) -> i64 {
        self.version
    }

    pub fn len(&self) -> usize {
        self.digests.len()
    }

    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    pub fn contains(&self, person_key: &str) -> bool {
        self.digests.contains(&key_digest(person_key))
    }
}

/// Every campaign's current list, swapped per campaign.
#[derive(Debug, Default)]
pub struct ExclusionIndex {
    lists: RwLock<BTreeMap<String, Arc<ExclusionSet>>>,
}

impl ExclusionIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// The current list of `campaign_id`, if it has one.
    pub fn get(&self, campaign_id: &str) -> Option<Arc<ExclusionSet>> {
        self.lists
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(campaign_id)
            .cloned()
    }

    /// Whether `person_key` is on `campaign_id`'s list.
    pub fn is_excluded(&self, campaign_id: &str, person_key: &str) -> bool {
        self.get(campaign_id)
            .is_some_and(|list| list.contains(person_key))
    }

    /// The version held for every campaign with a list.
    pub fn versions(&self) -> BTreeMap<String, i64> {
        self.lists
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(id, list)| (id.clone(), list.version()))
            .collect()
    }

    /// Installs `list` for `campaign_id` unless a newer version is already held (a refresh
    /// that read an older version while a local replace landed).
    pub fn install(&self, campaign_id: &str, list: Arc<ExclusionSet>) {
        let mut lists = self.lists.write().unwrap_or_else(PoisonError::into_inner);
        let newer_held = lists
            .get(campaign_id)
            .is_some_and(|held| held.version() >= list.version());
        if !newer_held {
            lists.insert(campaign_id.to_owned(), list);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_find_exactly_the_listed_keys() {
        let set = ExclusionSet::new(3, ["pk-a", "pk-b", "pk-a"]);
        assert_eq!((set.version(), set.len()), (3, 2));
        assert!(set.contains("pk-a") && set.contains("pk-b"));
        assert!(!set.contains("pk-c") && !set.contains(""));
    }

    #[test]
    fn an_older_version_never_replaces_a_newer_one() {
        let index = ExclusionIndex::new();
        index.install("c", Arc::new(ExclusionSet::new(2, ["pk-new"])));
        index.install("c", Arc::new(ExclusionSet::new(1, ["pk-old"])));
        assert!(index.is_excluded("c", "pk-new"));
        assert!(!index.is_excluded("c", "pk-old"));
        index.install("c", Arc::new(ExclusionSet::new(3, ["pk-newest"])));
        assert!(!index.is_excluded("c", "pk-new"));
        assert_eq!(index.versions().get("c"), Some(&3));
        assert!(!index.is_excluded("other", "pk-new"));
    }
}

//! The one conformance suite of `CampaignStore`, run against the in-process store and against
//! PostgreSQL (each PostgreSQL test in a database of its own), so the two cannot drift.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use scheduling_svc::domain::{Campaign, CampaignId};
use scheduling_svc::store::CampaignStore;

mod suite {
    use super::*;

    /// A campaign with every optional field set and sub-second instants, so nothing is lost on
    /// the way through the store.
    fn fully_filled() -> Campaign {
        let mut message = round_60_plus_message();
        message.booking_opens_at = Some(prost_types::Timestamp {
            seconds: 1_620_226_800,
            nanos: 123_456_000,
        });
        message.cancellation_closes_days_before = 30;
        Campaign::try_from(message).unwrap()
    }

    pub async fn upsert_then_get_and_list(store: &dyn CampaignStore) {
        let campaign = fully_filled();
        store.upsert(&campaign).await.unwrap();
        assert_eq!(
            store.get(&campaign.id).await.unwrap(),
            Some(campaign.clone())
        );
        assert_eq!(store.list().await.unwrap(), vec![campaign]);
    }

    pub async fn upsert_replaces(store: &dyn CampaignStore) {
        let original = fully_filled();
        store.upsert(&original).await.unwrap();
        let mut message = proto::scheduling::v1::Campaign::from(&original);
        message.name = "renamed".to_owned();
        message.born_to = "1959-12-31".to_owned();
        message.proxy_allowed = false;
        message.proxy_deadline = None;
        message.modification_allowed_from = None;
        message.cancellation_closes_days_before = 0;
        let replacement = Campaign::try_from(message).unwrap();
        assert_ne!(replacement, original);
        store.upsert(&replacement).await.unwrap();
        assert_eq!(
            store.get(&original.id).await.unwrap(),
            Some(replacement.clone())
        );
        assert_eq!(store.list().await.unwrap(), vec![replacement]);
    }

    pub async fn get_unknown_is_none(store: &dyn CampaignStore) {
        store.upsert(&round_18_49()).await.unwrap();
        let unknown = CampaignId::parse("no-such-campaign").unwrap();
        assert_eq!(store.get(&unknown).await.unwrap(), None);
    }

    pub async fn many_are_listed_in_id_order(store: &dyn CampaignStore) {
        // Dashes sort before letters and digits byte-wise; a locale collation would not.
        let mut ids: Vec<String> = (0..40).rev().map(|n| format!("c{n}")).collect();
        ids.extend(["c-1", "c1-", "a", "a-b", "ab", "9", "z-z"].map(str::to_owned));
        for id in &ids {
            store.upsert(&campaign_with_id(id)).await.unwrap();
        }
        let listed: Vec<String> = store
            .list()
            .await
            .unwrap()
            .iter()
            .map(|campaign| campaign.id.as_str().to_owned())
            .collect();
        let mut expected = ids.clone();
        expected.sort();
        assert_eq!(listed, expected);
        let one = CampaignId::parse("c17").unwrap();
        assert_eq!(
            store.get(&one).await.unwrap(),
            Some(campaign_with_id("c17"))
        );
    }

    pub async fn empty_store_lists_nothing_and_pings(store: &dyn CampaignStore) {
        assert!(store.list().await.unwrap().is_empty());
        store.ping().await.unwrap();
    }
}

macro_rules! conformance {
    ($module:ident, $make_store:expr) => {
        mod $module {
            use super::*;

            #[tokio::test]
            async fn upsert_then_get_and_list() {
                let store = $make_store;
                suite::upsert_then_get_and_list(&store).await;
            }

            #[tokio::test]
            async fn upsert_replaces() {
                let store = $make_store;
                suite::upsert_replaces(&store).await;
            }

            #[tokio::test]
            async fn get_unknown_is_none() {
                let store = $make_store;
                suite::get_unknown_is_none(&store).await;
            }

            #[tokio::test]
            async fn many_are_listed_in_id_order() {
                let store = $make_store;
                suite::many_are_listed_in_id_order(&store).await;
            }

            #[tokio::test]
            async fn empty_store_lists_nothing_and_pings() {
                let store = $make_store;
                suite::empty_store_lists_nothing_and_pings(&store).await;
            }
        }
    };
}

conformance!(memory, scheduling_svc::MemoryCampaignStore::new());
conformance!(postgres, pg_store("sched_conf").await);

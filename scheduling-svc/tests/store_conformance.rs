//! The one conformance suite of `CampaignStore`, run against the in-process store and against
//! PostgreSQL (each PostgreSQL test in a database of its own), so the two cannot drift:
//! campaigns (with their rules and versions) and exclusion lists.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use scheduling_svc::SchedulingError;
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
        let stored = store.upsert(&campaign).await.unwrap();
        assert_eq!(stored, campaign.clone().with_version(1));
        assert_eq!(store.get(&campaign.id).await.unwrap(), Some(stored.clone()));
        assert_eq!(store.list().await.unwrap(), vec![stored]);
    }

    /// The 2021 fixture: bands, rotation/band/open windows, channels, shares, proxy limits.
    pub async fn rules_survive_the_store(store: &dyn CampaignStore) {
        for campaign in fixture_2021() {
            let stored = store.upsert(&campaign).await.unwrap();
            assert_eq!(stored, campaign.clone().with_version(1));
            assert_eq!(store.get(&campaign.id).await.unwrap(), Some(stored));
        }
        assert_eq!(store.list().await.unwrap().len(), 2);
    }

    pub async fn every_upsert_bumps_the_version(store: &dyn CampaignStore) {
        let campaign = round_18_49();
        for version in 1..=3 {
            assert_eq!(store.upsert(&campaign).await.unwrap().version, version);
        }
        assert_eq!(store.get(&campaign.id).await.unwrap().unwrap().version, 3);
        // Another campaign counts on its own.
        assert_eq!(store.upsert(&round_60_plus()).await.unwrap().version, 1);
    }

    pub async fn an_exclusion_list_is_replaced_whole(store: &dyn CampaignStore) {
        let campaign = round_18_49();
        store.upsert(&campaign).await.unwrap();
        assert_eq!(store.exclusions(&campaign.id).await.unwrap(), None);
        assert!(store.exclusion_versions().await.unwrap().is_empty());

        let first: Vec<String> = ["pk-b", "pk-a", "pk-c"].map(str::to_owned).to_vec();
        assert_eq!(
            store
                .replace_exclusions(&campaign.id, &first)
                .await
                .unwrap(),
            1
        );
        let mut held = store.exclusions(&campaign.id).await.unwrap().unwrap();
        held.person_keys.sort();
        assert_eq!(held.version, 1);
        assert_eq!(held.person_keys, vec!["pk-a", "pk-b", "pk-c"]);

        let second: Vec<String> = ["pk-d"].map(str::to_owned).to_vec();
        assert_eq!(
            store
                .replace_exclusions(&campaign.id, &second)
                .await
                .unwrap(),
            2
        );
        let held = store.exclusions(&campaign.id).await.unwrap().unwrap();
        assert_eq!(
            (held.version, held.person_keys),
            (2, vec!["pk-d".to_owned()])
        );
        assert_eq!(
            store.exclusion_versions().await.unwrap(),
            vec![(campaign.id.clone(), 2)]
        );

        // An empty list is a list (version 3, nobody excluded).
        assert_eq!(
            store.replace_exclusions(&campaign.id, &[]).await.unwrap(),
            3
        );
        let held = store.exclusions(&campaign.id).await.unwrap().unwrap();
        assert_eq!((held.version, held.person_keys.len()), (3, 0));
    }

    pub async fn exclusions_need_a_known_campaign(store: &dyn CampaignStore) {
        let unknown = CampaignId::parse("no-such-campaign").unwrap();
        let outcome = store
            .replace_exclusions(&unknown, &["pk-a".to_owned()])
            .await;
        assert!(matches!(outcome, Err(SchedulingError::CampaignNotFound)));
        assert_eq!(store.exclusions(&unknown).await.unwrap(), None);
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
        let stored = store.upsert(&replacement).await.unwrap();
        assert_eq!(stored, replacement.clone().with_version(2));
        assert_eq!(store.get(&original.id).await.unwrap(), Some(stored.clone()));
        assert_eq!(store.list().await.unwrap(), vec![stored]);
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
            Some(campaign_with_id("c17").with_version(1))
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
            async fn rules_survive_the_store() {
                let store = $make_store;
                suite::rules_survive_the_store(&store).await;
            }

            #[tokio::test]
            async fn every_upsert_bumps_the_version() {
                let store = $make_store;
                suite::every_upsert_bumps_the_version(&store).await;
            }

            #[tokio::test]
            async fn an_exclusion_list_is_replaced_whole() {
                let store = $make_store;
                suite::an_exclusion_list_is_replaced_whole(&store).await;
            }

            #[tokio::test]
            async fn exclusions_need_a_known_campaign() {
                let store = $make_store;
                suite::exclusions_need_a_known_campaign(&store).await;
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

//! The dev run's agency: answers from the subscriber directory in
//! [`platform::dev::DevHooks::carriers`], which the demo seeds and
//! `POST /dev/carrier/subscribers` adds to. Never used outside `vaxbook dev` (production refuses
//! to start without `AUTH_CARRIER_CHECK_URL`).

use std::sync::Arc;

use platform::carrier::CarrierDirectory;

use super::{CarrierCheck, CarrierError, SubscriberQuery, SubscriberVerdict};

/// The directory adapter.
pub struct DirectoryCarrierCheck {
    directory: Arc<CarrierDirectory>,
}

impl DirectoryCarrierCheck {
    pub fn new(directory: Arc<CarrierDirectory>) -> Self {
        Self { directory }
    }
}

#[async_trait::async_trait]
impl CarrierCheck for DirectoryCarrierCheck {
    async fn check(&self, query: &SubscriberQuery<'_>) -> Result<SubscriberVerdict, CarrierError> {
        let answer = self.directory.check(&query.to_wire());
        Ok(if answer.matched {
            SubscriberVerdict::Registered
        } else {
            SubscriberVerdict::Mismatch
        })
    }
}

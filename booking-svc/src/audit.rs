//! booking-svc's audit trail (platform::audit): the trail `booking` in PostgreSQL (migrated,
//! append-only, hash-chained) next to the bookings — its own chain, apart from scheduling-svc's
//! trail in the same database — or in memory for the dev run. Every call-center call, every
//! admin call and every staff token refused by the citizens' API is appended here, accepted or
//! refused, under the staff account and (for calls about a person) the person key, never a name,
//! phone or RRN. [`crate::serve`] opens one trail and hands the same log to every service that
//! writes it, and to whatever reads it.

use std::sync::Arc;

use platform::audit::{AuditEntry, AuditLog, AuditRecord};
use platform::audit_grpc::AuditGrpc;
use platform::clock::SharedClock;
use platform::operator::OperatorGuard;
use platform::problem::Problem;
use proto::audit::v1::audit_service_server::AuditServiceServer;

/// The action of a staff token refused by the citizens' `BookingService`.
pub const CITIZEN_API_REFUSED: &str = "citizen-api.refused";
/// The admin actions.
pub const UPSERT_CENTER: &str = "admin.upsert-center";
pub const UPSERT_SLOT: &str = "admin.upsert-slot";

/// Opens the configured trail.
pub async fn open(config: &crate::Config) -> anyhow::Result<Arc<dyn AuditLog>> {
    match &config.store {
        crate::StoreConfig::Postgres { url, .. } => {
            let pool = platform::pg::pool(url.expose(), 2)?;
            Ok(Arc::new(
                platform::audit::PgAuditLog::migrate(
                    url.expose(),
                    pool,
                    platform::audit::BOOKING_TRAIL,
                )
                .await?,
            ))
        }
        crate::StoreConfig::Memory => Ok(Arc::new(platform::audit::MemoryAuditLog::new())),
    }
}

/// `vaxbook.audit.v1.AuditService` over `log`: operators (and the dev run's key, only when the
/// configuration has one) query and verify it, supervisors query their organisation's entries;
/// every reading is itself on the trail.
pub fn reader(
    config: &crate::Config,
    log: Arc<dyn AuditLog>,
    grants: Arc<platform::grants::GrantVerifier>,
) -> AuditServiceServer<AuditGrpc> {
    let guard = OperatorGuard::new(grants, config.common.dev_operator_key.clone());
    AuditGrpc::new(log, guard, config.clock.clone()).into_service()
}

/// Appends to the trail at the injected clock's time.
#[derive(Clone)]
pub struct Trail {
    log: Arc<dyn AuditLog>,
    clock: SharedClock,
}

impl Trail {
    pub fn new(log: Arc<dyn AuditLog>, clock: SharedClock) -> Self {
        Self { log, clock }
    }

    /// Appends `record`; a trail that cannot be written is `unavailable` (the caller answers
    /// nothing else: no entry, no answer).
    pub async fn append(&self, record: AuditRecord) -> Result<AuditEntry, Problem> {
        platform::audit::append_or_unavailable(&*self.log, self.clock.now(), record).await
    }
}

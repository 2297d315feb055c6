//! The waiting room's back door, closed (R11): while a campaign's waiting room is on,
//! booking-svc itself requires session-svc's admission grant (`x-admission` metadata; the
//! gateway forwards the `X-Admission` header) on every create and change, whoever calls —
//! through the gateway or straight over gRPC. The grant is verified locally against
//! session-svc's published keys: kind `admission`, this person, the room that governs the
//! slot's campaign, unexpired; each attempt takes one of its uses and the first write that
//! succeeds spends it ([`uses`]). Without a valid grant: `403 admission-required`.
//!
//! Whether a campaign's room is on is session-svc's to say (`GetAdmission`), cached here for
//! a few seconds (`BOOKING_ADMISSION_CACHE_MS`): a grant cannot carry it, because the back door
//! is precisely a call that carries no grant. docs/decisions.md says why and what the cache
//! window means. [`capacity`] publishes the load signal session-svc's automatic mode reads.

pub mod capacity;
pub mod uses;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use platform::admission::{AdmissionGrant, SESSION_ISSUER};
use platform::clock::SharedClock;
use platform::grants::{GrantVerifier, GrpcKeysSource};
use platform::ids::PersonKey;
use platform::problem::{Problem, ProblemKind};
use proto::session::v1::GetAdmissionRequest;
use proto::session::v1::queue_service_client::QueueServiceClient;
use tokio::sync::RwLock;

use self::uses::{AdmissionUses, Spend};

/// Whether a campaign's waiting room limits admission, and which room governs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomStatus {
    pub room: String,
    pub enabled: bool,
}

/// Where the rooms' status comes from (session-svc).
#[async_trait::async_trait]
pub trait AdmissionSource: Send + Sync {
    async fn status(&self, campaign_id: &str) -> Result<RoomStatus, Problem>;
}

/// session-svc's `GetAdmission` over gRPC.
pub struct GrpcAdmissionSource {
    client: QueueServiceClient<platform::grpc::TracedChannel>,
}

impl GrpcAdmissionSource {
    pub fn new(channel: platform::grpc::GrpcChannel) -> Self {
        Self {
            client: QueueServiceClient::with_interceptor(
                channel,
                platform::telemetry::TracePropagation,
            ),
        }
    }
}

#[async_trait::async_trait]
impl AdmissionSource for GrpcAdmissionSource {
    async fn status(&self, campaign_id: &str) -> Result<RoomStatus, Problem> {
        let answer = self
            .client
            .clone()
            .get_admission(GetAdmissionRequest {
                room: campaign_id.to_owned(),
            })
            .await
            .map_err(|status| Problem::from_status(&status))?
            .into_inner();
        Ok(RoomStatus {
            room: answer.room,
            enabled: answer.enabled,
        })
    }
}

/// A grant use taken for one write, to spend on success.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdmittedUse {
    grant_id: String,
}

/// How long a status older than the cache window may still be used when session-svc does not
/// answer; past it, writes are refused as unavailable (the door stays shut).
const STALE_LIMIT: Duration = Duration::from_secs(30);

/// booking-svc's admission check.
pub struct AdmissionGate {
    source: Arc<dyn AdmissionSource>,
    grants: GrantVerifier,
    uses: Arc<dyn AdmissionUses>,
    cache_ttl: Duration,
    cache: RwLock<HashMap<String, (Instant, RoomStatus)>>,
}

impl AdmissionGate {
    /// Statuses from `source` (cached `cache_ttl`), grants verified against `keys`.
    pub fn new(
        source: Arc<dyn AdmissionSource>,
        keys: Arc<dyn platform::auth::JwksSource>,
        uses: Arc<dyn AdmissionUses>,
        clock: SharedClock,
        cache_ttl: Duration,
    ) -> Self {
        Self {
            source,
            grants: GrantVerifier::new(keys, clock),
            uses,
            cache_ttl,
            cache: RwLock::new(HashMap::new()),
        }
    }

    /// The gate against session-svc at `channel` (its queue service and published keys).
    pub fn over_grpc(
        channel: platform::grpc::GrpcChannel,
        uses: Arc<dyn AdmissionUses>,
        clock: SharedClock,
        cache_ttl: Duration,
    ) -> Self {
        Self::new(
            Arc::new(GrpcAdmissionSource::new(channel.clone())),
            Arc::new(GrpcKeysSource::new(channel).expecting(SESSION_ISSUER)),
            uses,
            clock,
            cache_ttl,
        )
    }

    async fn status(&self, campaign_id: &str) -> Result<RoomStatus, Problem> {
        let cached = self.cache.read().await.get(campaign_id).cloned();
        if let Some((at, status)) = &cached
            && at.elapsed() < self.cache_ttl
        {
            return Ok(status.clone());
        }
        match self.source.status(campaign_id).await {
            Ok(status) => {
                let mut cache = self.cache.write().await;
                if cache.len() > 10_000 {
                    cache.clear();
                }
                cache.insert(campaign_id.to_owned(), (Instant::now(), status.clone()));
                Ok(status)
            }
            Err(problem) => match cached {
                Some((at, status)) if at.elapsed() < STALE_LIMIT => {
                    tracing::warn!(reason = problem.kind.name(), "admission status stale");
                    Ok(status)
                }
                _ => {
                    tracing::warn!(reason = problem.kind.name(), "admission status unknown");
                    Err(Problem::new(
                        ProblemKind::Unavailable,
                        "whether the waiting room is on cannot be told now",
                    )
                    .with_retry_after(Duration::from_secs(1)))
                }
            },
        }
    }

    /// Lets a booking write for `person` in `campaign_id` through, or refuses it with
    /// `admission-required`. `Some` when a grant use was taken (spend it on success).
    pub async fn check(
        &self,
        person: &PersonKey,
        campaign_id: &str,
        grant: Option<&str>,
        idempotency_key: Option<&str>,
    ) -> Result<Option<AdmittedUse>, Problem> {
        let started = Instant::now();
        let answer = self
            .try_check(person, campaign_id, grant, idempotency_key)
            .await;
        let outcome = match &answer {
            Ok(None) => "open",
            Ok(Some(_)) => "admitted",
            Err(problem) if problem.kind == ProblemKind::AdmissionRequired => "refused",
            Err(_) => "failed",
        };
        metrics::counter!("booking_admission_checks_total", "outcome" => outcome).increment(1);
        metrics::histogram!("booking_admission_check_seconds")
            .record(started.elapsed().as_secs_f64());
        answer
    }

    async fn try_check(
        &self,
        person: &PersonKey,
        campaign_id: &str,
        grant: Option<&str>,
        idempotency_key: Option<&str>,
    ) -> Result<Option<AdmittedUse>, Problem> {
        let status = self.status(campaign_id).await?;
        if !status.enabled {
            return Ok(None);
        }
        let refuse = |detail: &str| {
            Problem::new(
                ProblemKind::AdmissionRequired,
                format!("the waiting room is on for this campaign: {detail}"),
            )
            .with("room", status.room.clone())
        };
        let Some(grant) = grant else {
            return Err(refuse(
                "take a ticket and send the admission grant in X-Admission",
            ));
        };
        let verified = match self.grants.verify::<AdmissionGrant>(grant).await {
            Ok(verified) => verified,
            Err(problem) if problem.kind == ProblemKind::Unavailable => return Err(problem),
            Err(problem) => return Err(refuse(&problem.detail)),
        };
        if verified.claims.sub != person.as_str() {
            return Err(refuse("the admission grant is another person's"));
        }
        if verified.claims.room != status.room {
            return Err(refuse("the admission grant is for another waiting room"));
        }
        match self
            .uses
            .spend(&verified.id, verified.claims.uses, verified.expires_at)
            .await?
        {
            Spend::Allowed(_) => Ok(Some(AdmittedUse {
                grant_id: verified.id,
            })),
            // The retry of the write that spent it: let it through to be answered the same.
            Spend::Spent { by: Some(by) }
                if !by.is_empty() && idempotency_key.is_some_and(|key| key == by) =>
            {
                Ok(None)
            }
            Spend::Spent { .. } => Err(refuse(
                "the admission grant is used up; take a ticket again",
            )),
        }
    }

    /// Spends the grant of a write that succeeded.
    pub async fn succeeded(&self, admitted: AdmittedUse, idempotency_key: Option<&str>) {
        if let Err(problem) = self.uses.finish(&admitted.grant_id, idempotency_key).await {
            // The write stands; the grant keeps its remaining uses until it expires.
            tracing::warn!(
                reason = problem.kind.name(),
                "could not spend an admission grant"
            );
        }
    }
}

/// The gate and the capacity meter `serve` wires in: grant uses in the configured store
/// (PostgreSQL, migrated here, or memory in the dev run), statuses and keys from session-svc.
pub async fn open(
    config: &crate::Config,
) -> anyhow::Result<(Arc<AdmissionGate>, Arc<capacity::CapacityMeter>)> {
    let uses: Arc<dyn AdmissionUses> = match &config.store {
        crate::StoreConfig::Memory => Arc::new(uses::MemoryAdmissionUses::default()),
        crate::StoreConfig::Postgres { url, .. } => {
            let pool = platform::pg::pool(url.expose(), 4)?;
            Arc::new(uses::PgAdmissionUses::migrate(url.expose(), pool).await?)
        }
    };
    let session = platform::grpc::channel(&config.session_url, config.request_timeout)
        .map_err(|err| anyhow::anyhow!("VAXBOOK_SESSION_URL: {err}"))?;
    let gate =
        AdmissionGate::over_grpc(session, uses, config.clock.clone(), config.admission_cache);
    let meter = capacity::CapacityMeter::new(config.target_in_flight, config.target_latency);
    Ok((Arc::new(gate), Arc::new(meter)))
}

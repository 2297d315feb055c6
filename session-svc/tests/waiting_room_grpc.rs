//! The waiting room over gRPC against real Redis, as production runs it (`dev_mode: false`,
//! a signing key file): concurrent arrivals get distinct places 1..N in arrival order, the
//! same person gets the same place back, admitted people receive an admission grant that
//! verifies against session-svc's published keys, `GetAdmission` tells booking-svc whether a
//! campaign is limited, and the operators' calls take an operator token (auth-svc's staff token
//! of role operator): without one, with a citizen's or an agent's token they are refused with
//! their problem type, and every call, accepted or refused, is in the hash-chained trail under
//! the operator the token names.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use platform::admission::{AdmissionGrant, SESSION_ISSUER};
use platform::audit::{AuditLog, AuditQuery};
use platform::auth::Role;
use platform::clock::{Clock as _, SettableClock};
use platform::grants::{GrantVerifier, GrpcKeysSource};
use platform::operator::OperatorCredential;
use platform::problem::{Problem, ProblemKind};
use platform::staff::{AgentToken, StaffRole};
use platform::trust::{AuthStandIn, with_bearer};
use proto::session::v1 as pb;
use proto::session::v1::queue_admin_service_client::QueueAdminServiceClient;
use proto::session::v1::queue_service_client::QueueServiceClient;
use proto::session::v1::session_service_client::SessionServiceClient;
use session_svc::waiting_room::audit::RedisAuditLog;
use session_svc::{Config, StoreConfig};
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::transport::Channel;

struct Running {
    channel: Channel,
    auth: AuthStandIn,
    clock: Arc<SettableClock>,
    prefix: String,
    shutdown: CancellationToken,
}

fn signing_key_file() -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "session-signing-{}.pem",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(&path, platform::grants::generate_pem().unwrap()).unwrap();
    path
}

async fn start() -> Running {
    platform::telemetry::init_for_tests();
    let _ = platform::metrics::handle();
    let auth = AuthStandIn::start().await.unwrap();
    let clock = Arc::new(SettableClock::new());
    let hooks = platform::dev::DevHooks::new(Utc::now());
    let mut config = Config::local_dev(SocketAddr::from(([127, 0, 0, 1], 0)), &hooks);
    let prefix = platform::redis_conn::test_prefix("waiting-room");
    config.clock = clock.clone();
    config.auth_url = auth.url.clone();
    config.store = StoreConfig::Redis {
        url: platform::config::ConnectionUrl::new(platform::config::string(
            "VAXBOOK_TEST_REDIS_URL",
            platform::redis_conn::DEFAULT_REDIS_URL,
        )),
        key_prefix: prefix.clone(),
    };
    config.dev_mode = false;
    // As in production: no dev-run operator key, operator tokens only.
    config.common.dev_operator_key = None;
    config.signing_key_file = Some(signing_key_file());
    config.queue.step_interval = Duration::from_millis(50);
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(session_svc::serve(config, listener, shutdown.clone()));
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    Running {
        channel,
        auth,
        clock,
        prefix,
        shutdown,
    }
}

impl Running {
    /// Claims a session for `person` on `device` and answers its access token.
    async fn signed_in(&self, person: &str, device: &str) -> String {
        let now = self.clock.now();
        let proof = self.auth.proof(person, device, now).unwrap();
        let granted = SessionServiceClient::new(self.channel.clone())
            .claim_device(pb::ClaimDeviceRequest {
                person_key: person.to_owned(),
                device_id: device.to_owned(),
                device_proof: proof,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(granted.fence >= 1);
        self.auth
            .token(
                Role::Citizen,
                person,
                "1990-01-13",
                &granted.session_id,
                device,
                now,
            )
            .unwrap()
    }

    /// A staff token of `role` for the account `account`, as auth-svc's login issues it.
    fn staff(&self, role: StaffRole, account: &str) -> OperatorCredential {
        let claims = AgentToken {
            sub: account.to_owned(),
            username: format!("{}.kim", role.as_str()),
            org: ORGANISATION.to_owned(),
            role,
        };
        OperatorCredential::Token(self.auth.staff_token(&claims, self.clock.now()).unwrap())
    }

    /// The operator's credential.
    fn operator(&self) -> OperatorCredential {
        self.staff(StaffRole::Operator, OPERATOR)
    }

    fn queue(&self) -> QueueServiceClient<Channel> {
        QueueServiceClient::new(self.channel.clone())
    }

    fn admin(&self) -> QueueAdminServiceClient<Channel> {
        QueueAdminServiceClient::new(self.channel.clone())
    }

    async fn take(&self, token: &str, room: &str) -> Result<pb::TicketStatus, tonic::Status> {
        let request = with_bearer(
            pb::TakeTicketRequest {
                room: room.to_owned(),
            },
            token,
        )
        .unwrap();
        self.queue()
            .take_ticket(request)
            .await
            .map(tonic::Response::into_inner)
    }

    async fn poll(&self, token: &str, ticket: &str) -> Result<pb::TicketStatus, tonic::Status> {
        let request = with_bearer(
            pb::PollTicketRequest {
                ticket: ticket.to_owned(),
            },
            token,
        )
        .unwrap();
        self.queue()
            .poll_ticket(request)
            .await
            .map(tonic::Response::into_inner)
    }

    async fn set_admission(&self, enabled: bool, rate: f64) -> pb::AdmissionState {
        let request = self
            .operator()
            .request(pb::SetAdmissionRequest {
                room: "*".to_owned(),
                enabled,
                rate_per_second: rate,
                automatic: false,
            })
            .unwrap();
        self.admin()
            .set_admission(request)
            .await
            .unwrap()
            .into_inner()
    }
}

/// The operator's account id (the token's `sub`) and organisation.
const OPERATOR: &str = "6f1c0b9e-0000-4000-8000-0000000000a1";
const ORGANISATION: &str = "national-operations";
/// An agent's account id.
const AGENT: &str = "6f1c0b9e-0000-4000-8000-0000000000b2";

fn person(n: usize) -> String {
    format!("pk-{n}-{}", uuid::Uuid::new_v4().simple())
}

#[tokio::test]
async fn people_wait_in_arrival_order_and_the_admitted_get_a_grant() {
    let running = start().await;
    // Without an access token nobody gets a ticket.
    let refused = running
        .queue()
        .take_ticket(pb::TakeTicketRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);

    // The room is on but paused while everyone arrives (rate 0: the bucket never fills), so no
    // admission step can move the queue between two arrivals.
    let state = running.set_admission(true, 0.0).await;
    assert!(state.enabled);
    assert_eq!(state.room, "*");

    let count = 20;
    let mut tokens = Vec::new();
    for n in 0..count {
        let who = person(n);
        let token = running.signed_in(&who, &format!("pc-{n}")).await;
        tokens.push((who, token));
    }
    // Everyone arrives at once: distinct places 1..N.
    let mut arrivals = Vec::new();
    for (who, token) in &tokens {
        let running_queue = running.queue();
        let request = with_bearer(pb::TakeTicketRequest::default(), token).unwrap();
        let who = who.clone();
        let token = token.clone();
        arrivals.push(tokio::spawn(async move {
            let mut client = running_queue;
            let status = client.take_ticket(request).await.unwrap().into_inner();
            (who, token, status)
        }));
    }
    let mut taken = Vec::new();
    for arrival in arrivals {
        taken.push(arrival.await.unwrap());
    }
    // Nobody is admitted while the room is paused, and every place 1..N is taken exactly once.
    assert!(taken.iter().all(|(_, _, status)| !status.admitted));
    let mut positions: Vec<u64> = taken.iter().map(|(_, _, status)| status.position).collect();
    positions.sort_unstable();
    assert_eq!(positions, (1..=count as u64).collect::<Vec<_>>());
    let mut tickets: Vec<&str> = taken.iter().map(|(_, _, s)| s.ticket.as_str()).collect();
    tickets.sort_unstable();
    tickets.dedup();
    assert_eq!(tickets.len(), count);

    // Now the room opens at 2 people a second; the waiting are told when to poll and roughly
    // how long they will wait.
    let state = running.set_admission(true, 2.0).await;
    assert!((state.rate_per_second - 2.0).abs() < 1e-9);
    for (_, token, status) in &taken {
        let polled = running.poll(token, &status.ticket).await.unwrap();
        if !polled.admitted {
            assert!(polled.position <= status.position);
            assert!(polled.poll_after_seconds >= 1);
            assert!(polled.eta_seconds >= polled.position / 2);
        }
    }

    // Coming back (another tab): the same ticket, no worse place.
    let (who, token, status) = taken
        .iter()
        .filter(|(_, _, status)| !status.admitted)
        .max_by_key(|(_, _, status)| status.position)
        .unwrap();
    let again = running.take(token, "").await.unwrap();
    assert_eq!(&again.ticket, &status.ticket);
    assert!(again.admitted || again.position <= status.position);

    // Someone else's ticket is nobody's business.
    let (_, other_token, _) = taken.iter().find(|(other, _, _)| other != who).unwrap();
    let refused = running.poll(other_token, &status.ticket).await.unwrap_err();
    assert_eq!(refused.code(), Code::NotFound);

    // The head of the queue is admitted within a few steps and gets a grant.
    let (head, head_token, head_status) = taken
        .iter()
        .min_by_key(|(_, _, status)| (status.admitted, status.position))
        .unwrap();
    let mut admitted = None;
    for _ in 0..60 {
        let polled = running.poll(head_token, &head_status.ticket).await.unwrap();
        if polled.admitted {
            admitted = Some(polled);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let admitted = admitted.expect("the head of the queue is admitted");
    assert_eq!(admitted.position, 0);
    // The same grant on every poll while admitted.
    let again = running.poll(head_token, &head_status.ticket).await.unwrap();
    assert_eq!(again.admission, admitted.admission);
    let verifier = GrantVerifier::new(
        Arc::new(GrpcKeysSource::new(running.channel.clone()).expecting(SESSION_ISSUER)),
        running.clock.clone(),
    );
    let grant = verifier
        .verify::<AdmissionGrant>(&admitted.admission)
        .await
        .unwrap();
    assert_eq!(&grant.claims.sub, head);
    assert_eq!(grant.claims.room, "*");
    assert!(grant.claims.uses >= 1);

    // booking-svc's question: is this campaign limited? The general room answers.
    let governing = running
        .queue()
        .get_admission(pb::GetAdmissionRequest {
            room: "covid19-2021-18-49".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(governing.room, "*");
    assert!(governing.enabled);
    assert!((governing.rate_per_second - 2.0).abs() < 1e-9);
    running.shutdown.cancel();
}

#[tokio::test]
async fn operators_look_up_and_release_a_person_audited() {
    let running = start().await;
    let who = person(1);
    let token = running.signed_in(&who, "pc-1").await;
    running.set_admission(true, 0.0).await;
    let ticket = running.take(&token, "").await.unwrap();
    assert_eq!(ticket.position, 1);
    // A second device tries: blocked (R3), and operators will see the block.
    let proof = running
        .auth
        .proof(&who, "phone-2", running.clock.now())
        .unwrap();
    let locked = SessionServiceClient::new(running.channel.clone())
        .claim_device(pb::ClaimDeviceRequest {
            person_key: who.clone(),
            device_id: "phone-2".to_owned(),
            device_proof: proof,
        })
        .await
        .unwrap_err();
    assert_eq!(locked.code(), Code::FailedPrecondition);

    // Without a token, with the person's own (citizen) token, with an agent's token, with the
    // dev run's key (this is no dev run): refused, each with its problem type.
    let lookup = || pb::LookupPersonRequest {
        person_key: who.clone(),
    };
    let refusal = |status: &tonic::Status| (Problem::from_status(status).kind, status.code());
    let token_required = (ProblemKind::StaffTokenRequired, Code::Unauthenticated);
    let anonymous = running.admin().lookup_person(lookup()).await.unwrap_err();
    assert_eq!(refusal(&anonymous), token_required);
    let citizen = OperatorCredential::Token(token.clone());
    let refused = running
        .admin()
        .lookup_person(citizen.request(lookup()).unwrap())
        .await
        .unwrap_err();
    assert_eq!(refusal(&refused), token_required);
    let agent = running.staff(StaffRole::Agent, AGENT);
    let refused = running
        .admin()
        .release_lock(
            agent
                .request(pb::ReleaseLockRequest {
                    person_key: who.clone(),
                })
                .unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        refusal(&refused),
        (ProblemKind::RoleNotAllowed, Code::PermissionDenied)
    );
    let refused = running
        .admin()
        .lookup_person(OperatorCredential::dev().request(lookup()).unwrap())
        .await
        .unwrap_err();
    assert_eq!(refusal(&refused), token_required);

    let seen = running
        .admin()
        .lookup_person(running.operator().request(lookup()).unwrap())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(seen.device_id, "pc-1");
    assert!(seen.fence >= 1);
    assert_eq!(seen.places.len(), 1);
    assert_eq!(seen.places[0].position, 1);
    assert_eq!(seen.places[0].ticket, ticket.ticket);
    assert_eq!(seen.blocks.len(), 1);
    assert_eq!(seen.blocks[0].device_id, "phone-2");

    let released = running
        .admin()
        .release_lock(
            running
                .operator()
                .request(pb::ReleaseLockRequest {
                    person_key: who.clone(),
                })
                .unwrap(),
        )
        .await
        .unwrap()
        .into_inner();
    assert!(released.released);
    // The released session no longer holds the lock: it cannot take tickets.
    let refused = running.take(&token, "").await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);

    // Both calls on the person are in the chain, under the operator the token names.
    let connection = platform::redis_conn::connect_for_tests().await.unwrap();
    let trail = RedisAuditLog::new(connection, &running.prefix);
    let entries = trail
        .query(&AuditQuery {
            person_key: Some(who.clone()),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .map(|entry| entry.record.action.as_str())
        .collect();
    assert_eq!(actions, ["session.lookup-person", "session.release-lock"]);
    assert!(entries.iter().all(|entry| {
        entry.record.actor == OPERATOR
            && entry.record.organisation == ORGANISATION
            && entry.record.role == "operator"
            && entry.record.outcome == "ok"
    }));
    // So are the refusals (naming no person) and the operator's SetAdmission, in order.
    let all = trail
        .query(&AuditQuery {
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let steps: Vec<(&str, &str, &str, Option<&str>)> = all
        .iter()
        .map(|entry| {
            (
                entry.record.actor.as_str(),
                entry.record.action.as_str(),
                entry.record.outcome.as_str(),
                entry.record.person_key.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        vec![
            (OPERATOR, "session.set-admission", "ok", None),
            (
                "unknown",
                "session.lookup-person",
                "staff-token-required",
                None
            ),
            (
                "unknown",
                "session.lookup-person",
                "staff-token-required",
                None
            ),
            (AGENT, "session.release-lock", "role-not-allowed", None),
            (
                "unknown",
                "session.lookup-person",
                "staff-token-required",
                None
            ),
            (OPERATOR, "session.lookup-person", "ok", Some(who.as_str())),
            (OPERATOR, "session.release-lock", "ok", Some(who.as_str())),
        ]
    );
    assert_eq!(all[3].record.role, "agent");
    assert_eq!(
        platform::audit::verify_log(&trail).await.unwrap(),
        Ok(all.len() as u64)
    );
    running.shutdown.cancel();
}

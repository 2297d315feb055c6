//! The tonic adapter of `vaxbook.auth.v1.StaffAuthService`: login, caller verification for
//! agents, and account administration for operators and supervisors (the audit trail is read
//! over `vaxbook.audit.v1.AuditService`, [`platform::audit_grpc`]). Rules live in
//! [`super::StaffLogin`], [`super::callers`] and [`super::admin`]; this only converts and
//! checks the agent token. A staff RPC refused for its token (none, a citizen's, a forged or
//! expired one: `staff-token-required`) or its role (`role-not-allowed`) is written to the audit
//! trail like every other refusal, under the account when the token verified, else `unknown`.

use std::sync::Arc;

use platform::audit::{AuditEntry, AuditRecord};
use platform::grants::{GrantVerifier, VerifiedGrant};
use platform::problem::{Problem, ProblemKind};
use platform::staff::{AgentToken, STAFF_TOKEN_HEADER};
use proto::auth::v1 as pb;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use super::admin::{AccountAdmin, AccountChange, Caller};
use super::callers::{CallerIdentity, CallerVerifications, outcome_name};
use super::{Account, StaffLogin, refusal};

/// Audit action of `VerifyCaller`.
pub const VERIFY_CALLER: &str = "staff.verify-caller";
/// Audit action of `ConfirmCaller`.
pub const CONFIRM_CALLER: &str = "staff.confirm-caller";
/// Audit action of a staff token the citizens' API refused (`RecordCitizenApiRefusal`).
pub const CITIZEN_API_REFUSED: &str = "citizen-api.refused";
/// Audit action of a refused `RecordCitizenApiRefusal` itself.
pub const RECORD_CITIZEN_API_REFUSAL: &str = "staff.record-citizen-api-refusal";

/// A refused staff call, with the caller's account when its token verified.
struct Refused {
    staff: Option<AgentToken>,
    problem: Problem,
}

impl Refused {
    fn of(agent: &VerifiedGrant<AgentToken>, problem: Problem) -> Self {
        Self {
            staff: Some(agent.claims.clone()),
            problem,
        }
    }
}

pub struct StaffAuthGrpc {
    login: Arc<StaffLogin>,
    verifier: Arc<GrantVerifier>,
    callers: Arc<CallerVerifications>,
    admin: Arc<AccountAdmin>,
}

impl StaffAuthGrpc {
    pub fn new(
        login: Arc<StaffLogin>,
        verifier: Arc<GrantVerifier>,
        callers: Arc<CallerVerifications>,
        admin: Arc<AccountAdmin>,
    ) -> Self {
        Self {
            login,
            verifier,
            callers,
            admin,
        }
    }

    /// The caller of an account administration RPC, for [`AccountAdmin`] to judge and audit.
    async fn caller(&self, metadata: &MetadataMap) -> Caller {
        self.agent(metadata)
            .await
            .map(|agent| agent.claims)
            .map_err(|refused| refused.problem)
    }

    /// Applies `change` to the account named in the request; the account as it is after.
    async fn change(
        &self,
        metadata: &MetadataMap,
        change: AccountChange,
        username: &str,
    ) -> Result<Option<pb::StaffAccount>, Status> {
        let caller = self.caller(metadata).await;
        let account = self
            .admin
            .change(caller, change, username)
            .await
            .map_err(|problem| problem.to_status())?;
        Ok(Some(self.account_to_wire(account)))
    }

    fn account_to_wire(&self, account: Account) -> pb::StaffAccount {
        let now = self.admin.clock().now();
        pb::StaffAccount {
            id: account.id.to_string(),
            username: account.username,
            organisation: account.organisation,
            role: account.role.as_str().to_owned(),
            disabled: account.disabled,
            locked_until: account
                .locked_until
                .filter(|until| *until > now)
                .map(platform::clock::to_timestamp),
            failed_attempts: account.failed_attempts,
            created_at: Some(platform::clock::to_timestamp(account.created_at)),
        }
    }

    /// The verified agent token of a request's `authorization: Bearer` metadata. No token, a
    /// malformed one, a citizen's or any token that does not verify as an agent token is
    /// `staff-token-required`.
    async fn agent(&self, metadata: &MetadataMap) -> Result<VerifiedGrant<AgentToken>, Refused> {
        let required = |detail: &str| Refused {
            staff: None,
            problem: refusal(ProblemKind::StaffTokenRequired, detail),
        };
        let token = metadata
            .get(STAFF_TOKEN_HEADER)
            .and_then(|value| value.to_str().ok())
            .and_then(|raw| raw.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| {
                required("staff RPCs need an agent or operator token in `authorization: Bearer`")
            })?;
        match self.verifier.verify::<AgentToken>(token).await {
            Ok(verified) => Ok(verified),
            Err(problem) if problem.kind == ProblemKind::Unavailable => Err(Refused {
                staff: None,
                problem,
            }),
            Err(_) => Err(required(
                "staff RPCs need a valid agent or operator token from StaffAuthService.Login",
            )),
        }
    }

    /// Writes the audit entry of a refused call and answers the refusal; no entry, no answer.
    async fn refuse(&self, action: &str, refused: Refused) -> Status {
        let staff = refused.staff.as_ref();
        let record = AuditRecord {
            actor: staff.map_or_else(|| "unknown".to_owned(), |s| s.sub.clone()),
            organisation: staff.map(|s| s.org.clone()).unwrap_or_default(),
            role: staff
                .map(|s| s.role.as_str().to_owned())
                .unwrap_or_default(),
            action: action.to_owned(),
            person_key: None,
            outcome: outcome_name::<()>(&Err(refused.problem.clone())),
        };
        match self.append(record).await {
            Ok(_) => refused.problem.to_status(),
            Err(status) => status,
        }
    }

    async fn append(&self, record: AuditRecord) -> Result<AuditEntry, Status> {
        platform::audit::append_or_unavailable(
            &**self.login.audit(),
            self.login.clock().now(),
            record,
        )
        .await
        .map_err(|problem| problem.to_status())
    }

    pub fn into_service(self) -> pb::staff_auth_service_server::StaffAuthServiceServer<Self> {
        pb::staff_auth_service_server::StaffAuthServiceServer::new(self)
    }
}

#[tonic::async_trait]
impl pb::staff_auth_service_server::StaffAuthService for StaffAuthGrpc {
    async fn login(
        &self,
        request: Request<pb::LoginRequest>,
    ) -> Result<Response<pb::LoginResponse>, Status> {
        let request = request.into_inner();
        let logged_in = self
            .login
            .login(&request.username, request.password, &request.totp_code)
            .await
            .map_err(|problem| problem.to_status())?;
        Ok(Response::new(pb::LoginResponse {
            token: logged_in.token.token,
            expires_at: Some(platform::clock::to_timestamp(logged_in.token.expires_at)),
            account_id: logged_in.account.id.to_string(),
            organisation: logged_in.account.organisation,
            role: logged_in.account.role.as_str().to_owned(),
        }))
    }

    async fn verify_caller(
        &self,
        request: Request<pb::VerifyCallerRequest>,
    ) -> Result<Response<pb::VerifyCallerResponse>, Status> {
        let agent = match self.agent(request.metadata()).await {
            Ok(agent) => agent,
            Err(refused) => return Err(self.refuse(VERIFY_CALLER, refused).await),
        };
        let request = request.into_inner();
        let caller = match CallerIdentity::parse(
            &request.name,
            &request.rrn,
            &request.carrier,
            &request.phone,
        ) {
            Ok(caller) => caller,
            // Audited without a person key: a malformed RRN names nobody.
            Err(problem) => {
                return Err(self
                    .refuse(VERIFY_CALLER, Refused::of(&agent, problem))
                    .await);
            }
        };
        let started = self
            .callers
            .start(&agent, caller)
            .await
            .map_err(|p| p.to_status())?;
        Ok(Response::new(pb::VerifyCallerResponse {
            verification_id: started.verification_id.to_string(),
            masked_phone: started.masked_phone,
            expires_at: Some(platform::clock::to_timestamp(started.expires_at)),
        }))
    }

    async fn confirm_caller(
        &self,
        request: Request<pb::ConfirmCallerRequest>,
    ) -> Result<Response<pb::ConfirmCallerResponse>, Status> {
        let agent = match self.agent(request.metadata()).await {
            Ok(agent) => agent,
            Err(refused) => return Err(self.refuse(CONFIRM_CALLER, refused).await),
        };
        let request = request.into_inner();
        let verified = self
            .callers
            .confirm(&agent, &request.verification_id, &request.otp)
            .await
            .map_err(|p| p.to_status())?;
        Ok(Response::new(pb::ConfirmCallerResponse {
            caller_grant: verified.grant.token,
            expires_at: Some(platform::clock::to_timestamp(verified.grant.expires_at)),
            person_key: verified.person_key.to_string(),
            birth_date: platform::ids::format_iso_date(verified.birth_date),
            masked_name: verified.masked_name,
        }))
    }

    async fn record_citizen_api_refusal(
        &self,
        request: Request<pb::RecordCitizenApiRefusalRequest>,
    ) -> Result<Response<pb::RecordCitizenApiRefusalResponse>, Status> {
        // The refused token itself authenticates the report: only its own account is named.
        let agent = match self.agent(request.metadata()).await {
            Ok(agent) => agent,
            Err(refused) => return Err(self.refuse(RECORD_CITIZEN_API_REFUSAL, refused).await),
        };
        let surface = request.into_inner().surface;
        let surface_ok = !surface.is_empty()
            && surface.len() <= 128
            && surface.chars().all(|c| c.is_ascii_graphic() || c == ' ');
        if !surface_ok {
            let problem = Problem::invalid(
                "surface must be 1 to 128 printable ASCII characters, e.g. `POST /v1/bookings`",
            );
            return Err(self
                .refuse(RECORD_CITIZEN_API_REFUSAL, Refused::of(&agent, problem))
                .await);
        }
        tracing::warn!(
            account = %agent.claims.sub,
            surface = %surface,
            "a staff token was presented to the citizens' API"
        );
        let record = AuditRecord {
            actor: agent.claims.sub.clone(),
            organisation: agent.claims.org.clone(),
            role: agent.claims.role.as_str().to_owned(),
            action: CITIZEN_API_REFUSED.to_owned(),
            person_key: None,
            outcome: ProblemKind::CitizenTokenRequired.name().to_owned(),
        };
        let entry = self.append(record).await?;
        Ok(Response::new(pb::RecordCitizenApiRefusalResponse {
            seq: entry.seq,
        }))
    }

    async fn list_accounts(
        &self,
        request: Request<pb::ListAccountsRequest>,
    ) -> Result<Response<pb::ListAccountsResponse>, Status> {
        let caller = self.caller(request.metadata()).await;
        let organisation = request.into_inner().organisation;
        let accounts = self
            .admin
            .list(caller, &organisation)
            .await
            .map_err(|problem| problem.to_status())?;
        Ok(Response::new(pb::ListAccountsResponse {
            accounts: accounts
                .into_iter()
                .map(|account| self.account_to_wire(account))
                .collect(),
        }))
    }

    async fn disable_account(
        &self,
        request: Request<pb::DisableAccountRequest>,
    ) -> Result<Response<pb::DisableAccountResponse>, Status> {
        let account = self
            .change(
                request.metadata(),
                AccountChange::Disable,
                &request.get_ref().username,
            )
            .await?;
        Ok(Response::new(pb::DisableAccountResponse { account }))
    }

    async fn enable_account(
        &self,
        request: Request<pb::EnableAccountRequest>,
    ) -> Result<Response<pb::EnableAccountResponse>, Status> {
        let account = self
            .change(
                request.metadata(),
                AccountChange::Enable,
                &request.get_ref().username,
            )
            .await?;
        Ok(Response::new(pb::EnableAccountResponse { account }))
    }

    async fn unlock_account(
        &self,
        request: Request<pb::UnlockAccountRequest>,
    ) -> Result<Response<pb::UnlockAccountResponse>, Status> {
        let account = self
            .change(
                request.metadata(),
                AccountChange::Unlock,
                &request.get_ref().username,
            )
            .await?;
        Ok(Response::new(pb::UnlockAccountResponse { account }))
    }
}

//! Verifying the caller (R9, point 3 of the call-center channel): an agent enters the caller's
//! name, RRN, carrier and phone; the same phone provider citizens use asks the carriers' agency
//! whether the phone is registered to that person and sends a one-time code by SMS; the caller
//! reads the code to the agent, and a short-lived caller grant bound to that agent and that person
//! comes back. The challenge is filed under a device id derived from the agent's account
//! (`staff:<account id>`), so only the agent who started a verification can confirm it, and the
//! caller's own device lock (R3) is never claimed. Every attempt is audited under the agent, for
//! the caller's person key, never with the name, RRN or phone.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use platform::audit::{AuditLog, AuditRecord};
use platform::clock::SharedClock;
use platform::grants::{GrantIssuer, IssuedGrant, VerifiedGrant};
use platform::problem::{Problem, ProblemKind};
use platform::staff::{AgentToken, CALLER_GRANT_TTL, CallerGrant};

use super::grpc::{CONFIRM_CALLER, VERIFY_CALLER};
use crate::carrier::Carrier;
use crate::domain::{
    DeviceId, Name, Otp, PersonKey, Phone, Rrn, VerificationId, derive_person_key,
};
use crate::error::AuthError;
use crate::providers::{ChallengeAnswer, IdentityProvider, StartRequest};
use crate::store::ChallengeStore;

/// What the agent typed about the caller, validated. No `Debug`: every field is personal data.
pub struct CallerIdentity {
    pub name: Name,
    pub rrn: Rrn,
    pub carrier: Carrier,
    pub phone: Phone,
}

impl CallerIdentity {
    pub fn parse(name: &str, rrn: &str, carrier: &str, phone: &str) -> Result<Self, Problem> {
        Ok(Self {
            name: Name::parse(name)?,
            rrn: Rrn::parse(rrn)?,
            carrier: Carrier::parse(carrier)?,
            phone: Phone::parse(phone)?,
        })
    }
}

/// A code on its way to the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallerChallenge {
    pub verification_id: VerificationId,
    pub masked_phone: String,
    pub expires_at: DateTime<Utc>,
}

/// A verified caller: the grant and who it names.
#[derive(Clone, Debug)]
pub struct VerifiedCaller {
    pub grant: IssuedGrant,
    pub person_key: PersonKey,
    pub birth_date: chrono::NaiveDate,
    pub masked_name: String,
}

/// The caller-verification rules and their collaborators.
pub struct CallerVerifications {
    /// The phone provider (the same instance, limits and agency as the citizens' one).
    pub phone: Arc<dyn IdentityProvider>,
    pub store: Arc<dyn ChallengeStore>,
    pub audit: Arc<dyn AuditLog>,
    pub issuer: GrantIssuer,
    pub clock: SharedClock,
    pub person_key_secret: Vec<u8>,
}

/// The device id a verification started by this agent is filed under.
fn agent_device(agent: &VerifiedGrant<AgentToken>) -> Result<DeviceId, Problem> {
    DeviceId::parse(&format!("staff:{}", agent.claims.sub)).map_err(Problem::from)
}

/// What the audit trail records as outcome: `ok`, the refusal's reason, or its problem type.
pub(super) fn outcome_name<T>(result: &Result<T, Problem>) -> String {
    match result {
        Ok(_) => "ok".to_owned(),
        Err(problem) => problem
            .extra
            .get("reason")
            .cloned()
            .unwrap_or_else(|| problem.kind.name().to_owned()),
    }
}

impl CallerVerifications {
    /// Checks the caller at the carriers' agency and sends the code. Audited.
    pub async fn start(
        &self,
        agent: &VerifiedGrant<AgentToken>,
        caller: CallerIdentity,
    ) -> Result<CallerChallenge, Problem> {
        let person_key = derive_person_key(&self.person_key_secret, &caller.rrn);
        let result = self.start_inner(agent, &person_key, caller).await;
        self.record(agent, VERIFY_CALLER, &person_key, &result)
            .await?;
        result
    }

    async fn start_inner(
        &self,
        agent: &VerifiedGrant<AgentToken>,
        person_key: &PersonKey,
        caller: CallerIdentity,
    ) -> Result<CallerChallenge, Problem> {
        require_booking_role(agent)?;
        let verification_id = VerificationId::new_random();
        let started = self
            .phone
            .start(StartRequest {
                verification_id,
                person_key: person_key.clone(),
                birth_date: caller.rrn.birth_date(),
                sex_digit: caller.rrn.sex_digit(),
                name: caller.name,
                phone: Some(caller.phone),
                carrier: Some(caller.carrier),
                device_id: agent_device(agent)?,
            })
            .await?;
        tracing::info!(%verification_id, agent = %agent.claims.sub, "caller verification started");
        Ok(CallerChallenge {
            verification_id,
            masked_phone: started.masked_phone,
            expires_at: started.expires_at,
        })
    }

    /// Checks the code the caller read out; a caller grant bound to this agent on success.
    /// Audited (under the caller's person key when the verification is known).
    pub async fn confirm(
        &self,
        agent: &VerifiedGrant<AgentToken>,
        verification_id: &str,
        otp: &str,
    ) -> Result<VerifiedCaller, Problem> {
        let mut person_key = None;
        let result = self
            .confirm_inner(agent, verification_id, otp, &mut person_key)
            .await;
        match &person_key {
            Some(key) => self.record(agent, CONFIRM_CALLER, key, &result).await?,
            None => self.append(agent, CONFIRM_CALLER, None, &result).await?,
        }
        result
    }

    async fn confirm_inner(
        &self,
        agent: &VerifiedGrant<AgentToken>,
        verification_id: &str,
        otp: &str,
        person_key: &mut Option<PersonKey>,
    ) -> Result<VerifiedCaller, Problem> {
        require_booking_role(agent)?;
        let id = VerificationId::parse(verification_id)?;
        let otp = Otp::parse(otp)?;
        let challenge = self
            .store
            .get(&id)
            .await
            .map_err(AuthError::from)?
            .ok_or(AuthError::VerificationExpired)?;
        *person_key = Some(challenge.person_key.clone());
        let now = self.clock.now();
        if challenge.expires_at <= now {
            self.store.delete(&id).await.map_err(AuthError::from)?;
            return Err(AuthError::VerificationExpired.into());
        }
        if challenge.device_id != agent_device(agent)? || challenge.provider != self.phone.id() {
            return Err(super::refusal(
                ProblemKind::CallerOfAnotherAgent,
                "the verification was started by another agent",
            ));
        }
        self.phone
            .complete(&id, &challenge, &ChallengeAnswer::Otp(otp))
            .await?;
        let claims = CallerGrant {
            agent: agent.claims.sub.clone(),
            for_key: challenge.person_key.to_string(),
            for_bd: platform::ids::format_iso_date(challenge.birth_date),
        };
        let grant = self
            .issuer
            .issue(&claims, now, CALLER_GRANT_TTL)
            .map_err(|err| {
                tracing::error!(error = %err, "signing a caller grant");
                Problem::internal()
            })?;
        tracing::info!(verification_id = %id, agent = %agent.claims.sub, "caller verified");
        Ok(VerifiedCaller {
            grant,
            person_key: challenge.person_key,
            birth_date: challenge.birth_date,
            masked_name: challenge.masked_name,
        })
    }

    async fn record<T>(
        &self,
        agent: &VerifiedGrant<AgentToken>,
        action: &str,
        person_key: &PersonKey,
        result: &Result<T, Problem>,
    ) -> Result<(), Problem> {
        self.append(agent, action, Some(person_key.to_string()), result)
            .await
    }

    async fn append<T>(
        &self,
        agent: &VerifiedGrant<AgentToken>,
        action: &str,
        person_key: Option<String>,
        result: &Result<T, Problem>,
    ) -> Result<(), Problem> {
        let record = AuditRecord::by_staff(
            Some(&agent.claims),
            action,
            person_key,
            &outcome_name(result),
        );
        // No audit entry, no answer: the trail must be complete.
        platform::audit::append_or_unavailable(&*self.audit, self.clock.now(), record)
            .await
            .map(|_| ())
    }
}

/// Operators run the system; only agents and supervisors speak for callers.
fn require_booking_role(agent: &VerifiedGrant<AgentToken>) -> Result<(), Problem> {
    if agent.claims.role.books_for_callers() {
        Ok(())
    } else {
        Err(super::refusal(
            ProblemKind::RoleNotAllowed,
            "only agents and supervisors verify callers",
        ))
    }
}

#[cfg(test)]
#[path = "callers_tests.rs"]
mod tests;

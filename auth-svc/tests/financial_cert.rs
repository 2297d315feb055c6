//! The `financial_cert` provider against certificates the test makes itself (x509-cert's
//! builder, RustCrypto keys): a good answer with each key type and signature scheme, and each
//! refusal — unknown CA, expired, not yet valid, wrong key usage, another person's
//! certificate, a signature over another nonce, a replayed answer.

#![allow(clippy::unwrap_used)]

use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use auth_svc::domain::{
    CertificateSignature, ChallengeAnswer, DeviceId, Name, Rrn, VerificationId, derive_person_key,
};
use auth_svc::error::AuthError;
use auth_svc::providers::financial_cert::subject_identifier;
use auth_svc::providers::{
    FinancialCertProvider, FinancialCertSettings, IdentityProvider, StartRequest, TrustedRoots,
};
use auth_svc::store::{ChallengeStore, MemoryChallengeStore};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{TimeZone as _, Utc};
use p256::ecdsa::signature::Signer as _;
use platform::clock::{SettableClock, SharedClock};
use rsa::pkcs8::DecodePrivateKey as _;
use x509_cert::Certificate;
use x509_cert::builder::{Builder as _, CertificateBuilder, Profile};
use x509_cert::der::asn1::GeneralizedTime;
use x509_cert::der::{EncodePem as _, pem::LineEnding};
use x509_cert::name::Name as X509Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::{Time, Validity};

const SECRET: &[u8] = b"financial-cert-test-secret";
const RRN: &str = "900101-1234567";
const OTHER_RRN: &str = "850919-1234567";
const NAME: &str = "홍길동";
const DAY: u64 = 86_400;

/// 2021-08-09 20:00 KST, the clock every test runs on.
fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2021, 8, 9, 11, 0, 0).unwrap()
}

fn now_secs() -> u64 {
    u64::try_from(now().timestamp()).unwrap()
}

fn validity(from: u64, to: u64) -> Validity {
    let time = |secs| {
        Time::GeneralTime(GeneralizedTime::from_unix_duration(Duration::from_secs(secs)).unwrap())
    };
    Validity {
        not_before: time(from),
        not_after: time(to),
    }
}

fn serial(n: u8) -> SerialNumber {
    SerialNumber::new(&[0x10, n]).unwrap()
}

fn identifier_of(rrn: &str) -> String {
    subject_identifier(&derive_person_key(SECRET, &Rrn::parse(rrn).unwrap())).unwrap()
}

/// A CA made by the test: an ECDSA P-256 root.
struct TestCa {
    key: p256::ecdsa::SigningKey,
    certificate: Certificate,
}

impl TestCa {
    fn new(common_name: &str) -> Self {
        let key = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
        let subject = X509Name::from_str(&format!("CN={common_name},O=test")).unwrap();
        let spki = SubjectPublicKeyInfoOwned::from_key(*key.verifying_key()).unwrap();
        let certificate = CertificateBuilder::new(
            Profile::Root,
            serial(1),
            validity(now_secs() - 3650 * DAY, now_secs() + 3650 * DAY),
            subject,
            spki,
            &key,
        )
        .unwrap()
        .build::<p256::ecdsa::DerSignature>()
        .unwrap();
        Self { key, certificate }
    }

    fn roots(&self) -> TrustedRoots {
        TrustedRoots::from_pem(self.pem().as_bytes()).unwrap()
    }

    fn pem(&self) -> String {
        self.certificate.to_pem(LineEnding::LF).unwrap()
    }

    /// A leaf for `spki`, naming `name` and `identifier`, valid `from..to`.
    fn leaf(
        &self,
        spki: SubjectPublicKeyInfoOwned,
        name: &str,
        identifier: &str,
        from: u64,
        to: u64,
    ) -> String {
        let subject = platform::dev_ca::person_name(name, identifier).unwrap();
        CertificateBuilder::new(
            Profile::Leaf {
                issuer: self.certificate.tbs_certificate.subject.clone(),
                enable_key_agreement: false,
                enable_key_encipherment: false,
            },
            serial(2),
            validity(from, to),
            subject,
            spki,
            &self.key,
        )
        .unwrap()
        .build::<p256::ecdsa::DerSignature>()
        .unwrap()
        .to_pem(LineEnding::LF)
        .unwrap()
    }

    /// A CA certificate (key usage keyCertSign and cRLSign, no digitalSignature) for `spki`,
    /// named like a person: a certificate with the wrong key usage.
    fn sub_ca(&self, spki: SubjectPublicKeyInfoOwned, name: &str, identifier: &str) -> String {
        let subject = platform::dev_ca::person_name(name, identifier).unwrap();
        CertificateBuilder::new(
            Profile::SubCA {
                issuer: self.certificate.tbs_certificate.subject.clone(),
                path_len_constraint: Some(0),
            },
            serial(3),
            validity(now_secs() - DAY, now_secs() + 365 * DAY),
            subject,
            spki,
            &self.key,
        )
        .unwrap()
        .build::<p256::ecdsa::DerSignature>()
        .unwrap()
        .to_pem(LineEnding::LF)
        .unwrap()
    }
}

/// A person's P-256 key.
struct EcPerson(p256::ecdsa::SigningKey);

impl EcPerson {
    fn new() -> Self {
        Self(p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng))
    }
    fn spki(&self) -> SubjectPublicKeyInfoOwned {
        SubjectPublicKeyInfoOwned::from_key(*self.0.verifying_key()).unwrap()
    }
    fn sign(&self, nonce: &str) -> String {
        let signature: p256::ecdsa::DerSignature = self.0.sign(nonce.as_bytes());
        STANDARD.encode(signature.as_bytes())
    }
}

/// The RSA-2048 test key of `tests/fixtures` (generating one unoptimised takes too long).
fn rsa_key() -> rsa::RsaPrivateKey {
    rsa::RsaPrivateKey::from_pkcs8_pem(include_str!("fixtures/test-rsa-2048.pem")).unwrap()
}

fn rsa_spki(key: &rsa::RsaPrivateKey) -> SubjectPublicKeyInfoOwned {
    SubjectPublicKeyInfoOwned::from_key(key.to_public_key()).unwrap()
}

struct Harness {
    provider: FinancialCertProvider,
    store: Arc<dyn ChallengeStore>,
}

impl Harness {
    fn new(roots: TrustedRoots) -> Self {
        let clock: SharedClock = Arc::new(SettableClock::starting_at(now()));
        let store: Arc<dyn ChallengeStore> = Arc::new(MemoryChallengeStore::new(clock.clone()));
        let provider = FinancialCertProvider::new(
            roots,
            store.clone(),
            clock,
            SECRET,
            FinancialCertSettings {
                nonce_ttl: Duration::from_secs(300),
                max_attempts: 5,
            },
        );
        Self { provider, store }
    }

    /// Starts a verification for `RRN` / `NAME`; its id and nonce.
    async fn start(&self) -> (VerificationId, String) {
        let id = VerificationId::new_random();
        let rrn = Rrn::parse(RRN).unwrap();
        let started = self
            .provider
            .start(StartRequest {
                verification_id: id,
                person_key: derive_person_key(SECRET, &rrn),
                birth_date: rrn.birth_date(),
                sex_digit: '1',
                name: Name::parse(NAME).unwrap(),
                phone: None,
                carrier: None,
                device_id: DeviceId::parse("phone-a").unwrap(),
            })
            .await
            .unwrap();
        (id, started.nonce)
    }

    async fn complete(
        &self,
        id: VerificationId,
        certificate: &str,
        signature: &str,
    ) -> Result<(), AuthError> {
        let challenge = self.store.get(&id).await.unwrap();
        let Some(challenge) = challenge else {
            return Err(AuthError::VerificationExpired);
        };
        let answer = ChallengeAnswer::CertificateSignature(
            CertificateSignature::parse(certificate, signature).unwrap(),
        );
        self.provider.complete(&id, &challenge, &answer).await
    }
}

impl Harness {
    /// Why the provider refuses the answer (the rule that failed), without counting it.
    async fn reason(&self, id: VerificationId, certificate: &str, signature: &str) -> &'static str {
        let challenge = self.store.get(&id).await.unwrap().unwrap();
        let auth_svc::store::ChallengeSecret::AssertionBinding { nonce, name_digest } =
            &challenge.secret
        else {
            panic!("a financial-certificate challenge holds a nonce");
        };
        let answer = CertificateSignature::parse(certificate, signature).unwrap();
        self.provider
            .check(&id, &challenge, nonce, name_digest, &answer)
            .unwrap_err()
            .label()
    }

    /// Refused for `reason`, and the refusal answers `verification-failed`.
    async fn assert_refused(
        &self,
        id: VerificationId,
        certificate: &str,
        signature: &str,
        reason: &str,
    ) {
        assert_eq!(self.reason(id, certificate, signature).await, reason);
        assert!(refused(self.complete(id, certificate, signature).await));
    }
}

fn refused(result: Result<(), AuthError>) -> bool {
    matches!(result, Err(AuthError::AssertionRejected { .. }))
}

#[tokio::test]
async fn an_ecdsa_p256_certificate_under_a_trusted_root_verifies_once() {
    let ca = TestCa::new("Test Root");
    let harness = Harness::new(ca.roots());
    let person = EcPerson::new();
    let certificate = ca.leaf(
        person.spki(),
        NAME,
        &identifier_of(RRN),
        now_secs() - DAY,
        now_secs() + 365 * DAY,
    );
    let (id, nonce) = harness.start().await;
    let signature = person.sign(&nonce);
    harness
        .complete(id, &certificate, &signature)
        .await
        .unwrap();
    // Single use: the same answer again finds nothing to answer.
    let replay = harness.complete(id, &certificate, &signature).await;
    assert!(
        matches!(replay, Err(AuthError::VerificationExpired)),
        "{replay:?}"
    );
}

#[tokio::test]
async fn the_chain_may_carry_the_root_and_der_in_base64_works_too() {
    let ca = TestCa::new("Test Root");
    let harness = Harness::new(ca.roots());
    let person = EcPerson::new();
    let leaf = ca.leaf(
        person.spki(),
        NAME,
        &identifier_of(RRN),
        now_secs() - DAY,
        now_secs() + DAY,
    );
    let (id, nonce) = harness.start().await;
    let chain = format!("{leaf}{}", ca.pem());
    harness
        .complete(id, &chain, &person.sign(&nonce))
        .await
        .unwrap();
    let der = Certificate::load_pem_chain(leaf.as_bytes())
        .unwrap()
        .remove(0);
    let base64_der = STANDARD.encode(x509_cert::der::Encode::to_der(&der).unwrap());
    let (id, nonce) = harness.start().await;
    harness
        .complete(id, &base64_der, &person.sign(&nonce))
        .await
        .unwrap();
}

#[tokio::test]
async fn rsa_2048_signs_with_pkcs1_v1_5_or_pss() {
    let ca = TestCa::new("Test Root");
    let harness = Harness::new(ca.roots());
    let key = rsa_key();
    let certificate = ca.leaf(
        rsa_spki(&key),
        NAME,
        &identifier_of(RRN),
        now_secs() - DAY,
        now_secs() + DAY,
    );
    let pkcs1 = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key.clone());
    let (id, nonce) = harness.start().await;
    let signature: rsa::pkcs1v15::Signature =
        rsa::signature::Signer::sign(&pkcs1, nonce.as_bytes());
    let encoded = STANDARD.encode(rsa::signature::SignatureEncoding::to_bytes(&signature));
    harness.complete(id, &certificate, &encoded).await.unwrap();
    let pss = rsa::pss::BlindedSigningKey::<sha2::Sha256>::new(key);
    let (id, nonce) = harness.start().await;
    let signature: rsa::pss::Signature = rsa::signature::RandomizedSigner::sign_with_rng(
        &pss,
        &mut rand::rngs::OsRng,
        nonce.as_bytes(),
    );
    let encoded = STANDARD.encode(rsa::signature::SignatureEncoding::to_bytes(&signature));
    harness.complete(id, &certificate, &encoded).await.unwrap();
}

#[tokio::test]
async fn a_certificate_under_an_unknown_ca_is_refused() {
    let trusted = TestCa::new("Test Root");
    let stranger = TestCa::new("Test Root"); // the same name, another key
    let other_name = TestCa::new("Other Root");
    let harness = Harness::new(trusted.roots());
    let person = EcPerson::new();
    for ca in [&stranger, &other_name] {
        let certificate = ca.leaf(
            person.spki(),
            NAME,
            &identifier_of(RRN),
            now_secs() - DAY,
            now_secs() + DAY,
        );
        let (id, nonce) = harness.start().await;
        harness
            .assert_refused(id, &certificate, &person.sign(&nonce), "unknown-ca")
            .await;
    }
}

#[tokio::test]
async fn expired_and_not_yet_valid_certificates_are_refused_on_the_injected_clock() {
    let ca = TestCa::new("Test Root");
    let harness = Harness::new(ca.roots());
    let person = EcPerson::new();
    let identifier = identifier_of(RRN);
    let expired = ca.leaf(
        person.spki(),
        NAME,
        &identifier,
        now_secs() - 400 * DAY,
        now_secs() - DAY,
    );
    let early = ca.leaf(
        person.spki(),
        NAME,
        &identifier,
        now_secs() + DAY,
        now_secs() + 400 * DAY,
    );
    for (certificate, reason) in [(expired, "expired"), (early, "not-yet-valid")] {
        let (id, nonce) = harness.start().await;
        harness
            .assert_refused(id, &certificate, &person.sign(&nonce), reason)
            .await;
    }
}

#[tokio::test]
async fn a_certificate_without_digital_signature_key_usage_is_refused() {
    let ca = TestCa::new("Test Root");
    let harness = Harness::new(ca.roots());
    let person = EcPerson::new();
    let certificate = ca.sub_ca(person.spki(), NAME, &identifier_of(RRN));
    let (id, nonce) = harness.start().await;
    harness
        .assert_refused(id, &certificate, &person.sign(&nonce), "key-usage")
        .await;
}

#[tokio::test]
async fn another_persons_certificate_is_refused() {
    let ca = TestCa::new("Test Root");
    let harness = Harness::new(ca.roots());
    let person = EcPerson::new();
    let theirs = ca.leaf(
        person.spki(),
        NAME,
        &identifier_of(OTHER_RRN),
        now_secs() - DAY,
        now_secs() + DAY,
    );
    let (id, nonce) = harness.start().await;
    harness
        .assert_refused(id, &theirs, &person.sign(&nonce), "other-person")
        .await;
    // The identifier of the right person under another name is refused too.
    let renamed = ca.leaf(
        person.spki(),
        "김철수",
        &identifier_of(RRN),
        now_secs() - DAY,
        now_secs() + DAY,
    );
    let (id, nonce) = harness.start().await;
    harness
        .assert_refused(id, &renamed, &person.sign(&nonce), "other-name")
        .await;
}

#[tokio::test]
async fn a_signature_over_another_nonce_or_by_another_key_is_refused() {
    let ca = TestCa::new("Test Root");
    let harness = Harness::new(ca.roots());
    let person = EcPerson::new();
    let certificate = ca.leaf(
        person.spki(),
        NAME,
        &identifier_of(RRN),
        now_secs() - DAY,
        now_secs() + DAY,
    );
    let (id, nonce) = harness.start().await;
    let (_, other_nonce) = harness.start().await;
    harness
        .assert_refused(id, &certificate, &person.sign(&other_nonce), "signature")
        .await;
    harness
        .assert_refused(id, &certificate, &EcPerson::new().sign(&nonce), "signature")
        .await;
    harness
        .assert_refused(id, &certificate, "bm90IGEgc2lnbmF0dXJl", "signature")
        .await;
    // Refusals count against the challenge: the right answer still works within the limit.
    harness
        .complete(id, &certificate, &person.sign(&nonce))
        .await
        .unwrap();
}

#[tokio::test]
async fn refusals_are_counted_until_the_challenge_is_gone() {
    let ca = TestCa::new("Test Root");
    let harness = Harness::new(ca.roots());
    let person = EcPerson::new();
    let certificate = ca.leaf(
        person.spki(),
        NAME,
        &identifier_of(RRN),
        now_secs() - DAY,
        now_secs() + DAY,
    );
    let (id, nonce) = harness.start().await;
    let mut last = Ok(());
    for _ in 0..5 {
        last = harness
            .complete(id, &certificate, &person.sign("wrong"))
            .await;
    }
    assert!(
        matches!(last, Err(AuthError::AttemptsExhausted)),
        "{last:?}"
    );
    let after = harness
        .complete(id, &certificate, &person.sign(&nonce))
        .await;
    assert!(
        matches!(after, Err(AuthError::VerificationExpired)),
        "{after:?}"
    );
}

#[test]
fn the_roots_must_be_certificates() {
    assert!(
        TrustedRoots::from_pem(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
            .is_err()
    );
    let missing = std::env::temp_dir().join(format!("no-such-root-{}.pem", uuid::Uuid::new_v4()));
    let error = TrustedRoots::read_files("AUTH_FINANCIAL_CERT_ROOTS", &[missing]).unwrap_err();
    assert!(format!("{error:#}").contains("AUTH_FINANCIAL_CERT_ROOTS"));
}

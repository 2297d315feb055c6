//! The staff credential of the commands that call a service as an operator or supervisor — the
//! admin commands ([`crate::operator`], [`crate::demo`]), `vaxbook audit` and `vaxbook accounts`
//! — and what a refusal of it tells the person at the terminal. Each command family has its own
//! [`CredentialHelp`]: how to log in for a token it takes, whether the dev run's key stands in
//! without one, and a sentence for each way the credential can be refused.

use platform::operator::OperatorCredential;
use platform::problem::{Problem, ProblemKind};

/// How a command takes its credential and explains a refusal of it.
#[derive(Clone, Copy, Debug)]
pub struct CredentialHelp {
    /// How to log in for a token the command takes; it ends every hint.
    pub login: &'static str,
    /// Said before [`Self::login`] when the dev run's key was refused (`staff-token-required`
    /// outside the dev run). `None`: the command never sends the key, so without a token it
    /// stops with "no token".
    pub dev_key_refused: Option<&'static str>,
    /// Said before [`Self::login`] when the token was refused (`staff-token-required`).
    pub token_refused: &'static str,
    /// Said before [`Self::login`] when the token's role may not do this (`role-not-allowed`).
    pub wrong_role: &'static str,
}

impl CredentialHelp {
    /// The credential of a call: `token` (trimmed; given but blank is an error), else the dev
    /// run's key when the command sends it, else an error saying how to log in.
    pub fn credential(&self, token: Option<&str>) -> anyhow::Result<OperatorCredential> {
        match token.map(str::trim) {
            Some("") => anyhow::bail!("the operator token is empty: {}", self.login),
            Some(token) => Ok(OperatorCredential::Token(token.to_owned())),
            None if self.dev_key_refused.is_some() => Ok(OperatorCredential::dev()),
            None => anyhow::bail!("no token: {}", self.login),
        }
    }

    /// A refused call as an error: the detail, the problem type, and on the next line what to
    /// do when the credential is what was refused.
    pub fn refused(
        &self,
        status: &tonic::Status,
        credential: &OperatorCredential,
    ) -> anyhow::Error {
        let problem = Problem::from_status(status);
        let before = match (problem.kind, credential) {
            (ProblemKind::StaffTokenRequired, OperatorCredential::DevKey(_)) => {
                Some(self.dev_key_refused.unwrap_or(self.token_refused))
            }
            (ProblemKind::StaffTokenRequired, OperatorCredential::Token(_)) => {
                Some(self.token_refused)
            }
            (ProblemKind::RoleNotAllowed, _) => Some(self.wrong_role),
            _ => None,
        };
        let hint = before
            .map(|before| format!("\n{before}{}", self.login))
            .unwrap_or_default();
        anyhow::anyhow!("{} ({}){hint}", problem.detail, problem.kind.name())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const HELP: CredentialHelp = CredentialHelp {
        login: "log in",
        dev_key_refused: Some("dev key refused: "),
        token_refused: "token refused: ",
        wrong_role: "wrong role: ",
    };
    const TOKENS_ONLY: CredentialHelp = CredentialHelp {
        dev_key_refused: None,
        ..HELP
    };

    fn status(kind: ProblemKind) -> tonic::Status {
        Problem::new(kind, "refused here").to_status()
    }

    #[test]
    fn a_token_is_trimmed_a_blank_one_refused_and_none_is_the_dev_key_or_an_error() {
        // OperatorCredential has no Debug (it holds a token): compared, not printed.
        assert!(
            HELP.credential(Some(" abc \n")).unwrap()
                == OperatorCredential::Token("abc".to_owned())
        );
        assert!(HELP.credential(None).unwrap() == OperatorCredential::dev());
        let blank = HELP.credential(Some("  ")).unwrap_err().to_string();
        assert_eq!(blank, "the operator token is empty: log in");
        let none = TOKENS_ONLY.credential(None).unwrap_err().to_string();
        assert_eq!(none, "no token: log in");
    }

    #[test]
    fn each_refusal_of_the_credential_has_its_hint_and_others_none() {
        let token = OperatorCredential::Token("abc".to_owned());
        let dev = OperatorCredential::dev();
        let said = |kind, credential: &OperatorCredential| {
            HELP.refused(&status(kind), credential).to_string()
        };
        assert_eq!(
            said(ProblemKind::StaffTokenRequired, &dev),
            "refused here (staff-token-required)\ndev key refused: log in"
        );
        assert_eq!(
            said(ProblemKind::StaffTokenRequired, &token),
            "refused here (staff-token-required)\ntoken refused: log in"
        );
        assert_eq!(
            said(ProblemKind::RoleNotAllowed, &dev),
            "refused here (role-not-allowed)\nwrong role: log in"
        );
        assert_eq!(
            said(ProblemKind::NotFound, &token),
            "refused here (not-found)"
        );
    }
}

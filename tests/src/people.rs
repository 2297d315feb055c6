//! People of the end-to-end tests beyond the journey's own: registered with the multi-process
//! stack's stand-in carriers' agency (so their phone verification succeeds) and verified through
//! the gateway, each on a device of their own.

use crate::api::Api;
use crate::journey::{self, Person};
use crate::process::ProcessStack;

/// Born 1950: in a 60+ round; someone books for her (a proxy booking).
pub const MOTHER: Person = Person {
    name: "김순자",
    rrn: "500303-2234567",
    phone: "010-3456-7890",
    carrier: "kt",
};

/// Born 1955: in a 60+ round too.
pub const UNCLE: Person = Person {
    name: "박철수",
    rrn: "550505-1234567",
    phone: "010-5678-9012",
    carrier: "lgu",
};

/// Makes `person`'s phone known to the stack's carriers' agency.
pub fn register(stack: &ProcessStack, person: &Person) -> anyhow::Result<()> {
    stack
        .agency
        .directory
        .register(&platform::carrier::Subscriber {
            name: person.name.to_owned(),
            rrn: person.rrn.to_owned(),
            phone: person.phone.to_owned(),
            carrier: person.carrier.to_owned(),
        })
        .map_err(|error| anyhow::anyhow!("cannot register a test person: {error}"))
}

/// Registers `person` and verifies them on `device`: the gateway client holding their token.
pub async fn verified(stack: &ProcessStack, person: &Person, device: &str) -> anyhow::Result<Api> {
    register(stack, person)?;
    let otp = stack.otp();
    journey::login(&Api::new(&stack.gateway_url, device), &otp, person).await
}

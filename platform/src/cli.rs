//! The command line of every service binary. Services are configured by environment variables
//! only (the README's configuration table lists them); the command line exists so that
//! `--help` says so and `--version` answers, and so that a stray argument is refused with usage
//! instead of being ignored.

/// Where the configuration of every binary is described.
pub const CONFIGURATION_HELP: &str = "\
Configuration comes from environment variables only (no flags, no files): see the
configuration table in the project's README.md. Without them the defaults work on a
developer machine, except the secrets production must set (e.g. AUTH_PERSON_KEY_SECRET, VAXBOOK_SERVICE_KEY).
RUST_LOG sets the log filter, VAXBOOK_LOG_FORMAT=json switches to JSON logs, NO_COLOR
turns off coloured logs on a terminal.";

/// The clap command of a service binary: name, version, one-line description, no arguments.
pub fn service_command(
    name: &'static str,
    version: &'static str,
    about: &'static str,
) -> clap::Command {
    clap::Command::new(name)
        .version(version)
        .about(about)
        .after_help(CONFIGURATION_HELP)
}

/// Parses the process's arguments for a service binary: prints help or the version and exits
/// 0 on `--help`/`--version`, prints usage and exits 2 on anything else.
pub fn parse_service_args(name: &'static str, version: &'static str, about: &'static str) {
    let _matches = service_command(name, version, about).get_matches();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_and_version_answer_and_stray_arguments_are_refused() {
        let command = || service_command("session-svc", "0.1.0", "the device lock");
        let help = command().try_get_matches_from(["session-svc", "--help"]);
        let help = help.expect_err("--help stops parsing");
        assert_eq!(help.kind(), clap::error::ErrorKind::DisplayHelp);
        assert!(help.to_string().contains("environment variables"));
        let version = command().try_get_matches_from(["session-svc", "--version"]);
        let version = version.expect_err("--version stops parsing");
        assert_eq!(version.kind(), clap::error::ErrorKind::DisplayVersion);
        assert!(
            command()
                .try_get_matches_from(["session-svc", "--port", "1"])
                .is_err()
        );
        assert!(command().try_get_matches_from(["session-svc"]).is_ok());
    }
}

//! Connecting a new desk to its service, pure: what the consultant types on the Connect screen
//! (a service address, an enrolment code) read as forgivingly as is safe, the service's own
//! answer to "who are you" ([`ServiceInfo`]) judged, and the machine-wide setting a managed
//! deployment uses to pre-set the address ([`DeploymentConfig`]).
//!
//! No I/O here but [`DeploymentConfig::load`] (one small file, read once at start).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::client::check_service_url;
use crate::CoreError;

/// Enrolment codes: 12 characters from an alphabet without look-alikes (no 0/O, 1/I/L), shown
/// in groups of four ("K7QH-2M9D-XR4P"). docs/api.md.
pub const CODE_ALPHABET: &str = "23456789ABCDEFGHJKMNPQRSTUVWXYZ";
pub const CODE_LENGTH: usize = 12;

/// The largest difference between this computer's clock and the service's that Derm Desk
/// accepts when connecting: signatures, receipts and due dates carry times.
pub const MAX_CLOCK_SKEW_MINUTES: i64 = 5;

/// A service address as typed, made into the one URL the client uses.
///
/// Forgiving where it is safe: spaces around it, a missing `https://`, a trailing slash.
/// Strict where it matters: plain `http://` only to this computer (loopback), no user name or
/// password in it, no query or fragment.
pub fn parse_service_address(typed: &str) -> Result<String, CoreError> {
    let typed = typed.trim();
    if typed.is_empty() {
        return Err(CoreError::BadServiceUrl(
            "the address is empty; type the https address your service gave you".into(),
        ));
    }
    if typed.chars().any(char::is_whitespace) {
        return Err(CoreError::BadServiceUrl(format!("{typed:?} has spaces in it; an address has none")));
    }
    let with_scheme = if typed.contains("://") { typed.to_owned() } else { format!("https://{typed}") };
    let url = check_service_url(&with_scheme)?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(CoreError::BadServiceUrl(format!("{typed} has no host name")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(CoreError::BadServiceUrl(
            "the address has a user name or password in it; sign in with an enrolment code instead".into(),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(CoreError::BadServiceUrl(format!(
            "{typed} has a '?' or '#' part; use the service's base address only"
        )));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// How far a code typed so far is from a valid one (the Connect screen checks as it is typed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum CodeCheck {
    /// Nothing typed yet.
    Empty,
    /// Good so far; `missing` more characters to go.
    Incomplete { missing: usize, formatted: String },
    /// A complete, well-formed code (the service still decides whether it is valid).
    Complete { formatted: String },
    /// Cannot become a valid code; `problem` says why.
    Invalid { problem: String },
}

/// Reads an enrolment code as typed: case, spaces and dashes are forgiven; the look-alikes
/// O→0 are not guessed (the alphabet has neither 0 nor O), they are refused and said.
pub fn check_enrolment_code(typed: &str) -> CodeCheck {
    let mut code = String::new();
    for ch in typed.chars() {
        if ch.is_whitespace() || ch == '-' {
            continue;
        }
        let upper = ch.to_ascii_uppercase();
        if !CODE_ALPHABET.contains(upper) {
            let hint = match upper {
                '0' | 'O' | '1' | 'I' | 'L' => {
                    " (codes never use 0, O, 1, I or L, so they cannot be mistaken for each other)"
                }
                _ => "",
            };
            return CodeCheck::Invalid { problem: format!("{ch:?} is not used in enrolment codes{hint}") };
        }
        code.push(upper);
    }
    match code.len() {
        0 => CodeCheck::Empty,
        n if n < CODE_LENGTH => CodeCheck::Incomplete { missing: CODE_LENGTH - n, formatted: group(&code) },
        CODE_LENGTH => CodeCheck::Complete { formatted: group(&code) },
        n => CodeCheck::Invalid {
            problem: format!("it has {n} characters; an enrolment code has {CODE_LENGTH}"),
        },
    }
}

/// The code in its canonical form ("K7QH-2M9D-XR4P"), or why it is not one.
pub fn parse_enrolment_code(typed: &str) -> Result<String, CoreError> {
    match check_enrolment_code(typed) {
        CodeCheck::Complete { formatted } => Ok(formatted),
        CodeCheck::Empty => Err(CoreError::BadEnrolmentCode("no code was typed".into())),
        CodeCheck::Incomplete { missing, .. } => {
            Err(CoreError::BadEnrolmentCode(format!("{missing} more character(s) are needed")))
        }
        CodeCheck::Invalid { problem } => Err(CoreError::BadEnrolmentCode(problem)),
    }
}

fn group(code: &str) -> String {
    code.as_bytes()
        .chunks(4)
        .map(|chunk| std::str::from_utf8(chunk).expect("codes are ASCII"))
        .collect::<Vec<_>>()
        .join("-")
}

/// `GET /v1/health`: a Derm Desk service says what it is and what time it makes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceInfo {
    pub status: String,
    /// `"dermdesk"` for any service that speaks this protocol.
    #[serde(default)]
    pub service: Option<String>,
    /// The protocol version (1).
    #[serde(default)]
    pub protocol: Option<u32>,
    /// The service's clock when it answered.
    #[serde(default)]
    pub time: Option<DateTime<Utc>>,
}

pub const SERVICE_NAME: &str = "dermdesk";
pub const PROTOCOL_VERSION: u32 = 1;

/// Is this answer from a Derm Desk service this app can talk to, with a clock close to ours?
pub fn judge_service(address: &str, info: &ServiceInfo, now: DateTime<Utc>) -> Result<(), CoreError> {
    if info.service.as_deref() != Some(SERVICE_NAME) {
        return Err(CoreError::NotADermDeskService(format!(
            "{address} answered, but not as a teledermatology service Derm Desk can use"
        )));
    }
    match info.protocol {
        Some(PROTOCOL_VERSION) => {}
        Some(other) => {
            return Err(CoreError::NotADermDeskService(format!(
                "{address} speaks protocol version {other}; this Derm Desk speaks version {PROTOCOL_VERSION}"
            )))
        }
        None => {
            return Err(CoreError::NotADermDeskService(format!(
                "{address} did not say which protocol it speaks"
            )))
        }
    }
    if let Some(time) = info.time {
        let minutes = (now - time).num_minutes();
        if minutes.abs() > MAX_CLOCK_SKEW_MINUTES {
            return Err(CoreError::ClockSkew { minutes });
        }
    }
    Ok(())
}

/// A managed deployment's machine-wide settings (`config.json` in the OS's machine-wide config
/// folder, [`DeploymentConfig::machine_path`]; `DERMDESK_CONFIG` names another file).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentConfig {
    /// The service address the Connect screen starts with.
    #[serde(default)]
    pub service_url: Option<String>,
    /// The consultant may not change the address (it is greyed out on the Connect screen).
    #[serde(default)]
    pub service_url_locked: bool,
}

impl DeploymentConfig {
    /// Where an administrator puts the file: `/etc/dermdesk/config.json` on Linux,
    /// `/Library/Application Support/Derm Desk/config.json` on macOS,
    /// `%ProgramData%\Derm Desk\config.json` on Windows.
    pub fn machine_path() -> Option<PathBuf> {
        if cfg!(target_os = "windows") {
            let program_data = std::env::var_os("ProgramData")?;
            Some(PathBuf::from(program_data).join("Derm Desk").join("config.json"))
        } else if cfg!(target_os = "macos") {
            Some(PathBuf::from("/Library/Application Support/Derm Desk/config.json"))
        } else {
            Some(PathBuf::from("/etc/dermdesk/config.json"))
        }
    }

    /// The file `DERMDESK_CONFIG` names, else the machine-wide one; none there is no setting.
    /// `DERMDESK_SERVICE_URL` overrides the address (documented for scripted installs).
    pub fn from_environment() -> Result<DeploymentConfig, CoreError> {
        let path = std::env::var_os("DERMDESK_CONFIG").map(PathBuf::from).or_else(Self::machine_path);
        let mut config = match path {
            Some(path) => Self::load(&path)?,
            None => DeploymentConfig::default(),
        };
        if let Ok(url) = std::env::var("DERMDESK_SERVICE_URL") {
            config.service_url = Some(url);
        }
        if let Some(url) = &config.service_url {
            config.service_url = Some(parse_service_address(url)?);
        }
        Ok(config)
    }

    /// Reads one file; a missing file is no setting, a bad one is an error that names it.
    pub fn load(path: &Path) -> Result<DeploymentConfig, CoreError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(DeploymentConfig::default())
            }
            Err(error) => {
                return Err(CoreError::Config(format!("{} could not be read: {error}", path.display())))
            }
        };
        serde_json::from_str(&text).map_err(|error| CoreError::Config(format!("{}: {error}", path.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_read_forgivingly_but_safely() {
        let ok = |typed: &str| parse_service_address(typed).unwrap();
        assert_eq!(ok("desk.example.nhs.uk"), "https://desk.example.nhs.uk");
        assert_eq!(ok("  https://desk.example.nhs.uk/  "), "https://desk.example.nhs.uk");
        assert_eq!(ok("https://example.nhs.uk/teledermatology/"), "https://example.nhs.uk/teledermatology");
        assert_eq!(ok("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(ok("http://localhost:8080/"), "http://localhost:8080");
        assert_eq!(ok("http://[::1]:9"), "http://[::1]:9");
        let refused = |typed: &str| parse_service_address(typed).unwrap_err().to_string();
        assert!(
            refused("http://desk.example.nhs.uk").contains("only https"),
            "{}",
            refused("http://desk.example.nhs.uk")
        );
        assert!(refused("").contains("empty"));
        assert!(refused("desk example").contains("spaces"));
        assert!(refused("https://user:pw@desk.example").contains("password"));
        assert!(refused("https://desk.example/?x=1").contains("'?'"));
        assert!(refused("ftp://desk.example").contains("not a web address"));
    }

    #[test]
    fn codes_forgive_case_spaces_and_dashes() {
        assert_eq!(parse_enrolment_code("k7qh 2m9d xr4p").unwrap(), "K7QH-2M9D-XR4P");
        assert_eq!(parse_enrolment_code(" K7QH-2M9D-XR4P ").unwrap(), "K7QH-2M9D-XR4P");
        assert_eq!(parse_enrolment_code("k7qh2m9dxr4p").unwrap(), "K7QH-2M9D-XR4P");
        assert_eq!(
            check_enrolment_code("k7qh-2m"),
            CodeCheck::Incomplete { missing: 6, formatted: "K7QH-2M".into() }
        );
        assert_eq!(check_enrolment_code(" - "), CodeCheck::Empty);
        let CodeCheck::Invalid { problem } = check_enrolment_code("K7QH-2M0D") else { panic!() };
        assert!(problem.contains("never use 0, O"), "{problem}");
        let CodeCheck::Invalid { problem } = check_enrolment_code("K7QH-2M9D-XR4P-A") else { panic!() };
        assert!(problem.contains("13 characters"), "{problem}");
        assert!(parse_enrolment_code("K7QH").unwrap_err().to_string().contains("8 more"));
    }

    fn info(service: Option<&str>, protocol: Option<u32>, time: Option<&str>) -> ServiceInfo {
        ServiceInfo {
            status: "ok".into(),
            service: service.map(str::to_owned),
            protocol,
            time: time.map(|t| t.parse().unwrap()),
        }
    }

    #[test]
    fn a_service_is_judged_by_what_it_says_and_its_clock() {
        let now: DateTime<Utc> = "2026-03-02T10:00:00Z".parse().unwrap();
        let judged = |info: ServiceInfo| judge_service("https://x", &info, now);
        assert!(judged(info(Some("dermdesk"), Some(1), Some("2026-03-02T10:04:00Z"))).is_ok());
        assert!(judged(info(Some("dermdesk"), Some(1), None)).is_ok());
        let kind = |info| judged(info).unwrap_err().kind();
        assert_eq!(kind(info(None, None, None)), crate::ErrorKind::NotADermDeskService);
        assert_eq!(kind(info(Some("other"), Some(1), None)), crate::ErrorKind::NotADermDeskService);
        assert_eq!(kind(info(Some("dermdesk"), Some(2), None)), crate::ErrorKind::NotADermDeskService);
        let skew = judged(info(Some("dermdesk"), Some(1), Some("2026-03-02T09:30:00Z"))).unwrap_err();
        assert_eq!(skew.kind(), crate::ErrorKind::ClockSkew);
        assert!(skew.to_string().contains("30 minutes ahead"), "{skew}");
        let behind = judged(info(Some("dermdesk"), Some(1), Some("2026-03-02T12:00:00Z"))).unwrap_err();
        assert!(behind.to_string().contains("120 minutes behind"), "{behind}");
    }

    #[test]
    fn a_deployment_file_presets_the_address_and_a_bad_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        assert_eq!(DeploymentConfig::load(&path).unwrap(), DeploymentConfig::default());
        std::fs::write(
            &path,
            r#"{"service_url": "https://desk.example.nhs.uk", "service_url_locked": true}"#,
        )
        .unwrap();
        let config = DeploymentConfig::load(&path).unwrap();
        assert_eq!(config.service_url.as_deref(), Some("https://desk.example.nhs.uk"));
        assert!(config.service_url_locked);
        std::fs::write(&path, r#"{"service": "x"}"#).unwrap();
        let error = DeploymentConfig::load(&path).unwrap_err().to_string();
        assert!(error.contains("config.json") && error.contains("unknown field"), "{error}");
    }
}

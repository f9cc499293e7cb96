//! Reaching an HTTPS vnet server: which CA to trust and which credentials to sign in with.
//!
//! `vnet serve` makes, in its data directory, a CA (`ca.pem`) and an operator service principal
//! whose secret it writes to `credentials.json`. So that the client works with no setup on the
//! machine that runs the server, both are looked up there (`$VNET_DATA_DIR`, else
//! `./vnet-data`, the server's own default) unless given explicitly:
//!
//! * CA: `--ca-cert FILE` / `VNET_CA_CERT`, else `<data dir>/ca.pem`, else the system roots.
//! * Credentials: `VNET_TENANT_ID` + `VNET_CLIENT_ID` + `VNET_CLIENT_SECRET` (environment only:
//!   a secret on the command line shows in `ps`), else `--credentials FILE` /
//!   `VNET_CREDENTIALS`, else `<data dir>/credentials.json`.
//!
//! With credentials, every invocation gets a bearer token by the OAuth2 client-credentials
//! grant at `{server}/{tenant}/oauth2/v2.0/token`, as az does against Entra ID. Tokens are only
//! sent over HTTPS; a plain-HTTP server (`vnet serve --insecure-http`) needs none.

use super::args::ClientOpts;
use super::error::CliError;
use super::http::{ArmClient, Method};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The audience ARM tokens are issued for (the SDK's default scope is `{this}/.default`).
const ARM_SCOPE: &str = "https://management.azure.com/.default";
/// Where `vnet serve` keeps its files when not told otherwise.
const DEFAULT_DATA_DIR: &str = "./vnet-data";

/// A service principal's client credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
    /// Where they came from, for messages.
    pub source: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// Where the client looks for things, taken from the environment once so tests can supply it.
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub data_dir: Option<PathBuf>,
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

impl Env {
    pub fn from_process() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Env {
            data_dir: var("VNET_DATA_DIR").map(PathBuf::from),
            tenant_id: var("VNET_TENANT_ID"),
            client_id: var("VNET_CLIENT_ID"),
            client_secret: var("VNET_CLIENT_SECRET"),
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
    }
}

/// The CA bundle to trust, as PEM bytes, if one is configured or found.
pub fn find_ca(opts: &ClientOpts, env: &Env) -> Result<Option<Vec<u8>>, CliError> {
    if let Some(path) = &opts.ca_cert {
        return read(path, "--ca-cert").map(Some);
    }
    let local = env.data_dir().join("ca.pem");
    if local.is_file() {
        return read(&local, "the server's CA").map(Some);
    }
    Ok(None)
}

/// The credentials to sign in with, if any are configured or found.
pub fn find_credentials(opts: &ClientOpts, env: &Env) -> Result<Option<Credentials>, CliError> {
    match (&env.tenant_id, &env.client_id, &env.client_secret) {
        (Some(t), Some(c), Some(s)) => {
            return Ok(Some(Credentials {
                tenant_id: t.clone(),
                client_id: c.clone(),
                client_secret: s.clone(),
                source: "VNET_TENANT_ID/VNET_CLIENT_ID/VNET_CLIENT_SECRET".into(),
            }))
        }
        (None, None, None) => {}
        _ => {
            return Err(CliError::validation(
                "VNET_TENANT_ID, VNET_CLIENT_ID and VNET_CLIENT_SECRET must be set together",
            ))
        }
    }
    if let Some(path) = &opts.credentials {
        return parse_credentials(&read(path, "--credentials")?, path).map(Some);
    }
    let local = env.data_dir().join("credentials.json");
    if local.is_file() {
        return parse_credentials(&read(&local, "the server's credentials")?, &local).map(Some);
    }
    Ok(None)
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, CliError> {
    std::fs::read(path)
        .map_err(|e| CliError::validation(format!("cannot read {what} {}: {e}", path.display())))
}

/// Reads a `credentials.json` as `vnet serve` writes it:
/// `{"tenantId", "clientId", "clientSecret", "subscriptionId"}`.
fn parse_credentials(bytes: &[u8], path: &Path) -> Result<Credentials, CliError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        CliError::validation(format!("{} is not a credentials file: {e}", path.display()))
    })?;
    let field = |name: &str| {
        value
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| CliError::validation(format!("{} has no {name}", path.display())))
    };
    Ok(Credentials {
        tenant_id: field("tenantId")?,
        client_id: field("clientId")?,
        client_secret: field("clientSecret")?,
        source: path.display().to_string(),
    })
}

/// Gets an access token for ARM with the client-credentials grant.
pub fn fetch_token(client: &ArmClient, creds: &Credentials) -> Result<String, CliError> {
    let path = format!("/{}/oauth2/v2.0/token", creds.tenant_id);
    let form = vec![
        ("grant_type".to_owned(), "client_credentials".to_owned()),
        ("client_id".to_owned(), creds.client_id.clone()),
        ("client_secret".to_owned(), creds.client_secret.clone()),
        ("scope".to_owned(), ARM_SCOPE.to_owned()),
    ];
    let response = client.send_form(Method::Post, &path, form)?;
    let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    if !response.is_success() {
        // OAuth2 errors are `{"error", "error_description"}`, not ARM envelopes.
        if let Some(code) = body.get("error").and_then(Value::as_str) {
            let description = body
                .get("error_description")
                .and_then(Value::as_str)
                .unwrap_or("");
            return Err(CliError::new(
                "AuthenticationFailed",
                format!(
                    "signing in as {} (from {}) failed: {code}: {description}",
                    creds.client_id, creds.source
                ),
            ));
        }
        return Err(CliError::from_response(response.status, &response.body));
    }
    body.get("access_token")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| CliError::bad_response("the token endpoint sent no access_token"))
}

/// Adds a hint to the server's 401 when the client had nothing to sign in with.
pub fn explain_missing_credentials(err: CliError) -> CliError {
    let auth_codes = [
        "AuthenticationFailed",
        "InvalidAuthenticationToken",
        "ExpiredAuthenticationToken",
        "InvalidAuthenticationTokenAudience",
    ];
    if !auth_codes.contains(&err.code.as_str()) {
        return err;
    }
    CliError::new(
        err.code,
        format!(
            "{} (no credentials found: set VNET_TENANT_ID, VNET_CLIENT_ID and VNET_CLIENT_SECRET, pass --credentials FILE, or set VNET_DATA_DIR to the server's data directory)",
            err.message
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::args::Cli;
    use crate::cli::testing::{reply, FakeServer};
    use clap::Parser;
    use serde_json::json;

    fn opts(args: &[&str]) -> ClientOpts {
        let mut line = vec!["vnet"];
        line.extend_from_slice(args);
        line.extend_from_slice(&["group", "list"]);
        Cli::try_parse_from(line).unwrap().client
    }

    fn data_dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    const CREDS: &str = r#"{"tenantId": "t1", "clientId": "c1", "clientSecret": "s1", "subscriptionId": "00000000-0000-0000-0000-000000000000"}"#;

    #[test]
    fn the_data_directory_supplies_ca_and_credentials() {
        let dir = data_dir_with(&[("ca.pem", "PEM"), ("credentials.json", CREDS)]);
        let env = Env {
            data_dir: Some(dir.path().into()),
            ..Env::default()
        };
        let o = opts(&[]);
        assert_eq!(find_ca(&o, &env).unwrap(), Some(b"PEM".to_vec()));
        let creds = find_credentials(&o, &env).unwrap().unwrap();
        assert_eq!(
            (
                creds.tenant_id.as_str(),
                creds.client_id.as_str(),
                creds.client_secret.as_str()
            ),
            ("t1", "c1", "s1")
        );
        assert!(
            !format!("{creds:?}").contains("s1"),
            "secrets stay out of Debug"
        );
    }

    #[test]
    fn nothing_found_means_no_tls_roots_and_no_token() {
        let dir = data_dir_with(&[]);
        let env = Env {
            data_dir: Some(dir.path().into()),
            ..Env::default()
        };
        assert_eq!(find_ca(&opts(&[]), &env).unwrap(), None);
        assert_eq!(find_credentials(&opts(&[]), &env).unwrap(), None);
    }

    #[test]
    fn environment_beats_files_and_must_be_complete() {
        let dir = data_dir_with(&[("credentials.json", CREDS)]);
        let mut env = Env {
            data_dir: Some(dir.path().into()),
            tenant_id: Some("t2".into()),
            client_id: Some("c2".into()),
            client_secret: Some("s2".into()),
        };
        let creds = find_credentials(&opts(&[]), &env).unwrap().unwrap();
        assert_eq!(creds.client_id, "c2");
        env.client_secret = None;
        assert_eq!(
            find_credentials(&opts(&[]), &env).unwrap_err().code,
            "ValidationError"
        );
    }

    #[test]
    fn explicit_files_beat_the_data_directory() {
        let dir = data_dir_with(&[
            ("ca.pem", "LOCAL"),
            ("credentials.json", CREDS),
            ("other.pem", "OTHER"),
            (
                "other.json",
                r#"{"tenantId": "t9", "clientId": "c9", "clientSecret": "s9"}"#,
            ),
        ]);
        let env = Env {
            data_dir: Some(dir.path().into()),
            ..Env::default()
        };
        let other_pem = dir.path().join("other.pem");
        let other_json = dir.path().join("other.json");
        let o = opts(&[
            "--ca-cert",
            other_pem.to_str().unwrap(),
            "--credentials",
            other_json.to_str().unwrap(),
        ]);
        assert_eq!(find_ca(&o, &env).unwrap(), Some(b"OTHER".to_vec()));
        assert_eq!(find_credentials(&o, &env).unwrap().unwrap().tenant_id, "t9");
    }

    #[test]
    fn broken_credentials_are_reported() {
        let dir = data_dir_with(&[("credentials.json", r#"{"tenantId": "t"}"#)]);
        let env = Env {
            data_dir: Some(dir.path().into()),
            ..Env::default()
        };
        let err = find_credentials(&opts(&[]), &env).unwrap_err();
        assert!(err.message.ends_with("has no clientId"), "{err}");
    }

    fn creds() -> Credentials {
        Credentials {
            tenant_id: "t1".into(),
            client_id: "c1".into(),
            client_secret: "s e/cret".into(),
            source: "test".into(),
        }
    }

    #[test]
    fn token_by_client_credentials() {
        let (client, fake) = FakeServer::client(vec![reply(
            200,
            json!({"token_type": "Bearer", "expires_in": 3599, "access_token": "tok"}),
        )]);
        assert_eq!(fetch_token(&client, &creds()).unwrap(), "tok");
        let req = &fake.requests()[0];
        assert_eq!(req.method, Method::Post);
        assert_eq!(req.url, "http://vnet.test:7380/t1/oauth2/v2.0/token");
        let form = req.form.clone().unwrap();
        assert!(form.contains(&("grant_type".into(), "client_credentials".into())));
        assert!(form.contains(&("client_secret".into(), "s e/cret".into())));
        assert!(form.contains(&("scope".into(), ARM_SCOPE.into())));
    }

    #[test]
    fn oauth_errors_are_explained() {
        let (client, _fake) = FakeServer::client(vec![reply(
            401,
            json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."}),
        )]);
        let err = fetch_token(&client, &creds()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "AuthenticationFailed: signing in as c1 (from test) failed: invalid_client: AADSTS7000215: Invalid client secret provided."
        );
    }

    #[test]
    fn the_bearer_goes_on_every_request() {
        let (mut client, fake) = FakeServer::client(vec![reply(200, json!({"value": []}))]);
        client.set_bearer("tok".into());
        client
            .list("/subscriptions/s/resourcegroups?api-version=2021-04-01")
            .unwrap();
        assert_eq!(
            fake.requests()[0].headers,
            vec![("Authorization".to_owned(), "Bearer tok".to_owned())]
        );
    }

    #[test]
    fn missing_credentials_hint() {
        let err = explain_missing_credentials(CliError::new(
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.",
        ));
        assert!(err.message.contains("no credentials found"), "{err}");
        let other = explain_missing_credentials(CliError::new("ResourceNotFound", "x"));
        assert_eq!(other.message, "x");
    }
}

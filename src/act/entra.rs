//! Entra ID (Microsoft Graph) for `[[federated_domain]]`: a token by the client-credentials
//! grant, then exactly two calls, `GET /v1.0/domains/{domain}/federationConfiguration`
//! (what Entra ID holds) and `PATCH .../federationConfiguration/{id}` setting
//! `nextSigningCertificate` only. No other Graph call is made.
//!
//! Credentials, the first present wins: the GitHub Actions OIDC token (audience
//! `api://AzureADTokenExchange`, the job needs `id-token: write`) as client assertion; a
//! certificate (`KEYROLL_ENTRA_CLIENT_CERTIFICATE`, PEM with its key) signing a client
//! assertion; a client secret (`KEYROLL_ENTRA_CLIENT_SECRET`). Every one of them, and every
//! token made from them, is a [`Secret`]: registered for redaction, never printed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::decide::federation::EntraState;
use crate::model::cert::Certificate;
use crate::model::secret::{Secret, redact};
use crate::model::settings::{FederatedDomain, is_loopback_host};

/// The OIDC audience Entra ID expects from a federated credential.
pub const AUDIENCE: &str = "api://AzureADTokenExchange";

/// The application permissions `entra check` and `entra apply` need.
pub const READ_PERMISSION: &str = "Domain.Read.All (or Domain-InternalFederation.Read.All)";
pub const WRITE_PERMISSION: &str = "Domain-InternalFederation.ReadWrite.All";

#[derive(Debug, thiserror::Error)]
pub enum EntraError {
    #[error("{0}")]
    Credential(String),
    #[error("{url}: {detail}")]
    Transport { url: String, detail: String },
    #[error(
        "{domain}: Graph refused the token (401) for {request}: {detail}; the app registration {client_id} needs the application permission {permission}, with admin consent"
    )]
    Unauthorized {
        domain: String,
        request: String,
        client_id: String,
        permission: &'static str,
        detail: String,
    },
    #[error(
        "{domain}: Graph answered 403 Forbidden for {request}: the app registration {client_id} lacks the application permission {permission} (grant it and give admin consent); Graph said: {detail}"
    )]
    Forbidden {
        domain: String,
        request: String,
        client_id: String,
        permission: &'static str,
        detail: String,
    },
    #[error(
        "{domain}: not a federated domain of tenant {tenant} (Graph answered {why}); check `domain` and `tenant` in keyroll.toml"
    )]
    NotFederated {
        domain: String,
        tenant: String,
        why: String,
    },
    #[error(
        "{domain}: Graph is throttling keyroll (429) and asks to retry after {after}; nothing was sent after it; run again later"
    )]
    Throttled { domain: String, after: String },
    #[error("{domain}: Graph's answer to {request} {detail}")]
    Malformed {
        domain: String,
        request: String,
        detail: String,
    },
    #[error("{domain}: {request} failed with HTTP {status}: {detail}")]
    Status {
        domain: String,
        request: String,
        status: u16,
        detail: String,
    },
    #[error("{domain}: the token request to {url} failed with HTTP {status}: {detail}")]
    Token {
        domain: String,
        url: String,
        status: u16,
        detail: String,
    },
}

/// How the client signs in.
#[derive(Debug, Clone)]
pub enum Credential {
    /// GitHub Actions' OIDC token service (`ACTIONS_ID_TOKEN_REQUEST_URL` / `_TOKEN`).
    ActionsOidc {
        url: String,
        token: Secret,
    },
    /// PEM text holding the certificate and its RSA private key.
    Certificate(Secret),
    ClientSecret(Secret),
}

impl Credential {
    /// The first credential the environment offers, in the documented order.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Option<Credential> {
        let set = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        if let (Some(url), Some(token)) = (
            set("ACTIONS_ID_TOKEN_REQUEST_URL"),
            set("ACTIONS_ID_TOKEN_REQUEST_TOKEN"),
        ) {
            return Some(Credential::ActionsOidc {
                url,
                token: Secret::new(token),
            });
        }
        if let Some(pem) = set("KEYROLL_ENTRA_CLIENT_CERTIFICATE") {
            return Some(Credential::Certificate(Secret::new(pem)));
        }
        set("KEYROLL_ENTRA_CLIENT_SECRET").map(|s| Credential::ClientSecret(Secret::new(s)))
    }

    pub fn describe(&self) -> &'static str {
        match self {
            Credential::ActionsOidc { .. } => "the GitHub Actions OIDC token",
            Credential::Certificate(_) => "the certificate in KEYROLL_ENTRA_CLIENT_CERTIFICATE",
            Credential::ClientSecret(_) => "the client secret in KEYROLL_ENTRA_CLIENT_SECRET",
        }
    }
}

/// What a run without any credential says instead of reading Entra ID.
pub const NO_CREDENTIAL: &str = "no credential: run in GitHub Actions with `permissions: id-token: write`, or set KEYROLL_ENTRA_CLIENT_CERTIFICATE or KEYROLL_ENTRA_CLIENT_SECRET";

#[derive(Debug, Clone)]
pub struct EntraOptions {
    /// `--allow-http`: plain http to a loopback host (a test's fakes).
    pub allow_http: bool,
    pub timeout: Duration,
    /// Attempts in all for one call (throttling and 5xx answers are retried).
    pub attempts: u32,
    /// The longest `Retry-After` keyroll waits; a longer one is an error.
    pub max_wait: Duration,
}

impl Default for EntraOptions {
    fn default() -> Self {
        EntraOptions {
            allow_http: false,
            timeout: Duration::from_secs(60),
            attempts: 3,
            max_wait: Duration::from_secs(60),
        }
    }
}

pub struct Entra {
    client: reqwest::Client,
    credential: Credential,
    options: EntraOptions,
    /// Access tokens by token endpoint, client and scope.
    tokens: Mutex<BTreeMap<String, Secret>>,
}

/// One HTTP answer: status, `Retry-After`, body.
struct Answer {
    status: StatusCode,
    retry_after: Option<String>,
    body: String,
}

impl Entra {
    pub fn new(credential: Credential, options: EntraOptions) -> Self {
        crate::load::fetch::install_crypto_provider();
        let client = reqwest::Client::builder()
            .user_agent(crate::load::fetch::USER_AGENT)
            .connect_timeout(Duration::from_secs(10).min(options.timeout))
            .timeout(options.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTP client builds");
        Entra {
            client,
            credential,
            options,
            tokens: Mutex::new(BTreeMap::new()),
        }
    }

    /// What Entra ID holds for the domain.
    pub async fn read(&self, domain: &FederatedDomain) -> Result<EntraState, EntraError> {
        let path = format!(
            "/v1.0/domains/{}/federationConfiguration",
            path_escape(&domain.domain)
        );
        let answer = self
            .graph(domain, Method::GET, &path, None, READ_PERMISSION)
            .await?;
        let malformed = |detail: String| EntraError::Malformed {
            domain: domain.domain.clone(),
            request: format!("GET {path}"),
            detail,
        };
        let json: Value = serde_json::from_str(&answer.body)
            .map_err(|e| malformed(format!("is not JSON ({e})")))?;
        let list = json["value"]
            .as_array()
            .ok_or_else(|| malformed("has no `value` list".into()))?;
        let config = match list.as_slice() {
            [] => {
                return Err(EntraError::NotFederated {
                    domain: domain.domain.clone(),
                    tenant: domain.tenant.clone(),
                    why: "an empty federationConfiguration list".into(),
                });
            }
            [one] => one,
            more => {
                return Err(malformed(format!(
                    "lists {} federation configurations; keyroll expects one",
                    more.len()
                )));
            }
        };
        state_of(config).map_err(malformed)
    }

    /// Sets the domain's `nextSigningCertificate` to `der`, and nothing else.
    pub async fn set_next(
        &self,
        domain: &FederatedDomain,
        config_id: &str,
        der: &[u8],
    ) -> Result<(), EntraError> {
        let path = format!(
            "/v1.0/domains/{}/federationConfiguration/{}",
            path_escape(&domain.domain),
            path_escape(config_id)
        );
        // Only the one property: the navigation property is typed internalDomainFederation,
        // so no `@odata.type` is needed, and Graph's description declares none (a string
        // there breaks its schema: tests/graph_contract.rs).
        let body = serde_json::json!({
            "nextSigningCertificate": base64::engine::general_purpose::STANDARD.encode(der),
        });
        self.graph(domain, Method::PATCH, &path, Some(body), WRITE_PERMISSION)
            .await
            .map(|_| ())
    }

    /// One Graph call with a token, its errors named; throttling and 5xx retried.
    async fn graph(
        &self,
        domain: &FederatedDomain,
        method: Method,
        path: &str,
        body: Option<Value>,
        permission: &'static str,
    ) -> Result<Answer, EntraError> {
        let token = self.token(domain).await?;
        let url = format!("{}{path}", domain.graph_url.trim_end_matches('/'));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = self
                .client
                .request(method.clone(), &url)
                .header("Authorization", format!("Bearer {}", token.expose()))
                .header("Accept", "application/json");
            if let Some(body) = &body {
                request = request
                    .header("Content-Type", "application/json")
                    .body(body.to_string());
            }
            let answer = self.send(&url, request).await?;
            let status = answer.status;
            if status.is_success() {
                return Ok(answer);
            }
            let retryable = status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
            let wait = answer
                .retry_after
                .as_deref()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs)
                .unwrap_or(Duration::from_secs(u64::from(attempt)));
            if retryable && attempt < self.options.attempts && wait <= self.options.max_wait {
                tokio::time::sleep(wait).await;
                continue;
            }
            let detail = graph_message(&answer.body);
            let (domain_name, method_name) = (domain.domain.clone(), method.to_string());
            return Err(match status.as_u16() {
                401 => EntraError::Unauthorized {
                    domain: domain_name,
                    request: format!("{method_name} {path}"),
                    client_id: domain.client_id.clone(),
                    permission,
                    detail,
                },
                403 => EntraError::Forbidden {
                    domain: domain_name,
                    request: format!("{method_name} {path}"),
                    client_id: domain.client_id.clone(),
                    permission,
                    detail,
                },
                404 => EntraError::NotFederated {
                    domain: domain_name,
                    tenant: domain.tenant.clone(),
                    why: format!("404 Not Found: {detail}"),
                },
                429 => EntraError::Throttled {
                    domain: domain_name,
                    after: answer
                        .retry_after
                        .map_or("an unstated time".into(), |s| format!("{s} seconds")),
                },
                code => EntraError::Status {
                    domain: domain_name,
                    request: format!("{method_name} {path}"),
                    status: code,
                    detail,
                },
            });
        }
    }

    async fn send(
        &self,
        url: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<Answer, EntraError> {
        self.check_url(url)?;
        let response = request.send().await.map_err(|e| EntraError::Transport {
            url: url.into(),
            detail: redact(&crate::load::fetch::error_chain(&e)),
        })?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = response.text().await.map_err(|e| EntraError::Transport {
            url: url.into(),
            detail: redact(&e.to_string()),
        })?;
        Ok(Answer {
            status,
            retry_after,
            body: redact(&body),
        })
    }

    /// https, or plain http to a loopback host under `--allow-http`.
    fn check_url(&self, url: &str) -> Result<(), EntraError> {
        let parsed = reqwest::Url::parse(url).map_err(|e| EntraError::Transport {
            url: url.into(),
            detail: format!("not a valid URL: {e}"),
        })?;
        let loopback = parsed
            .host_str()
            .is_some_and(|h| is_loopback_host(h) || is_loopback_host(&format!("[{h}]")));
        match parsed.scheme() {
            "https" => Ok(()),
            "http" if self.options.allow_http && loopback => Ok(()),
            _ => Err(EntraError::Transport {
                url: url.into(),
                detail: "refusing plain http:// (https only; --allow-http allows a loopback host)"
                    .into(),
            }),
        }
    }

    /// An access token for Graph, by the client-credentials grant.
    async fn token(&self, domain: &FederatedDomain) -> Result<Secret, EntraError> {
        let endpoint = format!(
            "{}/{}/oauth2/v2.0/token",
            domain.login_url.trim_end_matches('/'),
            path_escape(&domain.tenant)
        );
        let scope = format!("{}/.default", domain.graph_url.trim_end_matches('/'));
        let key = format!("{endpoint} {} {scope}", domain.client_id);
        if let Some(token) = self.tokens.lock().expect("not poisoned").get(&key) {
            return Ok(token.clone());
        }
        let mut form = vec![
            ("client_id", domain.client_id.clone()),
            ("scope", scope),
            ("grant_type", "client_credentials".into()),
        ];
        let assertion_type = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
        match &self.credential {
            Credential::ActionsOidc { url, token } => {
                let assertion = self.actions_token(domain, url, token).await?;
                form.push(("client_assertion_type", assertion_type.into()));
                form.push(("client_assertion", assertion.expose().into()));
            }
            Credential::Certificate(pem) => {
                let assertion =
                    certificate_assertion(pem, &domain.client_id, &endpoint, now_seconds())?;
                form.push(("client_assertion_type", assertion_type.into()));
                form.push(("client_assertion", assertion.expose().into()));
            }
            Credential::ClientSecret(secret) => {
                form.push(("client_secret", secret.expose().into()));
            }
        }
        let body: String = form
            .iter()
            .map(|(k, v)| format!("{k}={}", form_escape(v)))
            .collect::<Vec<_>>()
            .join("&");
        let request = self
            .client
            .post(&endpoint)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Accept", "application/json")
            .body(body);
        let answer = self.send(&endpoint, request).await?;
        let json: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
        if !answer.status.is_success() {
            return Err(EntraError::Token {
                domain: domain.domain.clone(),
                url: endpoint,
                status: answer.status.as_u16(),
                detail: token_error(&json, &answer.body),
            });
        }
        let token = json["access_token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| EntraError::Token {
                domain: domain.domain.clone(),
                url: endpoint.clone(),
                status: answer.status.as_u16(),
                detail: "the answer holds no access_token".into(),
            })?;
        let token = Secret::new(token);
        self.tokens
            .lock()
            .expect("not poisoned")
            .insert(key, token.clone());
        Ok(token)
    }

    /// The job's OIDC token for Entra's audience, from the Actions token service.
    async fn actions_token(
        &self,
        domain: &FederatedDomain,
        url: &str,
        token: &Secret,
    ) -> Result<Secret, EntraError> {
        let separator = if url.contains('?') { '&' } else { '?' };
        let full = format!("{url}{separator}audience={}", form_escape(AUDIENCE));
        let request = self
            .client
            .get(&full)
            .header("Authorization", format!("Bearer {}", token.expose()))
            .header("Accept", "application/json");
        let shown = crate::model::secret::redact_urls(url);
        let answer = self.send(&full, request).await.map_err(|e| match e {
            EntraError::Transport { detail, .. } => EntraError::Transport {
                url: shown.clone(),
                detail,
            },
            other => other,
        })?;
        let value = serde_json::from_str::<Value>(&answer.body)
            .ok()
            .and_then(|j| j["value"].as_str().map(str::to_string))
            .filter(|_| answer.status.is_success());
        match value {
            Some(v) if !v.is_empty() => Ok(Secret::new(v)),
            _ => Err(EntraError::Credential(format!(
                "{}: the GitHub Actions OIDC token service ({shown}) answered HTTP {} without a token; does the job have `permissions: id-token: write`?",
                domain.domain,
                answer.status.as_u16()
            ))),
        }
    }
}

/// Entra's state from one `internalDomainFederation` object; `Err` names what is missing.
fn state_of(config: &Value) -> Result<EntraState, String> {
    let id = config["id"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or("has no federation configuration `id`")?;
    let certificate = |field: &str| -> Result<Option<Arc<Certificate>>, String> {
        match &config[field] {
            Value::Null => Ok(None),
            Value::String(s) if s.trim().is_empty() => Ok(None),
            Value::String(s) => Certificate::from_base64(s)
                .map(|c| Some(Arc::new(c)))
                .map_err(|e| format!("has a `{field}` that is not a certificate: {e}")),
            _ => Err(format!("has a `{field}` that is not a string")),
        }
    };
    let signing = certificate("signingCertificate")?
        .ok_or("has no `signingCertificate` (Entra ID holds no certificate for the domain)")?;
    let status = &config["signingCertificateUpdateStatus"];
    Ok(EntraState {
        id: id.to_string(),
        signing,
        next: certificate("nextSigningCertificate")?,
        update_result: status["certificateUpdateResult"]
            .as_str()
            .map(str::to_string),
        update_ran: status["lastRunDateTime"].as_str().map(str::to_string),
    })
}

/// Graph's `error.message` (and code), else the start of the body.
fn graph_message(body: &str) -> String {
    let json: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    match (
        json["error"]["code"].as_str(),
        json["error"]["message"].as_str(),
    ) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (None, Some(message)) => message.to_string(),
        _ => body.chars().take(300).collect(),
    }
}

/// The token endpoint's `error` and `error_description` (AADSTS codes).
fn token_error(json: &Value, body: &str) -> String {
    match (json["error"].as_str(), json["error_description"].as_str()) {
        (Some(e), Some(d)) => format!("{e}: {d}"),
        (Some(e), None) => e.to_string(),
        _ => body.chars().take(300).collect(),
    }
}

fn now_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A client assertion signed by the certificate's key (RS256), its header naming the
/// certificate by `x5t` (SHA-1, base64url) as Entra ID requires; valid ten minutes.
pub fn certificate_assertion(
    pem: &Secret,
    client_id: &str,
    audience: &str,
    now: u64,
) -> Result<Secret, EntraError> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (cert_der, key_der) = pem_parts(pem.expose())?;
    let certificate = Certificate::from_der(cert_der).map_err(|e| {
        EntraError::Credential(format!(
            "KEYROLL_ENTRA_CLIENT_CERTIFICATE: its CERTIFICATE block is not a certificate: {e}"
        ))
    })?;
    let key = ring::rsa::KeyPair::from_pkcs8(&key_der)
        .or_else(|_| ring::rsa::KeyPair::from_der(&key_der))
        .map_err(|e| {
            EntraError::Credential(format!(
                "KEYROLL_ENTRA_CLIENT_CERTIFICATE: its private key is not a usable RSA key ({e})"
            ))
        })?;
    let mut jti = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut jti)
        .map_err(|_| EntraError::Credential("no random numbers for the assertion".into()))?;
    let header = serde_json::json!({
        "alg": "RS256", "typ": "JWT", "x5t": certificate.sha1.to_x5t()
    });
    let iat = now.saturating_sub(60);
    let claims = serde_json::json!({
        "aud": audience, "iss": client_id, "sub": client_id, "jti": hex::encode(jti),
        "nbf": iat, "iat": iat, "exp": iat + 600,
    });
    let input = format!(
        "{}.{}",
        b64.encode(header.to_string()),
        b64.encode(claims.to_string())
    );
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut signature,
    )
    .map_err(|e| EntraError::Credential(format!("signing the client assertion failed: {e}")))?;
    Ok(Secret::new(format!("{input}.{}", b64.encode(signature))))
}

/// The first CERTIFICATE and the first PRIVATE KEY block of PEM text. No error quotes it.
fn pem_parts(text: &str) -> Result<(Vec<u8>, Vec<u8>), EntraError> {
    let block = |label: &str| -> Option<Vec<u8>> {
        let mut lines = text.lines().map(str::trim);
        lines.find(|l| l.starts_with("-----BEGIN ") && l.ends_with(&format!("{label}-----")))?;
        let body: String = lines.take_while(|l| !l.starts_with("-----END ")).collect();
        crate::model::cert::decode_base64(&body).ok()
    };
    match (block("CERTIFICATE"), block("PRIVATE KEY")) {
        (Some(cert), Some(key)) => Ok((cert, key)),
        _ => Err(EntraError::Credential(
            "KEYROLL_ENTRA_CLIENT_CERTIFICATE must hold a PEM CERTIFICATE block and its PRIVATE KEY block (its value is not shown)".into(),
        )),
    }
}

/// Percent-escapes everything but unreserved characters (RFC 3986).
fn form_escape(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn path_escape(text: &str) -> String {
    form_escape(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_taken_in_the_documented_order() {
        let env = |set: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                set.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        const ALL: &[(&str, &str)] = &[
            ("ACTIONS_ID_TOKEN_REQUEST_URL", "https://t.example/x"),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "request-token-123"),
            ("KEYROLL_ENTRA_CLIENT_CERTIFICATE", "pem pem pem pem"),
            ("KEYROLL_ENTRA_CLIENT_SECRET", "secret-secret"),
        ];
        assert!(matches!(
            Credential::from_env(env(ALL)),
            Some(Credential::ActionsOidc { .. })
        ));
        assert!(matches!(
            Credential::from_env(env(&[
                ("ACTIONS_ID_TOKEN_REQUEST_URL", "https://t.example/x"),
                ("KEYROLL_ENTRA_CLIENT_CERTIFICATE", "pem pem pem pem"),
                ("KEYROLL_ENTRA_CLIENT_SECRET", "secret-secret"),
            ])),
            Some(Credential::Certificate(_))
        ));
        assert!(matches!(
            Credential::from_env(env(&[("KEYROLL_ENTRA_CLIENT_SECRET", "secret-secret")])),
            Some(Credential::ClientSecret(_))
        ));
        assert!(Credential::from_env(env(&[])).is_none());
    }

    #[test]
    fn a_pem_without_its_key_is_refused_without_being_quoted() {
        let pem = Secret::new("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
        let err = certificate_assertion(&pem, "c", "a", 0)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("PRIVATE KEY block") && !err.contains("MIIB"),
            "{err}"
        );
    }
}

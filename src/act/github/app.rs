//! GitHub App authentication: the App's JWT (RS256 with ring) and installation tokens.

use serde_json::json;

use super::{GitHub, GitHubError, RepoName, Secret};

impl GitHub {
    /// A GitHub App installation token for `repo`: a JWT signed with the App's private key
    /// finds the installation, which then issues a token (valid one hour).
    pub async fn installation_token(
        &self,
        repo: &RepoName,
        app_id: &str,
        private_key_pem: &Secret,
    ) -> Result<Secret, GitHubError> {
        let jwt = app_jwt(app_id, private_key_pem, std::time::SystemTime::now())?;
        let app_client =
            GitHub::new(&self.api, Some(jwt), false, self.retry.clone()).with_timeout(self.timeout);
        let path = format!("/repos/{}/{}/installation", repo.owner, repo.name);
        let installation = app_client
            .call(reqwest::Method::GET, &path, None)
            .await?
            .unwrap_or_default();
        let id = installation["id"]
            .as_u64()
            .ok_or_else(|| GitHubError::Decode {
                method: "GET".into(),
                path: path.clone(),
                detail: "no installation id".into(),
            })?;
        let token_path = format!("/app/installations/{id}/access_tokens");
        // Scoped to the one repository the run works on: a leaked token reaches nothing else.
        // Sent again after a timeout or 5xx like a read: a second token is no object anyone
        // sees, its answer reached no one, and it expires within the hour.
        let token = app_client
            .call(
                reqwest::Method::POST,
                &token_path,
                Some(&json!({ "repositories": [repo.name] })),
            )
            .await?
            .unwrap_or_default();
        let value = token["token"].as_str().ok_or_else(|| GitHubError::Decode {
            method: "POST".into(),
            path: token_path,
            detail: "no token in the response".into(),
        })?;
        self.calls
            .lock()
            .expect("not poisoned")
            .extend(app_client.calls());
        Ok(Secret::new(value))
    }
}

/// A GitHub App JWT (RS256): issued a minute in the past against clock drift, valid for
/// nine minutes (GitHub allows ten).
pub fn app_jwt(
    app_id: &str,
    private_key_pem: &Secret,
    now: std::time::SystemTime,
) -> Result<Secret, GitHubError> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let key = rsa_key(private_key_pem)?;
    let iat = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .saturating_sub(60);
    let header = b64.encode(r#"{"alg":"RS256","typ":"JWT"}"#);
    let claims = b64.encode(json!({ "iat": iat, "exp": iat + 600, "iss": app_id }).to_string());
    let signing_input = format!("{header}.{claims}");
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        signing_input.as_bytes(),
        &mut signature,
    )
    .map_err(|e| GitHubError::App(format!("signing the JWT failed: {e}")))?;
    Ok(Secret::new(format!(
        "{signing_input}.{}",
        b64.encode(signature)
    )))
}

const NOT_PEM: &str = "the private key is not a PEM private key (its value is not shown)";

/// The RSA key pair in a PEM private key (PKCS#1 `RSA PRIVATE KEY` or PKCS#8 `PRIVATE KEY`).
/// No error quotes the key.
fn rsa_key(pem: &Secret) -> Result<ring::rsa::KeyPair, GitHubError> {
    let text = pem.expose();
    let begin = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("-----BEGIN "))
        .ok_or_else(|| GitHubError::App(NOT_PEM.into()))?;
    if !begin.ends_with("PRIVATE KEY-----") {
        return Err(GitHubError::App(format!(
            "{NOT_PEM}: its armour line is {begin:?}, not a private key's"
        )));
    }
    let body: String = text
        .lines()
        .map(str::trim)
        .skip_while(|l| !l.starts_with("-----BEGIN "))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END "))
        .filter(|l| !l.is_empty())
        .collect();
    let der = crate::model::cert::decode_base64(&body)
        .map_err(|_| GitHubError::App(format!("{NOT_PEM}: its body is not base64")))?;
    ring::rsa::KeyPair::from_der(&der)
        .or_else(|_| ring::rsa::KeyPair::from_pkcs8(&der))
        .map_err(|e| {
            GitHubError::App(format!(
                "the private key is PEM but not a usable RSA key ({e}); GitHub App keys are RSA"
            ))
        })
}

/// The App's private key as given to `--app-private-key` / `KEYROLL_APP_PRIVATE_KEY`: PEM
/// text, or the path of a PEM file. Checked here, before any call, and never echoed: a key
/// pasted without its `-----BEGIN` line is neither PEM nor a path, and the error says so
/// without quoting it.
pub fn load_app_private_key(value: &Secret) -> Result<Secret, GitHubError> {
    let text = value.expose();
    let pem = if text.contains("-----BEGIN") {
        value.clone()
    } else if !text.contains('\n') && std::path::Path::new(text).is_file() {
        let content = std::fs::read_to_string(text)
            .map_err(|e| GitHubError::App(format!("reading the private key file {text}: {e}")))?;
        Secret::new(content)
    } else {
        return Err(GitHubError::App(format!(
            "{NOT_PEM}, and no file has that name; give the PEM text, -----BEGIN line included, or a path"
        )));
    };
    rsa_key(&pem)?;
    Ok(pem)
}

//! The one place keyroll reaches the network for metadata: https only, bounded in time, size
//! and retries, with errors that say what failed and for which URL (its user information,
//! a password perhaps, shown as `***`).

use std::time::Duration;

use reqwest::StatusCode;
use time::OffsetDateTime;

pub const USER_AGENT: &str = concat!("keyroll/", env!("CARGO_PKG_VERSION"));

#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Allows plain `http://` for the URL the user named (never for a host a redirect names).
    pub allow_http: bool,
    /// With `allow_http`, only to a loopback host: `entra` writes a key it reads into Entra
    /// ID, where a key slipped into a document on the wire would take over the domain.
    pub http_loopback_only: bool,
    pub connect_timeout: Duration,
    /// The deadline for one source, every attempt and wait between attempts included
    /// (`--timeout`): a stalled server costs this long, not this long per attempt.
    pub total_timeout: Duration,
    pub max_bytes: u64,
    /// Attempts after the first, on timeouts, connection failures and 5xx answers.
    pub retries: u32,
    /// First wait between attempts; doubles each time.
    pub backoff: Duration,
    /// `--snapshot DIR`: every URL is answered from a snapshot written by `keyroll snapshot`
    /// (the same bytes for every repository of a run), never from the network.
    pub snapshot: Option<std::path::PathBuf>,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            allow_http: false,
            http_loopback_only: false,
            connect_timeout: Duration::from_secs(10),
            total_timeout: Duration::from_secs(60),
            max_bytes: 10 * 1024 * 1024,
            retries: 3,
            backoff: Duration::from_millis(500),
            snapshot: None,
        }
    }
}

/// "1 attempt", "4 attempts": a run with `--retries 0` makes one.
fn attempts_text(attempts: u32) -> String {
    format!("{attempts} attempt{}", if attempts == 1 { "" } else { "s" })
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url}: refusing plain http:// (use https, or --allow-http for a trusted network)")]
    InsecureScheme { url: String },
    #[error(
        "{url}: refusing plain http:// here: a key read from it would be written to Entra ID, and --allow-http allows only a loopback host for that"
    )]
    HttpNotLoopback { url: String },
    #[error("{url}: not a valid URL: {detail}")]
    BadUrl { url: String, detail: String },
    #[error("{url}: DNS lookup failed: {detail}")]
    Dns { url: String, detail: String },
    #[error("{url}: TLS failed: {detail}")]
    Tls { url: String, detail: String },
    #[error("{url}: connection failed: {detail}")]
    Connect { url: String, detail: String },
    #[error("{url}: timed out after {seconds:.1} s ({})", attempts_text(*.attempts))]
    Timeout {
        url: String,
        seconds: f64,
        attempts: u32,
    },
    #[error("{url}: server answered HTTP {status} ({})", attempts_text(*.attempts))]
    Status {
        url: String,
        status: u16,
        attempts: u32,
    },
    #[error("{url}: response is larger than the {limit}-byte limit")]
    TooLarge { url: String, limit: u64 },
    #[error("{url}: redirect refused: {detail}")]
    Redirect { url: String, detail: String },
    #[error(
        "{url}: not in the snapshot {dir}: take a new snapshot with this source in its keyroll.toml, or run without --snapshot"
    )]
    NotInSnapshot { url: String, dir: String },
    #[error("{url}: {detail}")]
    Other { url: String, detail: String },
}

#[derive(Debug, Clone)]
pub struct Fetched {
    /// Where the body came from after redirects.
    pub final_url: String,
    pub bytes: Vec<u8>,
    pub fetched_at: OffsetDateTime,
}

pub struct Fetcher {
    /// Built on the first request: building it reads the system's root certificates (a few
    /// milliseconds and a few hundred files), which a run reading only local files or a
    /// snapshot never needs.
    client: std::sync::OnceLock<reqwest::Client>,
    options: FetchOptions,
    /// Loaded from `options.snapshot`: URLs are answered from it only.
    snapshot: Option<crate::load::snapshot::Snapshot>,
    /// `keyroll snapshot`: every document fetched, in order, second hops (`jwks_uri`) included.
    recorded: Option<std::sync::Mutex<Vec<(String, Fetched)>>>,
}

impl Fetcher {
    pub fn new(options: FetchOptions) -> Result<Self, FetchError> {
        // reqwest is built without a default crypto provider (ring, not aws-lc: no C/cmake
        // build); install ring once per process. A second call only reports it is set.
        install_crypto_provider();
        let snapshot =
            match &options.snapshot {
                Some(dir) => Some(crate::load::snapshot::Snapshot::open(dir).map_err(|e| {
                    FetchError::Other {
                        url: dir.display().to_string(),
                        detail: e.to_string(),
                    }
                })?),
                None => None,
            };
        Ok(Fetcher {
            client: std::sync::OnceLock::new(),
            options,
            snapshot,
            recorded: None,
        })
    }

    /// The HTTP client, built on first use.
    fn client(&self) -> Result<&reqwest::Client, String> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let allow_http = self.options.allow_http;
        let redirect = reqwest::redirect::Policy::custom(move |attempt| {
            let target = attempt.url().clone();
            let origin = attempt.previous().first().cloned();
            if attempt.previous().len() > 5 {
                return attempt.error("more than 5 redirects");
            }
            if target.scheme() == "https" {
                return attempt.follow();
            }
            let same_origin = origin
                .as_ref()
                .is_some_and(|o| o.origin() == target.origin());
            if allow_http && same_origin {
                attempt.follow()
            } else {
                attempt.error(format!("redirect to {target} is not https"))
            }
        });
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(self.options.connect_timeout)
            .timeout(self.options.total_timeout)
            .redirect(redirect)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        // Another request may have built one meanwhile: either serves.
        Ok(self.client.get_or_init(|| client))
    }

    /// Keeps a copy of every document fetched, for [`Fetcher::take_recorded`].
    pub fn recording(mut self) -> Self {
        self.recorded = Some(std::sync::Mutex::new(Vec::new()));
        self
    }

    /// The documents fetched since the last call, as `(URL asked for, what came back)`.
    pub fn take_recorded(&self) -> Vec<(String, Fetched)> {
        self.recorded
            .as_ref()
            .map(|r| std::mem::take(&mut *r.lock().expect("not poisoned")))
            .unwrap_or_default()
    }

    pub fn options(&self) -> &FetchOptions {
        &self.options
    }

    pub async fn get(&self, url: &str) -> Result<Fetched, FetchError> {
        // What errors show: never the password of `https://user:pw@host/…`.
        let shown = crate::model::secret::redact_urls(url);
        if let Some(snapshot) = &self.snapshot {
            // The snapshot's transport policy applied when it was taken; no network here.
            return snapshot.get(url).map_err(|e| match e {
                crate::load::snapshot::SnapshotError::Missing { .. } => FetchError::NotInSnapshot {
                    url: shown.clone(),
                    dir: snapshot.dir().display().to_string(),
                },
                other => FetchError::Other {
                    url: shown.clone(),
                    detail: other.to_string(),
                },
            });
        }
        // A URL two issuers share is read once per snapshot: both see the same bytes.
        if let Some(recorded) = &self.recorded {
            let recorded = recorded.lock().expect("not poisoned");
            if let Some((_, fetched)) = recorded.iter().find(|(u, _)| u == url) {
                return Ok(fetched.clone());
            }
        }
        let fetched = self.get_network(url, &shown).await?;
        if let Some(recorded) = &self.recorded {
            recorded
                .lock()
                .expect("not poisoned")
                .push((url.to_string(), fetched.clone()));
        }
        Ok(fetched)
    }

    async fn get_network(&self, url: &str, shown: &str) -> Result<Fetched, FetchError> {
        let shown = shown.to_string();
        let parsed = reqwest::Url::parse(url).map_err(|e| FetchError::BadUrl {
            url: shown.clone(),
            detail: e.to_string(),
        })?;
        match parsed.scheme() {
            "https" => {}
            "http"
                if self.options.http_loopback_only
                    && !parsed.host_str().is_some_and(|h| {
                        crate::model::settings::is_loopback_host(h)
                            || crate::model::settings::is_loopback_host(&format!("[{h}]"))
                    }) =>
            {
                return Err(FetchError::HttpNotLoopback { url: shown });
            }
            "http" if self.options.allow_http => {}
            "http" => return Err(FetchError::InsecureScheme { url: shown }),
            other => {
                return Err(FetchError::BadUrl {
                    url: shown,
                    detail: format!("unsupported scheme {other}:"),
                });
            }
        }
        let started = std::time::Instant::now();
        let deadline = tokio::time::Instant::now() + self.options.total_timeout;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let outcome = tokio::time::timeout_at(deadline, self.attempt(parsed.clone()))
                .await
                .unwrap_or(Err(Attempt::Timeout));
            let retryable = match &outcome {
                Err(Attempt::Timeout) | Err(Attempt::Connect(_)) => true,
                Err(Attempt::Status(status)) => status.is_server_error(),
                _ => false,
            };
            let wait = self.options.backoff * 2u32.saturating_pow(attempt - 1);
            // No attempt starts that the deadline would cut off before it could begin.
            let time_left = tokio::time::Instant::now() + wait < deadline;
            if !retryable || attempt > self.options.retries || !time_left {
                return outcome.map_err(|failure| {
                    failure.into_error(&shown, attempt, started.elapsed(), &self.options)
                });
            }
            tokio::time::sleep(wait).await;
        }
    }

    async fn attempt(&self, url: reqwest::Url) -> Result<Fetched, Attempt> {
        let mut response = self
            .client()
            .map_err(Attempt::Other)?
            .get(url)
            .send()
            .await
            .map_err(Attempt::from_reqwest)?;
        let status = response.status();
        if !status.is_success() {
            return Err(Attempt::Status(status));
        }
        let limit = self.options.max_bytes;
        if response.content_length().is_some_and(|len| len > limit) {
            return Err(Attempt::TooLarge);
        }
        let final_url = response.url().to_string();
        let mut bytes = Vec::new();
        // Enforced while streaming: a server that lies about or omits Content-Length is cut off.
        while let Some(chunk) = response.chunk().await.map_err(Attempt::from_reqwest)? {
            if bytes.len() as u64 + chunk.len() as u64 > limit {
                return Err(Attempt::TooLarge);
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Fetched {
            final_url,
            bytes,
            fetched_at: OffsetDateTime::now_utc(),
        })
    }
}

/// Why one attempt failed, before retries are decided.
enum Attempt {
    Timeout,
    Connect(String),
    Dns(String),
    Tls(String),
    Redirect(String),
    Status(StatusCode),
    TooLarge,
    Other(String),
}

impl Attempt {
    fn from_reqwest(e: reqwest::Error) -> Self {
        let chain = error_chain(&e);
        let lower = chain.to_ascii_lowercase();
        if e.is_timeout() {
            Attempt::Timeout
        } else if e.is_redirect() {
            Attempt::Redirect(redirect_detail(&e))
        } else if lower.contains("dns error") || lower.contains("failed to lookup address") {
            Attempt::Dns(chain)
        } else if lower.contains("certificate")
            || lower.contains("tls")
            || lower.contains("handshake")
        {
            Attempt::Tls(chain)
        } else if e.is_connect() {
            Attempt::Connect(chain)
        } else {
            Attempt::Other(chain)
        }
    }

    fn into_error(
        self,
        url: &str,
        attempts: u32,
        elapsed: Duration,
        options: &FetchOptions,
    ) -> FetchError {
        let url = url.to_string();
        // reqwest's messages name the URL too.
        let clean = |detail: String| crate::model::secret::redact(&detail);
        match self {
            Attempt::Timeout => FetchError::Timeout {
                url,
                seconds: elapsed.as_secs_f64(),
                attempts,
            },
            Attempt::Connect(detail) => FetchError::Connect {
                url,
                detail: clean(detail),
            },
            Attempt::Dns(detail) => FetchError::Dns {
                url,
                detail: clean(detail),
            },
            Attempt::Tls(detail) => FetchError::Tls {
                url,
                detail: clean(detail),
            },
            Attempt::Redirect(detail) => FetchError::Redirect {
                url,
                detail: clean(detail),
            },
            Attempt::Status(status) => FetchError::Status {
                url,
                status: status.as_u16(),
                attempts,
            },
            Attempt::TooLarge => FetchError::TooLarge {
                url,
                limit: options.max_bytes,
            },
            Attempt::Other(detail) => FetchError::Other {
                url,
                detail: clean(detail),
            },
        }
    }
}

/// rustls with ring (no C toolchain for aws-lc); installing twice is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    parts.join(": ")
}

/// The policy's own message is the innermost source of a redirect error.
fn redirect_detail(e: &reqwest::Error) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    let mut last = e.to_string();
    while let Some(s) = source {
        last = s.to_string();
        source = s.source();
    }
    last
}

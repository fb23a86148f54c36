//! `[[federated_domain]]` targets of keyroll.toml: the domains whose copy of an AD FS issuer's
//! keys Entra ID holds, and their checks.

use serde::Deserialize;
use time::Duration;

use super::{IssuerSettings, Settings, SettingsError, TextAt};

/// `[[federated_domain]]`: a domain federated to one of keyroll's issuers (AD FS), whose
/// copy of the issuer's token-signing certificates Entra ID holds. `keyroll entra` reads it
/// with the app registration `client_id` of `tenant`, and `plan` shows it beside the files.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederatedDomain {
    pub domain: String,
    /// The keyroll issuer whose keys Entra ID must hold.
    pub issuer: String,
    /// `contoso.onmicrosoft.com` or the tenant's ID.
    pub tenant: String,
    pub client_id: String,
    #[serde(default = "default_graph_url")]
    pub graph_url: String,
    #[serde(default = "default_login_url")]
    pub login_url: String,
}

fn default_graph_url() -> String {
    "https://graph.microsoft.com".into()
}

fn default_login_url() -> String {
    "https://login.microsoftonline.com".into()
}

/// AD FS's CertificatePromotionThreshold when the issuer sets none.
pub const DEFAULT_PROMOTION_THRESHOLD_DAYS: i64 = 5;

impl IssuerSettings {
    /// How long after its NotBefore AD FS promotes a new certificate.
    pub fn promotion_threshold(&self) -> Duration {
        self.promotion_threshold
            .map_or(Duration::days(DEFAULT_PROMOTION_THRESHOLD_DAYS), |d| d.0)
    }
}

impl Settings {
    /// Every `[[federated_domain]]` names a domain once, a defined issuer, a tenant and a
    /// client, and https URLs (plain http only for a loopback host, which `--allow-http`
    /// must then allow: a test's fake Graph).
    pub(super) fn check_federated_domains(
        &self,
        issuers: &std::collections::BTreeSet<&str>,
        text_at: &TextAt<'_>,
    ) -> Result<(), SettingsError> {
        let mut domains = std::collections::BTreeSet::new();
        for (index, entry) in self.federated_domains.iter().enumerate() {
            let table = text_at.table_at("[[federated_domain]]", index);
            let at = |needle: &str, detail: String| {
                let offset = text_at.text[table..]
                    .find(needle)
                    .map_or(table, |p| table + p);
                text_at.error(offset, detail)
            };
            let domain = entry.domain.trim().to_ascii_lowercase();
            if domain.is_empty() || domain.contains(['/', ' ', '?', '#', '%']) {
                return Err(at(
                    "domain =",
                    format!("federated_domain {:?} is not a domain name", entry.domain),
                ));
            }
            if !domains.insert(domain) {
                return Err(at(
                    "domain =",
                    format!("federated_domain \"{}\" is listed twice", entry.domain),
                ));
            }
            if !issuers.contains(entry.issuer.as_str()) {
                return Err(at(
                    "issuer =",
                    format!(
                        "federated_domain \"{}\" names issuer \"{}\", which no [[issuer]] defines",
                        entry.domain, entry.issuer
                    ),
                ));
            }
            // Entra ID's slots hold AD FS's token-signing certificate: with encryption keys
            // counted, AD FS's newest pending key could be its token-decrypting one, and
            // `entra apply` would write it as the next signing certificate.
            if self
                .issuer(&entry.issuer)
                .is_some_and(|i| i.uses.contains(&super::UseSetting::Encryption))
            {
                return Err(at(
                    "issuer =",
                    format!(
                        "federated_domain \"{}\" names issuer \"{}\", whose uses include \"encryption\": Entra ID holds AD FS's signing certificate only; name an issuer whose uses are [\"signing\"]",
                        entry.domain, entry.issuer
                    ),
                ));
            }
            for (key, value) in [("tenant", &entry.tenant), ("client_id", &entry.client_id)] {
                if value.trim().is_empty() || value.contains(['/', ' ', '?', '#']) {
                    return Err(at(
                        &format!("{key} ="),
                        format!(
                            "federated_domain \"{}\": {key} {value:?} is empty or not a name",
                            entry.domain
                        ),
                    ));
                }
            }
            for (key, url, hosts) in [
                ("graph_url", &entry.graph_url, GRAPH_HOSTS),
                ("login_url", &entry.login_url, LOGIN_HOSTS),
            ] {
                if let Some(why) = entra_url_problem(url, hosts) {
                    return Err(at(
                        &format!("{key} ="),
                        format!("federated_domain \"{}\": {key} {url:?} {why}", entry.domain),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Microsoft's Graph hosts: the global service and the national clouds (US Government L4 and
/// L5 (DoD), China operated by 21Vianet).
pub const GRAPH_HOSTS: &[&str] = &[
    "graph.microsoft.com",
    "graph.microsoft.us",
    "dod-graph.microsoft.us",
    "microsoftgraph.chinacloudapi.cn",
];

/// Microsoft Entra ID's sign-in hosts, for the same clouds.
pub const LOGIN_HOSTS: &[&str] = &[
    "login.microsoftonline.com",
    "login.microsoftonline.us",
    "login.chinacloudapi.cn",
    "login.partner.microsoftonline.cn",
];

/// Why a Graph or login URL is refused: https to one of Microsoft's `hosts`, or plain http to
/// a loopback host (a test's fake). keyroll.toml is repository content: a URL it names gets
/// the client secret or assertion (login) and the access token (Graph), so a change to it
/// must not send them to a host of the changer's choosing.
pub fn entra_url_problem(url: &str, hosts: &[&str]) -> Option<String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Some("is not a URL (https://host)".into());
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.contains('@') {
        return Some("has no host, or has user information".into());
    }
    if rest.contains(['?', '#']) {
        return Some("must not carry a query or fragment".into());
    }
    let name = host.split(':').next().unwrap_or("");
    match scheme {
        "https" if is_loopback_host(host) => None,
        "https" if hosts.iter().any(|h| h.eq_ignore_ascii_case(name)) => None,
        "https" => Some(format!(
            "is not one of Microsoft's hosts for it ({}); keyroll sends credentials only there",
            hosts.join(", ")
        )),
        "http" if is_loopback_host(host) => None,
        "http" => Some("is plain http to a host that is not loopback; use https".into()),
        other => Some(format!("has the scheme {other}:, not https")),
    }
}

/// `localhost`, `127.x.y.z` or `[::1]`, with or without a port.
pub fn is_loopback_host(host_and_port: &str) -> bool {
    let host = if let Some(v6) = host_and_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_and_port.split(':').next().unwrap_or("")
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

//! OIDC key sets: a JWKS document read into keys, and the `jwks_uri` an OpenID
//! configuration names, followed.

use super::{
    KeyCollector, KeyUse, MetadataError, PublishedKey, decode::decode, json_error, read_source,
};
use crate::load::fetch::Fetcher;
use crate::model::cert::Certificate;
use crate::model::thumbprint::Thumbprint;

/// The keys of the key set an OpenID configuration (`bytes`, read from `source`) names.
pub(super) async fn follow_jwks_uri(
    source: &str,
    bytes: &[u8],
    fetcher: &Fetcher,
) -> Result<JwksKeys, MetadataError> {
    // The configuration names the key set; its issuer names the entity.
    let text = decode(source, bytes)?.text;
    let config: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| json_error(source, &e))?;
    let jwks_uri = config["jwks_uri"].as_str().unwrap_or_default().to_string();
    let issuer = config["issuer"].as_str().map(str::to_string);
    check_jwks_uri(source, &jwks_uri, fetcher.options().allow_http)?;
    let jwks_bytes = read_source(&jwks_uri, fetcher).await?;
    let jwks = parse_jwks(&jwks_uri, &jwks_bytes, issuer)?;
    if jwks.0.is_empty() {
        return Err(MetadataError::NoCertificates {
            source_name: jwks_uri,
        });
    }
    Ok(jwks)
}

/// A second hop named by a remote document is always fetched, never read from disk:
/// https, or plain http only to a loopback host under --allow-http (tests).
fn check_jwks_uri(source: &str, jwks_uri: &str, allow_http: bool) -> Result<(), MetadataError> {
    let lower = jwks_uri.to_ascii_lowercase();
    let loopback = reqwest::Url::parse(jwks_uri).ok().is_some_and(|u| {
        let host = u.host_str().unwrap_or_default();
        host.eq_ignore_ascii_case("localhost")
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    });
    let allowed =
        lower.starts_with("https://") || (lower.starts_with("http://") && loopback && allow_http);
    if allowed {
        return Ok(());
    }
    Err(MetadataError::Read {
        source_name: source.to_string(),
        detail: format!(
            "jwks_uri \"{jwks_uri}\" is not an https:// URL; keyroll follows only https (plain http to a loopback host under --allow-http, for tests), never a path"
        ),
    })
}

pub(super) type JwksKeys = (Vec<PublishedKey>, Vec<String>);

pub(super) fn parse_jwks(
    source: &str,
    body: &[u8],
    issuer: Option<String>,
) -> Result<JwksKeys, MetadataError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| json_error(source, &e))?;
    let Some(array) = value.get("keys").and_then(|k| k.as_array()) else {
        return Err(MetadataError::Key {
            source_name: source.into(),
            what: "keys".into(),
            detail: "missing or not an array".into(),
        });
    };
    let mut keys = KeyCollector::default();
    let mut notes = Vec::new();
    for (index, jwk) in array.iter().enumerate() {
        let kid = jwk.get("kid").and_then(|v| v.as_str()).map(str::to_string);
        let what = format!(
            "keys[{index}]{}",
            kid.as_deref()
                .map(|k| format!(" (kid {k})"))
                .unwrap_or_default()
        );
        let key_error = |detail: String| MetadataError::Key {
            source_name: source.into(),
            what: what.clone(),
            detail,
        };
        let key_use = match jwk.get("use").and_then(|v| v.as_str()) {
            None => KeyUse::Unspecified,
            Some("sig") => KeyUse::Signing,
            Some("enc") => KeyUse::Encryption,
            Some(other) => return Err(key_error(format!("unknown use \"{other}\""))),
        };
        let Some(x5c) = jwk.get("x5c").and_then(|v| v.as_array()) else {
            notes.push(format!("{what}: no x5c certificate; skipped"));
            continue;
        };
        // The first x5c entry is the key's own certificate; the rest is its chain.
        let Some(leaf) = x5c.first().and_then(|v| v.as_str()) else {
            return Err(key_error("x5c is empty or not a string array".into()));
        };
        let certificate = Certificate::from_base64(leaf)
            .map_err(|e| key_error(format!("x5c[0] certificate: {e}")))?;
        if let Some(x5t) = jwk.get("x5t").and_then(|v| v.as_str()) {
            match Thumbprint::from_x5t(x5t) {
                Some(t) if t == certificate.sha1 => {}
                _ => {
                    return Err(key_error(format!(
                        "x5t {x5t} does not match the certificate's SHA-1 {} (x5t {})",
                        certificate.sha1,
                        certificate.sha1.to_x5t()
                    )));
                }
            }
        }
        keys.add(PublishedKey::new(
            issuer.clone(),
            String::new(),
            key_use,
            kid,
            format!("keys[{index}]"),
            certificate,
        ));
    }
    Ok((keys.keys, notes))
}

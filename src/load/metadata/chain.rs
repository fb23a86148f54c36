//! An `X509Data` that holds a key's certificate together with the chain that issued it: only
//! the leaves are keys.

use std::collections::{BTreeSet, HashMap};

use crate::model::cert::Certificate;

/// The certificates of one `X509Data`: XML-DSig allows a key's certificate together with the
/// chain that issued it. Only the leaves are keys.
pub(super) struct Chain<'a, 'input> {
    /// Certificates no other certificate of the same X509Data names as its issuer, in
    /// document order.
    pub(super) leaves: Vec<(roxmltree::Node<'a, 'input>, Certificate)>,
    /// The others: CA certificates that issued one of the leaves (or another CA). Never keys.
    pub(super) issuers: Vec<Certificate>,
}

/// Splits an X509Data's certificates into leaves and issuers; `None` when every certificate
/// issued another (a cycle), so that no key can be named.
pub(super) fn split_chain<'a, 'input>(
    members: Vec<(roxmltree::Node<'a, 'input>, Certificate)>,
) -> Option<Chain<'a, 'input>> {
    // The same certificate twice is one certificate (a self-signed one would otherwise
    // "issue" its copy and stop being a leaf).
    let mut seen = BTreeSet::new();
    let members: Vec<_> = members
        .into_iter()
        .filter(|(_, c)| seen.insert(c.sha1))
        .collect();
    if members.len() == 1 {
        return Some(Chain {
            leaves: members,
            issuers: Vec::new(),
        });
    }
    let issuer_names: HashMap<&str, usize> =
        members.iter().fold(HashMap::new(), |mut names, (_, c)| {
            *names.entry(c.issuer.as_str()).or_default() += 1;
            names
        });
    let issued_another: Vec<bool> = members
        .iter()
        .map(|(_, c)| {
            // Its own issuer name (self-signed) does not count: another certificate must
            // name it.
            let own = usize::from(c.issuer == c.subject);
            issuer_names.get(c.subject.as_str()).copied().unwrap_or(0) > own
        })
        .collect();
    let mut leaves = Vec::new();
    let mut issuers = Vec::new();
    for (member, issued) in members.into_iter().zip(issued_another) {
        if issued {
            issuers.push(member.1);
        } else {
            leaves.push(member);
        }
    }
    if leaves.is_empty() {
        return None;
    }
    Some(Chain { leaves, issuers })
}

pub(super) fn chain_note(
    what: &str,
    line: u32,
    column: u32,
    leaves: &[&Certificate],
    issuers: &[Certificate],
) -> String {
    let describe = |c: &Certificate| format!("{} ({})", c.sha1, c.subject);
    format!(
        "line {line}, column {column}: the X509Data {what} holds {} certificates; the key is the leaf {}; not counted as a key, as it issued another certificate there: {}",
        leaves.len() + issuers.len(),
        leaves
            .iter()
            .map(|c| describe(c))
            .collect::<Vec<_>>()
            .join(", "),
        issuers.iter().map(describe).collect::<Vec<_>>().join(", ")
    )
}

//! The text `init` writes into keyroll.toml: one `[[issuer]]` table per source, the targets
//! trusting each, the database-held registries as commented tables, TOML strings quoted.

use super::*;

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// keyroll.toml's header, its `[[issuer]]` tables and a commented one per unpicked source.
pub(super) fn issuers_text(
    loaded: &Loaded<'_>,
    issuers: &[Issuer],
    names: &BTreeSet<String>,
    unpicked_sources: &[UnpickedSource],
) -> String {
    let (root, sources) = (loaded.root, loaded.sources);
    let mut text = String::from(
        "# keyroll.toml — written by `keyroll init`; review it, then run `keyroll plan`.\n\
         # Reference: README.md, section \"keyroll.toml\".\n",
    );
    for issuer in issuers {
        text.push_str(&format!(
            "\n[[issuer]]\nname = {}\nmetadata = [{}]\n",
            toml_string(&issuer.name),
            toml_string(&issuer.metadata)
        ));
        if let Some(entity_id) = &issuer.entity_id {
            text.push_str(&format!("entity_id = {}\n", toml_string(entity_id)));
        }
    }
    for source in unpicked_sources {
        let doc_index = sources
            .iter()
            .position(|s| relative_source(root, s) == source.metadata)
            .expect("an unpicked source is one of the sources");
        let entity_ids = loaded.docs[doc_index].entity_ids();
        let example = entity_ids.iter().next().copied().unwrap_or_default();
        text.push_str(&format!(
            "\n# {} lists {} entities and no config here trusts a key of any of them yet.\n\
             # Pick the one the app trusts (its entityID), name it, then remove the leading \"# \":\n\
             # [[issuer]]\n# name = {}\n# metadata = [{}]\n# entity_id = {}\n",
            source.metadata,
            source.entities,
            toml_string(&free_name(
                &name_candidates(Some(example), &sources[doc_index], doc_index),
                names
            )),
            toml_string(&source.metadata),
            toml_string(example),
        ));
    }
    text
}

/// keyroll.toml's `[[target]]` tables, and a commented one per issuer no config trusts yet.
pub(super) fn targets_text(
    targets: &Targets,
    issuers: &[Issuer],
    stale_files: &[(&String, &String)],
    db_issuers: &BTreeSet<String>,
) -> String {
    let mut text = String::new();
    for ((dialect, authority, issuers), files) in targets {
        let files: Vec<String> = files.iter().map(|f| toml_string(f)).collect();
        let issuers: Vec<String> = issuers.iter().map(|i| toml_string(i)).collect();
        text.push_str(&format!(
            "\n[[target]]\nfiles = [{}]\ndialect = {}\nissuers = [{}]\n",
            files.join(", "),
            toml_string(dialect),
            issuers.join(", ")
        ));
        if let Some(authority) = authority {
            text.push_str(&format!("authority = {}\n", toml_string(authority)));
        }
    }
    for issuer in issuers
        .iter()
        .filter(|i| trusted_by(targets, &i.name).is_empty() && !db_issuers.contains(&i.name))
    {
        text.push_str(&commented_target(issuer, stale_files));
    }
    text
}

/// A `[[database]]` per registry the scan found whose keys live in a table, with the issuer
/// whose metadata the app reads (`ida:FederationMetadataLocation`), else the only issuer, else
/// the first one with a note to check it. Returns the text and the issuers used.
pub(super) fn databases_text(
    loaded: &Loaded<'_>,
    issuers: &[Issuer],
    summary: &mut InitSummary,
) -> (String, BTreeSet<String>) {
    let mut text = String::new();
    let mut used = BTreeSet::new();
    let mut taken: BTreeSet<String> = BTreeSet::new();
    for registry in &loaded.scanned.databases {
        let by_location = registry.metadata_location.as_deref().and_then(|location| {
            issuers.iter().find(|i| {
                loaded.sources[i.doc_index].eq_ignore_ascii_case(location)
                    || i.metadata.eq_ignore_ascii_case(location)
            })
        });
        let (issuer, sure) = match (by_location, issuers) {
            (Some(i), _) => (i, true),
            (None, [only]) => (only, true),
            (None, [first, ..]) => (first, false),
            (None, []) => continue,
        };
        let base = match registry.kind {
            scan::databases::DatabaseKind::Vs2013TenantRegistry => "tenants",
            scan::databases::DatabaseKind::K2ClaimIssuer => "k2",
        };
        let name = (1..)
            .map(|n| {
                if n == 1 {
                    base.to_string()
                } else {
                    format!("{base}-{n}")
                }
            })
            .find(|n| taken.insert(n.clone()))
            .expect("a free name");
        let found = relative_path(loaded.root, &registry.file).map_or_else(
            || registry.file.display().to_string(),
            |p| crate::model::paths::slash_path(&p),
        );
        text.push_str(&format!(
            "\n# {found}:{}: {}\n",
            registry.line,
            match &registry.connection {
                Some(c) => format!(
                    "reads table {} through connection string {c:?}",
                    registry.table
                ),
                None => format!("reads table {} (connection string unknown)", registry.table),
            }
        ));
        if !sure {
            text.push_str("# Check the issuer: the app's metadata location names none of the given sources.\n");
        }
        text.push_str(&format!(
            "[[database]]\nname = {}\npreset = {}\ndialect = \"mssql\"\nissuers = [{}]\nmigrations = \"db/keyroll\"\n# url_env = \"KEYROLL_DB_URL\"   # a PostgreSQL, MySQL or SQLite URL, for `keyroll db check`\n",
            toml_string(&name),
            toml_string(registry.kind.preset()),
            toml_string(&issuer.name)
        ));
        summary.databases.push(format!(
            "{name}: {} at {found}:{}, issuer {}",
            registry.kind.preset(),
            registry.line,
            issuer.name
        ));
        used.insert(issuer.name.clone());
    }
    (text, used)
}

/// A `[[target]]` to fill in for an issuer no config trusts yet, suggesting the configs that
/// trust only thumbprints no source publishes.
fn commented_target(issuer: &Issuer, stale_files: &[(&String, &String)]) -> String {
    let mut text = format!(
        "\n# No config here trusts a key that \"{}\" publishes yet, so no target was written for it.\n",
        issuer.name
    );
    let files: Vec<String> = if stale_files.is_empty() {
        text.push_str("# Name the configs that should trust it, then remove the leading \"# \":\n");
        vec![toml_string("path/to/Web.config")]
    } else {
        text.push_str(
            "# These configs trust only thumbprints no given metadata publishes (its old keys?).\n\
             # Keep the ones that should trust it, then remove the leading \"# \":\n",
        );
        stale_files.iter().map(|(f, _)| toml_string(f)).collect()
    };
    text.push_str(&format!("# [[target]]\n# files = [{}]\n", files.join(", ")));
    let dialects: BTreeSet<&String> = stale_files.iter().map(|(_, d)| *d).collect();
    if let [dialect] = dialects.into_iter().collect::<Vec<_>>()[..] {
        text.push_str(&format!("# dialect = {}\n", toml_string(dialect)));
    }
    text.push_str(&format!("# issuers = [{}]\n", toml_string(&issuer.name)));
    text
}

/// Paths in keyroll.toml are relative to its folder, with `..` when the source lies outside.
pub(super) fn relative_source(root: &Path, source: &str) -> String {
    if metadata::is_url(source) {
        return source.to_string();
    }
    let absolute = |path: &Path| {
        std::fs::canonicalize(path).unwrap_or_else(|_| {
            std::env::current_dir()
                .map(|cwd| cwd.join(path))
                .unwrap_or_else(|_| path.to_path_buf())
        })
    };
    let path = absolute(Path::new(source));
    let root = absolute(root);
    match relative_path(&root, &path) {
        Some(relative) => slash_path(&relative),
        None => slash_path(&path),
    }
}

/// `path` as seen from the folder `base`, both absolute; `None` when they share no root
/// (another drive on Windows).
pub(super) fn relative_path(base: &Path, path: &Path) -> Option<PathBuf> {
    let base: Vec<Component<'_>> = base.components().collect();
    let path: Vec<Component<'_>> = path.components().collect();
    if base.first() != path.first() {
        return None;
    }
    let common = base.iter().zip(&path).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..base.len() {
        out.push("..");
    }
    for component in &path[common..] {
        out.push(component.as_os_str());
    }
    Some(out)
}

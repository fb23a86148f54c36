//! `[[database]]` targets on real database servers the test starts itself (PostgreSQL and
//! MariaDB from Debian's packages, SQLite files): every migration keyroll writes runs with the
//! database's own client, is idempotent, and leaves exactly the intended rows; `db check`
//! finds each kind of drift; `db apply` converges; an app-style refresh racing a migration
//! never leaves the table without a published key. The T-SQL keyroll writes for SQL Server,
//! which does not run here, is parsed by an independent parser (sqlglot's `tsql` dialect).
//!
//! Linux only: the servers are Debian's packages (CI's Linux job installs them); the Windows
//! and macOS jobs prove the rest of the suite.
#![cfg(target_os = "linux")]

mod common;
mod dbkit;
mod kit;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{Repo, git};
use kit::Key;
use sqlx::{Connection, Row};

const TENANT: &str = "8eaef023-2b34-4da1-9baa-8bc8c9d6a490";
const URL_VAR: &str = "KEYROLL_TEST_DB_URL";
const PASTED: char = '\u{200E}';

fn entity_id() -> String {
    format!("https://sts.windows.net/{TENANT}/")
}

struct Keys {
    old: Key,
    new: Key,
}

fn keys() -> Keys {
    Keys {
        old: Key::new(
            "old",
            time::macros::datetime!(2026-01-01 0:00 UTC),
            time::macros::datetime!(2027-06-01 0:00 UTC),
        ),
        new: Key::new(
            "new",
            time::macros::datetime!(2026-11-28 0:00 UTC),
            time::macros::datetime!(2028-01-01 0:00 UTC),
        ),
    }
}

/// The database under test: its URL, dialect, and how its own client runs a file.
enum Server {
    Sqlite(tempfile::TempDir),
    Postgres(dbkit::Postgres),
    Mariadb(dbkit::Mariadb),
}

impl Server {
    fn sqlite() -> Server {
        Server::Sqlite(tempfile::tempdir().unwrap())
    }

    fn file(&self) -> PathBuf {
        match self {
            Server::Sqlite(dir) => dir.path().join("app.db"),
            _ => unreachable!(),
        }
    }

    fn url(&self) -> String {
        match self {
            Server::Sqlite(_) => format!("sqlite://{}?mode=rwc", self.file().display()),
            Server::Postgres(pg) => pg.url(),
            Server::Mariadb(m) => m.url(),
        }
    }

    fn dialect(&self) -> &'static str {
        match self {
            Server::Sqlite(_) => "sqlite",
            Server::Postgres(_) => "postgres",
            Server::Mariadb(_) => "mysql",
        }
    }

    /// Runs SQL with the database's own command-line client (as a migration pipeline
    /// would), stopping at the first error.
    fn run_client(&self, sql: &str) -> Output {
        match self {
            Server::Sqlite(_) => dbkit::sqlite(&self.file(), sql),
            Server::Postgres(pg) => pg.psql(sql),
            Server::Mariadb(m) => m.run(sql),
        }
    }

    #[track_caller]
    fn run_ok(&self, sql: &str) {
        let out = self.run_client(sql);
        assert!(
            out.status.success(),
            "the {} client refused:\n{sql}\n{}{}",
            self.dialect(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The VS2013 template's tables, as its EF migration creates them.
    fn create_vs2013(&self, keys: &[String], tenants: &[&str]) {
        let (q, text) = match self {
            Server::Mariadb(_) => ('`', "VARCHAR(128)"),
            _ => ('"', "VARCHAR(128)"),
        };
        let mut sql = format!(
            "CREATE TABLE {q}IssuingAuthorityKeys{q} ({q}Id{q} {text} NOT NULL PRIMARY KEY);\nCREATE TABLE {q}Tenants{q} ({q}Id{q} {text} NOT NULL PRIMARY KEY);\n"
        );
        for k in keys {
            sql.push_str(&format!(
                "INSERT INTO {q}IssuingAuthorityKeys{q} ({q}Id{q}) VALUES ('{k}');\n"
            ));
        }
        for t in tenants {
            sql.push_str(&format!(
                "INSERT INTO {q}Tenants{q} ({q}Id{q}) VALUES ('{t}');\n"
            ));
        }
        self.run_ok(&sql);
    }

    fn query_strings(&self, sql: &str) -> Vec<String> {
        let url = self.url();
        let sql = sql.to_string();
        tokio_rt().block_on(async move {
            sqlx::any::install_default_drivers();
            let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_all(&mut conn)
                .await
                .unwrap();
            rows.iter().map(|r| r.get::<String, _>(0)).collect()
        })
    }

    fn key_rows(&self) -> BTreeSet<String> {
        let q = if matches!(self, Server::Mariadb(_)) {
            '`'
        } else {
            '"'
        };
        self.query_strings(&format!("SELECT {q}Id{q} FROM {q}IssuingAuthorityKeys{q}"))
            .into_iter()
            .collect()
    }
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A repository with the issuer's metadata and a `[[database]]` target of `preset`.
fn repo(server: &Server, preset: &str, published: &[&Key]) -> Repo {
    let repo = Repo::with_settings(&format!(
        "[[issuer]]\nname = \"aad\"\nmetadata = [\"metadata.xml\"]\n\n[[database]]\nname = \"tenants\"\npreset = \"{preset}\"\ndialect = \"{}\"\nissuers = [\"aad\"]\nmigrations = \"db/keyroll\"\nurl_env = \"{URL_VAR}\"\n\n[policy]\nremove_after = \"7d\"\n",
        server.dialect()
    ));
    git(repo.dir.path(), &["init", "-q"]);
    publish(&repo, published);
    repo
}

fn publish(repo: &Repo, keys: &[&Key]) {
    repo.write("metadata.xml", &kit::metadata(&entity_id(), keys));
}

fn keyroll(repo: &Repo, server: &Server, args: &[&str], now: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keyroll"))
        .args(args)
        .arg("--now")
        .arg(now)
        .arg("--config")
        .arg(repo.path("keyroll.toml"))
        .env(URL_VAR, server.url())
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[track_caller]
fn exit(out: &Output, code: i32) -> String {
    assert_eq!(out.status.code(), Some(code), "{}", text(out));
    text(out)
}

/// `apply` and the one migration file it adds (the newest in db/keyroll).
fn apply_migration(repo: &Repo, server: &Server, now: &str) -> String {
    let before = migrations(repo.dir.path());
    exit(&keyroll(repo, server, &["apply"], now), 0);
    let after = migrations(repo.dir.path());
    let new: Vec<&PathBuf> = after.iter().filter(|p| !before.contains(p)).collect();
    assert_eq!(new.len(), 1, "apply at {now} adds one migration: {after:?}");
    std::fs::read_to_string(new[0]).unwrap()
}

fn migrations(root: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("db/keyroll"))
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    files
}

fn set(values: &[&str]) -> BTreeSet<String> {
    values.iter().map(|s| s.to_string()).collect()
}

/// Seed 001's story on one server: a table holding the old key and a pasted copy of it,
/// a key roll, the migration, its removal after the grace period, and `db apply`.
fn vs2013_story(server: Server) {
    let k = keys();
    let pasted = format!("{PASTED}{}", k.old.hex());
    server.create_vs2013(&[k.old.hex(), pasted.clone()], &[TENANT]);
    let repo = repo(&server, "vs2013-tenant-registry", &[&k.old, &k.new]);

    // Drift, named by thumbprint, with the days before the new key signs tokens.
    let check = exit(
        &keyroll(&repo, &server, &["db", "check"], "2026-11-29T00:00:00Z"),
        2,
    );
    common::assert_contains(
        &check,
        &format!(
            "missing published key {}; expected to sign tokens from 2026-12-03 (4 days left)",
            k.new.hex()
        ),
    );
    common::assert_contains(&check, &format!("pasted row \\u{{200E}}{}", k.old.hex()));

    // The migration runs with the database's own client, twice, with the same result.
    let sql = apply_migration(&repo, &server, "2026-11-29T00:00:00Z");
    common::assert_contains(&sql, &format!("-- add {}", k.new.hex()));
    common::assert_contains(&sql, "issuer \"aad\"");
    server.run_ok(&sql);
    server.run_ok(&sql);
    assert_eq!(server.key_rows(), set(&[&k.old.hex(), &k.new.hex()]));
    exit(
        &keyroll(&repo, &server, &["db", "check"], "2026-11-29T00:00:00Z"),
        0,
    );

    // The old key leaves the metadata: kept through the grace period, then removed.
    publish(&repo, &[&k.new]);
    exit(
        &keyroll(&repo, &server, &["apply"], "2026-12-01T00:00:00Z"),
        0,
    );
    assert_eq!(
        migrations(repo.dir.path()).len(),
        1,
        "nothing to do inside the grace period"
    );
    let sql = apply_migration(&repo, &server, "2026-12-09T00:00:00Z");
    common::assert_contains(&sql, &format!("-- remove {}", k.old.hex()));
    server.run_ok(&sql);
    server.run_ok(&sql);
    assert_eq!(server.key_rows(), set(&[&k.new.hex()]));
    exit(
        &keyroll(&repo, &server, &["db", "check"], "2026-12-09T00:00:00Z"),
        0,
    );

    assert_eq!(server.key_rows(), set(&[&k.new.hex()]));
    exit(
        &keyroll(&repo, &server, &["db", "check"], "2026-12-09T00:00:00Z"),
        0,
    );

    // Someone replaces the key by hand with a pasted copy: drift; `db apply` converges.
    let q = if matches!(server, Server::Mariadb(_)) {
        '`'
    } else {
        '"'
    };
    server.run_ok(&format!(
        "DELETE FROM {q}IssuingAuthorityKeys{q};\nINSERT INTO {q}IssuingAuthorityKeys{q} ({q}Id{q}) VALUES ('{PASTED}{}');",
        k.new.hex()
    ));
    let check = exit(
        &keyroll(&repo, &server, &["db", "check"], "2026-12-10T00:00:00Z"),
        2,
    );
    common::assert_contains(&check, &format!("missing published key {}", k.new.hex()));
    common::assert_contains(&check, &format!("pasted row \\u{{200E}}{}", k.new.hex()));
    exit(
        &keyroll(&repo, &server, &["db", "apply"], "2026-12-10T00:00:00Z"),
        0,
    );
    assert_eq!(server.key_rows(), set(&[&k.new.hex()]));
    exit(
        &keyroll(&repo, &server, &["db", "check"], "2026-12-10T00:00:00Z"),
        0,
    );
}

#[test]
fn vs2013_registry_on_sqlite() {
    vs2013_story(Server::sqlite());
}

#[test]
fn vs2013_registry_on_postgres() {
    vs2013_story(Server::Postgres(dbkit::Postgres::start()));
}

#[test]
fn vs2013_registry_on_mariadb() {
    vs2013_story(Server::Mariadb(dbkit::Mariadb::start()));
}

/// A table keyroll knows nothing of (no lock, no connection): the migration inserts every
/// published key and the tenant, idempotently, and leaves rows already there alone.
#[test]
fn with_no_known_rows_every_published_key_is_inserted_where_missing() {
    let k = keys();
    let server = Server::sqlite();
    server.create_vs2013(&[k.old.hex()], &[]);
    let repo = repo(&server, "vs2013-tenant-registry", &[&k.old, &k.new]);
    let out = Command::new(env!("CARGO_BIN_EXE_keyroll"))
        .args(["apply", "--now", "2026-11-29T00:00:00Z", "--config"])
        .arg(repo.path("keyroll.toml"))
        .env_remove(URL_VAR)
        .output()
        .unwrap();
    exit(&out, 0);
    let sql = std::fs::read_to_string(&migrations(repo.dir.path())[0]).unwrap();
    common::assert_contains(&sql, "rows known from: nothing yet");
    server.run_ok(&sql);
    server.run_ok(&sql);
    assert_eq!(server.key_rows(), set(&[&k.old.hex(), &k.new.hex()]));
    assert_eq!(
        server.query_strings("SELECT \"Id\" FROM \"Tenants\""),
        vec![TENANT.to_string()]
    );
    // keyroll.lock now knows the rows: the next run, still without a connection, has
    // nothing to do.
    common::assert_contains(&repo.lock().unwrap(), "[[issuer.database]]");
    let out = Command::new(env!("CARGO_BIN_EXE_keyroll"))
        .args([
            "plan",
            "--detailed-exitcode",
            "--now",
            "2026-11-30T00:00:00Z",
            "--config",
        ])
        .arg(repo.path("keyroll.toml"))
        .env_remove(URL_VAR)
        .output()
        .unwrap();
    exit(&out, 0);
}

/// A migration that cannot reach its intended rows fails as a whole: the check at its end
/// rolls back everything before it.
#[test]
fn a_migration_whose_rows_cannot_be_reached_rolls_back_on_every_server() {
    for server in [
        Server::sqlite(),
        Server::Postgres(dbkit::Postgres::start()),
        Server::Mariadb(dbkit::Mariadb::start()),
    ] {
        let k = keys();
        server.create_vs2013(&[k.old.hex()], &[TENANT]);
        let repo = repo(&server, "vs2013-tenant-registry", &[&k.old, &k.new]);
        let sql = apply_migration(&repo, &server, "2026-11-29T00:00:00Z");
        // A trigger stands in for anything that keeps the insert from landing.
        let q = if matches!(server, Server::Mariadb(_)) {
            '`'
        } else {
            '"'
        };
        let sabotage = format!(
            "INSERT INTO {q}Tenants{q} ({q}Id{q}) VALUES ('marker');\n{}",
            sql.replace(&format!("SELECT '{}'", k.new.hex()), "SELECT 'NOT-THE-KEY'")
        );
        let out = server.run_client(&sabotage);
        assert!(
            !out.status.success(),
            "{}: the check must fail",
            server.dialect()
        );
        assert_eq!(
            server.key_rows(),
            set(&[&k.old.hex()]),
            "{}",
            server.dialect()
        );
    }
}

/// Seed 000's K2: the issuer's row duplicated with the new thumbprint and its realm
/// mappings, another issuer's rows untouched; later the old row and its mappings removed.
fn k2_story(server: Server) {
    let k = keys();
    let (schema, table, realm) = match server {
        Server::Postgres(_) => (
            "CREATE SCHEMA \"Identity\";",
            "\"Identity\".\"ClaimIssuer\"",
            "\"Identity\".\"ClaimRealmIssuer\"",
        ),
        _ => ("", "\"ClaimIssuer\"", "\"ClaimRealmIssuer\""),
    };
    let id = match server {
        Server::Postgres(_) => "\"ID\" SERIAL PRIMARY KEY",
        _ => "\"ID\" INTEGER PRIMARY KEY AUTOINCREMENT",
    };
    server.run_ok(&format!(
        "{schema}
CREATE TABLE {table} ({id}, \"Name\" VARCHAR(200), \"Issuer\" VARCHAR(400), \"Thumbprint\" VARCHAR(200), \"Description\" VARCHAR(400), \"Uri\" VARCHAR(400), \"UseForLogin\" INTEGER);
CREATE TABLE {realm} (\"IssuerID\" INTEGER NOT NULL, \"RealmID\" INTEGER NOT NULL);
INSERT INTO {table} (\"Name\", \"Issuer\", \"Thumbprint\", \"Description\", \"Uri\", \"UseForLogin\") VALUES ('AAD', '{}', '{}', 'Azure AD', 'https://login.example/', 1);
INSERT INTO {table} (\"Name\", \"Issuer\", \"Thumbprint\", \"Description\", \"Uri\", \"UseForLogin\") VALUES ('Other', 'urn:other', '1111111111111111111111111111111111111111', 'x', 'y', 0);
INSERT INTO {realm} VALUES (1, 10), (1, 11), (2, 10);",
        entity_id(),
        k.old.hex()
    ));
    let repo = repo(&server, "k2-claim-issuer", &[&k.old, &k.new]);
    let sql = apply_migration(&repo, &server, "2026-11-29T00:00:00Z");
    common::assert_contains(&sql, "restart the K2 service");
    server.run_ok(&sql);
    server.run_ok(&sql);
    let rows = |who: &str| -> BTreeSet<String> {
        server
            .query_strings(&format!(
                "SELECT \"Thumbprint\" || ':' || \"Name\" || ':' || \"Uri\" FROM {table} WHERE \"Issuer\" = '{who}'"
            ))
            .into_iter()
            .collect()
    };
    let realms_of = |thumbprint: &str| -> BTreeSet<String> {
        server
            .query_strings(&format!(
                "SELECT CAST(r.\"RealmID\" AS VARCHAR(20)) FROM {realm} r JOIN {table} i ON i.\"ID\" = r.\"IssuerID\" WHERE i.\"Thumbprint\" = '{thumbprint}'"
            ))
            .into_iter()
            .collect()
    };
    assert_eq!(
        rows(&entity_id()),
        set(&[
            &format!("{}:AAD:https://login.example/", k.old.hex()),
            &format!("{}:AAD:https://login.example/", k.new.hex())
        ])
    );
    assert_eq!(realms_of(&k.new.hex()), set(&["10", "11"]));
    assert_eq!(rows("urn:other").len(), 1);
    exit(
        &keyroll(&repo, &server, &["db", "check"], "2026-11-29T00:00:00Z"),
        0,
    );

    publish(&repo, &[&k.new]);
    exit(
        &keyroll(&repo, &server, &["apply"], "2026-12-01T00:00:00Z"),
        0,
    );
    let sql = apply_migration(&repo, &server, "2026-12-09T00:00:00Z");
    server.run_ok(&sql);
    server.run_ok(&sql);
    assert_eq!(
        rows(&entity_id()),
        set(&[&format!("{}:AAD:https://login.example/", k.new.hex())])
    );
    assert!(realms_of(&k.old.hex()).is_empty());
    assert_eq!(realms_of(&k.new.hex()), set(&["10", "11"]));
    assert_eq!(
        realms_of("1111111111111111111111111111111111111111"),
        set(&["10"])
    );
    exit(
        &keyroll(&repo, &server, &["db", "check"], "2026-12-09T00:00:00Z"),
        0,
    );
}

#[test]
fn k2_claim_issuer_on_sqlite() {
    k2_story(Server::sqlite());
}

#[test]
fn k2_claim_issuer_on_postgres() {
    k2_story(Server::Postgres(dbkit::Postgres::start()));
}

/// The app's own `RefreshKeys` (delete every row, insert what it read as published, in one
/// transaction) racing keyroll's migration (add the new key, remove a retired one): a reader
/// never sees the table without a published key, and the end state holds one.
fn race(server: Server) {
    let k = keys();
    let retired = "2222222222222222222222222222222222222222";
    server.create_vs2013(&[k.old.hex(), retired.to_string()], &[TENANT]);
    let repo = repo(&server, "vs2013-tenant-registry", &[&k.old, &k.new]);
    // keyroll.lock learns the retired key went missing long ago.
    exit(
        &keyroll(&repo, &server, &["apply"], "2026-11-29T00:00:00Z"),
        0,
    );
    let sql = std::fs::read_to_string(&migrations(repo.dir.path())[0]).unwrap();
    let url = server.url();
    let q = if matches!(server, Server::Mariadb(_)) {
        '`'
    } else {
        '"'
    };
    let published = [k.old.hex(), k.new.hex()];
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Before either thread connects: the reader may connect first.
    sqlx::any::install_default_drivers();
    let app = {
        let (url, published, stop) = (url.clone(), published.clone(), stop.clone());
        std::thread::spawn(move || {
            tokio_rt().block_on(async move {
                let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
                let mut refreshes = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let Ok(mut tx) = conn.begin().await else {
                        continue;
                    };
                    let mut ok = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "DELETE FROM {q}IssuingAuthorityKeys{q}"
                    )))
                    .execute(&mut *tx)
                    .await
                    .is_ok();
                    // The app read the metadata before the roll: only the old key.
                    ok &= sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "INSERT INTO {q}IssuingAuthorityKeys{q} ({q}Id{q}) VALUES ('{}')",
                        published[0]
                    )))
                    .execute(&mut *tx)
                    .await
                    .is_ok();
                    if ok && tx.commit().await.is_ok() {
                        refreshes += 1;
                    }
                }
                refreshes
            })
        })
    };
    let reader = {
        let (url, published, stop) = (url.clone(), published.clone(), stop.clone());
        std::thread::spawn(move || {
            tokio_rt().block_on(async move {
                let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
                let mut reads = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT {q}Id{q} FROM {q}IssuingAuthorityKeys{q}"
                    )))
                    .fetch_all(&mut conn)
                    .await
                    .unwrap();
                    let ids: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
                    assert!(
                        ids.iter().any(|i| published.contains(i)),
                        "a reader saw no published key: {ids:?}"
                    );
                    reads += 1;
                }
                reads
            })
        })
    };
    let mut ran = 0;
    for _ in 0..40 {
        if server.run_client(&sql).status.success() {
            ran += 1;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let refreshes = app.join().unwrap();
    let reads = reader
        .join()
        .expect("the reader never saw the table without a published key");
    assert!(
        ran > 0 && refreshes > 0 && reads > 0,
        "{ran} {refreshes} {reads}"
    );
    // After the race, the migration once more: the intended rows.
    server.run_ok(&sql);
    let rows = server.key_rows();
    assert!(
        rows.contains(&k.new.hex()) && rows.contains(&k.old.hex()),
        "{rows:?}"
    );
}

#[test]
fn an_app_refresh_racing_a_migration_never_empties_postgres() {
    race(Server::Postgres(dbkit::Postgres::start()));
}

#[test]
fn an_app_refresh_racing_a_migration_never_empties_mariadb() {
    race(Server::Mariadb(dbkit::Mariadb::start()));
}

/// Errors name the target and leave everything as it was: a missing table, a URL for
/// another dialect, an unset variable.
#[test]
fn connection_and_schema_errors_name_the_target_and_change_nothing() {
    let k = keys();
    let server = Server::sqlite();
    server.run_ok("CREATE TABLE unrelated (x INTEGER);");
    let repo = repo(&server, "vs2013-tenant-registry", &[&k.old, &k.new]);
    let out = exit(
        &keyroll(&repo, &server, &["db", "check"], "2026-11-29T00:00:00Z"),
        1,
    );
    common::assert_contains(&out, "database \"tenants\"");
    common::assert_contains(&out, "IssuingAuthorityKeys");
    exit(
        &keyroll(&repo, &server, &["apply"], "2026-11-29T00:00:00Z"),
        1,
    );
    assert!(migrations(repo.dir.path()).is_empty());

    let out = Command::new(env!("CARGO_BIN_EXE_keyroll"))
        .args(["db", "check", "--now", "2026-11-29T00:00:00Z", "--config"])
        .arg(repo.path("keyroll.toml"))
        .env(URL_VAR, "postgres://user:hunter2@127.0.0.1:1/x")
        .output()
        .unwrap();
    let out = exit(&out, 1);
    common::assert_contains(&out, "but the target's dialect is sqlite");
    assert!(!out.contains("hunter2"), "{out}");
    // A connection string that is not a URL (libpq's key=value, ADO.NET's) is never quoted.
    for value in [
        "host=db.example.com user=app password=Hunter2Secret dbname=app",
        "Data Source=db;User ID=sa;Password=Hunter2Secret",
    ] {
        for args in [&["db", "check"][..], &["plan"]] {
            let out = Command::new(env!("CARGO_BIN_EXE_keyroll"))
                .args(args)
                .args(["--now", "2026-11-29T00:00:00Z", "--config"])
                .arg(repo.path("keyroll.toml"))
                .env(URL_VAR, value)
                .output()
                .unwrap();
            let said = text(&out);
            assert!(!out.status.success(), "{said}");
            common::assert_contains(&said, "is not a URL (scheme://…)");
            assert!(!said.to_lowercase().contains("hunter2"), "{said}");
        }
    }

    let out = Command::new(env!("CARGO_BIN_EXE_keyroll"))
        .args(["db", "check", "--now", "2026-11-29T00:00:00Z", "--config"])
        .arg(repo.path("keyroll.toml"))
        .env_remove(URL_VAR)
        .output()
        .unwrap();
    common::assert_contains(&exit(&out, 1), &format!("{URL_VAR} is not set"));
}

/// SQL Server does not run here: the T-SQL keyroll writes for every statement shape (key and
/// tenant inserts, guarded deletes, pasted rows, K2's duplicated rows and realm mappings,
/// the closing check) is parsed by sqlglot's `tsql` dialect, with no statement left to its
/// "unsupported: parse as a command" fallback.
#[test]
fn mssql_migrations_parse_as_t_sql() {
    let k = keys();
    let mut files = Vec::new();
    for preset in ["vs2013-tenant-registry", "k2-claim-issuer"] {
        let repo = Repo::with_settings(&format!(
            "[[issuer]]\nname = \"aad\"\nmetadata = [\"metadata.xml\"]\n\n[[database]]\nname = \"registry\"\npreset = \"{preset}\"\nissuers = [\"aad\"]\nmigrations = \"db\"\n\n[policy]\nremove_after = \"7d\"\n"
        ));
        git(repo.dir.path(), &["init", "-q"]);
        publish(&repo, &[&k.old, &k.new]);
        repo.apply("2026-11-29T00:00:00Z");
        publish(&repo, &[&k.new]);
        repo.apply("2026-12-01T00:00:00Z");
        repo.apply("2026-12-09T00:00:00Z");
        let written: Vec<PathBuf> = std::fs::read_dir(repo.path("db"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(
            written.len(),
            2,
            "{preset}: an adding and a removing migration"
        );
        for file in written {
            let sql = std::fs::read_to_string(&file).unwrap();
            common::assert_contains(&sql, "BEGIN TRANSACTION;");
            common::assert_contains(&sql, "RAISERROR(");
            files.push((preset, sql));
        }
    }
    let python = test_python();
    for (preset, sql) in &files {
        let out = Command::new(&python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sql/parse_tsql.py"))
            .env("SQL", sql)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{preset}: sqlglot refused:\n{sql}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let kinds = String::from_utf8_lossy(&out.stdout);
        let expected = [
            ("Insert", sql.contains("INSERT INTO")),
            ("Delete", sql.contains("DELETE FROM")),
            ("IfBlock", true),
            ("Commit", true),
        ];
        for (kind, wanted) in expected {
            if wanted {
                assert!(
                    kinds.lines().any(|l| l == kind),
                    "{preset}: no {kind} in sqlglot's tree"
                );
            }
        }
    }
}

/// The Python that scripts/test gave sqlglot (pinned), in target/test-venv.
fn test_python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/test, which installs sqlglot there",
        python.display()
    );
    python
}

/// `keyroll` in `dir` with the test database's URL in the environment.
fn keyroll_in(dir: &Path, server: &Server, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keyroll"))
        .args(args)
        .env(URL_VAR, server.url())
        .current_dir(dir)
        .output()
        .unwrap()
}

/// After `init`: the target on SQLite, read through the test's URL variable.
fn point_at_sqlite(dir: &Path) {
    let path = dir.join("keyroll.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("dialect = \"mssql\""), "{text}");
    let text = text
        .replace("dialect = \"mssql\"", "dialect = \"sqlite\"")
        .replace(
            "# url_env = \"KEYROLL_DB_URL\"",
            &format!("url_env = \"{URL_VAR}\" #"),
        );
    std::fs::write(path, text).unwrap();
}

/// The rest of both seeds' stories once `init` has written the target: the table drifts
/// after the key roll, the pull request carries the migration, and once a pipeline runs it
/// `db check` is clean.
fn roll_publish_and_run(dir: &Path, server: &Server, now: &str, expect_in_body: &[&str]) {
    let check = keyroll_in(dir, server, &["db", "check", "--now", now]);
    exit(&check, 2);
    let markdown = keyroll_in(dir, server, &["plan", "--format", "markdown", "--now", now]);
    let markdown = exit(&markdown, 0);
    common::assert_contains(&markdown, "**Databases**");
    for needle in expect_in_body.iter().filter(|n| !n.contains("restart")) {
        common::assert_contains(&markdown, needle);
    }
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "keyroll init"]);
    let pr = keyroll_in(
        dir,
        server,
        &["pr", "--dry-run", "--repo", "contoso/portal", "--now", now],
    );
    let pr = exit(&pr, 0);
    common::assert_contains(&pr, "db/keyroll/V");
    common::assert_contains(&pr, "**Databases**");
    for needle in expect_in_body {
        common::assert_contains(&pr, needle);
    }
    exit(&keyroll_in(dir, server, &["apply", "--now", now]), 0);
    let migration = migrations(dir).pop().expect("a migration");
    server.run_ok(&std::fs::read_to_string(migration).unwrap());
    exit(&keyroll_in(dir, server, &["db", "check", "--now", now]), 0);
}

/// Seed 001: the VS2013 template app (examples/vs2013-tenant-registry). scan finds the
/// registry in the database, init writes the [[database]] target, Entra ID's key roll
/// becomes a migration in the pull request, and the table is in step once it runs.
#[test]
fn seed_001_vs2013_template_app_end_to_end() {
    let k = keys();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/vs2013-tenant-registry");
    common::copy_dir(&example.join("Contoso.Portal"), &dir.join("Contoso.Portal"));
    std::fs::create_dir(dir.join("metadata")).unwrap();
    std::fs::write(
        dir.join("metadata/FederationMetadata.xml"),
        kit::metadata(&entity_id(), &[&k.old, &k.new]),
    )
    .unwrap();
    git(dir, &["init", "-q"]);
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "the app"]);
    let server = Server::sqlite();
    server.create_vs2013(&[k.old.hex()], &[TENANT]);

    let scan = exit(&keyroll_in(dir, &server, &["scan", "."]), 0);
    common::assert_contains(&scan, "Web.config:");
    common::assert_contains(&scan, "warning[database-registry]");
    common::assert_contains(&scan, "database table IssuingAuthorityKeys");
    common::assert_contains(&scan, "connection string \"DefaultConnection\"");

    let init = keyroll_in(
        dir,
        &server,
        &[
            "init",
            "--metadata",
            "metadata/FederationMetadata.xml",
            "--now",
            "2026-11-29T00:00:00Z",
        ],
    );
    common::assert_contains(&exit(&init, 0), "database  tenants: vs2013-tenant-registry");
    let settings = std::fs::read_to_string(dir.join("keyroll.toml")).unwrap();
    common::assert_contains(
        &settings,
        "[[database]]\nname = \"tenants\"\npreset = \"vs2013-tenant-registry\"",
    );
    point_at_sqlite(dir);
    roll_publish_and_run(
        dir,
        &server,
        "2026-11-29T00:00:00Z",
        &[&format!("**add** `{}`", k.new.hex())],
    );
    assert_eq!(server.key_rows(), set(&[&k.old.hex(), &k.new.hex()]));
}

/// Seed 000: K2's `[Identity].[ClaimIssuer]` after an Azure AD roll. scan finds the table
/// in the repository's K2 scripts, init writes the target, the pull request duplicates the
/// issuer's row with the new thumbprint and says the K2 service must be restarted.
#[test]
fn seed_000_k2_claim_issuer_end_to_end() {
    let k = keys();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    std::fs::create_dir_all(dir.join("k2")).unwrap();
    std::fs::write(
        dir.join("k2/claim-issuers.sql"),
        "-- What the K2 admin runs to see the trusted issuers.\nSELECT [ID], [Name], [Issuer], [Thumbprint]\nFROM [Identity].[ClaimIssuer];\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("metadata.xml"),
        kit::metadata(&entity_id(), &[&k.old, &k.new]),
    )
    .unwrap();
    git(dir, &["init", "-q"]);
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "k2 scripts"]);
    let server = Server::sqlite();
    server.run_ok(&format!(
        "CREATE TABLE \"ClaimIssuer\" (\"ID\" INTEGER PRIMARY KEY AUTOINCREMENT, \"Name\" TEXT, \"Issuer\" TEXT, \"Thumbprint\" TEXT, \"Description\" TEXT, \"Uri\" TEXT, \"UseForLogin\" INTEGER);
CREATE TABLE \"ClaimRealmIssuer\" (\"IssuerID\" INTEGER, \"RealmID\" INTEGER);
INSERT INTO \"ClaimIssuer\" (\"Name\", \"Issuer\", \"Thumbprint\", \"Description\", \"Uri\", \"UseForLogin\") VALUES ('AzureAD', '{}', '{}', 'Azure AD', 'https://login.microsoftonline.com/', 1);
INSERT INTO \"ClaimRealmIssuer\" VALUES (1, 7);",
        entity_id(),
        k.old.hex()
    ));
    let scan = exit(&keyroll_in(dir, &server, &["scan", "."]), 0);
    common::assert_contains(
        &scan,
        "k2/claim-issuers.sql:3:1: warning[database-registry]",
    );
    let init = keyroll_in(
        dir,
        &server,
        &[
            "init",
            "--metadata",
            "metadata.xml",
            "--now",
            "2026-11-29T00:00:00Z",
        ],
    );
    common::assert_contains(&exit(&init, 0), "database  k2: k2-claim-issuer");
    point_at_sqlite(dir);
    roll_publish_and_run(
        dir,
        &server,
        "2026-11-29T00:00:00Z",
        &["restart the K2 service", &k.new.hex()],
    );
    assert_eq!(
        server.query_strings(&format!(
            "SELECT CAST(r.\"RealmID\" AS TEXT) FROM \"ClaimRealmIssuer\" r JOIN \"ClaimIssuer\" i ON i.\"ID\" = r.\"IssuerID\" WHERE i.\"Thumbprint\" = '{}'",
            k.new.hex()
        )),
        vec!["7".to_string()]
    );
}

/// The same identity check as for configs: a first run whose metadata lists none of the keys
/// the table trusts is an identity change (a wrong or hijacked metadata URL), refused until a
/// person accepts it; nothing is proposed for the table.
#[test]
fn metadata_listing_none_of_the_tables_keys_is_an_identity_change() {
    let k = keys();
    let stranger = Key::current("stranger");
    let server = Server::sqlite();
    server.create_vs2013(&[k.old.hex()], &[TENANT]);
    let repo = repo(&server, "vs2013-tenant-registry", &[&stranger]);
    let out = exit(
        &keyroll(&repo, &server, &["plan"], "2026-11-29T00:00:00Z"),
        1,
    );
    common::assert_contains(&out, "identity");
    common::assert_contains(&out, "database tenants (table)");
    exit(
        &keyroll(&repo, &server, &["db", "check"], "2026-11-29T00:00:00Z"),
        1,
    );
    exit(
        &keyroll(&repo, &server, &["apply"], "2026-11-29T00:00:00Z"),
        1,
    );
    assert!(migrations(repo.dir.path()).is_empty());
    assert_eq!(server.key_rows(), set(&[&k.old.hex()]));
}

/// An entityID from metadata holding `$$` (PostgreSQL's dollar quote) stays inside the
/// closing check's body: the migration runs as written, and nothing after `$$` runs as a
/// statement of its own (it dropped a table when the body was quoted with a bare `$$`).
#[test]
fn an_entity_id_holding_dollar_quotes_stays_inside_the_postgres_check() {
    let k = keys();
    let server = Server::Postgres(dbkit::Postgres::start());
    let hostile = "https://sts.example/x$$; DROP TABLE victims; --";
    server.run_ok(&format!(
        "CREATE TABLE victims (x INTEGER);
CREATE SCHEMA \"Identity\";
CREATE TABLE \"Identity\".\"ClaimIssuer\" (\"ID\" SERIAL PRIMARY KEY, \"Name\" VARCHAR(200), \"Issuer\" VARCHAR(400), \"Thumbprint\" VARCHAR(200), \"Description\" VARCHAR(400), \"Uri\" VARCHAR(400), \"UseForLogin\" INTEGER);
CREATE TABLE \"Identity\".\"ClaimRealmIssuer\" (\"IssuerID\" INTEGER NOT NULL, \"RealmID\" INTEGER NOT NULL);
INSERT INTO \"Identity\".\"ClaimIssuer\" (\"Name\", \"Issuer\", \"Thumbprint\", \"Description\", \"Uri\", \"UseForLogin\") VALUES ('AAD', '{hostile}', '{}', 'x', 'y', 1);",
        k.old.hex()
    ));
    let repo = repo(&server, "k2-claim-issuer", &[&k.old, &k.new]);
    repo.write("metadata.xml", &kit::metadata(hostile, &[&k.old, &k.new]));
    let sql = apply_migration(&repo, &server, "2026-11-29T00:00:00Z");
    assert!(!sql.contains("DO $$"), "{sql}");
    server.run_ok(&sql);
    assert_eq!(
        server.query_strings("SELECT CAST(COUNT(*) AS TEXT) FROM victims"),
        vec!["0".to_string()],
        "the table is still there"
    );
    assert_eq!(
        server
            .query_strings(&format!(
                "SELECT \"Thumbprint\" FROM \"Identity\".\"ClaimIssuer\" WHERE \"Thumbprint\" = '{}'",
                k.new.hex()
            ))
            .len(),
        1
    );
}

/// Two issuers share one VS2013 table (it has no issuer column), and both published the
/// old certificate. One stops publishing it and its grace period ends: the row stays while
/// the other still trusts it. Each issuer's migration has its own Flyway version.
#[test]
fn a_shared_table_keeps_a_key_another_issuer_still_trusts() {
    let k = keys();
    let server = Server::sqlite();
    server.create_vs2013(&[k.old.hex()], &[TENANT]);
    let repo = Repo::with_settings(&format!(
        "[[issuer]]\nname = \"aad\"\nmetadata = [\"metadata.xml\"]\n\n[[issuer]]\nname = \"aad.two\"\nmetadata = [\"two.xml\"]\n\n[[database]]\nname = \"tenants\"\npreset = \"vs2013-tenant-registry\"\ndialect = \"sqlite\"\nissuers = [\"aad\", \"aad.two\"]\ntenant = \"{TENANT}\"\nmigrations = \"db/keyroll\"\nurl_env = \"{URL_VAR}\"\n\n[policy]\nremove_after = \"7d\"\n"
    ));
    git(repo.dir.path(), &["init", "-q"]);
    let second = Key::new(
        "second",
        time::macros::datetime!(2026-11-20 0:00 UTC),
        time::macros::datetime!(2028-01-01 0:00 UTC),
    );
    publish(&repo, &[&k.old, &k.new]);
    repo.write(
        "two.xml",
        &kit::metadata("https://two.example/", &[&k.old, &second]),
    );
    exit(
        &keyroll(&repo, &server, &["apply"], "2026-11-29T00:00:00Z"),
        0,
    );
    let files = migrations(repo.dir.path());
    assert_eq!(files.len(), 2, "{files:?}");
    let version = |p: &PathBuf| {
        p.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .split("__")
            .next()
            .unwrap()
            .to_string()
    };
    assert_ne!(version(&files[0]), version(&files[1]), "{files:?}");
    for f in &files {
        server.run_ok(&std::fs::read_to_string(f).unwrap());
    }
    assert_eq!(
        server.key_rows(),
        set(&[&k.old.hex(), &k.new.hex(), &second.hex()])
    );
    // aad stops publishing the old key; past its grace period it would drop it, but aad.two
    // still publishes it.
    publish(&repo, &[&k.new]);
    // keyroll.lock records that aad stopped publishing it (its grace period starts).
    exit(
        &keyroll(&repo, &server, &["apply"], "2026-12-01T00:00:00Z"),
        0,
    );
    let out = keyroll(
        &repo,
        &server,
        &["plan", "--format", "json"],
        "2026-12-20T00:00:00Z",
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        plan["databases"],
        serde_json::json!([]),
        "no change to the table: {plan:#}"
    );
    let before = migrations(repo.dir.path()).len();
    exit(
        &keyroll(&repo, &server, &["apply"], "2026-12-20T00:00:00Z"),
        0,
    );
    for f in migrations(repo.dir.path()).iter().skip(before) {
        server.run_ok(&std::fs::read_to_string(f).unwrap());
    }
    assert!(
        server.key_rows().contains(&k.old.hex()),
        "{:?}",
        server.key_rows()
    );
}

/// Rows as the app compares them. PostgreSQL and SQLite compare exactly: a key stored in
/// lowercase, or as its x5t (base64url), is not matched by the registry, so it is not
/// "in step": `db apply` stores the uppercase form and removes the other.
fn stored_forms_story(server: Server) {
    use base64::Engine as _;
    let k = keys();
    let lower = k.old.hex().to_lowercase();
    let x5t =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hex::decode(k.new.hex()).unwrap());
    server.create_vs2013(&[lower, x5t], &[TENANT]);
    let repo = repo(&server, "vs2013-tenant-registry", &[&k.old, &k.new]);
    let out = exit(
        &keyroll(&repo, &server, &["db", "check"], "2026-11-29T00:00:00Z"),
        2,
    );
    common::assert_contains(&out, "is not stored as the 40 uppercase hexadecimal digits");
    exit(
        &keyroll(&repo, &server, &["db", "apply"], "2026-11-29T00:00:00Z"),
        0,
    );
    assert_eq!(server.key_rows(), set(&[&k.old.hex(), &k.new.hex()]));
    exit(
        &keyroll(&repo, &server, &["db", "check"], "2026-11-29T00:00:00Z"),
        0,
    );
    // A run-wide error (a time out of range) decides nothing: never "in step".
    exit(
        &keyroll(&repo, &server, &["db", "check"], "9999-12-30T00:00:00Z"),
        1,
    );
}

#[test]
fn rows_in_another_form_are_not_in_step_on_sqlite() {
    stored_forms_story(Server::sqlite());
}

/// MariaDB (as SQL Server) compares with PAD SPACE and ignoring case: a current key stored
/// in lowercase with a trailing space does match, so it is kept as it is, and the next key
/// is added (before, the row was taken for a pasted one: its delete counted itself as the
/// current key, and the closing check rolled every migration back).
#[test]
fn a_row_mariadb_pads_to_the_key_counts_and_the_next_key_is_added() {
    let k = keys();
    let server = Server::Mariadb(dbkit::Mariadb::start());
    let padded = format!("{} ", k.old.hex().to_lowercase());
    server.create_vs2013(std::slice::from_ref(&padded), &[TENANT]);
    let repo = repo(&server, "vs2013-tenant-registry", &[&k.old, &k.new]);
    exit(
        &keyroll(&repo, &server, &["db", "apply"], "2026-11-29T00:00:00Z"),
        0,
    );
    assert_eq!(server.key_rows(), set(&[&padded, &k.new.hex()]));
    exit(
        &keyroll(&repo, &server, &["db", "check"], "2026-11-29T00:00:00Z"),
        0,
    );
}

/// A pasted row under a collation that gives U+200E no weight (MariaDB's
/// utf8mb4_unicode_ci, on a table without a unique key): `=` finds the clean row of the
/// same key too, so the pasted row's delete compares bytes, and the clean row stays.
#[test]
fn a_pasted_row_is_deleted_alone_under_a_collation_that_ignores_its_character() {
    let server = Server::Mariadb(dbkit::Mariadb::start());
    let k = keys();
    let pasted = format!("{PASTED}{}", k.old.hex());
    server.run_ok(
        "CREATE TABLE `IssuingAuthorityKeys` (`Id` VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL);\nCREATE TABLE `Tenants` (`Id` VARCHAR(128) NOT NULL PRIMARY KEY);\n",
    );
    server.run_ok(&format!(
        "INSERT INTO `IssuingAuthorityKeys` (`Id`) VALUES ('{}'), ('{pasted}');\nINSERT INTO `Tenants` (`Id`) VALUES ('{TENANT}');\n",
        k.old.hex()
    ));
    // The premise: this collation finds both rows for the clean value.
    let found = server.query_strings(&format!(
        "SELECT `Id` FROM `IssuingAuthorityKeys` WHERE `Id` = '{}'",
        k.old.hex()
    ));
    assert_eq!(found.len(), 2, "{found:?}");

    let repo = repo(&server, "vs2013-tenant-registry", &[&k.old, &k.new]);
    let sql = apply_migration(&repo, &server, "2026-11-29T00:00:00Z");
    common::assert_contains(&sql, "-- remove pasted");
    server.run_ok(&sql);
    assert_eq!(server.key_rows(), set(&[&k.old.hex(), &k.new.hex()]));
}

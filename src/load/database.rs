//! The live rows of a `[[database]]` target, read through the connection URL in its
//! `url_env` variable (sqlx: PostgreSQL, MySQL/MariaDB and SQLite in one pure-Rust driver
//! set over rustls, chosen by the URL's scheme). Read-only: `db apply` (act/database.rs)
//! writes.

use std::collections::BTreeMap;

use sqlx::{Connection, Row};

use crate::model::database::{DatabaseSettings, Dialect, Layout};
use crate::model::settings::Settings;

/// What a run knows of a table besides keyroll.lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Live {
    /// No `url_env`: the rows come from keyroll.lock.
    Off,
    /// `url_env` names a variable this environment does not set.
    Unset {
        var: String,
    },
    Read(LiveTable),
    /// Connecting or reading failed: the target is not decided.
    Failed(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveTable {
    pub rows: Vec<LiveRow>,
    /// VS2013: the tenants table's IDs.
    pub tenants: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveRow {
    /// The thumbprint column as stored, pasted characters and all.
    pub value: String,
    /// K2: the row's issuer URI.
    pub issuer: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database \"{name}\": {detail}")]
    Target { name: String, detail: String },
}

/// The connection URL of a target, from its `url_env` variable (never printed).
pub fn url_of(db: &DatabaseSettings) -> Result<Option<String>, DbError> {
    let Some(var) = &db.url_env else {
        return Ok(None);
    };
    match std::env::var(var) {
        Ok(url) if !url.trim().is_empty() => {
            // Redacted from every output from here on, whatever error quotes it.
            let _ = crate::model::secret::Secret::new(url.as_str());
            Ok(Some(url))
        }
        _ => Ok(None),
    }
}

/// Checks a URL's scheme against the target's dialect before connecting: a PostgreSQL URL
/// on a `dialect = "mysql"` target would read one table and write SQL for another.
pub fn check_scheme(db: &DatabaseSettings, url: &str) -> Result<(), DbError> {
    // Only a URL's short scheme is ever named: a connection string that is not a URL
    // (`host=… password=…`, ADO.NET's `Data Source=…;Password=…`) is not quoted at all.
    let scheme = url
        .split_once("://")
        .map(|(scheme, _)| scheme)
        .or_else(|| url.split_once(':').map(|(scheme, _)| scheme))
        .filter(|s| {
            !s.is_empty()
                && s.len() <= 16
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        })
        .map(str::to_ascii_lowercase);
    let scheme = scheme.as_deref().unwrap_or_default();
    let fits = match db.dialect {
        Dialect::Postgres => scheme == "postgres" || scheme == "postgresql",
        Dialect::Mysql => scheme == "mysql" || scheme == "mariadb",
        Dialect::Sqlite => scheme == "sqlite",
        Dialect::Mssql => false,
    };
    if fits {
        return Ok(());
    }
    let detail = if db.dialect == Dialect::Mssql {
        format!(
            "keyroll connects to PostgreSQL, MySQL/MariaDB and SQLite; for SQL Server, run the migration files with sqlcmd or your migration tool (the URL in {} was not used)",
            db.url_env.as_deref().unwrap_or_default()
        )
    } else {
        if scheme.is_empty() {
            format!(
                "the value of {} is not a URL (scheme://…); keyroll does not quote it, it may hold a password",
                db.url_env.as_deref().unwrap_or_default()
            )
        } else {
            format!(
                "the URL in {} is a {scheme:?} URL, but the target's dialect is {}",
                db.url_env.as_deref().unwrap_or_default(),
                db.dialect.as_str()
            )
        }
    };
    Err(DbError::Target {
        name: db.name.clone(),
        detail,
    })
}

/// Opens a connection; the error names the target and never the URL (it may hold a
/// password).
pub async fn connect(db: &DatabaseSettings, url: &str) -> Result<sqlx::AnyConnection, DbError> {
    check_scheme(db, url)?;
    sqlx::any::install_default_drivers();
    // MariaDB's own scheme is spelled mysql:// by the driver.
    let url = match url.strip_prefix("mariadb:") {
        Some(rest) => format!("mysql:{rest}"),
        None => url.to_string(),
    };
    let connect = sqlx::AnyConnection::connect(&url);
    match tokio::time::timeout(std::time::Duration::from_secs(30), connect).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(target_error(db, "connecting", &e)),
        Err(_) => Err(DbError::Target {
            name: db.name.clone(),
            detail: "connecting: no answer in 30 s".into(),
        }),
    }
}

/// A driver error, with anything URL-like redacted.
pub fn target_error(db: &DatabaseSettings, doing: &str, e: &sqlx::Error) -> DbError {
    DbError::Target {
        name: db.name.clone(),
        detail: format!(
            "{doing}: {}",
            crate::model::secret::redact(&crate::model::secret::redact_urls(&e.to_string()))
        ),
    }
}

/// Reads the thumbprint rows (and VS2013's tenants, K2's issuer column).
pub async fn read_table(
    db: &DatabaseSettings,
    conn: &mut sqlx::AnyConnection,
) -> Result<LiveTable, DbError> {
    let layout: Layout = db.layout().map_err(|detail| DbError::Target {
        name: db.name.clone(),
        detail,
    })?;
    let d = db.dialect;
    let column = d.quote(&layout.thumbprint_column);
    let issuer = layout.k2.as_ref().map(|k| d.quote(&k.issuer_column));
    let select = match &issuer {
        Some(issuer) => format!("SELECT {column}, {issuer} FROM {}", d.table(&layout.table)),
        None => format!("SELECT {column} FROM {}", d.table(&layout.table)),
    };
    // Names are checked plain identifiers (settings) and quoted; no value is interpolated.
    let rows = sqlx::query(sqlx::AssertSqlSafe(select))
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| target_error(db, &format!("reading {}", layout.table), &e))?;
    let mut table = LiveTable::default();
    for row in rows {
        let value: String = row
            .try_get(0)
            .map_err(|e| target_error(db, &format!("reading {}", layout.table), &e))?;
        let issuer = match issuer {
            Some(_) => row
                .try_get::<Option<String>, _>(1)
                .map_err(|e| target_error(db, &format!("reading {}", layout.table), &e))?,
            None => None,
        };
        table.rows.push(LiveRow { value, issuer });
    }
    if let Some((tenants, tenant_column)) = &layout.tenants {
        let select = format!(
            "SELECT {} FROM {}",
            d.quote(tenant_column),
            d.table(tenants)
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(select))
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| target_error(db, &format!("reading {tenants}"), &e))?;
        let mut ids = Vec::new();
        for row in rows {
            ids.push(
                row.try_get::<String, _>(0)
                    .map_err(|e| target_error(db, &format!("reading {tenants}"), &e))?,
            );
        }
        table.tenants = Some(ids);
    }
    Ok(table)
}

/// Every target's live rows, for the decision. A target whose read fails is decided no
/// further (its error is in the plan); the others go on.
pub async fn load_live(settings: &Settings) -> BTreeMap<String, Live> {
    let mut out = BTreeMap::new();
    for db in &settings.databases {
        let live = match (&db.url_env, url_of(db)) {
            (None, _) => Live::Off,
            (Some(var), Ok(None)) => Live::Unset { var: var.clone() },
            (_, Err(e)) => Live::Failed(e.to_string()),
            (_, Ok(Some(url))) => match read(db, &url).await {
                Ok(table) => Live::Read(table),
                Err(e) => Live::Failed(e.to_string()),
            },
        };
        out.insert(db.name.clone(), live);
    }
    out
}

async fn read(db: &DatabaseSettings, url: &str) -> Result<LiveTable, DbError> {
    let mut conn = connect(db, url).await?;
    let table = read_table(db, &mut conn).await;
    let _ = conn.close().await;
    table
}

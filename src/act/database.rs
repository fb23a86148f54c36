//! `keyroll db apply`: a table's planned statements run on the live database in one
//! transaction, for teams without a migration pipeline. Nothing is half-done: any failing
//! statement (a missing table or column, permission denied, the migration's own check)
//! rolls every statement of that table back.

use sqlx::Connection;

use crate::decide::database::DatabasePlan;
use crate::load::database::{DbError, connect, target_error, url_of};
use crate::model::database::DatabaseSettings;

/// Runs one table's statements in a transaction through its `url_env` connection.
pub async fn run_statements(db: &DatabaseSettings, plans: &[&DatabasePlan]) -> Result<(), DbError> {
    let Some(url) = url_of(db)? else {
        return Err(DbError::Target {
            name: db.name.clone(),
            detail: match &db.url_env {
                Some(var) => format!("{var} is not set: `db apply` needs a connection URL there"),
                None => "has no url_env: `db apply` needs a connection URL (set url_env in keyroll.toml)".into(),
            },
        });
    };
    let mut conn = connect(db, &url).await?;
    let mut tx = conn
        .begin()
        .await
        .map_err(|e| target_error(db, "starting a transaction", &e))?;
    // Every issuer's statements for the table in one transaction: the table is changed
    // whole or not at all (one issuer's check failing rolls back the others' changes too).
    let statements: Vec<&String> = plans.iter().flat_map(|p| &p.statements).collect();
    for (index, statement) in statements.iter().enumerate() {
        // Statements are built from quoted, checked names and literals of thumbprints,
        // tenant IDs and entityIDs (decide/sql.rs); raw_sql runs a K2 pair in one call.
        if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe((*statement).clone()))
            .execute(&mut *tx)
            .await
        {
            let _ = tx.rollback().await;
            return Err(target_error(
                db,
                &format!(
                    "statement {} of {} failed; the transaction is rolled back, nothing changed",
                    index + 1,
                    statements.len()
                ),
                &e,
            ));
        }
    }
    tx.commit()
        .await
        .map_err(|e| target_error(db, "committing", &e))?;
    let _ = conn.close().await;
    Ok(())
}

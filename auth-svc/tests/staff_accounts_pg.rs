//! Staff accounts in real PostgreSQL pass the same conformance suite as the memory store.

use auth_svc::accounts::store::{PgAccountStore, conformance};

#[tokio::test]
async fn the_postgres_account_store_conforms() -> anyhow::Result<()> {
    let url = platform::pg::create_test_database("staff_accounts").await?;
    let pool = platform::pg::pool(&url, 2)?;
    let store = PgAccountStore::migrate(&url, pool).await?;
    conformance::run(&store).await;
    Ok(())
}

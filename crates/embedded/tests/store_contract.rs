//! The SQLite store against the store contract of qpost-core.

use qpost_core::contract;
use qpost_core::signing::{SigningKey, SigningKeys};
use qpost_embedded::SqliteStore;

fn keys() -> SigningKeys {
    SigningKeys {
        current: SigningKey::generate(),
        next: SigningKey::generate(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sqlite_store_keeps_the_store_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("q.db")).unwrap();
    let initial = store.init_keys(None, keys()).await.unwrap();
    contract::run_all(&store).await;
    contract::keys_swap_only_from_the_expected_value(&store, &initial).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stored_state_and_keys_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let first = keys();
    {
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.init_keys(None, first.clone()).await.unwrap(), first);
        contract::messages_round_trip_with_their_bodies(&store).await;
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(
        store.init_keys(None, keys()).await.unwrap(),
        first,
        "stored keys win over defaults"
    );
    let forced = keys();
    assert_eq!(
        store.init_keys(Some(forced.clone()), keys()).await.unwrap(),
        forced,
        "forced keys replace stored ones"
    );
}

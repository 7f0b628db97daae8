//! Tests of what only the SQLite backend has; the behaviour both backends share is tested once,
//! in `crate::suite`.

use super::*;

#[test]
fn migrations_apply_once() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.db");
    SqliteStore::open(&p, &SqliteOptions::default()).unwrap();
    let s = SqliteStore::open(&p, &SqliteOptions::default()).unwrap();
    let v: i64 = s
        .read()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(v, MIGRATIONS.len() as i64);
}

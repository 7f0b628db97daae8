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

#[test]
fn an_event_is_found_the_same_before_and_after_its_words_are_indexed() {
    let (_dir, s) = crate::suite::sqlite();
    let pending = |s: &SqliteStore| -> i64 {
        s.read()
            .query_row("SELECT COUNT(*) FROM event_words_pending", [], |r| r.get(0))
            .unwrap()
    };
    // The search runs while the words wait (the background indexer may move some meanwhile:
    // the answers must not change)...
    crate::suite::the_search_language_finds_the_same_on_both_backends(&s);
    s.index_pending_words(usize::MAX).unwrap();
    assert_eq!(pending(&s), 0);
    let indexed: i64 = s
        .read()
        .query_row("SELECT COUNT(*) FROM event_words", [], |r| r.get(0))
        .unwrap();
    assert!(
        indexed >= 3,
        "the events with words are in the index: {indexed}"
    );
    // ...and again once they are all in the FTS5 index (the same events again are ignored).
    crate::suite::the_search_language_finds_the_same_on_both_backends(&s);
    assert_eq!(pending(&s), 0);
    // Retention clears both.
    s.purge_events(Utc::now()).unwrap();
    assert_eq!(
        s.read()
            .query_row("SELECT COUNT(*) FROM event_words", [], |r| r
                .get::<_, i64>(0))
            .unwrap(),
        0
    );
}

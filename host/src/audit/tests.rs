//! End-to-end tests of the writer, store, verify, prune and read paths.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rusqlite::Connection;
use serde_json::json;

use super::*;

fn cfg(dir: &Path, durability: Durability) -> AuditConfig {
    AuditConfig {
        path: dir.join("audit.db"),
        durability,
        ..AuditConfig::default()
    }
}

fn call(i: usize) -> AuditEvent {
    let mut c = CallEvent::new(&format!("t{i}"), "run", "agent", &json!({"i": i}));
    c.duration_us = 10 + i as u64;
    AuditEvent::Call(c)
}

fn denial(target: &str) -> AuditEvent {
    AuditEvent::Denial(DenialEvent {
        tool: "t".into(),
        function: "run".into(),
        caller: "agent".into(),
        capability: "fs".into(),
        op: "write".into(),
        target: target.into(),
        rule: "outside allowed_write_paths".into(),
        action: "denied".into(),
        count: None,
    })
}

/// A closed log at `<dir>/audit.db` holding `n` call events, seq 1..=n.
async fn filled(dir: &Path, n: usize) -> PathBuf {
    let c = cfg(dir, Durability::Async);
    let log = AuditLog::open(&c).unwrap();
    for i in 1..=n {
        log.record(vec![call(i)]).await.unwrap();
    }
    log.shutdown().await.unwrap();
    c.path
}

fn check(db: &Path) -> VerifyReport {
    verify(db, &AuditKey::load(db).unwrap()).unwrap()
}

fn count(db: &Path) -> i64 {
    Connection::open(db)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn round_trip_and_export() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path(), Durability::Commit);
    let log = AuditLog::open(&c).unwrap();
    let events = vec![call(1), denial("/etc/passwd"), denial("/root")];
    log.record_with_id("call-1", events.clone()).await.unwrap();
    log.shutdown().await.unwrap();

    let rows = tail(&c.path, 10).unwrap();
    assert_eq!(rows.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3]);
    for (row, want) in rows.iter().zip(&events) {
        let got = row.event().unwrap();
        let mut want = want.clone();
        if let AuditEvent::Call(c) = &mut want {
            c.args = None; // record_arguments = false
        }
        assert_eq!((got.call_id.as_str(), &got.event), ("call-1", &want));
        assert_eq!(row.kind, want.kind());
    }
    let mut out = Vec::new();
    assert_eq!(export_jsonl(&c.path, &mut out).unwrap(), 3);
    for (line, row) in String::from_utf8(out).unwrap().lines().zip(&rows) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["seq"], row.seq);
        assert_eq!(
            canonical_json(&v["body"]),
            row.body,
            "body is exported as signed"
        );
    }
    let r = check(&c.path);
    assert!(r.is_ok(), "{r}");
    assert_eq!((r.rows, r.head_seq, r.unconfirmed), (3, Some(3), 0));
}

#[tokio::test]
async fn commit_durability_visible_from_another_connection() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path(), Durability::Commit);
    let log = AuditLog::open(&c).unwrap();
    for n in 1..=3 {
        log.record(vec![call(n)]).await.unwrap();
        assert_eq!(
            count(&c.path),
            n as i64,
            "visible as soon as record resolves"
        );
        let head = std::fs::read_to_string(head_path(&c.path)).unwrap();
        assert!(head.contains(&format!("\"seq\":{n}")), "{head}");
    }
    log.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_commit_record_is_committed_on_the_callers_thread_and_with_company_by_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path(), Durability::Commit);
    let log = AuditLog::open(&c).unwrap();
    for n in 1..=3 {
        log.record(vec![call(n)]).await.unwrap();
    }
    assert_eq!(log.inline_commits(), 3, "each lone record is committed inline");
    // The store busy (as while the writer commits a batch): the record goes
    // to the writer, which commits it once the store is free.
    let shared = log.store_lock();
    let guard = shared.lock().unwrap();
    let pending = tokio::spawn({
        let log = log.clone();
        async move { log.record(vec![call(4)]).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(!pending.is_finished(), "a commit record resolves only once committed");
    drop(guard);
    pending.await.unwrap().unwrap();
    assert_eq!(log.inline_commits(), 3, "the fourth went through the writer");
    assert_eq!(count(&c.path), 4);
    log.shutdown().await.unwrap();
    let r = check(&c.path);
    assert!(r.is_ok() && r.rows == 4, "{r}");

    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(&cfg(dir.path(), Durability::Async)).unwrap();
    log.record(vec![call(1)]).await.unwrap();
    assert_eq!(log.inline_commits(), 0, "async never commits on the caller's thread");
    log.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_flushes_and_later_records_fail() {
    let dir = tempfile::tempdir().unwrap();
    let c = AuditConfig {
        queue_capacity: 8,
        ..cfg(dir.path(), Durability::Async)
    };
    let log = AuditLog::open(&c).unwrap();
    let clone = log.clone();
    for i in 0..500 {
        log.record(vec![call(i)]).await.unwrap();
    }
    log.shutdown().await.unwrap();
    assert_eq!(count(&c.path), 500);
    assert!(matches!(
        clone.record(vec![call(0)]).await,
        Err(AuditError::Closed)
    ));
    assert!(check(&c.path).is_ok());
}

#[tokio::test]
async fn disabled_log_records_nothing() {
    let log = AuditLog::disabled();
    assert!(!log.is_enabled());
    log.record(vec![call(1)]).await.unwrap();
    log.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn load_10k_events_64_tasks_tiny_queue() {
    const EVENTS: usize = 10_000;
    const TASKS: usize = 64;
    for durability in [Durability::Commit, Durability::Async] {
        let dir = tempfile::tempdir().unwrap();
        let c = AuditConfig {
            queue_capacity: 4,
            ..cfg(dir.path(), durability)
        };
        let log = AuditLog::open(&c).unwrap();
        let start = Instant::now();
        let tasks: Vec<_> = (0..TASKS)
            .map(|t| {
                let log = log.clone();
                tokio::spawn(async move {
                    for i in (t..EVENTS).step_by(TASKS) {
                        log.record(vec![call(i)]).await.unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        log.shutdown().await.unwrap();
        let secs = start.elapsed().as_secs_f64();
        println!(
            "audit load ({durability:?}): {EVENTS} events, {TASKS} tasks, queue 4: {:.0} events/s",
            EVENTS as f64 / secs
        );

        let conn = Connection::open(&c.path).unwrap();
        let (n, distinct): (i64, i64) = conn
            .query_row(
                "SELECT COUNT(*), COUNT(DISTINCT json_extract(body, '$.tool')) FROM events",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(
            (n, distinct),
            (EVENTS as i64, EVENTS as i64),
            "each event exactly once"
        );
        let r = check(&c.path);
        assert!(r.is_ok() && r.rows == EVENTS as u64, "{r}");
    }
}

#[tokio::test]
async fn redaction_applied_before_hashing() {
    let dir = tempfile::tempdir().unwrap();
    let args = json!({"token": "ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef0123", "n": 1});
    for record_arguments in [true, false] {
        let c = AuditConfig {
            record_arguments,
            redact_patterns: vec!["acct-\\d+".into()],
            path: dir.path().join(format!("a-{record_arguments}.db")),
            ..AuditConfig::default()
        };
        let log = AuditLog::open(&c).unwrap();
        let mut ev = CallEvent::new("t", "f", "bob@example.com", &args);
        ev.outcome = outcome::TOOL_ERROR.into();
        ev.error = Some("card 4111 1111 1111 1111 for acct-77".into());
        log.record(vec![
            AuditEvent::Call(ev.clone()),
            denial("/home/x/sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
        ])
        .await
        .unwrap();
        log.shutdown().await.unwrap();

        let rows = tail(&c.path, 10).unwrap();
        let all: String = rows.iter().map(|r| r.body.as_str()).collect();
        for secret in ["bob@example.com", "ghp_", "4111", "acct-77", "sk_live"] {
            assert!(!all.contains(secret), "{secret} leaked: {all}");
        }
        let AuditEvent::Call(stored) = rows[0].event().unwrap().event else {
            panic!()
        };
        assert_eq!(stored.caller, "[REDACTED:email]");
        assert_eq!(
            stored.error.as_deref(),
            Some("card [REDACTED:card] for [REDACTED:custom]")
        );
        assert_eq!(
            stored.args_digest, ev.args_digest,
            "digest is of the original args"
        );
        match record_arguments {
            true => assert_eq!(
                stored.args,
                Some(json!({"token": "[REDACTED:github_token]", "n": 1}))
            ),
            false => assert_eq!(stored.args, None),
        }
        assert!(check(&c.path).is_ok());
    }
}

type Mutation = fn(&Connection, &Path);

fn renumber_from(conn: &Connection, from: i64, delta: i64) {
    // Via a large offset so the primary key never collides mid-update.
    conn.execute(
        "UPDATE events SET seq = seq + 1000000 WHERE seq >= ?1",
        [from],
    )
    .unwrap();
    conn.execute(
        "UPDATE events SET seq = seq - 1000000 + ?1 WHERE seq >= 1000000",
        [delta],
    )
    .unwrap();
}

fn forge(conn: &Connection, seq: i64, prev_from: i64) {
    conn.execute(
        "INSERT INTO events(seq, ts_ms, kind, call_id, body, prev_hash, hash)
         SELECT ?1, ts_ms, kind, call_id, replace(body, '\"seq\":' || seq, '\"seq\":' || ?1),
                hash, 'ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00'
         FROM events WHERE seq = ?2",
        [seq, prev_from],
    )
    .unwrap();
}

#[tokio::test]
async fn tamper_detection_table() {
    let cases: &[(&str, Mutation, TamperKind, u64)] = &[
        (
            "edit body",
            |c, _| {
                c.execute(
                    "UPDATE events SET body = replace(body, '\"t5\"', '\"evil\"') WHERE seq = 5",
                    [],
                )
                .unwrap();
            },
            TamperKind::Edited,
            5,
        ),
        (
            "edit hash column",
            |c, _| {
                c.execute(
                    "UPDATE events SET hash = replace(hash, substr(hash, 1, 1), 'x') WHERE seq = 2",
                    [],
                )
                .unwrap();
            },
            TamperKind::Edited,
            2,
        ),
        (
            "edit kind column",
            |c, _| {
                c.execute("UPDATE events SET kind = 'gate' WHERE seq = 3", [])
                    .unwrap();
            },
            TamperKind::Edited,
            3,
        ),
        (
            "insert forged row, renumber",
            |c, _| {
                renumber_from(c, 5, 1);
                forge(c, 5, 4);
            },
            TamperKind::Inserted,
            5,
        ),
        (
            "insert copy of row 3, renumber",
            |c, _| {
                renumber_from(c, 5, 1);
                c.execute("INSERT INTO events SELECT 5, ts_ms, kind, call_id, body, prev_hash, hash FROM events WHERE seq = 3", []).unwrap();
            },
            TamperKind::Inserted,
            5,
        ),
        (
            "append forged row",
            |c, _| forge(c, 11, 10),
            TamperKind::Edited,
            11,
        ),
        (
            "delete middle row",
            |c, _| {
                c.execute("DELETE FROM events WHERE seq = 5", []).unwrap();
            },
            TamperKind::Deleted,
            5,
        ),
        (
            "delete middle row, renumber",
            |c, _| {
                c.execute("DELETE FROM events WHERE seq = 5", []).unwrap();
                renumber_from(c, 6, -1);
            },
            TamperKind::Deleted,
            5,
        ),
        (
            "delete first rows",
            |c, _| {
                c.execute("DELETE FROM events WHERE seq <= 2", []).unwrap();
            },
            TamperKind::Deleted,
            1,
        ),
        (
            "truncate last 3",
            |c, _| {
                c.execute("DELETE FROM events WHERE seq > 7", []).unwrap();
            },
            TamperKind::Truncated,
            8,
        ),
        (
            "truncate and delete head",
            |c, db| {
                c.execute("DELETE FROM events WHERE seq > 7", []).unwrap();
                std::fs::remove_file(head_path(db)).unwrap();
            },
            TamperKind::Checkpoint,
            8,
        ),
        (
            "truncate and lower head seq",
            |c, db| {
                c.execute("DELETE FROM events WHERE seq > 7", []).unwrap();
                let h = std::fs::read_to_string(head_path(db))
                    .unwrap()
                    .replace("\"seq\":10", "\"seq\":7");
                std::fs::write(head_path(db), h).unwrap();
            },
            TamperKind::Checkpoint,
            8,
        ),
    ];
    for (name, mutate, kind, seq) in cases {
        let dir = tempfile::tempdir().unwrap();
        let db = filled(dir.path(), 10).await;
        assert!(check(&db).is_ok(), "{name}: fresh chain");
        mutate(&Connection::open(&db).unwrap(), &db);
        let r = check(&db);
        let p = r
            .problem
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: not detected: {r}"));
        assert_eq!((p.kind, p.seq), (*kind, *seq), "{name}: {r}");
        assert!(
            r.to_string().contains(&format!("TAMPERED at seq {seq}")),
            "{r}"
        );
    }
}

#[tokio::test]
async fn reopen_continues_chain_and_keeps_truncation_visible() {
    let dir = tempfile::tempdir().unwrap();
    let db = filled(dir.path(), 5).await;
    let db2 = filled(dir.path(), 5).await; // same file, reopened
    assert_eq!(db, db2);
    let r = check(&db);
    assert!(r.is_ok() && r.rows == 10, "{r}");

    Connection::open(&db)
        .unwrap()
        .execute("DELETE FROM events WHERE seq > 8", [])
        .unwrap();
    filled(dir.path(), 2).await; // a restart must not paper over the cut
    let r = check(&db);
    let p = r.problem.expect("still detected");
    assert_eq!((p.kind, p.seq), (TamperKind::Deleted, 9), "{}", p.detail);
}

#[tokio::test]
async fn unsigned_head_refuses_open() {
    let dir = tempfile::tempdir().unwrap();
    let db = filled(dir.path(), 2).await;
    std::fs::write(head_path(&db), r#"{"seq":2,"hash":"00","mac":"00"}"#).unwrap();
    let err = AuditLog::open(&cfg(dir.path(), Durability::Commit))
        .err()
        .expect("refused");
    assert!(matches!(err, AuditError::Checkpoint { .. }), "{err}");

    // A torn (unparseable) checkpoint, as a power loss may leave, is not fatal.
    std::fs::write(head_path(&db), "").unwrap();
    assert_eq!(
        check(&db).problem.map(|p| p.kind),
        Some(TamperKind::Checkpoint)
    );
    filled(dir.path(), 1).await;
    assert!(check(&db).is_ok(), "the next commit rewrites it");
}

#[tokio::test]
async fn prune_keeps_chain_verifiable() {
    let dir = tempfile::tempdir().unwrap();
    let db = filled(dir.path(), 20).await;
    let key = AuditKey::load(&db).unwrap();

    let r = prune(&db, &key, 90, 5).unwrap();
    assert_eq!(
        r,
        PruneReport {
            deleted: 15,
            anchor_seq: Some(15),
            remaining: 5
        }
    );
    let v = check(&db);
    assert!(
        v.is_ok() && v.rows == 5 && v.first_seq == Some(16) && v.anchor_seq == Some(15),
        "{v}"
    );

    // Nothing to do the second time.
    assert_eq!(prune(&db, &key, 90, 5).unwrap().deleted, 0);

    // New rows chain on; then age-prune everything (clock 100 days ahead).
    filled(dir.path(), 3).await;
    let later = 100 * 86_400_000
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
    let r = prune::prune_at(&db, &key, 90, 0, later).unwrap();
    assert_eq!((r.deleted, r.anchor_seq, r.remaining), (8, Some(23), 0));
    assert!(check(&db).is_ok(), "{}", check(&db));
    filled(dir.path(), 2).await;
    let v = check(&db);
    assert!(v.is_ok() && v.first_seq == Some(24) && v.rows == 2, "{v}");
}

#[tokio::test]
async fn anchor_tampering_detected_and_blocks_prune() {
    let cases: &[(&str, &str, TamperKind)] = &[
        (
            "move anchor back",
            "UPDATE meta SET value = replace(value, '\"seq\":5', '\"seq\":4')",
            TamperKind::Anchor,
        ),
        (
            "garble anchor",
            "UPDATE meta SET value = 'nope'",
            TamperKind::Anchor,
        ),
        (
            "remove anchor",
            "DELETE FROM meta WHERE key = 'anchor'",
            TamperKind::Deleted,
        ),
    ];
    for (name, sql, kind) in cases {
        let dir = tempfile::tempdir().unwrap();
        let db = filled(dir.path(), 10).await;
        let key = AuditKey::load(&db).unwrap();
        prune(&db, &key, 0, 5).unwrap();
        Connection::open(&db).unwrap().execute(sql, []).unwrap();
        let r = check(&db);
        assert_eq!(
            r.problem.as_ref().map(|p| p.kind),
            Some(*kind),
            "{name}: {r}"
        );
        let err = prune(&db, &key, 0, 1).unwrap_err();
        assert!(matches!(err, AuditError::PruneRefused(_)), "{name}: {err}");
    }
}

#[tokio::test]
async fn wrong_key_fails_verification() {
    let dir = tempfile::tempdir().unwrap();
    let db = filled(dir.path(), 3).await;
    let r = verify(&db, &AuditKey::from_bytes(&[7; 32]).unwrap()).unwrap();
    assert_eq!(
        r.problem.map(|p| (p.kind, p.seq)),
        Some((TamperKind::Edited, 1))
    );
}

#[tokio::test]
async fn follow_sees_new_rows() {
    let dir = tempfile::tempdir().unwrap();
    let db = filled(dir.path(), 3).await;
    let last = tail(&db, 2).unwrap();
    assert_eq!(last.iter().map(|r| r.seq).collect::<Vec<_>>(), [2, 3]);
    let mut f = Follow::new(&db, 3).unwrap();
    assert!(f.poll().unwrap().is_empty());
    filled(dir.path(), 2).await;
    assert_eq!(
        f.poll().unwrap().iter().map(|r| r.seq).collect::<Vec<_>>(),
        [4, 5]
    );
    assert!(f.poll().unwrap().is_empty());
}

#[test]
fn missing_database_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("none.db");
    let err = tail(&db, 1).unwrap_err().to_string();
    assert!(
        err.contains("none.db") && err.contains("no audit database"),
        "{err}"
    );
}

/// A database that cannot take a batch: the writer holds it and says why,
/// `record` fails, and shutdown still ends (reporting what it could not
/// write) instead of waiting forever; what was committed still verifies.
#[tokio::test]
async fn full_database_holds_the_batch_and_shutdown_still_ends() {
    let dir = tempfile::tempdir().unwrap();
    let c = AuditConfig { max_db_mb: Some(1), ..cfg(dir.path(), Durability::Commit) };
    let log = AuditLog::open(&c).unwrap();
    assert_eq!(log.unavailable(), None);
    let big = "z".repeat(64 << 10);
    let mut committed = 0;
    let err = loop {
        match log.record(vec![denial(&format!("{committed} {big}"))]).await {
            Ok(()) => committed += 1,
            Err(e) => break e.to_string(),
        }
        assert!(committed < 64, "1 MiB never filled up");
    };
    assert!(err.contains("full"), "{err}");
    assert!(log.unavailable().is_some_and(|why| why.contains("database or disk is full")));
    // Later records fail too (the held batch still does not fit).
    assert!(log.record(vec![call(1)]).await.is_err());
    tokio::time::timeout(std::time::Duration::from_secs(20), log.shutdown())
        .await
        .expect("shutdown ends although events are held")
        .unwrap();
    assert_eq!(count(&c.path), committed);
    assert!(check(&c.path).is_ok());
}

/// A log written by a release from before `call` rows could carry an
/// `approval_id` (testdata/before-approval-id: three rows, its key and
/// head, made with `wasmward call` at commit a044a6d) still opens,
/// verifies and takes new rows with the field. The field lives in the
/// signed body and is omitted when unset, so there is no schema change and
/// old rows keep their exact bytes.
#[tokio::test]
async fn a_log_from_before_approval_ids_opens_verifies_and_takes_them() {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/audit/testdata/before-approval-id");
    for f in ["audit.db", "audit.db.key", "audit.db.head"] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path().join(f), std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    }
    let c = cfg(dir.path(), Durability::Commit);
    let before = tail(&c.path, 10).unwrap();
    assert_eq!(before.len(), 3);
    assert!(before.iter().all(|r| !r.body.contains("approval_id")));
    let r = check(&c.path);
    assert!(r.is_ok(), "{r}");

    let log = AuditLog::open(&c).unwrap();
    let mut approved = CallEvent::new("text", "text.greet", "agent", &json!({"name": "Ada"}));
    approved.approval_id = Some("0a1b2c3d4e5f".into());
    let gate = AuditEvent::Gate(GateEvent {
        tool: "text.greet".into(),
        caller: "agent".into(),
        stage: "approval".into(),
        decision: "allow".into(),
        reason: "approved by ops (approval 0a1b2c3d4e5f)".into(),
    });
    log.record_with_id("cid-1", vec![gate, AuditEvent::Call(approved)]).await.unwrap();
    log.record(vec![call(9)]).await.unwrap();
    log.shutdown().await.unwrap();

    let r = check(&c.path);
    assert!(r.is_ok(), "{r}");
    assert_eq!(r.rows, 6);
    let rows = tail(&c.path, 10).unwrap();
    assert_eq!(&rows[..3], &before[..], "old rows are untouched");
    let approval = |r: &Record| match r.event().unwrap().event {
        AuditEvent::Call(c) => c.approval_id,
        _ => None,
    };
    let ids: Vec<Option<String>> = rows.iter().map(approval).collect();
    assert_eq!(ids, [None, None, None, None, Some("0a1b2c3d4e5f".into()), None]);
    assert_eq!((rows[3].call_id.as_str(), rows[4].call_id.as_str()), ("cid-1", "cid-1"));
    assert!(rows[4].body.contains(r#""approval_id":"0a1b2c3d4e5f""#), "{}", rows[4].body);
    assert!(!rows[5].body.contains("approval_id"), "omitted when unset: {}", rows[5].body);
}

#[test]
fn call_ids_are_32_hex_chars_unique_and_sorted_by_time() {
    let first: Vec<String> = (0..1000).map(|_| new_call_id()).collect();
    std::thread::sleep(std::time::Duration::from_millis(3));
    let later = new_call_id();
    let mut seen = std::collections::HashSet::new();
    for id in &first {
        assert_eq!(id.len(), 32, "{id}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()), "{id}");
        assert!(seen.insert(id.clone()), "duplicate call id {id}");
        // Later calls index after earlier ones (the index grows at its end).
        assert!(*id < later, "{id} !< {later}");
    }
}

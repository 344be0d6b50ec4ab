//! `edgegw-cp serve --db postgres://...` that cannot work: a password in
//! the URL, no server at the address, a wrong or missing password, a
//! database that does not exist, a read-only database, a schema from a
//! newer edgegw-cp. Each is one line naming the problem and the fix, and a
//! non-zero exit, before anything is served or written.

use std::process::{Command, Output};

use edgegw_tests::{
    cp::{Db, cp_bin},
    postgres::{self, ROLE},
    process::{assert_one_line_error, free_port},
};

/// `edgegw-cp serve --db URL` with `env` set and no PGPASSWORD inherited.
fn serve(url: &str, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(cp_bin());
    cmd.args(["serve", "--db", url, "--listen", "127.0.0.1:0"])
        .args(extra)
        .env_remove("PGPASSWORD");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("running edgegw-cp")
}

#[test]
fn bad_postgres_urls_and_credentials_are_one_line_errors() {
    let server = postgres::server();
    let password_file = server.password_file.to_str().unwrap();
    let Db::Postgres(db) = Db::postgres() else {
        unreachable!()
    };

    // A password on the command line is refused, and not repeated.
    let with_password = db.url.replace(ROLE, &format!("{ROLE}:{}", server.password));
    let out = serve(&with_password, &[], &[]);
    assert_one_line_error(
        &out,
        &["contains a password", "--db-password-file", "PGPASSWORD"],
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains(&server.password),
        "the password was echoed: {out:?}"
    );

    // Nothing listens there.
    let nowhere = format!("postgres://{ROLE}@127.0.0.1:{}/{}", free_port(), db.name);
    let out = serve(&nowhere, &["--db-password-file", password_file], &[]);
    assert_one_line_error(&out, &[&nowhere, "check the host and port"]);

    // The password: wrong (from the environment), or none at all.
    let out = serve(&db.url, &[], &[("PGPASSWORD", "wrong")]);
    assert_one_line_error(
        &out,
        &[
            &db.url,
            "password authentication failed",
            "--db-password-file",
        ],
    );
    let out = serve(&db.url, &[], &[]);
    assert_one_line_error(&out, &[&db.url, "password", "PGPASSWORD"]);
    let out = serve(&db.url, &["--db-password-file", "/nonexistent/pw"], &[]);
    assert_one_line_error(&out, &["/nonexistent/pw"]);

    // A database that does not exist.
    let missing = format!("postgres://{ROLE}@127.0.0.1:{}/no_such_db", server.port);
    let out = serve(&missing, &["--db-password-file", password_file], &[]);
    assert_one_line_error(&out, &[&missing, "does not exist", "create the database"]);

    // Not a URL at all.
    let out = serve("postgres://%zz@/", &[], &[]);
    assert_one_line_error(&out, &["postgres://USER@HOST:PORT/DATABASE"]);

    // None of these created anything in the database.
    assert_eq!(
        server.psql(
            &db.name,
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ),
        "0"
    );
}

#[test]
fn a_read_only_or_newer_database_is_refused_in_one_line() {
    let server = postgres::server();
    let password_file = server.password_file.to_str().unwrap();

    let Db::Postgres(read_only) = Db::postgres() else {
        unreachable!()
    };
    server.psql(
        "postgres",
        &format!(
            "ALTER DATABASE {} SET default_transaction_read_only = on",
            read_only.name
        ),
    );
    let out = serve(&read_only.url, &["--db-password-file", password_file], &[]);
    assert_one_line_error(&out, &[&read_only.url, "read-only", "writable primary"]);

    // A schema version from the future: refused as on SQLite.
    let Db::Postgres(newer) = Db::postgres() else {
        unreachable!()
    };
    let db = Db::Postgres(newer.clone());
    let mut create = vec!["admin-token".to_string(), "create".into()];
    create.extend(db.args());
    let out = edgegw_tests::cp::edgegw_cp(&create);
    assert!(out.status.success(), "{out:?}");
    server.psql(&newer.name, "UPDATE edgegw_schema SET version = 99");
    let out = serve(&newer.url, &["--db-password-file", password_file], &[]);
    assert_one_line_error(&out, &["schema version 99", "run the newer edgegw-cp"]);
}

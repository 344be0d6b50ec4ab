//! One statement layer over both engines: the store's queries are written
//! once, in the SQL both SQLite and PostgreSQL read, with `?1`-style
//! placeholders (rewritten to `$1` for PostgreSQL), parameters as `Param`
//! and rows as `Row`. The store's work runs on blocking threads (the
//! request lanes of `crate::state`); on PostgreSQL each statement drives
//! the async driver from there with the runtime's handle.

use std::borrow::Cow;

use bytes::BytesMut;
use rusqlite::types::{ToSqlOutput, ValueRef};
use tokio::runtime::Handle;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

/// A database error while the store runs.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{}", describe(.0))]
    Postgres(#[from] tokio_postgres::Error),
    #[error("no database connection available: {0}")]
    Pool(String),
    #[error("column {index} does not hold {expected}")]
    Column {
        index: usize,
        expected: &'static str,
    },
    #[error("a query expected a row and found none")]
    NoRow,
}

/// A PostgreSQL error in one line: the server's message, or the client's
/// with its cause (e.g. "error connecting to server: Connection refused").
pub fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return db.message().to_string();
    }
    let mut line = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line
}

/// A statement parameter.
#[derive(Clone, Copy, Debug)]
pub enum Param<'a> {
    Int(i64),
    Text(&'a str),
    Bytes(&'a [u8]),
    /// NULL in a text column.
    Null,
}

impl From<i64> for Param<'_> {
    fn from(v: i64) -> Self {
        Param::Int(v)
    }
}

impl<'a> From<&'a str> for Param<'a> {
    fn from(v: &'a str) -> Self {
        Param::Text(v)
    }
}

impl<'a> From<&'a String> for Param<'a> {
    fn from(v: &'a String) -> Self {
        Param::Text(v)
    }
}

impl<'a> From<Option<&'a str>> for Param<'a> {
    fn from(v: Option<&'a str>) -> Self {
        v.map_or(Param::Null, Param::Text)
    }
}

impl<'a> From<&'a [u8]> for Param<'a> {
    fn from(v: &'a [u8]) -> Self {
        Param::Bytes(v)
    }
}

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match *self {
            Param::Int(v) => ToSqlOutput::from(v),
            Param::Text(v) => ToSqlOutput::from(v),
            Param::Bytes(v) => ToSqlOutput::from(v),
            Param::Null => ToSqlOutput::from(rusqlite::types::Null),
        })
    }
}

impl ToSql for Param<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match *self {
            Param::Int(v) => v.to_sql(ty, out),
            Param::Text(v) => v.to_sql(ty, out),
            Param::Bytes(v) => v.to_sql(ty, out),
            Param::Null => Ok(IsNull::Yes),
        }
    }

    fn accepts(ty: &Type) -> bool {
        <i64 as ToSql>::accepts(ty) || <&str as ToSql>::accepts(ty) || <&[u8]>::accepts(ty)
    }

    to_sql_checked!();
}

/// One value of a result row.
#[derive(Clone, Debug)]
enum Cell {
    Null,
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
}

/// A result row, read by column index.
#[derive(Debug)]
pub struct Row(Vec<Cell>);

impl Row {
    fn cell(&self, index: usize) -> Option<&Cell> {
        self.0.get(index)
    }

    pub fn int(&self, index: usize) -> Result<i64, DbError> {
        match self.cell(index) {
            Some(Cell::Int(v)) => Ok(*v),
            _ => Err(DbError::Column {
                index,
                expected: "an integer",
            }),
        }
    }

    pub fn text(&self, index: usize) -> Result<String, DbError> {
        self.opt_text(index)?.ok_or(DbError::Column {
            index,
            expected: "text",
        })
    }

    pub fn opt_text(&self, index: usize) -> Result<Option<String>, DbError> {
        match self.cell(index) {
            Some(Cell::Text(v)) => Ok(Some(v.clone())),
            Some(Cell::Null) => Ok(None),
            _ => Err(DbError::Column {
                index,
                expected: "text",
            }),
        }
    }

    pub fn bytes(&self, index: usize) -> Result<Vec<u8>, DbError> {
        match self.cell(index) {
            Some(Cell::Bytes(v)) => Ok(v.clone()),
            _ => Err(DbError::Column {
                index,
                expected: "bytes",
            }),
        }
    }

    fn from_sqlite(row: &rusqlite::Row, columns: usize) -> rusqlite::Result<Row> {
        (0..columns)
            .map(|i| {
                Ok(match row.get_ref(i)? {
                    ValueRef::Null => Cell::Null,
                    ValueRef::Integer(v) => Cell::Int(v),
                    ValueRef::Real(v) => Cell::Int(v as i64),
                    ValueRef::Text(v) => Cell::Text(String::from_utf8_lossy(v).into_owned()),
                    ValueRef::Blob(v) => Cell::Bytes(v.to_vec()),
                })
            })
            .collect::<rusqlite::Result<_>>()
            .map(Row)
    }

    fn from_postgres(row: &tokio_postgres::Row) -> Result<Row, DbError> {
        (0..row.len())
            .map(|i| {
                let ty = row.columns()[i].type_();
                let cell = if *ty == Type::INT8 {
                    row.try_get::<_, Option<i64>>(i)?.map(Cell::Int)
                } else if *ty == Type::INT4 {
                    row.try_get::<_, Option<i32>>(i)?
                        .map(|v| Cell::Int(v.into()))
                } else if *ty == Type::BOOL {
                    row.try_get::<_, Option<bool>>(i)?
                        .map(|v| Cell::Int(v.into()))
                } else if *ty == Type::BYTEA {
                    row.try_get::<_, Option<Vec<u8>>>(i)?.map(Cell::Bytes)
                } else {
                    row.try_get::<_, Option<String>>(i)?.map(Cell::Text)
                };
                Ok(cell.unwrap_or(Cell::Null))
            })
            .collect::<Result<_, DbError>>()
            .map(Row)
    }
}

/// A PostgreSQL session: a pooled connection for reads, its transaction
/// for writes.
pub enum Session<'a> {
    Client(&'a deadpool_postgres::ClientWrapper),
    Tx(&'a deadpool_postgres::Transaction<'a>),
}

/// Where a statement runs: the SQLite connection (inside its transaction
/// for writes), or a PostgreSQL session.
pub enum Conn<'a> {
    Sqlite(&'a rusqlite::Connection),
    Postgres {
        session: Session<'a>,
        rt: &'a Handle,
    },
}

impl Conn<'_> {
    /// Every row `sql` answers.
    pub fn query(&self, sql: &str, params: &[Param]) -> Result<Vec<Row>, DbError> {
        match self {
            Conn::Sqlite(conn) => {
                let mut stmt = conn.prepare_cached(sql)?;
                let columns = stmt.column_count();
                let rows = stmt
                    .query_map(rusqlite::params_from_iter(params), |r| {
                        Row::from_sqlite(r, columns)
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows)
            }
            Conn::Postgres { session, rt } => {
                let sql = dollar_placeholders(sql);
                let params = pg_params(params);
                let rows = rt.block_on(async {
                    match session {
                        Session::Client(c) => {
                            let stmt = c.prepare_cached(&sql).await?;
                            c.query(&stmt, &params).await
                        }
                        Session::Tx(t) => {
                            let stmt = t.prepare_cached(&sql).await?;
                            t.query(&stmt, &params).await
                        }
                    }
                })?;
                rows.iter().map(Row::from_postgres).collect()
            }
        }
    }

    /// The first row, if any.
    pub fn query_opt(&self, sql: &str, params: &[Param]) -> Result<Option<Row>, DbError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// The first row; none is an error.
    pub fn query_one(&self, sql: &str, params: &[Param]) -> Result<Row, DbError> {
        self.query_opt(sql, params)?.ok_or(DbError::NoRow)
    }

    /// Runs a statement; how many rows it changed.
    pub fn execute(&self, sql: &str, params: &[Param]) -> Result<u64, DbError> {
        match self {
            Conn::Sqlite(conn) => {
                let mut stmt = conn.prepare_cached(sql)?;
                Ok(stmt.execute(rusqlite::params_from_iter(params))? as u64)
            }
            Conn::Postgres { session, rt } => {
                let sql = dollar_placeholders(sql);
                let params = pg_params(params);
                Ok(rt.block_on(async {
                    match session {
                        Session::Client(c) => {
                            let stmt = c.prepare_cached(&sql).await?;
                            c.execute(&stmt, &params).await
                        }
                        Session::Tx(t) => {
                            let stmt = t.prepare_cached(&sql).await?;
                            t.execute(&stmt, &params).await
                        }
                    }
                })?)
            }
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Conn::Postgres { .. })
    }
}

fn pg_params<'p>(params: &'p [Param<'p>]) -> Vec<&'p (dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

/// `?1` → `$1` (the store's statements hold no `?` elsewhere).
fn dollar_placeholders(sql: &str) -> Cow<'_, str> {
    if sql.contains('?') {
        Cow::Owned(sql.replace('?', "$"))
    } else {
        Cow::Borrowed(sql)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_and_rows_round_trip_on_sqlite() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let c = Conn::Sqlite(&conn);
        c.execute("CREATE TABLE t (a INTEGER, b TEXT, c BLOB, d TEXT)", &[])
            .unwrap();
        let changed = c
            .execute(
                "INSERT INTO t (a, b, c, d) VALUES (?1, ?2, ?3, ?4)",
                &[7.into(), "x".into(), Param::Bytes(&[1, 2]), None.into()],
            )
            .unwrap();
        assert_eq!(changed, 1);
        let row = c
            .query_one("SELECT a, b, c, d FROM t WHERE b = ?1", &["x".into()])
            .unwrap();
        assert_eq!(row.int(0).unwrap(), 7);
        assert_eq!(row.text(1).unwrap(), "x");
        assert_eq!(row.bytes(2).unwrap(), [1, 2]);
        assert_eq!(row.opt_text(3).unwrap(), None);
        assert!(row.int(1).is_err(), "text is not an integer");
        assert!(
            c.query_opt("SELECT a FROM t WHERE b = 'y'", &[])
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn placeholders_become_dollars() {
        assert_eq!(
            dollar_placeholders("SELECT 1 WHERE a = ?1 AND b = ?12"),
            "SELECT 1 WHERE a = $1 AND b = $12"
        );
    }
}

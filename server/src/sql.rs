//! Just enough SQL abstraction for the accounts to run on SQLite or
//! PostgreSQL with one set of queries.
//!
//! Queries are written once, in the subset both databases read the same
//! way, with SQLite's `?N` placeholders (PostgreSQL gets `$N`). Values are
//! integers, text, bytes or NULL; every parameter is bound, never spliced.
//! The project logs do not use this: they have a backend each
//! (`storage/`), since their hot paths are worth each database's own
//! idioms.

use std::sync::{Mutex, MutexGuard};

use ::postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use ::postgres::{GenericClient, NoTls};
use bytes::BytesMut;
use r2d2_postgres::PostgresConnectionManager;

/// A database failure.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// SQLite.
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL.
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] ::postgres::Error),
    /// No pooled connection in time.
    #[error("PostgreSQL connection pool: {0}")]
    Pool(#[from] r2d2::Error),
    /// A column holds another type than the code reads (a bug).
    #[error("column {index} is {found}, not {wanted}")]
    Type {
        /// Column index.
        index: usize,
        /// What it holds.
        found: &'static str,
        /// What was read.
        wanted: &'static str,
    },
}

/// One value read from a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// NULL.
    Null,
    /// An integer (PostgreSQL booleans read as 0 or 1).
    Int(i64),
    /// Text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "NULL",
            Value::Int(_) => "an integer",
            Value::Text(_) => "text",
            Value::Blob(_) => "bytes",
        }
    }
}

/// A row, read by column index.
#[derive(Debug, Clone)]
pub struct Row(Vec<Value>);

impl Row {
    fn at(&self, index: usize) -> &Value {
        self.0.get(index).unwrap_or(&Value::Null)
    }

    fn wrong(&self, index: usize, wanted: &'static str) -> SqlError {
        SqlError::Type {
            index,
            found: self.at(index).kind(),
            wanted,
        }
    }

    /// An integer column.
    pub fn int(&self, index: usize) -> Result<i64, SqlError> {
        self.opt_int(index)?.ok_or_else(|| self.wrong(index, "an integer"))
    }

    /// A nullable integer column.
    pub fn opt_int(&self, index: usize) -> Result<Option<i64>, SqlError> {
        match self.at(index) {
            Value::Null => Ok(None),
            Value::Int(i) => Ok(Some(*i)),
            _ => Err(self.wrong(index, "an integer")),
        }
    }

    /// A text column.
    pub fn text(&self, index: usize) -> Result<String, SqlError> {
        match self.at(index) {
            Value::Text(s) => Ok(s.clone()),
            _ => Err(self.wrong(index, "text")),
        }
    }
}

/// A bound parameter.
#[derive(Debug, Clone, Copy)]
pub enum Param<'a> {
    /// NULL.
    Null,
    /// An integer.
    Int(i64),
    /// Text.
    Text(&'a str),
    /// Bytes.
    Blob(&'a [u8]),
}

impl From<i64> for Param<'_> {
    fn from(v: i64) -> Self {
        Param::Int(v)
    }
}

impl From<Option<i64>> for Param<'_> {
    fn from(v: Option<i64>) -> Self {
        v.map_or(Param::Null, Param::Int)
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

impl<'a> From<&'a [u8]> for Param<'a> {
    fn from(v: &'a [u8]) -> Self {
        Param::Blob(v)
    }
}

impl<'a> From<&'a Vec<u8>> for Param<'a> {
    fn from(v: &'a Vec<u8>) -> Self {
        Param::Blob(v)
    }
}

/// Parameters for a query: `params![a, b]`.
macro_rules! params {
    ($($p:expr),* $(,)?) => { &[$($crate::sql::Param::from($p)),*][..] };
}
pub(crate) use params;

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Param::Null => ValueRef::Null,
            Param::Int(i) => ValueRef::Integer(*i),
            Param::Text(s) => ValueRef::Text(s.as_bytes()),
            Param::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

impl ToSql for Param<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Param::Null => Ok(IsNull::Yes),
            Param::Int(i) if *ty == Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
            Param::Int(i) => i.to_sql(ty, out),
            Param::Text(s) => s.to_sql(ty, out),
            Param::Blob(b) => b.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        [Type::INT8, Type::INT4, Type::TEXT, Type::VARCHAR, Type::BYTEA].contains(ty)
    }

    to_sql_checked!();
}

/// Runs statements: a connection or a transaction of either database.
pub trait Exec {
    /// Runs a statement; returns the rows it changed.
    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, SqlError>;
    /// Runs a query; returns every row.
    fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, SqlError>;
    /// Runs a query; returns its first row, if any.
    fn query_opt(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Option<Row>, SqlError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }
}

/// A SQLite connection or transaction (which derefs to its connection) as
/// an [`Exec`].
struct Lite<'c>(&'c rusqlite::Connection);

impl Exec for Lite<'_> {
    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, SqlError> {
        Ok(self
            .0
            .prepare_cached(sql)?
            .execute(rusqlite::params_from_iter(params))? as u64)
    }

    fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, SqlError> {
        let mut stmt = self.0.prepare_cached(sql)?;
        let columns = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut values = Vec::with_capacity(columns);
            for i in 0..columns {
                use rusqlite::types::ValueRef;
                values.push(match row.get_ref(i)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(n) => Value::Int(n),
                    ValueRef::Real(f) => Value::Text(f.to_string()),
                    ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                });
            }
            out.push(Row(values));
        }
        Ok(out)
    }
}

/// `?N` placeholders as PostgreSQL writes them (`$N`). The queries are
/// this crate's own literals, with no `?` inside strings.
fn postgres_sql(sql: &str) -> String {
    sql.replace('?', "$")
}

fn postgres_params<'p>(params: &'p [Param<'_>]) -> Vec<&'p (dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

fn postgres_rows(rows: Vec<::postgres::Row>) -> Result<Vec<Row>, SqlError> {
    rows.iter()
        .map(|row| {
            (0..row.len())
                .map(|i| {
                    let ty = row.columns()[i].type_();
                    Ok(if *ty == Type::INT8 {
                        row.try_get::<_, Option<i64>>(i)?.map_or(Value::Null, Value::Int)
                    } else if *ty == Type::INT4 {
                        row.try_get::<_, Option<i32>>(i)?
                            .map_or(Value::Null, |v| Value::Int(v.into()))
                    } else if *ty == Type::BOOL {
                        row.try_get::<_, Option<bool>>(i)?
                            .map_or(Value::Null, |v| Value::Int(v.into()))
                    } else if *ty == Type::BYTEA {
                        row.try_get::<_, Option<Vec<u8>>>(i)?.map_or(Value::Null, Value::Blob)
                    } else {
                        row.try_get::<_, Option<String>>(i)?.map_or(Value::Null, Value::Text)
                    })
                })
                .collect::<Result<Vec<_>, SqlError>>()
                .map(Row)
        })
        .collect()
}

/// A PostgreSQL client or transaction as an [`Exec`].
struct Pg<'c, C: GenericClient>(&'c mut C);

impl<C: GenericClient> Exec for Pg<'_, C> {
    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, SqlError> {
        Ok(self.0.execute(postgres_sql(sql).as_str(), &postgres_params(params))?)
    }

    fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, SqlError> {
        postgres_rows(self.0.query(postgres_sql(sql).as_str(), &postgres_params(params))?)
    }
}

/// A connection pool of PostgreSQL, shared with the project logs.
pub type PgPool = r2d2::Pool<PostgresConnectionManager<NoTls>>;

/// A database: one SQLite connection, or a PostgreSQL pool.
pub enum Db {
    /// A SQLite file (calls are serialized on its one connection).
    Sqlite(Mutex<rusqlite::Connection>),
    /// PostgreSQL.
    Postgres(PgPool),
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Db::Sqlite(_) => "Db::Sqlite",
            Db::Postgres(_) => "Db::Postgres",
        })
    }
}

fn lock(conn: &Mutex<rusqlite::Connection>) -> MutexGuard<'_, rusqlite::Connection> {
    // Every call is one statement or one transaction: safe after a panic.
    conn.lock().unwrap_or_else(|p| p.into_inner())
}

impl Db {
    /// Runs `f` on a connection, outside any transaction.
    pub fn with<T, E: From<SqlError>>(&self, f: impl FnOnce(&mut dyn Exec) -> Result<T, E>) -> Result<T, E> {
        match self {
            Db::Sqlite(conn) => f(&mut Lite(&lock(conn))),
            Db::Postgres(pool) => {
                let mut client = pool.get().map_err(SqlError::from)?;
                f(&mut Pg(&mut *client))
            }
        }
    }

    /// Runs `f` in one transaction: committed if it returns `Ok`, rolled
    /// back if it returns `Err`.
    pub fn transaction<T, E: From<SqlError>>(&self, f: impl FnOnce(&mut dyn Exec) -> Result<T, E>) -> Result<T, E> {
        match self {
            Db::Sqlite(conn) => {
                let mut conn = lock(conn);
                let tx = conn
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                    .map_err(SqlError::from)?;
                let out = f(&mut Lite(&tx))?;
                tx.commit().map_err(SqlError::from)?;
                Ok(out)
            }
            Db::Postgres(pool) => {
                let mut client = pool.get().map_err(SqlError::from)?;
                let mut tx = client.transaction().map_err(SqlError::from)?;
                let out = f(&mut Pg(&mut tx))?;
                tx.commit().map_err(SqlError::from)?;
                Ok(out)
            }
        }
    }
}

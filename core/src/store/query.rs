//! List and count queries over merged entities.
//!
//! Filters name fields by path; the path is checked against the
//! collection's schema before it is spliced into SQL (as a quoted JSON
//! path), and every value is a bound parameter.

use rusqlite::Connection;
use rusqlite::types::Value as SqlValue;
use serde_json::Value;

use super::Entity;
use super::codec::{decode_state, sql_value};
use crate::error::{Error, Result};
use crate::op::EntityId;
use crate::schema::Collection;

/// A condition on one field.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Equal to the value (`null` matches unset fields).
    Eq(Value),
    /// Within an inclusive range; either end may be open. Dates and
    /// timestamps compare as text, which orders ISO dates correctly.
    Between(Option<Value>, Option<Value>),
}

/// Which entities of one collection to list or count.
///
/// ```
/// # use mpaka_core::{Collection, Query};
/// let drafts = Query::new(Collection::Submissions).eq("form_id", "baseline").eq("status", "draft");
/// let hiv_in_november = Query::new(Collection::AwarenessSessions)
///     .between("date", Some("2026-11-01"), Some("2026-11-30"))
///     .eq("topic", "hiv_aids");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    collection: Collection,
    filters: Vec<(String, Filter)>,
    include_deleted: bool,
    limit: Option<u64>,
    offset: u64,
}

impl Query {
    /// Every live entity of `collection`.
    pub fn new(collection: Collection) -> Self {
        Query {
            collection,
            filters: Vec::new(),
            include_deleted: false,
            limit: None,
            offset: 0,
        }
    }

    /// Only entities whose `field` equals `value`.
    pub fn eq(mut self, field: &str, value: impl Into<Value>) -> Self {
        self.filters.push((field.to_owned(), Filter::Eq(value.into())));
        self
    }

    /// Only entities whose `field` lies in `from..=to`.
    pub fn between(mut self, field: &str, from: Option<impl Into<Value>>, to: Option<impl Into<Value>>) -> Self {
        self.filters.push((
            field.to_owned(),
            Filter::Between(from.map(Into::into), to.map(Into::into)),
        ));
        self
    }

    /// Deleted entities too.
    pub fn include_deleted(mut self) -> Self {
        self.include_deleted = true;
        self
    }

    /// At most `n` entities.
    pub fn limit(mut self, n: u64) -> Self {
        self.limit = Some(n);
        self
    }

    /// Skip the first `n` entities (in order of first write).
    pub fn offset(mut self, n: u64) -> Self {
        self.offset = n;
        self
    }

    /// The WHERE clause and its parameters.
    fn condition(&self) -> Result<(String, Vec<SqlValue>)> {
        let schema = self.collection.schema();
        // The collection code is inlined so SQLite can use the schema's
        // partial indexes; it comes from the static schema.
        let mut sql = format!("collection = {}", schema.code);
        let mut params = Vec::new();
        if !self.include_deleted {
            sql.push_str(" AND deleted = 0");
        }
        for (path, filter) in &self.filters {
            schema.resolve(path)?;
            let column = match schema.indexed.iter().position(|f| f == path) {
                Some(slot) => format!("key{}", slot + 1),
                // Checked: a declared field or `map/xml_name`, so no quotes inside.
                None => format!("json_extract(doc, '$.\"{path}\"')"),
            };
            match filter {
                Filter::Eq(Value::Null) => sql.push_str(&format!(" AND {column} IS NULL")),
                Filter::Eq(value) => {
                    params.push(to_sql(self.collection, path, value)?);
                    sql.push_str(&format!(" AND {column} = ?{}", params.len()));
                }
                Filter::Between(from, to) => {
                    for (bound, op) in [(from, ">="), (to, "<=")] {
                        if let Some(value) = bound {
                            params.push(to_sql(self.collection, path, value)?);
                            sql.push_str(&format!(" AND {column} {op} ?{}", params.len()));
                        }
                    }
                }
            }
        }
        Ok((sql, params))
    }

    pub(super) fn list(&self, conn: &Connection) -> Result<Vec<Entity>> {
        let (condition, params) = self.condition()?;
        let limit = self.limit.map_or(-1, |n| n as i64);
        let sql = format!(
            "SELECT id, doc, stamps FROM entities WHERE {condition} ORDER BY rowid LIMIT {limit} OFFSET {}",
            self.offset
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(Entity {
                collection: self.collection,
                id: EntityId::from_slice(row.get_ref(0)?.as_blob()?)?,
                state: decode_state(row.get_ref(1)?.as_str()?, row.get_ref(2)?.as_blob()?)?,
            });
        }
        Ok(out)
    }

    pub(super) fn count(&self, conn: &Connection) -> Result<u64> {
        let (condition, params) = self.condition()?;
        let mut stmt = conn.prepare_cached(&format!("SELECT count(*) FROM entities WHERE {condition}"))?;
        let n: i64 = stmt.query_row(rusqlite::params_from_iter(params), |r| r.get(0))?;
        Ok(n as u64)
    }
}

/// A filter value as the column or `json_extract` holds it.
fn to_sql(collection: Collection, path: &str, value: &Value) -> Result<SqlValue> {
    sql_value(value).ok_or_else(|| Error::invalid(collection.name(), path, None, "a range bound cannot be null"))
}

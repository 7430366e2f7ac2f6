//! How entity state and ops are laid out in SQLite rows.
//!
//! An entity's per-field stamps are stored compactly: most entities are
//! written by a handful of ops, so the blob lists the distinct stamps once
//! (16 bytes each) and then one small index per field, in the order of the
//! doc's (sorted) keys. A 40-answer submission costs about 60 bytes of
//! stamps instead of 40 copies of its stamp.

use std::collections::BTreeMap;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, Row, params};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::hlc::Hlc;
use crate::merge::EntityState;
use crate::op::{EntityId, Op, OpId};
use crate::schema::{Collection, Fields};

/// Encodes an entity's stamps, given in its fields' sorted order (its
/// fields and stamps have the same keys).
pub(crate) fn encode_stamps(stamps: impl ExactSizeIterator<Item = Hlc>) -> Vec<u8> {
    // Most entities have one to three distinct stamps: a linear scan beats a set.
    let mut distinct: Vec<Hlc> = Vec::new();
    let mut indexes: Vec<usize> = Vec::with_capacity(stamps.len());
    for stamp in stamps {
        let index = match distinct.iter().position(|d| *d == stamp) {
            Some(i) => i,
            None => {
                distinct.push(stamp);
                distinct.len() - 1
            }
        };
        indexes.push(index);
    }
    let mut out = Vec::with_capacity(2 + distinct.len() * 16 + indexes.len());
    write_varint(&mut out, distinct.len() as u64);
    for stamp in &distinct {
        out.extend_from_slice(&stamp.packed().to_be_bytes());
        out.extend_from_slice(&stamp.node.to_sql().to_be_bytes());
    }
    for index in indexes {
        write_varint(&mut out, index as u64);
    }
    out
}

/// The one stamp of an entity whose fields were all written by one op
/// (`None` if several ops' values stand), read without decoding the doc.
pub(crate) fn sole_stamp(stamps: &[u8]) -> Option<Hlc> {
    let mut cursor = stamps;
    if read_varint(&mut cursor)? != 1 || cursor.len() < 16 {
        return None;
    }
    let mut hlc = [0u8; 8];
    let mut node = [0u8; 8];
    hlc.copy_from_slice(&cursor[..8]);
    node.copy_from_slice(&cursor[8..16]);
    Some(Hlc::from_packed(i64::from_be_bytes(hlc), i64::from_be_bytes(node)))
}

/// Rebuilds an entity's state from its `doc` and `stamps` columns.
pub(crate) fn decode_state(doc: &str, stamps: &[u8]) -> Result<EntityState> {
    let fields: Fields = serde_json::from_str(doc)
        .map_err(|e| Error::Corrupt(format!("entity doc at line {}, column {}", e.line(), e.column())))?;
    let corrupt = || Error::Corrupt("entity stamps do not match its fields".into());
    let mut cursor = stamps;
    let count = read_varint(&mut cursor).ok_or_else(corrupt)? as usize;
    if cursor.len() < count.saturating_mul(16) {
        return Err(corrupt());
    }
    let (table, mut rest) = cursor.split_at(count * 16);
    let distinct: Vec<Hlc> = table
        .chunks_exact(16)
        .map(|chunk| {
            let mut hlc = [0u8; 8];
            let mut node = [0u8; 8];
            hlc.copy_from_slice(&chunk[..8]);
            node.copy_from_slice(&chunk[8..]);
            Hlc::from_packed(i64::from_be_bytes(hlc), i64::from_be_bytes(node))
        })
        .collect();
    let mut by_field = BTreeMap::new();
    for path in fields.keys() {
        let index = read_varint(&mut rest).ok_or_else(corrupt)? as usize;
        by_field.insert(path.clone(), *distinct.get(index).ok_or_else(corrupt)?);
    }
    if !rest.is_empty() {
        return Err(corrupt());
    }
    Ok(EntityState {
        fields,
        stamps: by_field,
    })
}

fn write_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn read_varint(input: &mut &[u8]) -> Option<u64> {
    let mut n = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = input.split_first()?;
        *input = rest;
        n |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(n);
        }
    }
    None
}

/// An entity's row: its state and its flags.
pub(crate) struct EntityRow {
    /// SQLite's rowid of the row, for updating it without a key lookup.
    pub(crate) rowid: i64,
    pub(crate) collection: Collection,
    pub(crate) state: EntityState,
    pub(crate) has_conflicts: bool,
    pub(crate) compacted: bool,
}

/// Reads an entity's row, if it was ever written.
pub(crate) fn load_entity(conn: &Connection, collection: Collection, id: EntityId) -> Result<Option<EntityRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT doc, stamps, has_conflicts, compacted, rowid FROM entities WHERE collection = ?1 AND id = ?2",
    )?;
    let mut rows = stmt.query(params![collection.code(), id.0.as_bytes()])?;
    let Some(row) = rows.next()? else {
        return Ok(None);
    };
    Ok(Some(EntityRow {
        state: decode_state(row.get_ref(0)?.as_str()?, row.get_ref(1)?.as_blob()?)?,
        has_conflicts: row.get(2)?,
        compacted: row.get(3)?,
        rowid: row.get(4)?,
        collection,
    }))
}

/// The op with its fields, reading a compacted op's from its entity.
pub(crate) fn whole(conn: &Connection, logged: Logged) -> Result<Op> {
    match logged {
        Logged::Whole(op) => Ok(op),
        Logged::Compacted(mut op) => {
            let row = load_entity(conn, op.collection, op.entity)?
                .ok_or_else(|| Error::Corrupt(format!("compacted op {} has no entity", op.id)))?;
            op.fields = row.state.written_by(op.hlc);
            Ok(op)
        }
    }
}

/// A JSON value as SQLite's `json_extract` returns it, so that index
/// columns and JSON paths compare alike; `None` for null.
pub(crate) fn sql_value(value: &Value) -> Option<SqlValue> {
    Some(match value {
        Value::Null => return None,
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::String(s) => SqlValue::Text(s.clone()),
        Value::Number(n) => match n.as_i64() {
            Some(i) => SqlValue::Integer(i),
            None => SqlValue::Real(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::Array(_) | Value::Object(_) => SqlValue::Text(value.to_string()),
    })
}

/// The values of the schema's `indexed` fields, for columns key1 and key2.
pub(crate) fn index_keys(collection: Collection, fields: &Fields) -> [Option<SqlValue>; 2] {
    let indexed = collection.schema().indexed;
    let key = |slot: usize| indexed.get(slot).and_then(|f| fields.get(*f)).and_then(sql_value);
    [key(0), key(1)]
}

/// Columns an op is read from, in the order [`op_from_row`] expects.
pub(crate) const OP_COLUMNS: &str = "op_id, hlc, node, base_hlc, base_node, collection, entity, \
     (SELECT fields FROM op_fields WHERE op_fields.seq = ops.seq)";

/// An op as read from the log.
pub(crate) enum Logged {
    /// With its fields.
    Whole(Op),
    /// Compacted: `fields` is empty; its entity's state holds them.
    Compacted(Op),
}

/// Reads an op selected with [`OP_COLUMNS`] starting at column `at`.
pub(crate) fn op_from_row(row: &Row<'_>, at: usize) -> Result<Logged> {
    let id: Vec<u8> = row.get(at)?;
    let base = match (row.get::<_, Option<i64>>(at + 3)?, row.get::<_, Option<i64>>(at + 4)?) {
        (Some(hlc), Some(node)) => Some(Hlc::from_packed(hlc, node)),
        _ => None,
    };
    let entity: Vec<u8> = row.get(at + 6)?;
    let fields: Option<String> = row.get(at + 7)?;
    let mut op = Op {
        id: OpId::from_slice(&id)?,
        hlc: Hlc::from_packed(row.get(at + 1)?, row.get(at + 2)?),
        base,
        collection: Collection::from_code(row.get(at + 5)?)?,
        entity: EntityId::from_slice(&entity)?,
        fields: Fields::new(),
    };
    Ok(match fields {
        Some(text) => {
            op.fields = serde_json::from_str(&text)
                .map_err(|e| Error::Corrupt(format!("op fields at line {}, column {}", e.line(), e.column())))?;
            Logged::Whole(op)
        }
        None => Logged::Compacted(op),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::hlc::NodeId;

    #[test]
    fn a_sole_stamp_is_read_without_the_doc() {
        let node = NodeId::random();
        let a = Hlc::new(1_000, 0, node).unwrap();
        let b = Hlc::new(2_000, 0, node).unwrap();
        assert_eq!(sole_stamp(&encode_stamps([a, a, a].into_iter())), Some(a));
        assert_eq!(sole_stamp(&encode_stamps([a, b].into_iter())), None);
        assert_eq!(sole_stamp(&[]), None);
    }

    #[test]
    fn stamps_round_trip() {
        let a = Hlc::new(1_764_230_400_000, 1, NodeId(u64::MAX)).unwrap();
        let b = Hlc::new(1_764_230_500_000, 0, NodeId(7)).unwrap();
        let mut state = EntityState::default();
        for (i, path) in ["answers/q1", "answers/q2", "status", "zeta"].iter().enumerate() {
            state.fields.insert((*path).into(), json!(i));
            state.stamps.insert((*path).into(), if i % 2 == 0 { a } else { b });
        }
        let blob = encode_stamps(state.stamps.values().copied());
        assert_eq!(blob.len(), 1 + 2 * 16 + 4);
        assert_eq!(&blob[33..], &[0, 1, 0, 1], "first-seen order of stamps");
        let doc = serde_json::to_string(&state.fields).unwrap();
        assert_eq!(decode_state(&doc, &blob).unwrap(), state);
        assert!(decode_state(&doc, &blob[..blob.len() - 1]).is_err());
        assert!(decode_state(&doc, &[]).is_err());
    }

    #[test]
    fn varints_round_trip() {
        for n in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            write_varint(&mut out, n);
            assert_eq!(read_varint(&mut out.as_slice()), Some(n));
        }
    }
}

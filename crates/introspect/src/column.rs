//! Reading a row's value by column name without sqlx's per-value name lookup.
//!
//! `Row::try_get("name")` hashes the name and probes the statement's column
//! map for every value read; over a 1000-schema scan that is millions of
//! lookups and, with the SipHash maps beside it, about a fifth of the reader's
//! CPU (perf, `scan --full` on the bench fleet). [`NamedColumns::col`] keeps
//! each (statement, name) pair's position in a small per-thread table and
//! checks it against the row's own column name on every use, so a stale or
//! colliding entry costs one ordinary lookup and can never return another
//! column's value.

use std::cell::RefCell;

use sqlx::{Column, ColumnIndex, Decode, Row, Type};

/// Slots in the per-thread position table (a power of two).
const SLOTS: usize = 512;

#[derive(Clone, Copy)]
struct Slot {
    columns: usize,
    name: usize,
    position: usize,
}

const EMPTY: Slot = Slot {
    columns: 0,
    name: 0,
    position: usize::MAX,
};

thread_local! {
    static POSITIONS: RefCell<[Slot; SLOTS]> = const { RefCell::new([EMPTY; SLOTS]) };
}

fn slot_of(columns: usize, name: usize) -> usize {
    let key = columns ^ name.rotate_left(23);
    let mixed = (key as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (mixed >> (64 - SLOTS.trailing_zeros())) as usize
}

/// Column access by name, remembered per statement (see the module's doc).
pub(crate) trait NamedColumns: Row {
    /// The value of column `name`, as `Row::try_get(name)` would give it.
    fn col<'r, T>(&'r self, name: &str) -> Result<T, sqlx::Error>
    where
        T: Decode<'r, Self::Database> + Type<Self::Database>;
}

impl<R> NamedColumns for R
where
    R: Row,
    usize: ColumnIndex<R>,
{
    fn col<'r, T>(&'r self, name: &str) -> Result<T, sqlx::Error>
    where
        T: Decode<'r, Self::Database> + Type<Self::Database>,
    {
        self.try_get(position(self, name)?)
    }
}

fn position<R: Row>(row: &R, name: &str) -> Result<usize, sqlx::Error> {
    let columns = row.columns();
    let columns_key = columns.as_ptr() as usize;
    let name_key = name.as_ptr() as usize;
    let slot = slot_of(columns_key, name_key);
    let remembered = POSITIONS.with(|p| p.borrow()[slot]);
    if remembered.columns == columns_key
        && remembered.name == name_key
        && columns
            .get(remembered.position)
            .is_some_and(|c| c.name() == name)
    {
        return Ok(remembered.position);
    }
    let position = columns
        .iter()
        .position(|c| c.name() == name)
        .ok_or_else(|| sqlx::Error::ColumnNotFound(name.to_owned()))?;
    POSITIONS.with(|p| {
        p.borrow_mut()[slot] = Slot {
            columns: columns_key,
            name: name_key,
            position,
        }
    });
    Ok(position)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::sqlite::SqliteConnectOptions;
    use sqlx::{ConnectOptions, Connection};

    #[tokio::test]
    async fn positions_follow_each_statement_and_never_mix_them_up() {
        let mut conn = SqliteConnectOptions::new()
            .in_memory(true)
            .connect()
            .await
            .expect("in-memory sqlite");
        for round in 0..3_i64 {
            // The same names at different positions in two statements,
            // read alternately: each must give its own statement's value.
            let a = sqlx::query("SELECT 1 + ? AS x, 'a' AS y")
                .bind(round)
                .fetch_one(&mut conn)
                .await
                .expect("first statement");
            let b = sqlx::query("SELECT 'b' AS y, 2 + ? AS x")
                .bind(round)
                .fetch_one(&mut conn)
                .await
                .expect("second statement");
            for _ in 0..2 {
                assert_eq!(a.col::<i64>("x").unwrap(), 1 + round);
                assert_eq!(a.col::<String>("y").unwrap(), "a");
                assert_eq!(b.col::<i64>("x").unwrap(), 2 + round);
                assert_eq!(b.col::<String>("y").unwrap(), "b");
            }
            // A name the statement lacks is sqlx's own error, not a panic.
            assert!(matches!(
                a.col::<i64>("missing"),
                Err(sqlx::Error::ColumnNotFound(name)) if name == "missing"
            ));
        }
        // A remembered position that no longer names the column (same
        // name pointer, a slot overwritten by another statement) is looked
        // up again rather than trusted.
        let name = String::from("y");
        let a = sqlx::query("SELECT 'a' AS y, 1 AS x")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(a.col::<String>(&name).unwrap(), "a");
        let b = sqlx::query("SELECT 2 AS x, 'b' AS y")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(b.col::<String>(&name).unwrap(), "b");
        assert_eq!(a.col::<String>(&name).unwrap(), "a");
        conn.close().await.unwrap();
    }
}

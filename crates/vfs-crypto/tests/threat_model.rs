//! What the threat model in docs/formats.md says is not protected, shown
//! as it behaves (issue #17, finding 9), so a change of behaviour changes
//! the documentation too.

mod common;

use common::*;

/// A database file cut to 0 bytes is, to SQLite, a new empty database:
/// the connection opens it without an error and sees no tables. Nothing
/// in an encrypted file survives truncation to tell otherwise.
#[test]
fn a_zero_byte_file_opens_as_a_new_empty_database() {
    for stack in [Stack::Native, Stack::CksmMem] {
        let env = Env::new("zero-byte", stack);
        let db = env.db("z.db");
        fill(&env.open(&db, &hexkey()), 10);
        env.store(&db, &[]);
        let conn = env.open(&db, &hexkey());
        assert_eq!(int(&conn, "SELECT count(*) FROM sqlite_schema"), 0);
        // Written again, it is a new database with a new salt.
        fill(&conn, 3);
        check_rows(&conn, 3);
    }
}

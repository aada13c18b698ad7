//! A complete writable in-memory VFS on vfs-core's public traits, in about
//! 80 lines, used through plain rusqlite.
//!
//! Run: `cargo run -p examples --bin custom`

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use vfs_core::{
    AccessCheck, Error, File, FileName, FileNameBuf, OpenName, OpenOptions, Result, SyncFlags, Vfs,
};

type Bytes = Arc<Mutex<Vec<u8>>>;

/// Files by name (bytes, as SQLite passes them); anonymous temp files get a
/// private buffer.
#[derive(Default)]
struct MemVfs {
    files: Mutex<HashMap<FileNameBuf, Bytes>>,
}

struct MemFile(Bytes);

impl Vfs for MemVfs {
    type File = MemFile;

    fn open(&self, name: &OpenName<'_>, opts: OpenOptions) -> Result<MemFile> {
        let Some(path) = name.path() else {
            return Ok(MemFile(Bytes::default()));
        };
        let mut files = self.files.lock().unwrap();
        match files.get(path) {
            Some(bytes) => Ok(MemFile(bytes.clone())),
            None if opts.access.writable() => {
                let bytes = Bytes::default();
                files.insert(path.to_owned(), bytes.clone());
                Ok(MemFile(bytes))
            }
            None => Err(Error::cant_open(format!("no such file: {path:?}"))),
        }
    }

    fn delete(&self, path: &FileName, _sync_dir: bool) -> Result<()> {
        self.files.lock().unwrap().remove(path);
        Ok(())
    }

    fn access(&self, path: &FileName, _check: AccessCheck) -> Result<bool> {
        Ok(self.files.lock().unwrap().contains_key(path))
    }
}

impl File for MemFile {
    // One connection per database in this example: locking may be skipped,
    // and saying so is one explicit line.
    vfs_core::no_lock!();

    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<usize> {
        let data = self.0.lock().unwrap();
        let start = (offset as usize).min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        Ok(n) // fewer than buf.len(): the core zero-fills and reports a short read
    }

    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        let mut data = self.0.lock().unwrap();
        let end = offset as usize + buf.len();
        if data.len() < end {
            data.resize(end, 0);
        }
        data[offset as usize..end].copy_from_slice(buf);
        Ok(())
    }

    fn truncate(&mut self, size: u64) -> Result<()> {
        self.0.lock().unwrap().truncate(size as usize);
        Ok(())
    }

    fn sync(&mut self, _flags: SyncFlags) -> Result<()> {
        Ok(())
    }

    fn size(&mut self) -> Result<u64> {
        Ok(self.0.lock().unwrap().len() as u64)
    }
}

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let registration = vfs_core::register("custom-mem", MemVfs::default(), false)?;
    {
        let conn = rusqlite::Connection::open("file:app.db?vfs=custom-mem")?;
        conn.execute_batch(
            "CREATE TABLE fruit(id INTEGER PRIMARY KEY, name TEXT, price REAL);
             INSERT INTO fruit(name, price) VALUES ('apple', 0.5), ('pear', 0.75), ('fig', 1.2);",
        )?;
        let mut stmt = conn.prepare("SELECT id, name, price FROM fruit ORDER BY price")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, f64>(2)?,
            ))
        })?;
        for row in rows {
            let (id, name, price) = row?;
            println!("{id:>2}  {name:<6} {price:>5.2}");
        }
        let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        println!("integrity_check: {check}");
    } // the connection closes here, before unregistering
    registration.unregister().map_err(|(_, e)| e)?;
    println!("unregistered custom-mem");
    Ok(())
}

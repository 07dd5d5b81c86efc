//! The witness's memory: per log, the latest checkpoint it cosigned, kept in one small file
//! per log and replaced atomically (write a temporary file, fsync it, rename it over the old
//! one, fsync the directory) before any answer leaves the witness.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tryggdel_merkle::Hash;

/// What the witness last cosigned for one log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Witnessed {
    /// The tree size.
    pub size: u64,
    /// The tree root.
    pub root: Hash,
    /// The note as the log submitted it, with the witness's cosignature added.
    pub note: String,
}

#[derive(Serialize, Deserialize)]
struct StoredLog {
    origin: String,
    size: u64,
    root: String,
    note: String,
}

/// The directory holding one state file per log.
#[derive(Debug, Clone)]
pub(crate) struct StateDirectory {
    dir: PathBuf,
}

impl StateDirectory {
    /// Opens (creating if needed) the state directory of the witness whose verifier key is
    /// `vkey`. The directory remembers that key (`witness.vkey`) and refuses any other: a
    /// state belongs to one key, and a key to one state.
    pub(crate) fn open(dir: &Path, vkey: &str) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the witness state directory {}", dir.display()))?;
        let owner = dir.join("witness.vkey");
        match std::fs::read_to_string(&owner) {
            Ok(text) => anyhow::ensure!(
                text.trim() == vkey,
                "the witness state in {} belongs to the witness {}, not to {vkey}",
                dir.display(),
                text.trim()
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let states = Self {
                    dir: dir.to_owned(),
                };
                states.write_atomically(&owner, format!("{vkey}\n").as_bytes())?;
                return Ok(states);
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", owner.display())),
        }
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    fn file(&self, origin: &str) -> PathBuf {
        self.dir.join(format!(
            "{}.json",
            hex::encode(Sha256::digest(origin.as_bytes()))
        ))
    }

    /// The stored state of `origin`'s log, if the witness ever cosigned one of its checkpoints.
    pub(crate) fn load(&self, origin: &str) -> anyhow::Result<Option<Witnessed>> {
        let path = self.file(origin);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let stored: StoredLog = serde_json::from_str(&text)
            .with_context(|| format!("witness state {} is corrupt", path.display()))?;
        anyhow::ensure!(
            stored.origin == origin,
            "witness state {} belongs to origin {:?}, not {origin:?}",
            path.display(),
            stored.origin
        );
        let root = STANDARD
            .decode(&stored.root)
            .ok()
            .and_then(|bytes| Hash::try_from(bytes.as_slice()).ok())
            .with_context(|| format!("witness state {} has a bad root", path.display()))?;
        Ok(Some(Witnessed {
            size: stored.size,
            root,
            note: stored.note,
        }))
    }

    /// Replaces `origin`'s state durably: when this returns, a crash at any later point
    /// leaves exactly `state` on disk; a crash before leaves the previous state. Blocking.
    pub(crate) fn persist(&self, origin: &str, state: &Witnessed) -> anyhow::Result<()> {
        let path = self.file(origin);
        let stored = StoredLog {
            origin: origin.to_owned(),
            size: state.size,
            root: STANDARD.encode(state.root),
            note: state.note.clone(),
        };
        let bytes = serde_json::to_vec(&stored).context("encoding the witness state")?;
        self.write_atomically(&path, &bytes)
    }

    /// Writes `path` through a temporary file: write, fsync, rename, fsync the directory.
    fn write_atomically(&self, path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
        let temporary = path.with_extension("tmp");
        let mut file = std::fs::File::create(&temporary)
            .with_context(|| format!("creating {}", temporary.display()))?;
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("writing {}", temporary.display()))?;
        drop(file);
        std::fs::rename(&temporary, path)
            .with_context(|| format!("renaming {} into place", temporary.display()))?;
        std::fs::File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .with_context(|| format!("syncing {}", self.dir.display()))?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn state_survives_reopening_and_is_per_origin() {
        let dir = tempfile::tempdir().unwrap();
        let states = StateDirectory::open(dir.path(), "w+1+a").unwrap();
        assert_eq!(states.load("a.example/log").unwrap(), None);
        let state = Witnessed {
            size: 5,
            root: [3; 32],
            note: "note\n".into(),
        };
        states.persist("a.example/log", &state).unwrap();
        let reopened = StateDirectory::open(dir.path(), "w+1+a").unwrap();
        assert_eq!(reopened.load("a.example/log").unwrap(), Some(state));
        assert_eq!(reopened.load("b.example/log").unwrap(), None);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .to_string_lossy()
                    .ends_with(".tmp")
            })
            .collect();
        assert!(leftovers.is_empty());
        // The state is the key's: another key is refused.
        assert!(StateDirectory::open(dir.path(), "w+2+b").is_err());
    }
}

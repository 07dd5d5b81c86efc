//! A service's migrations, embedded in its binary with `include_str!` (see
//! [`migration_files!`](crate::migration_files)) and turned into sqlx migrations by the same
//! rules as sqlx's own directory reader, so that versions and checksums are those sqlx would
//! record for the same files.

use std::borrow::Cow;
use std::path::Path;

use futures::future::BoxFuture;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType};

/// One migration file of a service: its file name (`<version>_<description>.sql`) and SQL.
#[derive(Clone, Copy, Debug)]
pub struct MigrationFile {
    pub name: &'static str,
    pub sql: &'static str,
}

/// Embeds migration files of the calling crate: `migration_files!("migrations/sqlite",
/// ["0001_init.sql", ...])`, the directory relative to the crate's `Cargo.toml`. Each
/// service's tests check with [`check_embedded`] that the list names every file there.
#[macro_export]
macro_rules! migration_files {
    ($dir:literal, [$($file:literal),* $(,)?]) => {
        &[$($crate::MigrationFile {
            name: $file,
            sql: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/", $dir, "/", $file)),
        }),*]
    };
}

/// A service's [`Migrations`](crate::Migrations) from one list of file names, each standing
/// under both `migrations/sqlite` and `migrations/postgres` (one file per backend).
#[macro_export]
macro_rules! migrations {
    ([$($file:literal),* $(,)?]) => {
        $crate::Migrations {
            sqlite: $crate::migration_files!("migrations/sqlite", [$($file),*]),
            postgres: $crate::migration_files!("migrations/postgres", [$($file),*]),
        }
    };
}

/// Why a list of migration files cannot be run.
#[derive(Debug, thiserror::Error)]
#[error("migration file {name:?}: {problem}")]
pub struct InvalidMigration {
    pub name: String,
    pub problem: String,
}

/// Embedded migration files as a source for `sqlx::migrate::Migrator::new`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EmbeddedMigrations(pub &'static [MigrationFile]);

impl MigrationSource<'static> for EmbeddedMigrations {
    fn resolve(self) -> BoxFuture<'static, Result<Vec<Migration>, BoxDynError>> {
        Box::pin(async move { migrations(self.0).map_err(BoxDynError::from) })
    }
}

/// The sqlx migrations of `files`, in version order. Versions and descriptions come from the
/// file names as sqlx reads them (`0002_outbox_relay.sql` is version 2, "outbox relay"), and
/// a file whose SQL starts with `-- no-transaction` runs outside a transaction.
pub(crate) fn migrations(files: &[MigrationFile]) -> Result<Vec<Migration>, InvalidMigration> {
    let mut migrations = Vec::with_capacity(files.len());
    for file in files {
        let invalid = |problem: &str| InvalidMigration {
            name: file.name.to_owned(),
            problem: problem.to_owned(),
        };
        let Some((version, rest)) = file.name.split_once('_') else {
            return Err(invalid("expected <version>_<description>.sql"));
        };
        let Some(description) = rest.strip_suffix(".sql") else {
            return Err(invalid("expected <version>_<description>.sql"));
        };
        if MigrationType::from_filename(rest) != MigrationType::Simple {
            return Err(invalid(
                "reversible (.up.sql/.down.sql) migrations are not used here",
            ));
        }
        let version: i64 = version
            .parse()
            .map_err(|_| invalid("the version before the first _ is not an integer"))?;
        migrations.push(Migration::new(
            version,
            Cow::Owned(description.replace('_', " ")),
            MigrationType::Simple,
            Cow::Borrowed(file.sql),
            file.sql.starts_with("-- no-transaction"),
        ));
    }
    migrations.sort_by_key(|migration| migration.version);
    if let Some(pair) = migrations
        .windows(2)
        .find(|pair| pair[0].version == pair[1].version)
    {
        return Err(InvalidMigration {
            name: format!("version {}", pair[0].version),
            problem: "two files have the same version".to_owned(),
        });
    }
    Ok(migrations)
}

/// Checks that `files` are exactly the `.sql` files in `dir`, with the same contents: what
/// each service's tests assert, so that a migration added to the directory cannot be left out
/// of the binary.
pub(crate) fn check_embedded(files: &[MigrationFile], dir: &Path) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|error| format!("reading {}: {error}", dir.display()))?;
    let mut on_disk = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|error| format!("reading {}: {error}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".sql") {
            on_disk.push(name);
        }
    }
    on_disk.sort();
    let mut embedded: Vec<String> = files.iter().map(|file| file.name.to_owned()).collect();
    embedded.sort();
    if on_disk != embedded {
        return Err(format!(
            "{} holds {on_disk:?} but the embedded list is {embedded:?}",
            dir.display()
        ));
    }
    for file in files {
        let path = dir.join(file.name);
        let text = std::fs::read_to_string(&path)
            .map_err(|error| format!("reading {}: {error}", path.display()))?;
        if text != file.sql {
            return Err(format!("{} differs from what was embedded", path.display()));
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const FILES: &[MigrationFile] = &[
        MigrationFile {
            name: "0002_outbox_relay.sql",
            sql: "CREATE TABLE b (x INTEGER);",
        },
        MigrationFile {
            name: "0001_disclosures.sql",
            sql: "-- no-transaction\nCREATE TABLE a (x INTEGER);",
        },
    ];

    #[test]
    fn versions_descriptions_and_checksums_are_sqlx_own() {
        let migrations = migrations(FILES).unwrap();
        assert_eq!(migrations.len(), 2);
        assert_eq!(migrations[0].version, 1);
        assert_eq!(migrations[0].description, "disclosures");
        assert!(migrations[0].no_tx);
        assert_eq!(migrations[1].version, 2);
        assert_eq!(migrations[1].description, "outbox relay");
        assert!(!migrations[1].no_tx);
        // The checksum sqlx records and later compares is SHA-384 of the file's text.
        let expected = Migration::new(
            2,
            Cow::Borrowed("outbox relay"),
            MigrationType::Simple,
            Cow::Borrowed("CREATE TABLE b (x INTEGER);"),
            false,
        );
        assert_eq!(migrations[1].checksum, expected.checksum);
        assert_eq!(migrations[1].checksum.len(), 48);
    }

    #[test]
    fn malformed_names_and_duplicate_versions_are_refused() {
        for (name, problem) in [
            ("init.sql", "expected <version>_<description>.sql"),
            ("0001_init.txt", "expected <version>_<description>.sql"),
            (
                "x1_init.sql",
                "the version before the first _ is not an integer",
            ),
            ("0001_init.up.sql", "reversible"),
        ] {
            let error = migrations(&[MigrationFile { name, sql: "" }]).unwrap_err();
            assert_eq!(error.name, name);
            assert!(error.problem.contains(problem), "{name}: {error}");
        }
        let twice = [
            MigrationFile {
                name: "0001_a.sql",
                sql: "",
            },
            MigrationFile {
                name: "1_b.sql",
                sql: "",
            },
        ];
        assert!(
            migrations(&twice)
                .unwrap_err()
                .to_string()
                .contains("two files have the same version")
        );
    }

    #[test]
    fn check_embedded_finds_missing_extra_and_changed_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("0001_a.sql"), "A").unwrap();
        let a = MigrationFile {
            name: "0001_a.sql",
            sql: "A",
        };
        check_embedded(&[a], dir.path()).unwrap();
        std::fs::write(dir.path().join("0002_b.sql"), "B").unwrap();
        assert!(
            check_embedded(&[a], dir.path())
                .unwrap_err()
                .contains("0002_b.sql")
        );
        let changed = MigrationFile {
            name: "0001_a.sql",
            sql: "A2",
        };
        let b = MigrationFile {
            name: "0002_b.sql",
            sql: "B",
        };
        assert!(
            check_embedded(&[changed, b], dir.path())
                .unwrap_err()
                .contains("differs")
        );
        check_embedded(&[b, a], dir.path()).unwrap();
    }
}

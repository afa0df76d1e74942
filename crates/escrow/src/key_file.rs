//! Key pairs and key files.
//!
//! A key file holds the 32-byte ed25519 secret seed as 64 hex digits and a
//! newline. [`Keypair::save`] creates it readable by its owner only (mode
//! `0600` on Unix); [`Keypair::load`] refuses a file that anyone else may
//! read, as ssh does, besides a missing or malformed one.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_zebra::{SigningKey, VerificationKeyBytes};

use crate::account::{Address, PublicKey};

/// Why a key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file does not exist.
    #[error("key file {path} does not exist")]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// Reading or writing failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The contents are not 64 hex digits.
    #[error("key file {path} is malformed: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Group or others may read the file.
    #[error("key file {path} is readable by others (mode {mode:o}); run `chmod 600 {path}`")]
    TooOpen {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Saving would overwrite an existing file.
    #[error("key file {path} already exists; not overwriting it")]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// The operating system gave no randomness for a new key.
    #[error("no randomness for a new key: {0}")]
    Random(String),
}

/// An ed25519 key pair.
#[derive(Clone)]
pub struct Keypair {
    signing: SigningKey,
}

impl std::fmt::Debug for Keypair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        write!(f, "Keypair({})", self.address())
    }
}

impl Keypair {
    /// The key pair with this 32-byte secret seed.
    pub fn from_seed(seed: [u8; 32]) -> Keypair {
        Keypair {
            signing: SigningKey::from_bytes(&seed),
        }
    }

    /// A new random key pair from the operating system's randomness.
    ///
    /// # Errors
    ///
    /// [`KeyFileError::Random`] if the OS has no randomness to give.
    pub fn generate() -> Result<Keypair, KeyFileError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyFileError::Random(e.to_string()))?;
        Ok(Keypair::from_seed(seed))
    }

    /// The public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(VerificationKeyBytes::from(&self.signing).into())
    }

    /// The address.
    pub fn address(&self) -> Address {
        self.public().address()
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }

    /// Writes the secret to a new file at `path`, readable by its owner
    /// only. Refuses to overwrite.
    ///
    /// # Errors
    ///
    /// [`KeyFileError::Exists`] or [`KeyFileError::Io`].
    pub fn save(&self, path: &Path) -> Result<(), KeyFileError> {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                KeyFileError::Exists {
                    path: path.to_path_buf(),
                }
            } else {
                KeyFileError::Io {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })?;
        let text = format!("{}\n", hex::encode(self.signing.to_bytes()));
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|source| KeyFileError::Io {
                path: path.to_path_buf(),
                source,
            })
    }

    /// Reads a key file written by [`Keypair::save`].
    ///
    /// # Errors
    ///
    /// [`KeyFileError::Missing`], [`KeyFileError::TooOpen`],
    /// [`KeyFileError::Malformed`] or [`KeyFileError::Io`].
    pub fn load(path: &Path) -> Result<Keypair, KeyFileError> {
        let io = |source: std::io::Error| {
            if source.kind() == std::io::ErrorKind::NotFound {
                KeyFileError::Missing {
                    path: path.to_path_buf(),
                }
            } else {
                KeyFileError::Io {
                    path: path.to_path_buf(),
                    source,
                }
            }
        };
        let metadata = std::fs::metadata(path).map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = metadata.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(KeyFileError::TooOpen {
                    path: path.to_path_buf(),
                    mode,
                });
            }
        }
        #[cfg(not(unix))]
        let _ = metadata;
        let text = std::fs::read_to_string(path).map_err(io)?;
        let hex_seed = text.trim();
        let malformed = |reason: String| KeyFileError::Malformed {
            path: path.to_path_buf(),
            reason,
        };
        if hex_seed.len() != 64 {
            return Err(malformed(format!(
                "expected 64 hex digits, found {} characters",
                hex_seed.len()
            )));
        }
        let mut seed = [0u8; 32];
        hex::decode_to_slice(hex_seed, &mut seed).map_err(|e| malformed(e.to_string()))?;
        Ok(Keypair::from_seed(seed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_then_load_gives_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        let key = Keypair::generate().unwrap();
        key.save(&path).unwrap();
        assert_eq!(Keypair::load(&path).unwrap().public(), key.public());
        assert!(matches!(key.save(&path), Err(KeyFileError::Exists { .. })));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    #[test]
    fn missing_malformed_and_open_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        assert!(matches!(
            Keypair::load(&missing),
            Err(KeyFileError::Missing { .. })
        ));
        let bad = dir.path().join("bad");
        std::fs::write(&bad, "not hex\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let err = Keypair::load(&bad).unwrap_err();
        assert!(matches!(err, KeyFileError::Malformed { .. }), "{err}");
        std::fs::write(&bad, format!("{}\n", "zz".repeat(32))).unwrap();
        assert!(matches!(
            Keypair::load(&bad),
            Err(KeyFileError::Malformed { .. })
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let open = dir.path().join("open");
            Keypair::generate().unwrap().save(&open).unwrap();
            std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = Keypair::load(&open).unwrap_err();
            assert!(matches!(err, KeyFileError::TooOpen { mode: 0o644, .. }));
            assert!(err.to_string().contains("chmod 600"));
        }
    }
}

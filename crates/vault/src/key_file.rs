//! A member's private key in a file the platform's secret store mounts,
//! for runs with no OS keyring at all: a Kubernetes CronJob (a Secret
//! mounted as a volume), a container. The data key never lives there: the
//! file holds one member's key only ([`crate::MemberSecret::to_stored`]),
//! the member opens the data key wrapped for them in the registry, and an
//! admin who removes the member rotates the data key, so a leaked file
//! opens nothing written after.
//!
//! Chosen explicitly (`--member-key-file`), never as a fallback; read-only
//! (nothing is ever saved to it); refused when every user of the machine
//! may read it or anyone but its owner may write it.

use std::io::Read;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::error::KeyStoreError;
use crate::member::MemberSecret;
use crate::store::{KeyEntry, KeyStore};

/// Longer than any key text: the file is refused rather than read whole.
const MAX_LEN: u64 = 4096;

/// A member key read from a file (see the module docs).
pub struct MemberKeyFile {
    path: PathBuf,
}

impl MemberKeyFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn unusable(&self, reason: impl Into<String>) -> KeyStoreError {
        KeyStoreError::KeyFile {
            path: self.path.display().to_string(),
            reason: reason.into(),
        }
    }

    /// The key text, after the file's kind, size and permissions pass.
    fn read(&self) -> Result<SecretString, KeyStoreError> {
        // Symbolic links are followed (a Kubernetes Secret volume is made
        // of them); what is checked is the file they lead to, as opened.
        let mut file = std::fs::File::open(&self.path).map_err(|e| self.unusable(e.to_string()))?;
        let meta = file.metadata().map_err(|e| self.unusable(e.to_string()))?;
        if !meta.is_file() {
            return Err(self.unusable("it is not a regular file"));
        }
        if meta.len() > MAX_LEN {
            return Err(self.unusable("it is too long to be a member key"));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o007 != 0 {
                return Err(self.unusable(format!(
                    "every user of this machine may read or change it (mode {mode:03o}); `chmod 0400` it (a Kubernetes Secret volume: defaultMode: 0400, or 0440 with fsGroup)"
                )));
            }
            if mode & 0o020 != 0 {
                return Err(self.unusable(format!(
                    "its group may change it (mode {mode:03o}); `chmod 0400` it"
                )));
            }
        }
        let mut text = Zeroizing::new(String::new());
        file.read_to_string(&mut text)
            .map_err(|_| self.unusable("it is not a member key (not text)"))?;
        let key = SecretString::from(text.trim().to_owned());
        // Refused now, with the file named, rather than as a damaged entry.
        MemberSecret::from_stored(&key).map_err(|_| {
            self.unusable("it is not a Tenantry member key (make one with `tenantry member key --new-file FILE`)")
        })?;
        Ok(key)
    }

    fn read_only(&self) -> KeyStoreError {
        self.unusable("a member key file only gives this member's key and is never written; make the registry's data key and add members where a keyring is (`tenantry member add`)")
    }
}

impl KeyStore for MemberKeyFile {
    /// The member key for any registry (the file is given for this run);
    /// no other entry is here.
    fn load_text(&self, entry: &KeyEntry) -> Result<Option<SecretString>, KeyStoreError> {
        if entry.is_member() {
            self.read().map(Some)
        } else {
            Ok(None)
        }
    }

    fn save_text(&self, _entry: &KeyEntry, _text: &SecretString) -> Result<(), KeyStoreError> {
        Err(self.read_only())
    }

    fn delete(&self, _entry: &KeyEntry) -> Result<(), KeyStoreError> {
        Err(self.read_only())
    }

    fn describe(&self) -> String {
        format!("the member key file {}", self.path.display())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use secrecy::ExposeSecret;

    fn write(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        path
    }

    #[test]
    fn gives_the_member_key_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let secret = MemberSecret::generate();
        let text = format!("{}\n", secret.to_stored().expose_secret());
        let path = write(dir.path(), "member.key", &text, 0o400);
        // Through a symbolic link, as a Kubernetes Secret volume has it.
        let link = dir.path().join("link.key");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let store = MemberKeyFile::new(&link);
        let loaded = store.load_text(&KeyEntry::member("r1")).unwrap().unwrap();
        let again = MemberSecret::from_stored(&loaded).unwrap();
        assert_eq!(again.public(), secret.public());
        assert!(store
            .load_text(&KeyEntry::for_key("r1", crate::KeyId::from_bytes([7; 8])))
            .unwrap()
            .is_none());
        let err = store
            .save_text(&KeyEntry::member("r1"), &SecretString::from("x".to_owned()))
            .unwrap_err();
        assert_eq!(err.code(), "member_key_file_unusable");
        assert!(store.delete(&KeyEntry::member("r1")).is_err());
        // Both still there, unchanged.
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    }

    #[test]
    fn refuses_files_others_may_read_or_change_and_what_is_not_a_key() {
        let dir = tempfile::tempdir().unwrap();
        let secret = MemberSecret::generate();
        let key = secret.to_stored();
        let cases = [
            ("open.key", key.expose_secret(), 0o644, "every user"),
            (
                "group-w.key",
                key.expose_secret(),
                0o460,
                "group may change",
            ),
            (
                "other.key",
                "tenantry-data-key:v1:00",
                0o400,
                "not a Tenantry member key",
            ),
        ];
        for (name, text, mode, says) in cases {
            let path = write(dir.path(), name, text, mode);
            let err = MemberKeyFile::new(&path)
                .load_text(&KeyEntry::member("r1"))
                .unwrap_err();
            let shown = err.to_string();
            assert_eq!(err.code(), "member_key_file_unusable");
            assert!(shown.contains(says), "{shown}");
            assert!(shown.contains(name), "{shown}");
            // The key itself is never in a message.
            assert!(!shown.contains(&key.expose_secret()[24..]), "{shown}");
        }
        let err = MemberKeyFile::new(dir.path())
            .load_text(&KeyEntry::member("r1"))
            .unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        let err = MemberKeyFile::new(dir.path().join("missing.key"))
            .load_text(&KeyEntry::member("r1"))
            .unwrap_err();
        assert!(err.to_string().contains("missing.key"), "{err}");
        // Group read is allowed (a Secret volume with fsGroup is 0440).
        let path = write(dir.path(), "fsgroup.key", key.expose_secret(), 0o440);
        assert!(MemberKeyFile::new(&path)
            .load_text(&KeyEntry::member("r1"))
            .unwrap()
            .is_some());
    }
}

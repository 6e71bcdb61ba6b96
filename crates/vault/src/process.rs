//! Keeping key material out of core dumps.
//!
//! The data key and decrypted connection strings live in this process's
//! memory while it runs. [`harden_process`] makes the process non-dumpable
//! (Linux `PR_SET_DUMPABLE` 0: no core file, and no `ptrace` attach or
//! `/proc/<pid>/mem` read by other processes of the same user) and sets the
//! core-file size limit to 0 on every Unix. Both are called first thing by
//! the CLI and the console.

/// What hardening took effect, for `key status` and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessHardening {
    pub non_dumpable: bool,
    pub core_limit_zero: bool,
}

/// Makes the process non-dumpable and its core limit 0, where the OS allows.
pub fn harden_process() -> ProcessHardening {
    #[cfg(target_os = "linux")]
    let non_dumpable = nix::sys::prctl::set_dumpable(false).is_ok()
        && nix::sys::prctl::get_dumpable().is_ok_and(|d| !d);
    #[cfg(not(target_os = "linux"))]
    let non_dumpable = false;
    #[cfg(unix)]
    let core_limit_zero = {
        use nix::sys::resource::{getrlimit, setrlimit, Resource};
        setrlimit(Resource::RLIMIT_CORE, 0, 0).is_ok()
            && getrlimit(Resource::RLIMIT_CORE).is_ok_and(|(soft, _)| soft == 0)
    };
    #[cfg(not(unix))]
    let core_limit_zero = false;
    ProcessHardening {
        non_dumpable,
        core_limit_zero,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn the_process_becomes_non_dumpable_with_no_core_file() {
        let h = harden_process();
        assert_eq!(
            h,
            ProcessHardening {
                non_dumpable: true,
                core_limit_zero: true
            }
        );
        let status = std::fs::read_to_string("/proc/self/limits").unwrap();
        let core = status
            .lines()
            .find(|l| l.starts_with("Max core file size"))
            .unwrap();
        assert!(core.split_whitespace().nth(4) == Some("0"), "{core}");
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn data_keys_are_locked_in_memory() {
        let _key = crate::DataKey::generate();
        assert!(crate::key_memory_locked());
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let locked_kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmLck:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap();
        assert!(locked_kb >= 4, "VmLck {locked_kb} kB");
    }
}

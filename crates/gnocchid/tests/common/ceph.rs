//! A RADOS pool of a test's own on the throwaway Ceph cluster of
//! `scripts/ceph-test-up.sh` (`GNOCCHI_TEST_CEPH_CONF`), created with the
//! `ceph` CLI and deleted when dropped. gnocchid has no namespace option
//! (upstream has none), so a pool per scenario keeps scenarios apart.

use std::process::{Command, Stdio};

pub struct CephPool {
    pub name: String,
    pub conffile: String,
}

impl CephPool {
    /// Err: why the scenario cannot run (no cluster configured, no `ceph` CLI).
    pub fn create(name: &str) -> Result<CephPool, String> {
        let conffile = std::env::var("GNOCCHI_TEST_CEPH_CONF")
            .ok()
            .filter(|c| !c.is_empty())
            .ok_or("GNOCCHI_TEST_CEPH_CONF unset (eval \"$(scripts/ceph-test-up.sh)\")")?;
        let pool = CephPool {
            name: name.to_string(),
            conffile,
        };
        pool.ceph(&["osd", "pool", "create", name, "8", "8"])?;
        pool.ceph(&["osd", "pool", "application", "enable", name, "gnocchi"])?;
        Ok(pool)
    }

    /// The `[storage]`/`[incoming]` lines of gnocchi.conf for this pool.
    pub fn driver_options(&self) -> String {
        format!(
            "driver = ceph\nceph_pool = {}\nceph_conffile = {}\n",
            self.name, self.conffile
        )
    }

    fn ceph(&self, args: &[&str]) -> Result<(), String> {
        let out = Command::new("ceph")
            .arg("--conf")
            .arg(&self.conffile)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run the ceph CLI: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "ceph {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }
}

impl Drop for CephPool {
    fn drop(&mut self) {
        let name = self.name.clone();
        if let Err(e) = self.ceph(&[
            "osd",
            "pool",
            "delete",
            &name,
            &name,
            "--yes-i-really-really-mean-it",
        ]) {
            eprintln!("cannot delete pool {name}: {e}");
        }
    }
}

//! A testbed for one benchmark: brought up from a small model with weir's real agents,
//! torn down when dropped (also when the benchmark fails).
use super::Scratch;
use std::path::PathBuf;
use std::time::Duration;
use testbed::{Launcher, Testbed, Tunnel, UpOptions};

pub(crate) struct Bed {
    pub tb: Testbed,
    dir: PathBuf,
    _scratch: Scratch,
}

/// `weir agent` with its realizations logged (`realized flow_mods=N`), so benchmarks can
/// count what each agent sent.
fn agent_launcher() -> anyhow::Result<Launcher> {
    let exe = std::env::current_exe()?;
    Ok(Launcher { program: "/usr/bin/env".into(), args: vec!["WEIR_LOG=info".into(), exe.display().to_string(), "agent".into()] })
}

impl Bed {
    /// A testbed of `nodes` nodes from the model text `model`; `tag` (one letter) keeps the
    /// names of concurrent benchmarks apart.
    pub fn up(tag: char, model: &str, nodes: usize) -> anyhow::Result<Bed> {
        super::progress(format_args!("bringing up a {nodes}-node testbed"));
        let scratch = Scratch::new(&format!("bed-{tag}"))?;
        let model_file = scratch.path().join("model.yaml");
        std::fs::write(&model_file, model)?;
        let dir = scratch.path().join("state");
        let opts = UpOptions {
            model: model_file,
            nodes,
            dir: dir.clone(),
            prefix: format!("b{tag}{}", std::process::id() % 1000),
            tunnel: Tunnel::Geneve,
            agent: Some(agent_launcher()?),
            server: Launcher::current_exe(&["testbed", "serve"])?,
            kube: false,
            node_policy: testbed::NodePolicy::Nftables,
        };
        match testbed::up(&opts, &mut |_| {}) {
            Ok(tb) => Ok(Bed { tb, dir, _scratch: scratch }),
            Err(e) => {
                let _ = testbed::down(&dir, &mut |_| {});
                Err(anyhow::anyhow!("testbed up: {e}"))
            }
        }
    }

    /// Writes manifests into every agent's source and waits until all realized them.
    pub fn apply(&self, name: &str, text: &str) -> anyhow::Result<()> {
        let dir = self._scratch.path().join("apply");
        std::fs::create_dir_all(&dir)?;
        let file = dir.join(name);
        std::fs::write(&file, text)?;
        self.tb.apply(&[file], Duration::from_secs(120)).map_err(|e| anyhow::anyhow!("applying {name}: {e}"))?;
        Ok(())
    }

    /// Removes manifests `name` from every agent's source and waits until all realized it.
    pub fn delete(&self, name: &str) -> anyhow::Result<()> {
        let file = self._scratch.path().join("apply").join(name);
        self.tb.delete(&[file], Duration::from_secs(120)).map_err(|e| anyhow::anyhow!("deleting {name}: {e}"))?;
        Ok(())
    }

    /// Writes a manifest file into every agent's source without waiting (the trigger of a
    /// latency measurement).
    pub fn write_now(&self, name: &str, text: &str) -> anyhow::Result<()> {
        for n in self.tb.nodes() {
            let dir = testbed::manifests::manifests_dir(n);
            testbed::manifests::write_atomic(&dir.join(name), text.as_bytes())?;
        }
        Ok(())
    }

    /// Removes a manifest file from every agent's source without waiting.
    pub fn remove_now(&self, name: &str) -> anyhow::Result<()> {
        for n in self.tb.nodes() {
            let p = testbed::manifests::manifests_dir(n).join(name);
            if p.exists() {
                std::fs::remove_file(&p)?;
            }
        }
        Ok(())
    }

    pub fn scratch(&self) -> &std::path::Path {
        self._scratch.path()
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        let _ = testbed::down(&self.dir, &mut |_| {});
    }
}

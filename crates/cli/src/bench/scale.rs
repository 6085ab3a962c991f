//! The synthetic cluster the scale benchmarks share: sizes, and the compiled flow set of one
//! node of it.
use pipeline::{Compiled, Topology};
use policy::Cluster;
use policy::synthetic::{Spec, Synthetic};

/// The node whose flows the benchmarks compile and install.
pub(crate) const NODE: &str = "syn-1";
/// Seed of the synthetic clusters unless `--seed` says otherwise.
pub(crate) const SEED: u64 = 42;

/// The full-size cluster (10k pods, 1000 policies), or the quick one (1k, 100).
pub(crate) fn spec(quick: bool, seed: u64) -> Spec {
    if quick { Spec { pods: 1000, policies: 100, seed } } else { Spec { pods: 10_000, policies: 1000, seed } }
}

/// `PODSxPOLICIES`, e.g. `10000x1000`.
pub(crate) fn parse_size(s: &str, seed: u64) -> anyhow::Result<Spec> {
    let (p, k) = s.split_once('x').ok_or_else(|| anyhow::anyhow!("size {s:?}: expected PODSxPOLICIES, e.g. 10000x1000"))?;
    let pods = p.parse().map_err(|e| anyhow::anyhow!("size {s:?}: pods {p:?}: {e}"))?;
    let policies = k.parse().map_err(|e| anyhow::anyhow!("size {s:?}: policies {k:?}: {e}"))?;
    anyhow::ensure!(pods > 0, "size {s:?}: pods must be at least 1");
    Ok(Spec { pods, policies, seed })
}

/// A generated cluster and node [`NODE`]'s view of it.
pub(crate) struct Scale {
    pub syn: Synthetic,
    pub cluster: Cluster,
    pub topo: Topology,
}

impl Scale {
    pub fn new(spec: Spec) -> anyhow::Result<Scale> {
        super::progress(format_args!("generating a {}-pod / {}-policy cluster", spec.pods, spec.policies));
        let syn = Synthetic::generate(spec);
        let cluster = syn.cluster();
        anyhow::ensure!(cluster.errors.is_empty(), "synthetic cluster has invalid objects: {:?}", cluster.errors.first());
        let topo = pipeline::offline_topology(&cluster, NODE)
            .ok_or_else(|| anyhow::anyhow!("node {NODE} missing from the synthetic cluster"))?;
        Ok(Scale { syn, cluster, topo })
    }

    pub fn compile(&self) -> Compiled {
        pipeline::compile(&self.cluster, &self.topo)
    }
}

//! The incremental tests' node: a compiler updated event by event, as the agent updates it,
//! with a mirror of what a switch would hold after each update. Each test adds the events it
//! plays in its own `impl Node`.

use pipeline::{FlowSet, NodeCompiler, Topology, diff_keys};
use policy::Cluster;

/// A node's compiler with a mirror of what a switch would hold after each update.
pub struct Node {
    pub cluster: Cluster,
    pub topo: Topology,
    pub compiler: NodeCompiler,
    pub switch: FlowSet,
}

impl Node {
    /// The node compiled from scratch, its switch holding those flows.
    pub fn new(cluster: Cluster, topo: Topology) -> Node {
        let compiler = NodeCompiler::new(&cluster, topo.clone());
        let switch = compiler.flows().clone();
        Node { cluster, topo, compiler, switch }
    }

    /// The switch catches up through the changed keys only; both it and the compiler must
    /// equal a compile from scratch.
    pub fn check(&mut self, what: &str) {
        let changed = self.compiler.take_changed();
        diff_keys(self.compiler.flows(), &mut self.switch, &changed);
        let fresh = NodeCompiler::new(&self.cluster, self.topo.clone());
        assert!(self.compiler.flows() == fresh.flows(), "{what}: incremental flows differ from a fresh compile");
        assert!(self.switch == *fresh.flows(), "{what}: the changed keys missed a flow");
        assert_eq!(self.compiler.rules(), fresh.rules(), "{what}: conj_id index differs");
        // Shared conjunctions joined without resolving must hold what resolving gives.
        if let Err(e) = self.compiler.verify_shared(&self.cluster) {
            panic!("{what}: {e}");
        }
    }
}

use super::*;
use policy::manifest::file::parse_file;

const PODS: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x, labels: {app: a}}\nstatus: {podIP: 10.0.0.1}\n---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec:\n  podSelector: {matchLabels: {app: a}}\n  ingress:\n  - from: [{podSelector: {matchExpressions: [{key: app, operator: NotIn, values: [b, c]}]}}, {ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}}]\n    ports: [{port: http}, {port: 80, endPort: 90, protocol: UDP}]\n";
const NODE: &str = "apiVersion: v1\nkind: Node\nmetadata: {name: n1}\nspec: {podCIDR: 10.0.0.0/24}\nstatus: {addresses: [{type: InternalIP, address: 192.168.0.1}]}\n---\napiVersion: weir.io/v1alpha1\nkind: TrafficControl\nmetadata: {name: tc}\nspec:\n  appliedTo: {podSelector: {matchLabels: {app: a}}}\n  direction: Ingress\n  action: Mirror\n  targetPort: {geneve: {remoteIP: 10.9.9.9}}\n";

fn parsed() -> Manifests {
    parse_file("/m/pods.yaml", PODS).unwrap()
}

fn open(state: &tempfile::TempDir) -> ManifestStore {
    ManifestStore::open(state.path(), Path::new("/m")).unwrap()
}

#[test]
fn an_entry_round_trips_with_everything_it_holds() {
    let m = parsed();
    let bytes = encode(Path::new("/m/pods.yaml"), 7, PODS, &m).unwrap();
    let (path, entry) = decode(&bytes).unwrap();
    assert_eq!(path, Path::new("/m/pods.yaml"));
    assert_eq!((entry.generation, &*entry.text), (7, PODS));
    assert_eq!(decode_payload(entry.payload.as_deref().unwrap()).unwrap(), m);
}

#[test]
fn a_view_round_trips() {
    let parts = [parsed(), parse_file("/m/node.yaml", NODE).unwrap()];
    assert!(parts[1].errors.is_empty(), "{:?}", parts[1].errors);
    let view = Cluster::from_parts(&[&parts[0], &parts[1]]);
    let files = vec![(PathBuf::from("/m/node.yaml"), 3), (PathBuf::from("/m/pods.yaml"), 9)];
    let bytes = encode_view(&files, &view).unwrap();
    let (read, payload) = decode_view(&bytes).unwrap().unwrap();
    assert_eq!(read, files);
    assert_eq!(Cluster::from_stored(payload).unwrap(), view);
}

#[test]
fn any_flipped_bit_or_truncation_is_caught() {
    let bytes = encode(Path::new("/m/pods.yaml"), 1, PODS, &parsed()).unwrap();
    let view = encode_view(&[(PathBuf::from("/m/pods.yaml"), 1)], &Cluster::from_parts(&[&parsed()])).unwrap();
    for i in (0..bytes.len()).step_by(7) {
        let mut b = bytes.clone();
        b[i] ^= 1 << (i % 8);
        assert!(decode(&b).is_err(), "bit flip at {i} went unnoticed");
    }
    for i in (0..view.len()).step_by(5) {
        let mut b = view.clone();
        b[i] ^= 1 << (i % 8);
        assert!(decode_view(&b).is_err(), "bit flip at {i} of the view went unnoticed");
    }
    for n in (0..bytes.len()).step_by(13) {
        assert!(decode(&bytes[..n]).is_err(), "truncation to {n} went unnoticed");
    }
    assert!(decode_view(&bytes).is_err(), "an entry is not a view");
    assert!(decode(&view).is_err(), "a view is not an entry");
}

#[test]
fn an_entry_of_another_build_keeps_only_its_text() {
    let m = parsed();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("e");
    std::fs::write(&file, encode(Path::new("/m/pods.yaml"), 1, PODS, &m).unwrap()).unwrap();
    as_if_from_another_build(&file);
    let (_, entry) = decode(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(&*entry.text, PODS);
    assert_eq!(entry.payload, None);
}

/// Random bytes, and valid entries and views with random changes behind a recomputed
/// checksum (so that the readers past the checksum are exercised too), never panic.
#[test]
fn random_bytes_never_panic() {
    let mut rng = policy::synthetic::Rng::new(7);
    let entry = encode(Path::new("/m/pods.yaml"), 1, PODS, &parsed()).unwrap();
    let view = encode_view(&[(PathBuf::from("/m/pods.yaml"), 1)], &Cluster::from_parts(&[&parsed()])).unwrap();
    for round in 0..6000 {
        let valid = if round % 2 == 0 { &entry } else { &view };
        let mut b = if round % 3 == 0 {
            (0..rng.below(300)).map(|_| rng.next_u64() as u8).collect::<Vec<u8>>()
        } else {
            let mut b = valid.clone();
            for _ in 0..1 + rng.below(8) {
                let i = rng.below(b.len());
                match rng.below(3) {
                    0 => b[i] = rng.next_u64() as u8,
                    1 => {
                        b.remove(i);
                    }
                    _ => b.insert(i, rng.next_u64() as u8),
                }
            }
            b
        };
        if round % 3 == 2 && b.len() > 8 {
            let body = b.len() - 8;
            let sum = hash64(&b[..body]);
            b[body..].copy_from_slice(&sum.to_le_bytes());
        }
        if let Ok((_, e)) = decode(&b)
            && let Some(p) = e.payload
        {
            let _ = decode_payload(&p);
        }
        if let Ok(Some((_, payload))) = decode_view(&b) {
            let _ = Cluster::from_stored(payload);
        }
    }
}

#[test]
fn entries_are_written_read_back_and_removed() {
    let state = tempfile::tempdir().unwrap();
    let m = Arc::new(parsed());
    let mut store = open(&state);
    assert!(store.take_loaded().entries.is_empty());
    store.put(Path::new("/m/pods.yaml"), 5, Arc::from(PODS), m.clone());
    store.put(Path::new("/m/other.yaml"), 6, Arc::from(""), Arc::new(Manifests::default()));
    store.remove(Path::new("/m/other.yaml"));
    drop(store);
    let mut store = open(&state);
    let loaded = store.take_loaded();
    assert_eq!(loaded.entries.len(), 1, "{loaded:?}");
    assert_eq!(loaded.entries[Path::new("/m/pods.yaml")], Entry { generation: 5, text: Arc::from(PODS), parsed: Parsed::Now(m.clone()) });
    // No view was stored: the entries' view is built while loading.
    assert_eq!(loaded.view, Some(Cluster::from_parts(&[&m])));
    // Another manifests directory has its own entries.
    let mut other = ManifestStore::open(state.path(), Path::new("/n")).unwrap();
    assert!(other.take_loaded().entries.is_empty());
}

#[test]
fn a_stored_view_is_read_first_and_the_entries_later() {
    let state = tempfile::tempdir().unwrap();
    let (pods, node) = (Arc::new(parsed()), Arc::new(parse_file("/m/node.yaml", NODE).unwrap()));
    let store = open(&state);
    store.put(Path::new("/m/node.yaml"), 1, Arc::from(NODE), node.clone());
    store.put(Path::new("/m/pods.yaml"), 2, Arc::from(PODS), pods.clone());
    store.set_view(Some(vec![(PathBuf::from("/m/node.yaml"), 1, node.clone()), (PathBuf::from("/m/pods.yaml"), 2, pods.clone())]));
    drop(store); // writes the view without waiting for quiet
    let mut store = open(&state);
    let loaded = store.take_loaded();
    assert_eq!(loaded.view, Some(Cluster::from_parts(&[&node, &pods])));
    assert_eq!(loaded.entries[Path::new("/m/pods.yaml")].parsed, Parsed::Later);
    let started = Instant::now();
    let parsed = store.take_parsed();
    assert!(started.elapsed() < PARSE_DELAY, "asked for, the entries are read at once");
    assert_eq!((&parsed[Path::new("/m/pods.yaml")], &parsed[Path::new("/m/node.yaml")]), (&pods, &node));
    // A new version of one file: the view no longer names the entries, and is not used.
    store.put(Path::new("/m/pods.yaml"), 3, Arc::from(PODS), pods.clone());
    drop(store);
    let mut store = open(&state);
    let loaded = store.take_loaded();
    assert_eq!(loaded.entries[Path::new("/m/pods.yaml")].parsed, Parsed::Now(pods.clone()));
    assert_eq!(loaded.view, Some(Cluster::from_parts(&[&node, &pods])), "built from the entries instead");
    assert!(view_file(&store).exists(), "a view that is out of date is not an error");
    // No view (a file is broken): removed.
    store.set_view(None);
    drop(store);
    assert!(!state.path().join(SUBDIR).read_dir().unwrap().flatten().any(|d| d.path().join(VIEW_FILE).exists()));
}

#[test]
fn a_corrupt_view_is_ignored_and_removed() {
    let state = tempfile::tempdir().unwrap();
    let pods = Arc::new(parsed());
    let store = open(&state);
    store.put(Path::new("/m/pods.yaml"), 2, Arc::from(PODS), pods.clone());
    store.set_view(Some(vec![(PathBuf::from("/m/pods.yaml"), 2, pods.clone())]));
    let view = view_file(&store);
    drop(store);
    let mut bytes = std::fs::read(&view).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x10;
    std::fs::write(&view, bytes).unwrap();
    let mut store = open(&state);
    let loaded = store.take_loaded();
    assert_eq!(loaded.entries[Path::new("/m/pods.yaml")].parsed, Parsed::Now(pods.clone()));
    assert!(!view.exists());
}

#[test]
fn a_corrupt_entry_file_is_ignored_and_removed() {
    let state = tempfile::tempdir().unwrap();
    let store = open(&state);
    let dir = store.dir().to_path_buf();
    store.put(Path::new("/m/pods.yaml"), 1, Arc::from(PODS), Arc::new(parsed()));
    drop(store);
    let file = dir.join(entry_name(Path::new("/m/pods.yaml")));
    let mut bytes = std::fs::read(&file).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    std::fs::write(&file, &bytes).unwrap();
    // An entry stored under another file's name, and garbage.
    std::fs::copy(&file, dir.join(entry_name(Path::new("/m/x.yaml")))).unwrap();
    std::fs::write(dir.join("junk.entry"), b"\x00\x01garbage").unwrap();
    let mut store = open(&state);
    assert!(store.take_loaded().entries.is_empty());
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "unusable entries are removed");
}

#[test]
fn a_crash_leftover_is_removed_by_the_writer_and_never_by_a_reader_racing_a_write() {
    let state = tempfile::tempdir().unwrap();
    let dir = open(&state).dir().to_path_buf();
    let in_flight = dir.join("0123.tmp");
    std::fs::write(&in_flight, b"half").unwrap();
    load_entries(&dir);
    assert!(in_flight.exists(), "a reader may run while the writer renames its temporary file");
    drop(open(&state));
    assert!(!in_flight.exists(), "a new writer removes what a crashed one left");
}

#[test]
fn the_state_directory_may_not_be_inside_the_manifests_directory() {
    let m = tempfile::tempdir().unwrap();
    let err = ManifestStore::open(&m.path().join("state"), m.path()).unwrap_err();
    assert!(matches!(err, StoreError::InsideManifests { .. }), "{err}");
}

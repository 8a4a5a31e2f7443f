//! Property tests of the RFC 9162 Merkle tree against two constructions that share no code
//! with it: a naive recursion written straight from the RFC's MTH, PATH and SUBPROOF
//! definitions (with its own hashing), and the `rs_merkle` crate.
//!
//! Reproducing a failure: proptest prints the minimal failing input, and every input here
//! (sizes, indices and a `salt` from which all leaves are derived) fully determines the case,
//! so that printed input is the seed. `PROPTEST_RNG_SEED=<u64>` replays a whole run. Failure
//! files are off because the crate directory may be read-only in CI.

use medledger_crypto::merkle::{
    CompleteSubtrees, ConsistencyProof, InclusionProof, MAX_PROOF_HASHES, MerkleTree, ProofError, leaf_hash,
    root_of,
};
use medledger_crypto::{Digest, sha256};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

/// Largest tree in the many-case tests: big enough for every tree shape up to depth 9.
const SMALL_TREE_MAX_LEAVES: u64 = 300;
/// Largest tree in the few-case test, as the brief's "random trees up to 10,000 leaves".
const LARGE_TREE_MAX_LEAVES: u64 = 10_000;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..ProptestConfig::default()
    }
}

// ---- The naive construction, from RFC 9162 §2.1.1, §2.1.3.1 and §2.1.4.1 ----

fn naive_leaf(data: &[u8]) -> Digest {
    sha256(&[&[0x00], data].concat())
}

fn naive_node(left: &Digest, right: &Digest) -> Digest {
    sha256(&[&[0x01][..], left.as_bytes(), right.as_bytes()].concat())
}

/// The RFC's k: the largest power of two smaller than n (n > 1), by counting up.
fn naive_split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// MTH(D[n]) over leaf hashes.
fn naive_root(leaves: &[Digest]) -> Digest {
    match leaves.len() {
        0 => sha256(b""),
        1 => leaves[0],
        n => {
            let k = naive_split(n);
            naive_node(&naive_root(&leaves[..k]), &naive_root(&leaves[k..]))
        }
    }
}

/// PATH(m, D[n]).
fn naive_path(m: usize, leaves: &[Digest]) -> Vec<Digest> {
    let n = leaves.len();
    if n <= 1 {
        return Vec::new();
    }
    let k = naive_split(n);
    if m < k {
        let mut path = naive_path(m, &leaves[..k]);
        path.push(naive_root(&leaves[k..]));
        path
    } else {
        let mut path = naive_path(m - k, &leaves[k..]);
        path.push(naive_root(&leaves[..k]));
        path
    }
}

/// SUBPROOF(m, D[n], b).
fn naive_subproof(m: usize, leaves: &[Digest], whole_first_tree: bool) -> Vec<Digest> {
    let n = leaves.len();
    if m == n {
        return if whole_first_tree { Vec::new() } else { vec![naive_root(leaves)] };
    }
    let k = naive_split(n);
    if m <= k {
        let mut proof = naive_subproof(m, &leaves[..k], whole_first_tree);
        proof.push(naive_root(&leaves[k..]));
        proof
    } else {
        let mut proof = naive_subproof(m - k, &leaves[k..], false);
        proof.push(naive_root(&leaves[..k]));
        proof
    }
}

/// Leaf hashes of `count` distinct entries derived from `salt`.
fn leaves(count: u64, salt: u64) -> Vec<Digest> {
    (0..count).map(|index| naive_leaf(&[salt.to_le_bytes(), index.to_le_bytes()].concat())).collect()
}

fn usize_of(value: u64) -> usize {
    usize::try_from(value).expect("test sizes fit in usize")
}

// ---- rs_merkle, configured to hash like RFC 9162 ----

/// rs_merkle builds layer by layer and promotes an odd last node unchanged, which gives the same
/// tree as RFC 9162's split at the largest power of two for every size (the tests below check
/// this for all sizes, not only powers of two). It has no domain separation of its own, so
/// interior nodes are hashed here with the RFC's 0x01 prefix and leaves arrive already hashed
/// with the 0x00 prefix. It has no empty-tree root and no consistency proofs, so it is used for
/// roots of non-empty trees and for inclusion proofs only.
#[derive(Clone)]
struct Rfc9162Hasher;

impl rs_merkle::Hasher for Rfc9162Hasher {
    type Hash = [u8; 32];

    fn hash(data: &[u8]) -> [u8; 32] {
        naive_leaf(data).0
    }

    fn concat_and_hash(left: &[u8; 32], right: Option<&[u8; 32]>) -> [u8; 32] {
        match right {
            Some(right) => naive_node(&Digest(*left), &Digest(*right)).0,
            None => *left,
        }
    }
}

fn rs_merkle_tree(leaves: &[Digest]) -> rs_merkle::MerkleTree<Rfc9162Hasher> {
    let raw: Vec<[u8; 32]> = leaves.iter().map(|leaf| leaf.0).collect();
    rs_merkle::MerkleTree::<Rfc9162Hasher>::from_leaves(&raw)
}

fn raw_hashes(digests: &[Digest]) -> Vec<[u8; 32]> {
    digests.iter().map(|digest| digest.0).collect()
}

// ---- Shared checks ----

fn check_roots(all: &[Digest], size: u64) -> Result<(), TestCaseError> {
    let tree = MerkleTree::from_leaf_hashes(all.iter().copied());
    let prefix = &all[..usize_of(size)];
    let expected = naive_root(prefix);
    prop_assert_eq!(tree.root_at(size), Ok(expected));
    prop_assert_eq!(root_of(prefix), expected);
    prop_assert_eq!(MerkleTree::from_leaf_hashes(prefix.iter().copied()).root(), expected);
    if size > 0 {
        prop_assert_eq!(rs_merkle_tree(prefix).root().map(Digest), Some(expected));
    }
    Ok(())
}

fn check_inclusion(
    tree: &MerkleTree,
    all: &[Digest],
    leaf_index: u64,
    size: u64,
) -> Result<(), TestCaseError> {
    let prefix = &all[..usize_of(size)];
    let root = naive_root(prefix);
    let leaf = all[usize_of(leaf_index)];
    let proof = tree.inclusion_proof(leaf_index, size).expect("index and size are in range");
    prop_assert_eq!(&proof.audit_path, &naive_path(usize_of(leaf_index), prefix));
    prop_assert_eq!(proof.verify(&leaf, &root), Ok(()));
    let rs_proof = rs_merkle_tree(prefix).proof(&[usize_of(leaf_index)]);
    prop_assert_eq!(rs_proof.proof_hashes().to_vec(), raw_hashes(&proof.audit_path));
    let ours_in_rs = rs_merkle::MerkleProof::<Rfc9162Hasher>::new(raw_hashes(&proof.audit_path));
    prop_assert!(ours_in_rs.verify(root.0, &[usize_of(leaf_index)], &[leaf.0], usize_of(size)));
    Ok(())
}

fn check_consistency(
    tree: &MerkleTree,
    all: &[Digest],
    first: u64,
    second: u64,
) -> Result<(), TestCaseError> {
    let first_root = naive_root(&all[..usize_of(first)]);
    let second_leaves = &all[..usize_of(second)];
    let second_root = naive_root(second_leaves);
    let proof = tree.consistency_proof(first, second).expect("sizes are in range");
    prop_assert_eq!(&proof.path, &naive_subproof(usize_of(first), second_leaves, true));
    prop_assert_eq!(proof.verify(&first_root, &second_root), Ok(()));
    Ok(())
}

/// A tree of `total` leaves and a proof size in 1..=total.
fn tree_and_size(max_leaves: u64) -> impl Strategy<Value = (u64, u64, u64)> {
    (1..=max_leaves).prop_flat_map(|total| (Just(total), 1..=total, any::<u64>()))
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn roots_agree_with_naive_and_rs_merkle((total, size, salt) in tree_and_size(SMALL_TREE_MAX_LEAVES)) {
        let all = leaves(total, salt);
        check_roots(&all, size)?;
        check_roots(&all, 0)?;
    }

    #[test]
    fn inclusion_proofs_match_naive_and_rs_merkle(
        (total, size, salt) in tree_and_size(SMALL_TREE_MAX_LEAVES),
        index_seed in any::<u64>(),
    ) {
        let all = leaves(total, salt);
        let tree = MerkleTree::from_leaf_hashes(all.iter().copied());
        check_inclusion(&tree, &all, index_seed % size, size)?;
    }

    #[test]
    fn consistency_proofs_match_naive((total, second, salt) in tree_and_size(SMALL_TREE_MAX_LEAVES), first_seed in any::<u64>()) {
        let all = leaves(total, salt);
        let tree = MerkleTree::from_leaf_hashes(all.iter().copied());
        check_consistency(&tree, &all, 1 + first_seed % second, second)?;
        check_consistency(&tree, &all, second, second)?;
    }
}

proptest! {
    #![proptest_config(config(16))]

    #[test]
    fn large_trees_match_naive_and_rs_merkle(
        (total, size, salt) in tree_and_size(LARGE_TREE_MAX_LEAVES),
        index_seed in any::<u64>(),
        first_seed in any::<u64>(),
    ) {
        let all = leaves(total, salt);
        let tree = MerkleTree::from_leaf_hashes(all.iter().copied());
        check_roots(&all, size)?;
        check_inclusion(&tree, &all, index_seed % size, size)?;
        check_consistency(&tree, &all, 1 + first_seed % size, size)?;
    }
}

// ---- Tampering ----

/// Every single-bit flip of every hash in `path`.
fn bit_flips(path: &[Digest]) -> impl Iterator<Item = Vec<Digest>> + '_ {
    (0..path.len()).flat_map(move |position| {
        (0..Digest::LEN * 8).map(move |bit| {
            let mut tampered = path.to_vec();
            tampered[position].0[bit / 8] ^= 1 << (bit % 8);
            tampered
        })
    })
}

/// Every path with one element removed, and with one element (a foreign hash, or a copy of a
/// neighbour) inserted at every position.
fn resized_paths(path: &[Digest], foreign: Digest) -> Vec<Vec<Digest>> {
    let mut paths = Vec::new();
    for position in 0..path.len() {
        let mut removed = path.to_vec();
        removed.remove(position);
        paths.push(removed);
    }
    for position in 0..=path.len() {
        let neighbour = path.get(position).or(path.last()).copied().unwrap_or(foreign);
        for extra in [foreign, neighbour] {
            let mut added = path.to_vec();
            added.insert(position, extra);
            paths.push(added);
        }
    }
    paths
}

/// The error for a path with hashes removed or added: the RFC's length checks must catch it
/// before any root comparison, and name the length the sizes call for.
fn wrong_length(genuine: &[Digest], tampered: &[Digest]) -> ProofError {
    ProofError::WrongPathLength { expected_hashes: genuine.len(), actual_hashes: tampered.len() }
}

fn tampered_inclusion_fails(tree: &MerkleTree, leaf_index: u64, size: u64) -> Result<(), TestCaseError> {
    let proof = tree.inclusion_proof(leaf_index, size).expect("in range");
    let leaf = tree.leaf(leaf_index).expect("leaf exists");
    let root = tree.root_at(size).expect("in range");
    prop_assert_eq!(proof.verify(&leaf, &root), Ok(()));
    let with_path = |audit_path| InclusionProof { audit_path, ..proof.clone() };
    for path in bit_flips(&proof.audit_path) {
        let result = with_path(path.clone()).verify(&leaf, &root);
        prop_assert!(matches!(result, Err(ProofError::RootMismatch { .. })), "path {:?}", path);
    }
    for path in resized_paths(&proof.audit_path, sha256(b"foreign")) {
        let result = with_path(path.clone()).verify(&leaf, &root);
        prop_assert_eq!(result, Err(wrong_length(&proof.audit_path, &path)), "path {:?}", path);
    }
    for other_index in (0..size + 2).filter(|&other| other != leaf_index).chain([u64::MAX]) {
        let moved = InclusionProof { leaf_index: other_index, ..proof.clone() };
        prop_assert!(moved.verify(&leaf, &root).is_err(), "leaf index {}", other_index);
    }
    // The hashes do not bind the tree size; the signed root for that size does. So a changed
    // size must fail against the root a verifier would hold for the size claimed.
    for other_size in (1..=tree.len()).filter(|&other| other != size) {
        let resized = InclusionProof { tree_size: other_size, ..proof.clone() };
        let other_root = tree.root_at(other_size).expect("in range");
        prop_assert!(resized.verify(&leaf, &other_root).is_err(), "tree size {}", other_size);
    }
    for other_leaf in (0..tree.len()).filter_map(|index| tree.leaf(index)).filter(|&other| other != leaf) {
        prop_assert!(proof.verify(&other_leaf, &root).is_err(), "leaf {}", other_leaf);
    }
    // In a one-leaf tree the leaf is the root, hence the filter.
    let other_roots = [empty_root_of(tree), leaf].into_iter().filter(|&other| other != root);
    for wrong_root in bit_flips(&[root]).map(|flipped| flipped[0]).chain(other_roots) {
        prop_assert!(proof.verify(&leaf, &wrong_root).is_err(), "root {}", wrong_root);
    }
    Ok(())
}

fn empty_root_of(tree: &MerkleTree) -> Digest {
    tree.root_at(0).expect("size 0 is always in range")
}

fn tampered_consistency_fails(tree: &MerkleTree, first: u64, second: u64) -> Result<(), TestCaseError> {
    let proof = tree.consistency_proof(first, second).expect("in range");
    let first_root = tree.root_at(first).expect("in range");
    let second_root = tree.root_at(second).expect("in range");
    prop_assert_eq!(proof.verify(&first_root, &second_root), Ok(()));
    let with_path = |path| ConsistencyProof { path, ..proof.clone() };
    for path in bit_flips(&proof.path) {
        let result = with_path(path.clone()).verify(&first_root, &second_root);
        let root_mismatch = matches!(
            result,
            Err(ProofError::FirstRootMismatch { .. } | ProofError::SecondRootMismatch { .. })
        );
        prop_assert!(root_mismatch, "path {:?}", path);
    }
    for path in resized_paths(&proof.path, sha256(b"foreign")) {
        let result = with_path(path.clone()).verify(&first_root, &second_root);
        prop_assert_eq!(result, Err(wrong_length(&proof.path, &path)), "path {:?}", path);
    }
    for other_first in (0..=second + 1).filter(|&other| other != first) {
        let moved = ConsistencyProof { first_size: other_first, ..proof.clone() };
        let other_root = tree.root_at(other_first).unwrap_or(first_root);
        prop_assert!(moved.verify(&other_root, &second_root).is_err(), "first size {}", other_first);
    }
    for other_second in (0..=tree.len()).filter(|&other| other != second) {
        let moved = ConsistencyProof { second_size: other_second, ..proof.clone() };
        let other_root = tree.root_at(other_second).expect("in range");
        prop_assert!(moved.verify(&first_root, &other_root).is_err(), "second size {}", other_second);
    }
    for wrong_root in bit_flips(&[first_root]).map(|flipped| flipped[0]) {
        prop_assert!(proof.verify(&wrong_root, &second_root).is_err(), "first root {}", wrong_root);
    }
    for wrong_root in bit_flips(&[second_root]).map(|flipped| flipped[0]) {
        prop_assert!(proof.verify(&first_root, &wrong_root).is_err(), "second root {}", wrong_root);
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn every_tampered_inclusion_proof_fails(
        (total, size, salt) in tree_and_size(SMALL_TREE_MAX_LEAVES),
        index_seed in any::<u64>(),
    ) {
        let tree = MerkleTree::from_leaf_hashes(leaves(total, salt));
        tampered_inclusion_fails(&tree, index_seed % size, size)?;
    }

    #[test]
    fn every_tampered_consistency_proof_fails(
        (total, second, salt) in tree_and_size(SMALL_TREE_MAX_LEAVES),
        first_seed in any::<u64>(),
    ) {
        let tree = MerkleTree::from_leaf_hashes(leaves(total, salt));
        tampered_consistency_fails(&tree, 1 + first_seed % second, second)?;
    }
}

#[test]
fn crate_hashing_matches_the_naive_hashing() {
    let (left, right) = (naive_leaf(b"left"), naive_leaf(b"right"));
    assert_eq!(leaf_hash(b"left"), left);
    assert_eq!(medledger_crypto::merkle::node_hash(&left, &right), naive_node(&left, &right));
    assert_eq!(medledger_crypto::merkle::empty_root(), naive_root(&[]));
}

/// Why `verify` callers must take `tree_size` from the signed tree head and not from the proof:
/// the path of leaf 0 in a 3-leaf tree is also a well-formed path for a 4-leaf tree, and it
/// leads to the same (3-leaf) root.
#[test]
fn tree_size_is_bound_by_the_signed_root_not_by_the_path() {
    let tree = MerkleTree::from_leaf_hashes(leaves(4, 7));
    let leaf = tree.leaf(0).expect("leaf 0 exists");
    let root_3 = tree.root_at(3).expect("in range");
    let claims_4 = InclusionProof { tree_size: 4, ..tree.inclusion_proof(0, 3).expect("in range") };
    assert_eq!(claims_4.verify(&leaf, &root_3), Ok(()));
    assert!(matches!(claims_4.verify(&leaf, &tree.root()), Err(ProofError::RootMismatch { .. })));
}

#[test]
fn paths_over_the_bound_are_rejected_before_hashing() {
    let tree = MerkleTree::from_leaf_hashes(leaves(2, 1));
    let root = tree.root();
    let too_long = vec![root; MAX_PROOF_HASHES + 1];
    let inclusion = InclusionProof { leaf_index: 0, tree_size: 2, audit_path: too_long.clone() };
    let over_limit = Err(ProofError::PathOverLimit { hash_count: MAX_PROOF_HASHES + 1 });
    assert_eq!(inclusion.verify(&root, &root), over_limit);
    let consistency = ConsistencyProof { first_size: 1, second_size: 2, path: too_long };
    assert_eq!(consistency.verify(&root, &root), over_limit);
}

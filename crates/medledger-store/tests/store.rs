//! The store on real redb files: round trips, and the checks it makes when it opens.

use medledger_crypto::merkle::CompleteSubtrees as _;
use medledger_crypto::{SigningKey, sha256};
use medledger_state::{Chain, VerifiedTx};
use medledger_store::{Store, StoreError, TxLocation, database_path, tables};
use medledger_types::{ChainId, Genesis, Label, Payload, TxBody};
use redb::{ReadableDatabase as _, ReadableTable as _};

fn genesis(proposer: &SigningKey, member: &SigningKey) -> Genesis {
    let chain_id = ChainId::new("store-test").expect("chain id");
    let administrator = SigningKey::from_seed(&[3; 32]).public_key();
    Genesis::single_hospital(chain_id, 0, proposer.public_key(), administrator, [member.public_key()])
}

/// A store with `blocks` committed blocks of three anchors each.
fn chain_with_blocks(dir: &std::path::Path, blocks: u64) -> (Store, Chain, Vec<VerifiedTx>) {
    let proposer = SigningKey::from_seed(&[1; 32]);
    let member = SigningKey::from_seed(&[2; 32]);
    let (store, mut chain) = Store::create(dir, &genesis(&proposer, &member)).expect("create");
    let mut all = Vec::new();
    for block in 0..blocks {
        let txs: Vec<VerifiedTx> = (0..3)
            .map(|index| {
                let nonce = block * 3 + index;
                let label = Label::new(format!("doc/{nonce}")).expect("label");
                let tx = TxBody {
                    chain_id: ChainId::new("store-test").expect("chain id"),
                    signer: member.public_key(),
                    nonce,
                    payload: Payload::Anchor { label, digest: sha256(&nonce.to_be_bytes()) },
                }
                .sign(&member);
                VerifiedTx::verify(tx).expect("valid")
            })
            .collect();
        let verified = chain.build(&txs, 10 + block, &proposer);
        store.commit(&verified).expect("commit");
        chain.commit(verified);
        all.extend(txs);
    }
    (store, chain, all)
}

#[test]
fn committed_blocks_survive_reopening() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, chain, txs) = chain_with_blocks(dir.path(), 4);
    drop(store);
    let (store, reopened) = Store::open(dir.path()).expect("reopen");
    assert_eq!(reopened.height(), 4);
    assert_eq!(reopened.head_hash(), chain.head_hash());
    assert_eq!(reopened.state().root(), chain.state().root());
    assert_eq!(reopened.history().root(), chain.history().root());
    let block = store.block(2).expect("read").expect("block 2");
    assert_eq!(store.height_of(&block.hash()).expect("read"), Some(2));
    assert_eq!(store.receipts(2).expect("read").expect("receipts").len(), 3);
    assert_eq!(store.tx_location(&txs[4].id()).expect("read"), Some(TxLocation { height: 2, index: 1 }));
    assert_eq!(store.block(5).expect("read"), None);
}

#[test]
fn create_refuses_an_existing_chain_and_open_an_empty_dir() {
    let dir = tempfile::tempdir().expect("temp dir");
    assert!(matches!(Store::open(dir.path()), Err(StoreError::NotInitialized(_))));
    let (store, _, _) = chain_with_blocks(dir.path(), 1);
    drop(store);
    let proposer = SigningKey::from_seed(&[1; 32]);
    let member = SigningKey::from_seed(&[2; 32]);
    assert!(matches!(
        Store::create(dir.path(), &genesis(&proposer, &member)),
        Err(StoreError::AlreadyInitialized(_))
    ));
}

#[test]
fn a_store_held_open_is_reported_in_use() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_store, _, _) = chain_with_blocks(dir.path(), 1);
    assert!(matches!(Store::open(dir.path()), Err(StoreError::InUse(_))));
}

#[test]
fn open_rejects_another_format_version() {
    let dir = tempfile::tempdir().expect("temp dir");
    drop(chain_with_blocks(dir.path(), 1));
    {
        let db = redb::Database::open(database_path(dir.path())).expect("open");
        let write = db.begin_write().expect("write");
        write
            .open_table(tables::META)
            .expect("meta")
            .insert("format_version", 99u32.to_be_bytes().as_slice())
            .expect("insert");
        write.commit().expect("commit");
    }
    assert!(matches!(Store::open(dir.path()), Err(StoreError::FormatVersion { found: 99 })));
    assert!(matches!(Store::open_read_only(dir.path()), Err(StoreError::FormatVersion { found: 99 })));
}

#[test]
fn open_rejects_a_state_tree_that_does_not_match_the_last_block() {
    let dir = tempfile::tempdir().expect("temp dir");
    drop(chain_with_blocks(dir.path(), 2));
    {
        let db = redb::Database::open(database_path(dir.path())).expect("open");
        // The root node of version 2 (block 2) has the shortest key among the nodes of that
        // version (keys start with the version, big-endian, then the path); swap in another node.
        let (root_key, other_node) = {
            let read = db.begin_read().expect("read");
            let nodes = read.open_table(tables::STATE_NODES).expect("state nodes");
            let version = 2u64.to_be_bytes();
            let root_key = nodes
                .range(version.as_slice()..)
                .expect("range")
                .map(|entry| entry.expect("read").0.value().to_vec())
                .take_while(|key| key.starts_with(&version))
                .min_by_key(Vec::len)
                .expect("version 2 has a root");
            let other = nodes
                .iter()
                .expect("iter")
                .map(|entry| entry.expect("read"))
                .find(|(key, _)| key.value() != root_key.as_slice())
                .map(|(_, node)| node.value().to_vec())
                .expect("more than one node");
            (root_key, other)
        };
        let write = db.begin_write().expect("write");
        write
            .open_table(tables::STATE_NODES)
            .expect("state nodes")
            .insert(root_key.as_slice(), other_node.as_slice())
            .expect("insert");
        write.commit().expect("commit");
    }
    match Store::open(dir.path()) {
        Err(StoreError::StateMismatch(error)) => {
            assert!(error.to_string().contains("state root mismatch"), "{error}");
        }
        Err(other) => panic!("expected a state mismatch, got {other}"),
        Ok(_) => panic!("a tampered state tree must not open"),
    }
}

#[test]
fn read_only_open_reads_a_closed_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, chain, _) = chain_with_blocks(dir.path(), 3);
    drop(store);
    let reader = Store::open_read_only(dir.path()).expect("read-only");
    assert_eq!(reader.height().expect("height"), 3);
    assert_eq!(reader.header(3).expect("header").hash(), chain.head_hash());
    assert_eq!(reader.genesis().expect("genesis").hash(), chain.genesis_hash());
}

#[test]
fn the_history_is_read_from_the_store_and_added_to_a_store_without_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let blocks = 13;
    let (store, chain, _) = chain_with_blocks(dir.path(), blocks);
    // This chain was never rebased: its whole history is in memory, the model to compare with.
    let model = chain.history().clone();
    drop(store);
    let same_history = |chain: &Chain, how: &str| {
        let history = chain.history();
        assert_eq!(history.len(), blocks, "{how}");
        assert_eq!(history.root(), model.root(), "{how}");
        for second in 1..=blocks {
            assert_eq!(history.root_at(second), model.root_at(second), "{how}: root at {second}");
            for first in 1..=second {
                assert_eq!(
                    history.consistency_proof(first, second),
                    model.consistency_proof(first, second),
                    "{how}: consistency {first}..{second}"
                );
            }
        }
    };
    let (store, reopened) = Store::open(dir.path()).expect("reopen");
    same_history(&reopened, "reopened");
    drop((store, reopened));

    // A store written before the history table existed gets it on its next open, read-only or not.
    let remove_history = || {
        let db = redb::Database::open(database_path(dir.path())).expect("open");
        let txn = db.begin_write().expect("write");
        assert!(txn.delete_table(tables::HISTORY).expect("delete"), "the table was there");
        txn.commit().expect("commit");
    };
    remove_history();
    let reader = Store::open_read_only(dir.path()).expect("read-only open adds the history");
    same_history(&reader.load_chain().expect("load"), "read-only open of an older store");
    drop(reader);
    remove_history();
    let (_store, upgraded) = Store::open(dir.path()).expect("open adds the history");
    same_history(&upgraded, "open of an older store");
}

#[test]
fn open_rejects_a_history_that_does_not_match_the_last_block() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, _, _) = chain_with_blocks(dir.path(), 13);
    drop(store);
    {
        // Blocks 1..=8 as one subtree: part of the root the head's header carries (blocks 1..=12).
        let db = redb::Database::open(database_path(dir.path())).expect("open");
        let txn = db.begin_write().expect("write");
        txn.open_table(tables::HISTORY).expect("history").insert((3u8, 0u64), [7u8; 32]).expect("insert");
        txn.commit().expect("commit");
    }
    match Store::open(dir.path()) {
        Err(StoreError::StateMismatch(error)) => assert!(error.to_string().contains("history"), "{error}"),
        Err(other) => panic!("expected a history mismatch, got {other}"),
        Ok(_) => panic!("a tampered history was accepted"),
    }
}

#[test]
fn a_block_whose_transaction_is_already_stored_is_refused_whole() {
    let dir = tempfile::tempdir().expect("temp dir");
    let proposer = SigningKey::from_seed(&[1; 32]);
    let member = SigningKey::from_seed(&[2; 32]);
    let (store, chain) = Store::create(dir.path(), &genesis(&proposer, &member)).expect("create");
    let tx = TxBody {
        chain_id: ChainId::new("store-test").expect("chain id"),
        signer: member.public_key(),
        nonce: 0,
        payload: Payload::Anchor { label: Label::new("doc/0").expect("label"), digest: sha256(b"0") },
    }
    .sign(&member);
    let verified = chain.build(&[VerifiedTx::verify(tx).expect("valid")], 10, &proposer);
    store.commit(&verified).expect("the first commit");
    // Validation never lets a stored transaction through again; the store holds the line too.
    match store.commit(&verified) {
        Err(StoreError::DuplicateTransaction { height: 1, index: 0 }) => {}
        other => panic!("expected a duplicate transaction, got {other:?}"),
    }
    assert_eq!(store.height().expect("height"), 1);
    assert_eq!(
        store.tx_location(&verified.block().transactions[0].id()).expect("read"),
        Some(TxLocation { height: 1, index: 0 })
    );
}

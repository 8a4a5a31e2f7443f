//! `medledger bench ingest`: signed transactions through admission (batch signature
//! verification), block production (execution, state root) and durable commit on one node.
//!
//! The load is signed as it is sent, by the submitting threads, so the run's memory is the
//! node's and the node competes for the cores with its clients, as it would with a
//! pre-signed queue on another machine only in the best case.

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use medledger_node::{Node, NodeConfig};
use medledger_store::Store;
use serde::{Deserialize, Serialize};

use super::load::AnchorLoad;
use super::{CommitCounter, Machine, progress_bar, seeded_key, submit_retrying, write_report};
use crate::run::Producer;
use crate::{Cli, CliError};

/// Longest an ingest run may take before it gives up: every benchmark stops by itself.
const MAX_INGEST_DURATION: Duration = Duration::from_secs(900);

#[derive(Clone, Debug, Args)]
pub struct IngestArgs {
    /// Transactions to ingest.
    #[arg(long, default_value_t = 200_000)]
    pub txs: u64,
    /// Distinct signing members.
    #[arg(long, default_value_t = 1_000)]
    pub signers: usize,
    /// Transactions per block.
    #[arg(long, default_value_t = 2_000)]
    pub block_txs: usize,
    /// Longest wait before a partial block is built.
    #[arg(long, default_value_t = 20)]
    pub block_interval_ms: u64,
    /// Threads signing and submitting transactions.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Transactions per batch submission (one batch signature verification each).
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// Seed for keys and transactions.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print a line per committed block ("committed height H (N transactions)"), flushed as
    /// it happens: what crash tests read as the acknowledged heights.
    #[arg(long)]
    pub print_commits: bool,
}

impl IngestArgs {
    /// These arguments as `medledger bench` flags.
    pub(crate) fn command_line(&self) -> Vec<String> {
        super::flags([
            ("--txs", self.txs.to_string()),
            ("--signers", self.signers.to_string()),
            ("--block-txs", self.block_txs.to_string()),
            ("--block-interval-ms", self.block_interval_ms.to_string()),
            ("--threads", self.threads.to_string()),
            ("--batch", self.batch.to_string()),
            ("--seed", self.seed.to_string()),
        ])
    }
}

/// What one ingest run measured.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(crate) struct IngestResult {
    /// Transactions committed.
    pub transactions: u64,
    /// Blocks they took.
    pub blocks: u64,
    /// Seconds from the first submission to the last commit.
    pub seconds: f64,
    /// Transactions per second over that span.
    pub tx_per_s: f64,
}

pub fn run(cli: &Cli, args: &IngestArgs) -> Result<IngestResult, CliError> {
    if args.signers == 0 || args.threads == 0 || args.batch == 0 || args.txs == 0 || args.block_txs == 0 {
        return Err(CliError::Usage(
            "--txs, --signers, --block-txs, --threads and --batch must be positive".into(),
        ));
    }
    let (_temporary, data_dir) = super::chain_directory(cli)?;
    let load = AnchorLoad::new("medledger-bench", args.seed, args.signers);
    let (store, chain) = Store::create(&data_dir, &load.single_hospital_genesis())?;
    let config = NodeConfig {
        block_interval_ms: args.block_interval_ms,
        max_block_txs: args.block_txs,
        ..NodeConfig::default()
    };
    let node = Arc::new(Node::new(store, chain, seeded_key(args.seed, "node", 0), config)?);

    let started = Instant::now();
    let deadline = started + MAX_INGEST_DURATION;
    let producer = Producer::start(&node);
    let committed = std::thread::scope(|scope| {
        for thread in 0..args.threads {
            let (node, load) = (&node, &load);
            scope.spawn(move || send_share(node, load, args, thread, deadline));
        }
        watch_commits(&node, args, deadline)
    });
    let seconds = started.elapsed().as_secs_f64();
    producer.stop()?;
    let (blocks, transactions) = committed?;
    let result = IngestResult { transactions, blocks, seconds, tx_per_s: transactions as f64 / seconds };
    let machine = Machine::measure(&data_dir)?;
    println!(
        "ingest: {transactions} transactions in {blocks} blocks in {seconds:.2} s = {:.0} tx/s (sign as sent + verify + apply + durable commit), {:.0}% of the batch-verify ceiling",
        result.tx_per_s,
        100.0 * result.tx_per_s / machine.limits.batch_verify_ceiling()
    );
    machine.print();
    write_report("ingest", args.seed, &args_json(args), &machine, &result)?;
    Ok(result)
}

fn args_json(args: &IngestArgs) -> serde_json::Value {
    serde_json::json!({
        "txs": args.txs,
        "signers": args.signers,
        "block_txs": args.block_txs,
        "block_interval_ms": args.block_interval_ms,
        "threads": args.threads,
        "batch": args.batch,
    })
}

/// Signs and submits this thread's share: the transactions of every signer `s` with
/// `s % threads == thread`, in index order, so each signer's nonces arrive in order.
fn send_share(node: &Node, load: &AnchorLoad, args: &IngestArgs, thread: usize, deadline: Instant) {
    let mut share = (0..args.txs).filter(|&index| load.signer_of(index) % args.threads == thread).peekable();
    while share.peek().is_some() && Instant::now() < deadline {
        let batch = share.by_ref().take(args.batch).map(|index| load.anchor(index)).collect();
        submit_retrying(node, batch, deadline);
    }
}

/// Follows commits until all transactions are in; returns (blocks, transactions).
fn watch_commits(node: &Node, args: &IngestArgs, deadline: Instant) -> Result<(u64, u64), CliError> {
    let progress = progress_bar("ingesting", args.txs);
    let mut counter = CommitCounter::default();
    let mut stdout = std::io::stdout().lock();
    while counter.transactions < args.txs {
        if Instant::now() > deadline {
            return Err(CliError::Remote(format!("ingest did not finish within {MAX_INGEST_DURATION:?}")));
        }
        let transactions = counter.update_with(node, |height, transactions| {
            if args.print_commits {
                writeln!(stdout, "committed height {height} ({transactions} transactions)")
                    .and_then(|()| stdout.flush())
                    .ok();
            }
        })?;
        progress.set_position(transactions);
        std::thread::sleep(Duration::from_millis(2));
    }
    progress.finish_and_clear();
    Ok((counter.height, counter.transactions))
}

//! `medledger vault`: the node's vault key, offline.

use clap::Subcommand;

use crate::run::VAULT_PASSPHRASE_ENV;
use crate::{Cli, CliError, Target};

#[derive(Debug, Subcommand)]
pub enum VaultCommand {
    /// Seal a plain vault key (`--data-dir DIR`) with the passphrase in
    /// MEDLEDGER_VAULT_PASSPHRASE; from then on the node needs that passphrase at every start.
    Seal,
}

pub fn run(cli: &Cli, command: &VaultCommand) -> Result<(), CliError> {
    let VaultCommand::Seal = command;
    let Target::DataDir(data_dir) = cli.target()? else {
        return Err(CliError::Usage("vault seal works on a data directory: pass --data-dir DIR".into()));
    };
    let passphrase =
        crate::run::vault_passphrase().filter(|passphrase| !passphrase.is_empty()).ok_or_else(|| {
            CliError::Usage(format!("set {VAULT_PASSPHRASE_ENV} to the passphrase to seal with"))
        })?;
    medledger_vault::seal_key(&data_dir, &passphrase)?;
    println!(
        "Sealed the vault key {} with the passphrase in {VAULT_PASSPHRASE_ENV}: the node needs it at every start.",
        medledger_vault::key_path(&data_dir).display()
    );
    println!("Copies of the plain key made before (backups) still open the vault: replace them.");
    Ok(())
}

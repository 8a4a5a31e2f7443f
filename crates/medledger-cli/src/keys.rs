//! `medledger keys`: Ed25519 key files.

use std::path::PathBuf;

use clap::Subcommand;
use medledger_crypto::SigningKey;

use crate::CliError;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate a new key into a PKCS#8 PEM file (mode 0600) and print its public key.
    Gen {
        /// Where to write the key; an existing file is never overwritten.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Print the public key of a key file.
    Show {
        /// The key file.
        file: PathBuf,
    },
}

pub fn run(command: &KeysCommand) -> Result<(), CliError> {
    match command {
        KeysCommand::Gen { out } => {
            let key = SigningKey::generate()?;
            key.save(out)?;
            println!("{}", key.public_key());
            eprintln!("wrote {} (mode 0600); the line above is its public key", out.display());
        }
        KeysCommand::Show { file } => println!("{}", SigningKey::load(file)?.public_key()),
    }
    Ok(())
}

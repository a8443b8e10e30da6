//! `atm verify`: check every file; one line per problem on stdout.

use atm_store::Store;

use crate::cli::VerifyArgs;
use crate::error::{CliError, Result};

pub fn run(store: &Store, _a: VerifyArgs) -> Result<()> {
    let problems = store.verify()?;
    for p in &problems {
        println!("{p}");
    }
    if problems.is_empty() {
        let n = store.list_series()?.len();
        log::info!("{n} series verified, no problems");
        Ok(())
    } else {
        let series: std::collections::BTreeSet<_> = problems.iter().filter_map(|p| p.series.clone()).collect();
        Err(CliError::Usage(format!(
            "{} problem(s) found in {}",
            problems.len(),
            if series.is_empty() { "the store's files".to_string() } else { series.into_iter().collect::<Vec<_>>().join(", ") }
        )))
    }
}

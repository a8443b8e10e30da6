//! Writes the format-compatibility fixture of the current format version into
//! `atm-store/tests/fixtures/v<N>/`. Run once per released format version and
//! commit the result; `tests/format_compat.rs` checks that every fixture
//! stays readable and that today's writer still produces the same bytes.
//!
//! `cargo run -p atm-store --example gen_format_fixture`

use atm_store::{layout::SERIES_VERSION, Store, StoreOptions};

#[path = "../tests/support/fixture_data.rs"]
mod fixture_data;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/fixtures/v{SERIES_VERSION}"));
    let _ = std::fs::remove_dir_all(&out);
    let store = Store::open(
        &out,
        StoreOptions {
            create: true,
            ..Default::default()
        },
    )?;
    fixture_data::write(&store)?;
    drop(store);
    for name in ["locks", "recovery.lock", "journal"] {
        let p = out.join(name);
        if p.is_dir() {
            std::fs::remove_dir_all(&p)?;
        } else if p.exists() {
            std::fs::remove_file(&p)?;
        }
    }
    for m in ["spot", "um", "cm"] {
        let _ = std::fs::remove_file(out.join(m).join("registry.lock"));
    }
    println!("wrote {}", out.display());
    Ok(())
}

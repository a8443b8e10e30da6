//! Whole-store checks behind `atm verify`.

use crate::error::Result;
use crate::series_file::SeriesFile;
use crate::{Market, Store};

/// One problem found by [`Store::verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The file the problem is in.
    pub file: std::path::PathBuf,
    /// The series (`spot/BTCUSDT/1m`), when the file belongs to one.
    pub series: Option<String>,
    /// What is wrong.
    pub detail: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.series {
            Some(s) => write!(f, "{}: series {s}: {}", self.file.display(), self.detail),
            None => write!(f, "{}: {}", self.file.display(), self.detail),
        }
    }
}

impl Store {
    /// Checks every checksum and invariant of every file of the store.
    /// Returns the problems found (empty for a healthy store). Crash
    /// recovery ran when the store was opened, so rolled-back uncommitted
    /// tails are not problems.
    pub fn verify(&self) -> Result<Vec<Problem>> {
        let mut problems = Vec::new();
        for key in self.list_series()? {
            let path = self.inner.series_path(&key);
            let series = Some(key.to_string());
            match SeriesFile::open(&path, false) {
                Ok(f) => {
                    if f.key != key {
                        problems.push(Problem {
                            file: path.clone(),
                            series: series.clone(),
                            detail: format!("file holds series {}", f.key),
                        });
                    }
                    for detail in f.check() {
                        let detail = detail
                            .strip_prefix(&format!("corrupt {}: ", path.display()))
                            .map(str::to_string)
                            .unwrap_or(detail);
                        let detail = detail
                            .strip_prefix(&format!("series {key}: "))
                            .map(str::to_string)
                            .unwrap_or(detail);
                        problems.push(Problem {
                            file: path.clone(),
                            series: series.clone(),
                            detail,
                        });
                    }
                }
                Err(e) => problems.push(Problem {
                    file: path.clone(),
                    series,
                    detail: e.to_string(),
                }),
            }
        }
        for m in Market::ALL {
            if let Err(e) = self.registry(m) {
                problems.push(Problem {
                    file: self.dir().join(m.as_str()).join("registry"),
                    series: None,
                    detail: e.to_string(),
                });
            }
        }
        Ok(problems)
    }
}

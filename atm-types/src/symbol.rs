//! Symbol names, validated before they become file names.

use std::fmt;

use crate::error::{Error, Result};

/// A validated exchange symbol such as `BTCUSDT` or `币安人生USDT`.
///
/// Symbols become file names, so they are checked first: 1 to 64 bytes of
/// UTF-8, made of Unicode letters and digits plus `_` and `-`. Path
/// separators, `.`, whitespace and control characters are refused.
///
/// ```
/// use atm_types::Symbol;
/// assert!(Symbol::new("BTCUSD_PERP").is_ok());
/// assert!(Symbol::new("币安人生USDT").is_ok());
/// assert!(Symbol::new("../etc").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Symbol(String);

/// The longest symbol accepted, in bytes of UTF-8.
pub const MAX_SYMBOL_BYTES: usize = 64;

impl Symbol {
    /// Validates `name` and wraps it.
    pub fn new(name: &str) -> Result<Symbol> {
        let bad = |reason| {
            Err(Error::InvalidSymbol {
                symbol: name.to_string(),
                reason,
            })
        };
        if name.is_empty() {
            return bad("empty");
        }
        if name.len() > MAX_SYMBOL_BYTES {
            return bad("longer than 64 bytes");
        }
        for c in name.chars() {
            if c == '/' || c == '\\' {
                return bad("contains a path separator");
            }
            if c == '.' {
                return bad("contains '.'");
            }
            if c.is_whitespace() {
                return bad("contains whitespace");
            }
            if c.is_control() {
                return bad("contains a control character");
            }
            if !(c.is_alphanumeric() || c == '_' || c == '-') {
                return bad("only letters, digits, '_' and '-' are allowed");
            }
        }
        Ok(Symbol(name.to_string()))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Symbol {
    type Err = Error;
    fn from_str(s: &str) -> Result<Symbol> {
        Symbol::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binance_names_are_accepted() {
        for s in [
            "BTCUSDT",
            "BTCUSD_PERP",
            "ETHUSDT_250328",
            "1000SHIBUSDT",
            "币安人生USDT",
            "A-B",
        ] {
            assert!(Symbol::new(s).is_ok(), "{s}");
        }
    }

    #[test]
    fn hostile_names_are_refused_with_a_reason() {
        for s in [
            "", "..", ".", "a/b", "a\\b", "a b", "a\tb", "a\nb", "a\0b", "BTC.USDT", "a:b", "a*b",
        ] {
            let e = Symbol::new(s).unwrap_err().to_string();
            assert!(e.contains("invalid symbol"), "{s}: {e}");
        }
        assert!(Symbol::new(&"A".repeat(65)).is_err());
        assert!(Symbol::new(&"A".repeat(64)).is_ok());
        // 22 three-byte characters = 66 bytes.
        assert!(Symbol::new(&"币".repeat(22)).is_err());
    }
}

//! `shardline-units`: how Shardline reads and writes durations and byte sizes. The server's
//! flags, the client commands, the load generator and the catalog's retention periods all parse
//! them here, so `10m` or `10MB` means the same wherever it is typed.
//!
//! The rules (the README's "Units" section states them for users; keep the two in step):
//!
//! - A **duration** is `0`, or one or more terms `<whole number><unit>` written together and
//!   added up (`1h30m`, `2w3d`). Units, lowercase only: `ns`, `us` (also `µs`), `ms`, `s`, `m`
//!   (minutes), `h`, `d`, `w`, `mo` (30 days) and `y` (365 days). A bare number other than `0`
//!   is refused: it would be milliseconds to one reader and seconds to another.
//! - A **size** is a whole number of bytes with an optional unit, any letter case: `B`;
//!   decimal `K`/`KB`, `M`/`MB`, `G`/`GB`, `T`/`TB` (powers of 1000); binary `KiB`, `MiB`,
//!   `GiB`, `TiB` (powers of 1024). A bare number is bytes.
//!
//! Invariants:
//!
//! - Nothing is rounded: fractions (`1.5h`, `0.5GiB`), signs, and spaces inside a value are
//!   refused, with an error that says how to write the value instead. Spaces around a value
//!   are ignored (environment variables often carry them).
//! - A parsed duration is at most [`MAX_DURATION`] (`i64::MAX` nanoseconds, about 292 years),
//!   so its nanoseconds fit the signed 64-bit timestamps the database keeps; a parsed size fits
//!   a `u64`. Anything larger is an error, never a wrapped or saturated value.
//! - [`format_duration`] and [`format_size`] write the shortest exact text in these rules, and
//!   parsing it gives back the same value (property-tested). They never write `mo` or `y`,
//!   which are conveniences for reading.
//! - Every error carries the text it refused and tells the user what to write instead.

mod duration;
mod size;

pub use duration::{format_duration, parse_duration, DurationError, MAX_DURATION};
pub use size::{format_size, parse_size, SizeError};

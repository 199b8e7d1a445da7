//! Encoding result batches for the client, one batch at a time.
//!
//! Formats and content types follow InfluxDB 3 Core: `json` (an array of row objects, nulls
//! left out), `jsonl` (one object per line), `csv` (with a header), `parquet`, and `pretty`
//! (an ASCII table). Every format but `pretty` streams: each batch becomes bytes as it
//! arrives. `pretty` sizes its columns over the whole result, so it holds the result.

use std::io::Write;
use std::sync::Arc;

use arrow::array::Array;
use arrow::array::RecordBatch;
use arrow::datatypes::FieldRef;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::json::writer::{
    EncoderFactory, EncoderOptions, JsonFormat, LineDelimited, NullableEncoder, WriterBuilder,
};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;

use super::json_rows::{write_rows, RowSeparator};
use parquet::file::properties::WriterProperties;

/// A result format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    JsonLines,
    Csv,
    Parquet,
    Pretty,
}

impl Format {
    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "json" => Format::Json,
            "jsonl" => Format::JsonLines,
            "csv" => Format::Csv,
            "parquet" => Format::Parquet,
            "pretty" => Format::Pretty,
            _ => return None,
        })
    }

    /// The first format an `Accept` header names; `None` when it names none we serve
    /// (`*/*` and a missing header mean JSON).
    pub fn from_accept(accept: &str) -> Option<Self> {
        for part in accept.split(',') {
            let mime = part.split(';').next().unwrap_or("").trim();
            let f = match mime {
                "application/json" | "*/*" | "application/*" | "" => Format::Json,
                "application/jsonl" | "application/x-ndjson" => Format::JsonLines,
                "text/csv" => Format::Csv,
                "application/vnd.apache.parquet" => Format::Parquet,
                "text/plain" | "text/*" => Format::Pretty,
                _ => continue,
            };
            return Some(f);
        }
        None
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::JsonLines => "application/jsonl",
            Format::Csv => "text/csv",
            Format::Parquet => "application/vnd.apache.parquet",
            Format::Pretty => "text/plain; charset=utf-8",
        }
    }
}

/// JSON array rows of the first batch that has rows: a comma between rows.
#[derive(Debug, Default)]
struct ArrayStart;

impl JsonFormat for ArrayStart {
    fn start_row<W: Write>(&self, w: &mut W, first: bool) -> Result<(), ArrowError> {
        if !first {
            w.write_all(b",")?;
        }
        Ok(())
    }
}

/// JSON array rows after the first batch with rows: a comma before every row.
#[derive(Debug, Default)]
struct ArrayContinue;

impl JsonFormat for ArrayContinue {
    fn start_row<W: Write>(&self, w: &mut W, _first: bool) -> Result<(), ArrowError> {
        w.write_all(b",")?;
        Ok(())
    }
}

/// Arrow's JSON writer with the fast timestamp and string encoders.
pub(crate) fn json_writer() -> WriterBuilder {
    WriterBuilder::new().with_encoder_factory(Arc::new(FastJson))
}

/// The encoders of [`super::timestamps`] and [`super::json_strings`]; Arrow's for the rest.
#[derive(Debug)]
struct FastJson;

impl EncoderFactory for FastJson {
    fn make_default_encoder<'a>(
        &self,
        field: &'a FieldRef,
        array: &'a dyn Array,
        options: &'a EncoderOptions,
    ) -> Result<Option<NullableEncoder<'a>>, ArrowError> {
        if let Some(e) =
            super::timestamps::FastTimestamps.make_default_encoder(field, array, options)?
        {
            return Ok(Some(e));
        }
        super::json_strings::FastStrings.make_default_encoder(field, array, options)
    }
}

/// Rows per Parquet row group: bounds what the encoder buffers before it can emit bytes.
const PARQUET_ROW_GROUP_ROWS: usize = 64 * 1024;

/// Encodes one result.
pub struct Encoder {
    format: Format,
    rows: u64,
    /// Output bytes per row of the last batch (an estimate for the next one).
    bytes_per_row: usize,
    parquet: Option<ArrowWriter<Vec<u8>>>,
    pretty: Vec<RecordBatch>,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("format", &self.format)
            .field("rows", &self.rows)
            .finish()
    }
}

impl Encoder {
    pub fn new(format: Format, schema: &SchemaRef) -> Result<Self, ArrowError> {
        let parquet = match format {
            Format::Parquet => {
                let props = WriterProperties::builder()
                    .set_max_row_group_row_count(Some(PARQUET_ROW_GROUP_ROWS))
                    .build();
                Some(
                    ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props))
                        .map_err(|e| ArrowError::ExternalError(Box::new(e)))?,
                )
            }
            _ => None,
        };
        Ok(Encoder {
            format,
            rows: 0,
            bytes_per_row: 0,
            parquet,
            pretty: Vec::new(),
        })
    }

    /// Rows encoded so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Bytes that open the output.
    pub fn begin(&mut self) -> Bytes {
        match self.format {
            Format::Json => Bytes::from_static(b"["),
            _ => Bytes::new(),
        }
    }

    /// Encodes one batch; the bytes may be empty (nothing to send yet).
    pub fn batch(&mut self, batch: &RecordBatch) -> Result<Bytes, ArrowError> {
        let first_rows = self.rows == 0;
        // Sized from the batches before, so the buffer is rarely grown (and copied).
        let text = matches!(self.format, Format::Json | Format::JsonLines | Format::Csv);
        let mut out = match text {
            true => Vec::with_capacity(batch.num_rows() * self.bytes_per_row + 64),
            false => Vec::new(),
        };
        match self.format {
            Format::Json if batch.num_rows() > 0 => {
                let separator = match first_rows {
                    true => RowSeparator::ArrayFirst,
                    false => RowSeparator::ArrayNext,
                };
                // Arrow's writer is the fallback for types `write_rows` does not write.
                if write_rows(batch, separator, &mut out) {
                    // Written.
                } else if first_rows {
                    let mut w = json_writer().build::<_, ArrayStart>(&mut out);
                    w.write(batch)?;
                    w.finish()?;
                } else {
                    let mut w = json_writer().build::<_, ArrayContinue>(&mut out);
                    w.write(batch)?;
                    w.finish()?;
                }
            }
            Format::Json => {}
            Format::JsonLines if write_rows(batch, RowSeparator::Lines, &mut out) => {}
            Format::JsonLines => {
                let mut w = json_writer().build::<_, LineDelimited>(&mut out);
                w.write(batch)?;
                w.finish()?;
            }
            Format::Csv => {
                let mut w = arrow::csv::WriterBuilder::new()
                    .with_header(first_rows && batch.num_rows() > 0)
                    .build(&mut out);
                w.write(batch)?;
            }
            Format::Parquet => {
                let w = self.parquet.as_mut().expect("created for parquet");
                w.write(batch)
                    .map_err(|e| ArrowError::ExternalError(Box::new(e)))?;
                out = std::mem::take(w.inner_mut());
            }
            Format::Pretty => self.pretty.push(batch.clone()),
        }
        self.rows += batch.num_rows() as u64;
        if text && batch.num_rows() > 0 && !out.is_empty() {
            // A little over the last batch's size per row, to cover longer rows.
            self.bytes_per_row = out.len().div_ceil(batch.num_rows()) * 9 / 8;
        }
        Ok(Bytes::from(out))
    }

    /// Bytes that close the output. `schema` is the result's (for headers of empty results).
    pub fn finish(mut self, schema: &SchemaRef) -> Result<Bytes, ArrowError> {
        Ok(match self.format {
            Format::Json => Bytes::from_static(b"]"),
            Format::JsonLines => Bytes::new(),
            Format::Csv if self.rows == 0 => {
                // Still name the columns, as a header-only CSV.
                let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                Bytes::from(format!("{}\n", names.join(",")))
            }
            Format::Csv => Bytes::new(),
            Format::Parquet => {
                let w = self.parquet.take().expect("created for parquet");
                Bytes::from(
                    w.into_inner()
                        .map_err(|e| ArrowError::ExternalError(Box::new(e)))?,
                )
            }
            Format::Pretty => {
                let table = if self.pretty.is_empty() {
                    arrow::util::pretty::pretty_format_batches_with_schema(schema.clone(), &[])?
                        .to_string()
                } else {
                    arrow::util::pretty::pretty_format_batches(&self.pretty)?.to_string()
                };
                Bytes::from(format!("{table}\n"))
            }
        })
    }
}

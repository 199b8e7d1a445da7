//! The `SHOW` statements.

use super::Parser;
use crate::ast::{Cardinality, MeasurementMatch, SchemaQuery, Show, Statement, TagKeyMatch};
use crate::error::ParseError;
use crate::token::{Keyword, Kind};

const SHOW_EXPECTED: &[&str] = &[
    "CONTINUOUS",
    "DATABASES",
    "DIAGNOSTICS",
    "FIELD",
    "GRANTS",
    "MEASUREMENT",
    "MEASUREMENTS",
    "QUERIES",
    "RETENTION",
    "SERIES",
    "SHARD",
    "SHARDS",
    "STATS",
    "SUBSCRIPTIONS",
    "TAG",
    "USERS",
];

impl Parser<'_> {
    pub(crate) fn show(&mut self) -> Result<Statement, ParseError> {
        self.expect_keyword(Keyword::SHOW)?;
        let t = self.next();
        let show = match t.kind {
            Kind::Keyword(Keyword::DATABASES) => Show::Databases,
            Kind::Keyword(Keyword::RETENTION) => {
                self.expect_keyword(Keyword::POLICIES)?;
                Show::RetentionPolicies { on: self.on()? }
            }
            Kind::Keyword(Keyword::MEASUREMENTS) => self.show_measurements()?,
            Kind::Keyword(Keyword::MEASUREMENT) => self.cardinality(Cardinality::Measurement)?,
            Kind::Keyword(Keyword::TAG) => {
                let t = self.next();
                match t.kind {
                    Kind::Keyword(Keyword::KEYS) => Show::TagKeys(self.schema_query(true)?),
                    Kind::Keyword(Keyword::KEY) => self.cardinality(Cardinality::TagKey)?,
                    Kind::Keyword(Keyword::VALUES) => {
                        if self.is_keyword(Keyword::EXACT) || self.is_keyword(Keyword::CARDINALITY)
                        {
                            self.cardinality(Cardinality::TagValues)?
                        } else {
                            self.show_tag_values()?
                        }
                    }
                    _ => return Err(self.unexpected(t, &["KEY", "KEYS", "VALUES"])),
                }
            }
            Kind::Keyword(Keyword::FIELD) => {
                let t = self.next();
                match t.kind {
                    Kind::Keyword(Keyword::KEYS) => Show::FieldKeys(self.schema_query(false)?),
                    Kind::Keyword(Keyword::KEY) => self.cardinality(Cardinality::FieldKey)?,
                    _ => return Err(self.unexpected(t, &["KEY", "KEYS"])),
                }
            }
            Kind::Keyword(Keyword::SERIES) => {
                if self.is_keyword(Keyword::EXACT) || self.is_keyword(Keyword::CARDINALITY) {
                    self.cardinality(Cardinality::Series)?
                } else {
                    Show::Series(self.schema_query(true)?)
                }
            }
            Kind::Keyword(Keyword::QUERIES) => Show::Queries,
            Kind::Keyword(Keyword::USERS) => Show::Users,
            Kind::Keyword(Keyword::GRANTS) => {
                self.expect_keyword(Keyword::FOR)?;
                Show::Grants(self.ident()?)
            }
            Kind::Keyword(Keyword::SHARDS) => Show::Shards,
            Kind::Keyword(Keyword::SHARD) => {
                self.expect_keyword(Keyword::GROUPS)?;
                Show::ShardGroups
            }
            Kind::Keyword(Keyword::STATS) => Show::Stats(self.for_module()?),
            Kind::Keyword(Keyword::DIAGNOSTICS) => Show::Diagnostics(self.for_module()?),
            Kind::Keyword(Keyword::CONTINUOUS) => {
                self.expect_keyword(Keyword::QUERIES)?;
                Show::ContinuousQueries
            }
            Kind::Keyword(Keyword::SUBSCRIPTIONS) => Show::Subscriptions,
            _ => return Err(self.unexpected(t, SHOW_EXPECTED)),
        };
        Ok(Statement::Show(show))
    }

    /// `ON db`, optional.
    pub(crate) fn on(&mut self) -> Result<Option<String>, ParseError> {
        if self.eat_keyword(Keyword::ON) {
            Ok(Some(self.ident()?))
        } else {
            Ok(None)
        }
    }

    fn for_module(&mut self) -> Result<Option<String>, ParseError> {
        if self.eat_keyword(Keyword::FOR) {
            Ok(Some(self.string()?))
        } else {
            Ok(None)
        }
    }

    fn show_measurements(&mut self) -> Result<Show, ParseError> {
        let on = self.on()?;
        let with = if self.eat_keyword(Keyword::WITH) {
            self.expect_keyword(Keyword::MEASUREMENT)?;
            let t = self.next();
            Some(match t.kind {
                Kind::Eq => {
                    let t = self.peek();
                    if t.kind == Kind::Div {
                        MeasurementMatch::Regex(self.regex_from(t)?)
                    } else {
                        MeasurementMatch::Eq(self.ident()?)
                    }
                }
                Kind::EqRegex => {
                    let t = self.peek();
                    if t.kind != Kind::Div {
                        return Err(self.unexpected(t, &["regex"]));
                    }
                    MeasurementMatch::Regex(self.regex_from(t)?)
                }
                _ => return Err(self.unexpected(t, &["=", "=~"])),
            })
        } else {
            None
        };
        let condition = self.condition()?;
        let limit = self.keyword_uint(Keyword::LIMIT)?;
        let offset = self.keyword_uint(Keyword::OFFSET)?;
        Ok(Show::Measurements {
            on,
            with,
            condition,
            limit,
            offset,
        })
    }

    /// `[ON db] [FROM ...] [WHERE ...] [LIMIT n] [OFFSET n]`, and `SLIMIT`/`SOFFSET` when
    /// `series_limits`.
    fn schema_query(&mut self, series_limits: bool) -> Result<SchemaQuery, ParseError> {
        let mut q = self.schema_head()?;
        self.schema_tail(&mut q, series_limits)?;
        Ok(q)
    }

    fn schema_head(&mut self) -> Result<SchemaQuery, ParseError> {
        let on = self.on()?;
        let from = if self.eat_keyword(Keyword::FROM) {
            self.sources()?
        } else {
            Vec::new()
        };
        Ok(SchemaQuery {
            on,
            from,
            ..SchemaQuery::default()
        })
    }

    fn schema_tail(&mut self, q: &mut SchemaQuery, series_limits: bool) -> Result<(), ParseError> {
        q.condition = self.condition()?;
        q.limit = self.keyword_uint(Keyword::LIMIT)?;
        q.offset = self.keyword_uint(Keyword::OFFSET)?;
        if series_limits {
            q.slimit = self.keyword_uint(Keyword::SLIMIT)?;
            q.soffset = self.keyword_uint(Keyword::SOFFSET)?;
        }
        Ok(())
    }

    fn show_tag_values(&mut self) -> Result<Show, ParseError> {
        let mut query = self.schema_head()?;
        let key = self.with_key()?;
        self.schema_tail(&mut query, false)?;
        Ok(Show::TagValues { query, key })
    }

    /// `WITH KEY = k | != k | =~ /re/ | !~ /re/ | IN (k, ...)`.
    fn with_key(&mut self) -> Result<TagKeyMatch, ParseError> {
        self.expect_keyword(Keyword::WITH)?;
        self.expect_keyword(Keyword::KEY)?;
        let t = self.next();
        Ok(match t.kind {
            Kind::Eq => TagKeyMatch::Eq(self.ident()?),
            Kind::Neq => TagKeyMatch::NotEq(self.ident()?),
            Kind::EqRegex | Kind::NeqRegex => {
                let r = self.peek();
                if r.kind != Kind::Div {
                    return Err(self.unexpected(r, &["regex"]));
                }
                let re = self.regex_from(r)?;
                if t.kind == Kind::EqRegex {
                    TagKeyMatch::Regex(re)
                } else {
                    TagKeyMatch::NotRegex(re)
                }
            }
            Kind::Keyword(Keyword::IN) => {
                self.expect(Kind::LParen)?;
                let mut keys = vec![self.ident()?];
                while self.eat(Kind::Comma) {
                    keys.push(self.ident()?);
                }
                self.expect(Kind::RParen)?;
                TagKeyMatch::In(keys)
            }
            _ => return Err(self.unexpected(t, &["=", "!=", "=~", "!~", "IN"])),
        })
    }

    /// `[EXACT] CARDINALITY [ON db] [FROM ...] [WITH KEY ...] [WHERE ...] [GROUP BY ...]
    /// [LIMIT n] [OFFSET n]`, after the word naming what is counted.
    fn cardinality(&mut self, what: Cardinality) -> Result<Show, ParseError> {
        let exact = self.eat_keyword(Keyword::EXACT);
        self.expect_keyword(Keyword::CARDINALITY)?;
        let mut query = self.schema_head()?;
        let key = if what == Cardinality::TagValues {
            Some(self.with_key()?)
        } else {
            None
        };
        query.condition = self.condition()?;
        let group_by = if self.eat_keyword(Keyword::GROUP) {
            self.expect_keyword(Keyword::BY)?;
            self.dimensions()?
        } else {
            Vec::new()
        };
        query.limit = self.keyword_uint(Keyword::LIMIT)?;
        query.offset = self.keyword_uint(Keyword::OFFSET)?;
        Ok(Show::Cardinality {
            what,
            exact,
            key,
            query,
            group_by,
        })
    }
}

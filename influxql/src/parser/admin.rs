//! Statements that change or manage data rather than read it: databases, retention
//! policies, deletes, users and privileges, continuous queries, subscriptions, `EXPLAIN`,
//! `KILL QUERY`.

use super::Parser;
use crate::ast::{PolicySpec, Privilege, Statement, SubscriptionMode};
use crate::error::ParseError;
use crate::token::{Keyword, Kind};

impl Parser<'_> {
    pub(crate) fn create(&mut self) -> Result<Statement, ParseError> {
        self.expect_keyword(Keyword::CREATE)?;
        let t = self.next();
        match t.kind {
            Kind::Keyword(Keyword::DATABASE) => self.create_database(),
            Kind::Keyword(Keyword::RETENTION) => {
                self.expect_keyword(Keyword::POLICY)?;
                self.create_policy()
            }
            Kind::Keyword(Keyword::USER) => {
                let name = self.ident()?;
                self.expect_keywords(&[Keyword::WITH, Keyword::PASSWORD])?;
                let password = self.string()?;
                let admin = if self.eat_keyword(Keyword::WITH) {
                    self.expect_keywords(&[Keyword::ALL, Keyword::PRIVILEGES])?;
                    true
                } else {
                    false
                };
                Ok(Statement::CreateUser {
                    name,
                    password,
                    admin,
                })
            }
            Kind::Keyword(Keyword::CONTINUOUS) => {
                self.expect_keyword(Keyword::QUERY)?;
                self.create_continuous_query()
            }
            Kind::Keyword(Keyword::SUBSCRIPTION) => {
                let name = self.ident()?;
                let (database, policy) = self.on_db_rp()?;
                self.expect_keyword(Keyword::DESTINATIONS)?;
                let m = self.next();
                let mode = match m.kind {
                    Kind::Keyword(Keyword::ALL) => SubscriptionMode::All,
                    Kind::Keyword(Keyword::ANY) => SubscriptionMode::Any,
                    _ => return Err(self.unexpected(m, &["ALL", "ANY"])),
                };
                let mut destinations = vec![self.string()?];
                while self.eat(Kind::Comma) {
                    destinations.push(self.string()?);
                }
                Ok(Statement::CreateSubscription {
                    name,
                    database,
                    policy,
                    mode,
                    destinations,
                })
            }
            _ => Err(self.unexpected(
                t,
                &[
                    "CONTINUOUS",
                    "DATABASE",
                    "USER",
                    "RETENTION",
                    "SUBSCRIPTION",
                ],
            )),
        }
    }

    fn create_database(&mut self) -> Result<Statement, ParseError> {
        let name = self.ident()?;
        if !self.eat_keyword(Keyword::WITH) {
            return Ok(Statement::CreateDatabase { name, policy: None });
        }
        let mut spec = PolicySpec::default();
        let mut any = false;
        if self.eat_keyword(Keyword::DURATION) {
            spec.duration = Some(self.duration(true)?);
            any = true;
        }
        if self.eat_keyword(Keyword::REPLICATION) {
            spec.replication = Some(self.replication()?);
            any = true;
        }
        if self.eat_keyword(Keyword::SHARD) {
            self.expect_keyword(Keyword::DURATION)?;
            // 1.x takes INF here (meaning its default shard duration), unlike in the
            // retention policy statements.
            spec.shard_duration = Some(self.duration(true)?);
            any = true;
        }
        if self.eat_keyword(Keyword::NAME) {
            spec.name = Some(self.ident()?);
            any = true;
        }
        if !any {
            let t = self.peek();
            return Err(self.unexpected(t, &["DURATION", "NAME", "REPLICATION", "SHARD"]));
        }
        Ok(Statement::CreateDatabase {
            name,
            policy: Some(spec),
        })
    }

    fn replication(&mut self) -> Result<u32, ParseError> {
        let t = self.peek();
        let n = self.uint()?;
        if n == 0 || n > i32::MAX as u64 {
            return Err(ParseError::new(
                self.input(),
                t.start,
                format!("invalid value {n}: must be 1 <= n <= {}", i32::MAX),
            ));
        }
        Ok(n as u32)
    }

    fn create_policy(&mut self) -> Result<Statement, ParseError> {
        let name = self.ident()?;
        self.expect_keyword(Keyword::ON)?;
        let database = self.ident()?;
        self.expect_keyword(Keyword::DURATION)?;
        let duration = self.duration(true)?;
        self.expect_keyword(Keyword::REPLICATION)?;
        let replication = self.replication()?;
        let shard_duration = if self.eat_keyword(Keyword::SHARD) {
            self.expect_keyword(Keyword::DURATION)?;
            Some(self.duration(false)?)
        } else {
            None
        };
        let default = self.eat_keyword(Keyword::DEFAULT);
        Ok(Statement::CreateRetentionPolicy {
            name,
            database,
            duration,
            replication,
            shard_duration,
            default,
        })
    }

    pub(crate) fn alter(&mut self) -> Result<Statement, ParseError> {
        self.expect_keywords(&[Keyword::ALTER, Keyword::RETENTION, Keyword::POLICY])?;
        // `ALTER RETENTION POLICY DEFAULT ON db ...` names the policy "default".
        let name = if self.eat_keyword(Keyword::DEFAULT) {
            "default".to_string()
        } else {
            self.ident()?
        };
        self.expect_keyword(Keyword::ON)?;
        let database = self.ident()?;
        let (mut duration, mut replication, mut shard_duration, mut default) =
            (None, None, None, false);
        loop {
            let t = self.peek();
            let seen = match t.kind {
                Kind::Keyword(Keyword::DURATION) => duration.is_some(),
                Kind::Keyword(Keyword::REPLICATION) => replication.is_some(),
                Kind::Keyword(Keyword::SHARD) => shard_duration.is_some(),
                Kind::Keyword(Keyword::DEFAULT) => default,
                _ => break,
            };
            if seen {
                let word = self.text(t).to_ascii_uppercase();
                return Err(ParseError::new(
                    self.input(),
                    t.start,
                    format!("found duplicate {word} option"),
                ));
            }
            self.bump();
            match t.kind {
                Kind::Keyword(Keyword::DURATION) => duration = Some(self.duration(true)?),
                Kind::Keyword(Keyword::REPLICATION) => replication = Some(self.replication()?),
                Kind::Keyword(Keyword::SHARD) => {
                    self.expect_keyword(Keyword::DURATION)?;
                    shard_duration = Some(self.duration(false)?);
                }
                _ => default = true,
            }
        }
        if duration.is_none() && replication.is_none() && shard_duration.is_none() && !default {
            let t = self.peek();
            return Err(self.unexpected(t, &["DURATION", "REPLICATION", "SHARD", "DEFAULT"]));
        }
        Ok(Statement::AlterRetentionPolicy {
            name,
            database,
            duration,
            replication,
            shard_duration,
            default,
        })
    }

    fn create_continuous_query(&mut self) -> Result<Statement, ParseError> {
        let name = self.ident()?;
        self.expect_keyword(Keyword::ON)?;
        let database = self.ident()?;
        let (mut resample_every, mut resample_for) = (None, None);
        if self.eat_keyword(Keyword::RESAMPLE) {
            if self.eat_keyword(Keyword::EVERY) {
                resample_every = Some(self.duration_nanos()?);
            }
            if self.eat_keyword(Keyword::FOR) {
                resample_for = Some(self.duration_nanos()?);
            }
            if resample_every.is_none() && resample_for.is_none() {
                let t = self.peek();
                return Err(self.unexpected(t, &["EVERY", "FOR"]));
            }
        }
        self.expect_keyword(Keyword::BEGIN)?;
        let select = self.select()?;
        if select.into.is_none() {
            // 1.x asks for INTO where the FROM stands.
            return Err(ParseError::found(
                self.input(),
                self.missing_into_at(),
                "FROM",
                &["INTO"],
            ));
        }
        self.expect_keyword(Keyword::END)?;
        Ok(Statement::CreateContinuousQuery {
            name,
            database,
            resample_every,
            resample_for,
            select: Box::new(select),
        })
    }

    /// Where the `FROM` of the continuous query's `SELECT` stands (the first one after
    /// `BEGIN`), for the missing-`INTO` error.
    fn missing_into_at(&self) -> usize {
        let input = self.input();
        let begin = input.to_ascii_uppercase().find("BEGIN").unwrap_or(0);
        let upper = input[begin..].to_ascii_uppercase();
        upper.find(" FROM").map_or(begin, |i| begin + i + 1)
    }

    fn duration_nanos(&mut self) -> Result<crate::ast::Duration, ParseError> {
        self.duration(false)
    }

    /// `ON db.rp` of the subscription statements.
    fn on_db_rp(&mut self) -> Result<(String, String), ParseError> {
        self.expect_keyword(Keyword::ON)?;
        let database = self.ident()?;
        self.expect(Kind::Dot)?;
        let policy = self.ident()?;
        Ok((database, policy))
    }

    pub(crate) fn drop_statement(&mut self) -> Result<Statement, ParseError> {
        self.expect_keyword(Keyword::DROP)?;
        let t = self.next();
        match t.kind {
            Kind::Keyword(Keyword::DATABASE) => Ok(Statement::DropDatabase(self.ident()?)),
            Kind::Keyword(Keyword::MEASUREMENT) => Ok(Statement::DropMeasurement(self.ident()?)),
            Kind::Keyword(Keyword::SERIES) => {
                let (from, condition) = self.sources_and_condition(t)?;
                self.no_database_in(&from)?;
                if from
                    .iter()
                    .any(|s| matches!(s, crate::ast::Source::Measurement(m) if m.policy.is_some()))
                {
                    return Err(ParseError::new(
                        self.input(),
                        0,
                        "retention policy not supported",
                    ));
                }
                Ok(Statement::DropSeries { from, condition })
            }
            Kind::Keyword(Keyword::SHARD) => Ok(Statement::DropShard(self.uint()?)),
            Kind::Keyword(Keyword::RETENTION) => {
                self.expect_keyword(Keyword::POLICY)?;
                let name = self.ident()?;
                self.expect_keyword(Keyword::ON)?;
                let database = self.ident()?;
                Ok(Statement::DropRetentionPolicy { name, database })
            }
            Kind::Keyword(Keyword::USER) => Ok(Statement::DropUser(self.ident()?)),
            Kind::Keyword(Keyword::CONTINUOUS) => {
                self.expect_keyword(Keyword::QUERY)?;
                let name = self.ident()?;
                self.expect_keyword(Keyword::ON)?;
                let database = self.ident()?;
                Ok(Statement::DropContinuousQuery { name, database })
            }
            Kind::Keyword(Keyword::SUBSCRIPTION) => {
                let name = self.ident()?;
                let (database, policy) = self.on_db_rp()?;
                Ok(Statement::DropSubscription {
                    name,
                    database,
                    policy,
                })
            }
            _ => Err(self.unexpected(
                t,
                &[
                    "CONTINUOUS",
                    "DATABASE",
                    "MEASUREMENT",
                    "RETENTION",
                    "SERIES",
                    "SHARD",
                    "SUBSCRIPTION",
                    "USER",
                ],
            )),
        }
    }

    /// `[FROM sources] [WHERE cond]`, at least one of them (after `DELETE` or `DROP SERIES`).
    fn sources_and_condition(
        &mut self,
        _after: crate::lexer::Token,
    ) -> Result<(Vec<crate::ast::Source>, Option<crate::ast::Expr>), ParseError> {
        let from = if self.eat_keyword(Keyword::FROM) {
            self.sources()?
        } else {
            Vec::new()
        };
        let condition = self.condition()?;
        if from.is_empty() && condition.is_none() {
            let t = self.peek();
            return Err(self.unexpected(t, &["FROM", "WHERE"]));
        }
        Ok((from, condition))
    }

    pub(crate) fn delete(&mut self) -> Result<Statement, ParseError> {
        let t = self.expect_keyword(Keyword::DELETE)?;
        let (from, condition) = self.sources_and_condition(t)?;
        self.no_database_in(&from)?;
        Ok(Statement::Delete { from, condition })
    }

    /// `DELETE` and `DROP SERIES` act on the query's database: a source naming another is
    /// refused, as in 1.x (at the start of the input).
    fn no_database_in(&self, from: &[crate::ast::Source]) -> Result<(), ParseError> {
        for s in from {
            if let crate::ast::Source::Measurement(m) = s {
                if m.database.is_some() {
                    return Err(ParseError::new(self.input(), 0, "database not supported"));
                }
            }
        }
        Ok(())
    }

    pub(crate) fn explain(&mut self) -> Result<Statement, ParseError> {
        self.expect_keyword(Keyword::EXPLAIN)?;
        let analyze = self.eat_keyword(Keyword::ANALYZE);
        // VERBOSE is a word here, not a reserved one: 1.6 lets fields be called that.
        let t = self.peek();
        let verbose = t.kind == Kind::Ident && self.text(t).eq_ignore_ascii_case("verbose");
        if verbose {
            self.bump();
        }
        let t = self.peek();
        if t.kind != Kind::Keyword(Keyword::SELECT) {
            return Err(self.unexpected(t, &["SELECT"]));
        }
        Ok(Statement::Explain {
            analyze,
            verbose,
            select: Box::new(self.select()?),
        })
    }

    pub(crate) fn kill(&mut self) -> Result<Statement, ParseError> {
        self.expect_keywords(&[Keyword::KILL, Keyword::QUERY])?;
        let id = self.uint()?;
        let host = if self.eat_keyword(Keyword::ON) {
            Some(self.ident()?)
        } else {
            None
        };
        Ok(Statement::KillQuery { id, host })
    }

    fn privilege(&mut self) -> Result<Privilege, ParseError> {
        let t = self.next();
        let p = match t.kind {
            Kind::Keyword(Keyword::READ) => Privilege::Read,
            Kind::Keyword(Keyword::WRITE) => Privilege::Write,
            Kind::Keyword(Keyword::ALL) => {
                self.eat_keyword(Keyword::PRIVILEGES);
                return Ok(Privilege::All);
            }
            _ => return Err(self.unexpected(t, &["READ", "WRITE", "ALL [PRIVILEGES]"])),
        };
        Ok(p)
    }

    pub(crate) fn grant(&mut self) -> Result<Statement, ParseError> {
        self.expect_keyword(Keyword::GRANT)?;
        let privilege = self.privilege()?;
        let database = self.privilege_on(privilege)?;
        self.expect_keyword(Keyword::TO)?;
        let user = self.ident()?;
        Ok(Statement::Grant {
            privilege,
            database,
            user,
        })
    }

    pub(crate) fn revoke(&mut self) -> Result<Statement, ParseError> {
        self.expect_keyword(Keyword::REVOKE)?;
        let privilege = self.privilege()?;
        let database = self.privilege_on(privilege)?;
        self.expect_keyword(Keyword::FROM)?;
        let user = self.ident()?;
        Ok(Statement::Revoke {
            privilege,
            database,
            user,
        })
    }

    /// `ON db`: required for `READ`/`WRITE`, optional for `ALL` (without it, admin).
    fn privilege_on(&mut self, p: Privilege) -> Result<Option<String>, ParseError> {
        if p == Privilege::All && !self.is_keyword(Keyword::ON) {
            return Ok(None);
        }
        self.expect_keyword(Keyword::ON)?;
        Ok(Some(self.ident()?))
    }

    pub(crate) fn set_password(&mut self) -> Result<Statement, ParseError> {
        self.expect_keywords(&[Keyword::SET, Keyword::PASSWORD, Keyword::FOR])?;
        let user = self.ident()?;
        self.expect(Kind::Eq)?;
        let password = self.string()?;
        Ok(Statement::SetPassword { user, password })
    }
}

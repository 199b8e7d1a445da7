//! The parser against InfluxDB 1.6's answers in `tests/influxql/golden/` (the repository's
//! golden files, regenerated against a real 1.6 by `tests/influxql/regen.py`): every query
//! 1.6 refused with a parse error we refuse with the same message, and every query it parsed
//! we parse too (its answer is the server's e2e tests' business).

use std::path::Path;

use shardline_influxql::parse;

#[test]
fn parses_what_influxdb_1_6_parses_and_words_its_errors_alike() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/influxql/golden");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "golden"))
        .collect();
    files.sort();
    let (mut checked, mut failures) = (0, Vec::new());
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for block in text.split("\n\n") {
            let Some(query) = block.lines().find_map(|l| l.strip_prefix("query: ")) else {
                continue;
            };
            let result = block
                .lines()
                .find_map(|l| l.strip_prefix("result: "))
                .unwrap_or("");
            const PREFIX: &str = "{\"error\":\"error parsing query: ";
            let expected_error = result
                .strip_prefix(PREFIX)
                .and_then(|r| r.strip_suffix("\"}"))
                .map(|m| m.replace("\\\"", "\"").replace("\\\\", "\\"));
            // Time zones are the planner's to check (it holds the zone database); the server's
            // golden test covers those.
            if expected_error
                .as_deref()
                .is_some_and(|e| e.starts_with("unable to find time zone"))
            {
                continue;
            }
            // 1.x trims the query before parsing it.
            let got = parse(query.trim());
            checked += 1;
            match (&expected_error, got) {
                (None, Ok(_)) => {}
                (Some(want), Err(e)) if e.to_string() == *want => {}
                (want, got) => failures.push(format!(
                    "{}: {query}\n  1.6: {}\n  ours: {}",
                    file.file_name().unwrap().to_string_lossy(),
                    want.as_deref().unwrap_or("parses"),
                    match got {
                        Ok(_) => "parses".to_string(),
                        Err(e) => e.to_string(),
                    }
                )),
            }
        }
    }
    assert!(checked >= 200, "only {checked} queries in the golden files");
    assert!(
        failures.is_empty(),
        "{} of {checked} differ from 1.6:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

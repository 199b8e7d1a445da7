use super::reference::{self, OwnedPoint, OwnedValue};
use super::*;
use proptest::prelude::*;

/// Runs the fast parser and converts its output to the reference's owned shape.
fn fast(body: &str) -> Vec<Result<OwnedPoint, u32>> {
    let mut p = LineParser::new(body);
    let mut out = Vec::new();
    while let Some(r) = p.next_line() {
        out.push(match r {
            Ok(line) => Ok(OwnedPoint::from_parser(&line, &p)),
            Err(rej) => Err(rej.span.line_number),
        });
    }
    out
}

fn both(body: &str) -> Vec<Result<OwnedPoint, u32>> {
    let f = fast(body);
    let r = reference::parse(body);
    assert_eq!(f, r, "fast and reference parsers disagree on {body:?}");
    f
}

fn one(body: &str) -> OwnedPoint {
    let mut v = both(body);
    assert_eq!(v.len(), 1, "{body:?}");
    v.pop()
        .unwrap()
        .unwrap_or_else(|n| panic!("{body:?} rejected at line {n}"))
}

fn rejected(body: &str) {
    let v = both(body);
    assert!(
        v.iter().all(|r| r.is_err()) && !v.is_empty(),
        "{body:?} should be rejected: {v:?}"
    );
}

#[test]
fn tsbs_line() {
    let p = one("cpu,hostname=host_0,region=eu-west-1,arch=x64 usage_user=58i,usage_system=2i 1700000000000000000");
    assert_eq!(p.measurement, "cpu");
    assert_eq!(
        p.tags,
        vec![
            ("arch".into(), "x64".into()),
            ("hostname".into(), "host_0".into()),
            ("region".into(), "eu-west-1".into())
        ]
    );
    assert_eq!(p.fields[0], ("usage_user".into(), OwnedValue::I64(58)));
    assert_eq!(p.timestamp, Some(1_700_000_000_000_000_000));
}

#[test]
fn value_forms() {
    let p = one(
        r#"m a=1,b=-1.5e3,c=3i,d=4u,e=t,f=FALSE,g="s",h=.5,i=1.,j=-9223372036854775808i,k=18446744073709551615u"#,
    );
    let v: Vec<_> = p.fields.into_iter().map(|f| f.1).collect();
    assert_eq!(
        v,
        vec![
            OwnedValue::F64(1.0),
            OwnedValue::F64(-1500.0),
            OwnedValue::I64(3),
            OwnedValue::U64(4),
            OwnedValue::Bool(true),
            OwnedValue::Bool(false),
            OwnedValue::Str("s".into()),
            OwnedValue::F64(0.5),
            OwnedValue::F64(1.0),
            OwnedValue::I64(i64::MIN),
            OwnedValue::U64(u64::MAX),
        ]
    );
}

#[test]
fn escapes_follow_core() {
    let p = one(r#"c\ p\,u,t\ k=v\=1\,2 f\=x="a \"q\" \\ \t" -5"#);
    assert_eq!(p.measurement, "c p,u");
    assert_eq!(p.tags, vec![("t k".into(), "v=1,2".into())]);
    assert_eq!(
        p.fields[0],
        ("f=x".into(), OwnedValue::Str(r#"a "q" \ \t"#.into()))
    );
    assert_eq!(p.timestamp, Some(-5));
    // `=` needs no escape in a tag value or a measurement.
    let p = one("a=b,k=x=y v=1");
    assert_eq!(p.measurement, "a=b");
    assert_eq!(p.tags, vec![("k".into(), "x=y".into())]);
}

#[test]
fn rejects_bad_lines() {
    for body in [
        "cpu",
        "cpu value",
        "cpu value=",
        "cpu,a= value=1",
        "cpu,=b value=1",
        "cpu, value=1",
        "cpu value=1,value=2",
        "cpu,a=1,a=2 value=1",
        "cpu value=1i2",
        "cpu value=9223372036854775808i",
        "cpu value=-1u",
        "cpu value=18446744073709551616u",
        "cpu value=1e400",
        "cpu value=+1",
        "cpu value=1 12x",
        "cpu value=1 9223372036854775808",
        "cpu value=1 1 2",
        "cpu value=\"open",
        "\tcpu value=1",
        "cpu\\ value=1",
        "c\u{1}pu value=1",
        "cpu value=1,",
        "cpu value=truee",
        "cpu value=1 ,",
        "v=\"x y\"v=\"x y\"0 ",
        "cpu s=\"x\"1",
    ] {
        rejected(body);
    }
}

#[test]
fn line_numbers_skip_blank_comment_and_quoted_newlines() {
    let body = "# comment\n\ncpu v=1\r\nbad line\nm s=\"two\nlines\"\n  \nm v=2 3\n";
    let v = both(body);
    let nums: Vec<Result<u32, u32>> = v
        .iter()
        .map(|r| r.as_ref().map(|p| p.line_number).map_err(|&n| n))
        .collect();
    assert_eq!(nums, vec![Ok(3), Err(4), Ok(5), Ok(8)]);
}

#[test]
fn bad_line_does_not_swallow_next() {
    let v = both("cpu v=1\ncpu v=oops\ncpu v=3\n");
    assert!(v[0].is_ok() && v[1].is_err() && v[2].is_ok());
    assert_eq!(v[1], Err(2));
}

#[test]
fn spans_cover_the_original_line() {
    let body = "a v=1\r\nbb,t=x v=2 5\n";
    let mut p = LineParser::new(body);
    let l1 = p.next_line().unwrap().unwrap();
    assert_eq!(&body[l1.span.start..l1.span.end], "a v=1");
    let l2 = p.next_line().unwrap().unwrap();
    assert_eq!(&body[l2.span.start..l2.span.end], "bb,t=x v=2 5");
    assert!(p.next_line().is_none());
}

/// Strategy: bodies assembled from line-protocol-shaped pieces, with structural bytes,
/// escapes, quotes and control bytes mixed in so that both valid and invalid lines appear.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("cpu".to_string()),
        Just(",".to_string()),
        Just("=".to_string()),
        Just(" ".to_string()),
        Just("\n".to_string()),
        Just("\r\n".to_string()),
        Just("\\".to_string()),
        Just("\\ ".to_string()),
        Just("\\,".to_string()),
        Just("\\=".to_string()),
        Just("\\\\".to_string()),
        Just("\"".to_string()),
        Just("\\\"".to_string()),
        Just("#".to_string()),
        Just("\t".to_string()),
        Just("\r".to_string()),
        Just("é".to_string()),
        Just("host=a".to_string()),
        Just("v=1".to_string()),
        Just("v=-1.5e3".to_string()),
        Just("v=7i".to_string()),
        Just("v=7u".to_string()),
        Just("v=t".to_string()),
        Just("v=\"x y\"".to_string()),
        Just(" 1700000000".to_string()),
        Just(" -42".to_string()),
        "[a-z0-9.e+-]{1,6}",
    ]
}

fn valid_line() -> impl Strategy<Value = String> {
    let name = "[a-zA-Z_][a-zA-Z0-9_]{0,7}";
    let value = prop_oneof![
        "-?[0-9]{1,10}(\\.[0-9]{0,4})?".prop_map(|s| s),
        "-?[0-9]{1,12}i".prop_map(|s| s),
        "[0-9]{1,12}u".prop_map(|s| s),
        Just("true".to_string()),
        "\"[a-z ,=]{0,8}\"".prop_map(|s| s),
    ];
    (
        name,
        prop::collection::vec((name, "[a-z0-9-]{1,8}"), 0..5),
        prop::collection::vec((name, value), 1..5),
        prop::option::of(-1_000_000_000_000i64..2_000_000_000_000_000_000),
    )
        .prop_map(|(m, tags, fields, ts)| {
            let mut s = m;
            for (k, v) in tags {
                s.push_str(&format!(",{k}={v}"));
            }
            s.push(' ');
            let f: Vec<String> = fields
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            s.push_str(&f.join(","));
            if let Some(t) = ts {
                s.push_str(&format!(" {t}"));
            }
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn fast_matches_reference_on_noise(pieces in prop::collection::vec(piece(), 0..40)) {
        let body: String = pieces.concat();
        prop_assert_eq!(fast(&body), reference::parse(&body));
    }

    #[test]
    fn fast_matches_reference_on_valid_lines(lines in prop::collection::vec(valid_line(), 1..20), crlf in any::<bool>()) {
        let body = lines.join(if crlf { "\r\n" } else { "\n" });
        let f = fast(&body);
        prop_assert_eq!(&f, &reference::parse(&body));
        // Valid lines with unique keys are all accepted.
        let dup_free = lines.iter().all(|l| {
            let mut p = LineParser::new(l);
            matches!(p.next_line(), Some(Ok(_)))
        });
        if dup_free {
            prop_assert_eq!(f.len(), lines.len());
        }
    }

    #[test]
    fn never_panics_on_arbitrary_text(body in "\\PC{0,200}") {
        let _ = fast(&body);
    }
}

#[test]
fn a_rejected_duplicate_does_not_vouch_for_the_next_line() {
    let v = both("m,a=1,b=2,a=3 v=1\nm,a=1,b=2,a=3 v=1\nm,b=1,a=2 v=1\nm,b=1,a=2 v=1\n");
    assert!(v[0].is_err() && v[1].is_err(), "{v:?}");
    assert!(v[2].is_ok() && v[3].is_ok());
}

#[test]
fn tag_order_cache_follows_changes_in_key_order() {
    let body = "m,b=1,a=2,c=3 v=1\nm,b=4,a=5,c=6 v=1\nm,c=7,a=8,b=9 v=1\nm,b=1,a=2 v=1\nm,b=1,a=2,c=3,a=4 v=1\nm,b=x,a=y,c=z v=1\nm,a\\ b=1,a=2 v=1\n";
    let got = both(body);
    let tags: Vec<Vec<(String, String)>> = got
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|p| p.tags.clone())
        .collect();
    let t = |v: &[(&str, &str)]| {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(tags[0], t(&[("a", "2"), ("b", "1"), ("c", "3")]));
    assert_eq!(tags[1], t(&[("a", "5"), ("b", "4"), ("c", "6")]));
    assert_eq!(tags[2], t(&[("a", "8"), ("b", "9"), ("c", "7")]));
    assert_eq!(tags[3], t(&[("a", "2"), ("b", "1")]));
    assert_eq!(
        tags[4],
        t(&[("a", "y"), ("b", "x"), ("c", "z")]),
        "the line with a duplicate tag is rejected"
    );
    assert_eq!(tags[5], t(&[("a", "2"), ("a b", "1")]));
    assert!(got[4].is_err());
}

//! `n3net bench`: the records it prints and writes, for the core and for
//! tract, and its refusals. Only that the runs happen and report
//! consistently is checked; how fast they are is `scripts/bench-peers.sh`'s.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::Command;

use n3net_runtime::bench::{synthetic_rows, time_stream};
use n3net_runtime::default_model;

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

fn n3net(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_n3net"))
        .args(args)
        .output()
        .expect("run n3net")
}

fn records(path: &PathBuf) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .expect("json written")
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

fn check(r: &serde_json::Value, engine: &str, (h, w): (u64, u64), threads: u64) {
    assert_eq!(r["engine"], engine);
    assert_eq!(
        (r["height"].as_u64(), r["width"].as_u64()),
        (Some(h), Some(w))
    );
    assert_eq!(r["threads"].as_u64(), Some(threads));
    let (best, median) = (
        r["best_s"].as_f64().unwrap(),
        r["median_s"].as_f64().unwrap(),
    );
    assert!(best > 0.0 && best <= median, "{r}");
    let macs = r["macs_per_pixel"].as_f64().unwrap();
    let gmacs = r["gmac_per_s"].as_f64().unwrap();
    let want = macs * (h * w) as f64 / best / 1e9;
    assert!((gmacs - want).abs() <= 1e-9 * want.max(1.0), "{r}");
}

#[test]
fn bench_times_the_core_and_tract_and_writes_json_lines() {
    let dir = std::env::temp_dir().join(format!("n3net-test-{}-bench", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let json = dir.join("core.jsonl");
    let j = json.to_str().unwrap();
    let out = n3net(&[
        "bench",
        "--size",
        "40,33",
        "--threads",
        "1,2",
        "--repeat",
        "2",
        "--json",
        j,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().filter(|l| l.contains("s/image")).count(),
        4,
        "{text}"
    );
    let recs = records(&json);
    assert_eq!(recs.len(), 4);
    for (r, (n, t)) in recs.iter().zip([(40, 1), (40, 2), (33, 1), (33, 2)]) {
        check(r, "n3net", (n, n), t);
        assert_eq!(r["runs"].as_u64(), Some(2));
        assert!(r["workspace_bytes"].as_u64().unwrap() > 0);
    }

    let tiny = repo("tests/fixtures/tiny/model.onnx");
    let json = dir.join("tract.jsonl");
    let j = json.to_str().unwrap();
    let args = [
        "bench",
        "--engine",
        "tract",
        "--model",
        tiny.to_str().unwrap(),
    ];
    let out = n3net(
        &[
            &args[..],
            &["--threads", "1,2", "--repeat", "1", "--json", j],
        ]
        .concat(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recs = records(&json);
    assert_eq!(recs.len(), 2);
    // The fixture graph was exported for 39 rows of 49 columns.
    check(&recs[0], "tract", (39, 49), 1);
    check(&recs[1], "tract", (39, 49), 2);
}

#[test]
fn bench_refuses_what_it_cannot_time() {
    for args in [
        &["bench", "--repeat", "0"][..],
        &["bench", "--threads", "0"],
        &["bench", "--size", "0"],
        // tract needs an ONNX file (here: the built-in model has no path).
        &["bench", "--engine", "tract"],
        &["bench", "--model", "no/such/model.onnx"],
    ] {
        let out = n3net(args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("error: "), "{args:?}: {err}");
    }
}

#[test]
fn time_stream_reports_every_run_and_refuses_bad_arguments() {
    let model = default_model().expect("model");
    let net = model.network().expect("net");
    let (h, w) = (36, 45);
    let rows = synthetic_rows(net.cin(), h, w);
    assert_eq!(rows.len(), 2 * h * w);
    assert!(rows.iter().all(|v| v.is_finite()));
    for t in [1, 2, 3] {
        let (timing, bytes) = time_stream(&net, &rows, h, w, t, 2).expect("timed");
        assert_eq!(timing.runs, 2);
        assert!(timing.best > 0.0 && timing.best <= timing.median);
        assert!(bytes > 0);
    }
    assert!(time_stream(&net, &rows[1..], h, w, 1, 1).is_err());
    assert!(time_stream(&net, &rows, h, w, 0, 1).is_err());
    assert!(time_stream(&net, &rows, h, w, 1, 0).is_err());
}

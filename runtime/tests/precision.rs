//! f16 and q16 through the tool: `convert --precision`, calibration on a
//! folder, blobs that `denoise`, `eval` and `info` run in their precision,
//! accuracy against f32 on the committed sample, and the errors. Needs no
//! data outside the repository.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

use n3net_core::Precision;
use n3net_runtime::image_io::{read_image, read_npy_f32};
use n3net_runtime::load_model;
use n3net_runtime::metrics::psnr;

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

fn n3net(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_n3net"))
        .args(args)
        .env_remove("N3NET_DATA")
        .output()
        .expect("run n3net")
}

fn ok(r: &Output) -> String {
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    String::from_utf8_lossy(&r.stdout).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("n3net-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

#[test]
fn sixteen_bit_blobs_denoise_like_f32() {
    let dir = scratch("precision");
    let samples = repo("samples");
    let (f16, q16) = (dir.join("f16.n3b"), dir.join("q16.n3b"));
    let text = ok(&n3net(&[
        "convert",
        "--precision",
        "f16",
        "-o",
        f16.to_str().unwrap(),
    ]));
    assert!(text.contains("f16"), "{text}");
    let text = ok(&n3net(&[
        "convert",
        "--precision",
        "q16",
        "--calibration",
        samples.to_str().unwrap(),
        "--calibration-images",
        "2",
        "-o",
        q16.to_str().unwrap(),
    ]));
    assert!(text.contains("q16"), "{text}");
    for (path, p) in [(&f16, Precision::F16), (&q16, Precision::Q16)] {
        assert_eq!(load_model(path).unwrap().precision(), p);
        let info = ok(&n3net(&["info", path.to_str().unwrap()]));
        assert!(
            info.contains(&format!("precision        {}", p.name())),
            "{info}"
        );
    }

    let input = repo("samples/astronaut-noisy-s25.png");
    let clean = read_image(&repo("samples/astronaut.png")).unwrap();
    let mut db = Vec::new();
    for model in [None, Some(&f16), Some(&q16)] {
        let out = dir.join("out.npy");
        let mut args = vec!["denoise", input.to_str().unwrap(), out.to_str().unwrap()];
        args.extend(["--sigma", "25", "--stripe", "160"]);
        if let Some(m) = model {
            args.extend(["--model", m.to_str().unwrap()]);
        }
        ok(&n3net(&args));
        let (shape, data) = read_npy_f32(&out).unwrap();
        assert_eq!(shape, vec![512, 512]);
        db.push(psnr(&clean.data, &data).unwrap());
    }
    assert!(db[1] >= db[0] - 0.02, "f16 {} vs f32 {} dB", db[1], db[0]);
    assert!(db[2] >= db[0] - 0.05, "q16 {} vs f32 {} dB", db[2], db[0]);

    // The same through eval --precision on a folder.
    let text = ok(&n3net(&[
        "eval",
        "--dataset",
        samples.to_str().unwrap(),
        "--sigma",
        "25",
        "--limit",
        "1",
        "--precision",
        "f16",
    ]));
    assert!(text.contains("f16): PSNR"), "{text}");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn precision_errors_are_clear() {
    let dir = scratch("precision-errors");
    let out = dir.join("q16.n3b");
    let r = n3net(&["convert", "--precision", "q16", "-o", out.to_str().unwrap()]);
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("calibration"), "{err}");
    assert!(!out.exists(), "nothing written on error");

    let f16 = dir.join("f16.n3b");
    ok(&n3net(&[
        "convert",
        "--precision",
        "f16",
        "-o",
        f16.to_str().unwrap(),
    ]));
    let r = n3net(&[
        "convert",
        f16.to_str().unwrap(),
        "--precision",
        "q16",
        "--calibration",
        repo("samples").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("already"), "{err}");

    let r = n3net(&["convert", "--precision", "q8", "-o", out.to_str().unwrap()]);
    assert!(!r.status.success());
    let r = n3net(&[
        "convert",
        "--precision",
        "q16",
        "--calibration",
        dir.join("missing").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(!r.status.success());
    std::fs::remove_dir_all(dir).ok();
}

//! Every malformed or foreign ONNX file gets its own clear error, never a panic.
#![forbid(unsafe_code)]

use std::path::PathBuf;

use n3net_runtime::onnx::{from_bytes, ImportError};
use prost::Message;
use tract_onnx::pb::{ModelProto, TensorProto};

fn fixture_bytes() -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny/model.onnx");
    std::fs::read(p).expect("fixture model")
}

fn mutate(f: impl FnOnce(&mut ModelProto)) -> Vec<u8> {
    let mut m = ModelProto::decode(&fixture_bytes()[..]).expect("decode fixture");
    f(&mut m);
    m.encode_to_vec()
}

/// The fixture with initializer `name` changed by `f`.
fn mutate_tensor(name: &'static str, f: impl FnOnce(&mut TensorProto)) -> Vec<u8> {
    mutate(|m| {
        let g = m.graph.as_mut().unwrap();
        f(g.initializer.iter_mut().find(|t| t.name == name).unwrap())
    })
}

fn import_err(bytes: &[u8]) -> ImportError {
    from_bytes(bytes, "test").expect_err("import should fail")
}

#[test]
fn the_fixture_imports() {
    let m = from_bytes(&fixture_bytes(), "test").expect("import");
    assert_eq!(m.hyper.k, 3);
    assert_eq!(m.hyper.n3_blocks, 2);
}

#[test]
fn not_onnx() {
    for bytes in [&b"hello, this is not a protobuf"[..], &[0xff; 64][..]] {
        assert!(
            matches!(import_err(bytes), ImportError::NotOnnx(_)),
            "{bytes:?}"
        );
    }
    let e = import_err(b"");
    assert!(
        matches!(e, ImportError::NotOnnx(_) | ImportError::NotN3Net(_)),
        "{e}"
    );
}

#[test]
fn truncated_files_never_panic() {
    let bytes = fixture_bytes();
    for cut in (0..bytes.len()).step_by(997) {
        assert!(from_bytes(&bytes[..cut], "test").is_err(), "cut at {cut}");
    }
}

#[test]
fn onnx_that_is_not_an_n3net() {
    let e = import_err(&mutate(|m| m.metadata_props.clear()));
    assert!(
        matches!(&e, ImportError::NotN3Net(k) if k == "n3net.format_version"),
        "{e}"
    );
}

#[test]
fn missing_metadata() {
    let e = import_err(&mutate(|m| m.metadata_props.retain(|p| p.key != "n3net.k")));
    assert!(
        matches!(&e, ImportError::NotN3Net(k) if k == "n3net.k"),
        "{e}"
    );
    assert!(e.to_string().contains("n3net.k"));
}

#[test]
fn malformed_metadata() {
    let set = |key: &'static str, value: &'static str| {
        mutate(move |m| {
            for p in &mut m.metadata_props {
                if p.key == key {
                    p.value = value.into();
                }
            }
        })
    };
    let e = import_err(&set("n3net.k", "seven"));
    assert!(
        matches!(&e, ImportError::Metadata { key, .. } if key == "n3net.k"),
        "{e}"
    );
    let e = import_err(&set("n3net.window", "4"));
    assert!(e.to_string().contains("window"), "{e}");
    let e = import_err(&set("n3net.format_version", "9"));
    assert!(matches!(e, ImportError::Version(_)), "{e}");
    let e = import_err(&set("n3net.external_temp", "false"));
    assert!(matches!(e, ImportError::Unsupported(_)), "{e}");
    // A hyper-parameter that disagrees with the weights is a shape error.
    let e = import_err(&set("n3net.dncnn_features", "17"));
    assert!(matches!(e, ImportError::Shape { .. }), "{e}");
}

#[test]
fn wrong_shape_missing_tensor_and_non_finite_weights() {
    let e = import_err(&mutate_tensor("blocks.0.conv1.weight", |t| {
        t.dims.swap(0, 1);
    }));
    assert!(
        matches!(&e, ImportError::Shape { name, .. } if name == "blocks.0.conv1.weight"),
        "{e}"
    );

    let e = import_err(&mutate(|m| {
        m.graph
            .as_mut()
            .unwrap()
            .initializer
            .retain(|t| t.name != "nls.1.tempcnn.6.bias");
    }));
    assert!(
        matches!(&e, ImportError::MissingTensor(n) if n == "nls.1.tempcnn.6.bias"),
        "{e}"
    );

    let e = import_err(&mutate_tensor("blocks.1.conv2.weight", |t| {
        let mut raw = t.raw_data.clone();
        raw[4..8].copy_from_slice(&f32::NAN.to_le_bytes());
        t.raw_data = raw;
    }));
    assert!(
        matches!(&e, ImportError::NonFinite(n) if n == "blocks.1.conv2.weight"),
        "{e}"
    );

    let e = import_err(&mutate_tensor("blocks.2.conv1.bias", |t| {
        let raw = t.raw_data[..4].to_vec();
        t.raw_data = raw;
    }));
    assert!(matches!(e, ImportError::TensorData { .. }), "{e}");
}

//! `include/n3net.h` is exactly what cbindgen makes of the code. Regenerate
//! it with `N3NET_BLESS=1 cargo test -p n3net-ffi --test header`.
#![forbid(unsafe_code)]

use std::path::Path;

#[test]
fn header_matches_the_code() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).unwrap();
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut generated);
    let path = dir.join("include").join("n3net.h");
    if std::env::var_os("N3NET_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is stale: run N3NET_BLESS=1 cargo test -p n3net-ffi --test header",
        path.display()
    );
}

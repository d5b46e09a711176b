//! Bounded mutation fuzzing of registry index parsing and validation: every mutated index
//! ends in `Ok` or a clean error naming the field, never a panic or an abort.

mod common;
#[path = "../../../tests/common/fuzz.rs"]
mod fuzz;

use mlfw_hub::index::Index;

#[test]
fn fuzz_index_json() {
    let w = common::weights();
    let seeds = vec![
        common::lenet_index(&w, w.len()).into_bytes(),
        include_bytes!("../builtin/index.json").to_vec(),
    ];
    let r = fuzz::fuzz("hub index", &seeds, 1000, 8, |b| {
        Index::parse(&String::from_utf8_lossy(b), "fuzz/index.json").map(|_| ())
    });
    assert_eq!(r.panics, 0, "{r:?}");
    assert!(r.ok > 0 && r.clean_errors > 0, "{r:?}");
}

//! The registry compiled into the binary: `builtin/index.json` and the files it lists, so
//! `mlfw hub pull lenet5` works on a machine with no network. Pulling copies the embedded
//! bytes into the cache, verified by sha256 like any download.

/// The built-in `index.json`.
pub(crate) const INDEX: &str = include_str!("../builtin/index.json");

/// Embedded files by the (relative) URL the built-in index gives them.
const FILES: &[(&str, &[u8])] = &[(
    "lenet5-mnist-mini.safetensors",
    include_bytes!("../builtin/lenet5-mnist-mini.safetensors"),
)];

/// The embedded bytes of `url`, if the binary holds such a file.
pub(crate) fn file(url: &str) -> Option<&'static [u8]> {
    FILES.iter().find(|(n, _)| *n == url).map(|(_, b)| *b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::Index;

    #[test]
    fn index_matches_embedded_files() {
        let index = Index::parse(INDEX, "builtin").unwrap();
        assert!(index.find("lenet5", None).is_some());
        for e in &index.models {
            crate::arch::check(e).unwrap();
            for f in &e.files {
                let bytes = file(&f.url).unwrap_or_else(|| panic!("{} not embedded", f.url));
                assert_eq!(bytes.len() as u64, f.size, "{}", f.name);
                assert_eq!(
                    mlfw_data::download::sha256_bytes(bytes),
                    f.sha256,
                    "{}",
                    f.name
                );
            }
        }
    }
}

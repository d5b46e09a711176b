//! Where each dataset's official files are published: torchvision's mirrors and MD5 digests.

use std::path::{Path, PathBuf};

use crate::download::{download_file, Checksum, DownloadOptions};
use crate::error::{Error, Result};

/// One published file and its MD5 digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteFile {
    /// File name, the same on every mirror.
    pub name: &'static str,
    /// MD5 digest (lowercase hex) as published by torchvision.
    pub md5: &'static str,
}

/// A dataset's mirrors (tried in order) and files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    /// Base URLs ending in `/`; a file's URL is the base followed by its name.
    pub mirrors: &'static [&'static str],
    /// The files published there.
    pub files: &'static [RemoteFile],
}

const fn f(name: &'static str, md5: &'static str) -> RemoteFile {
    RemoteFile { name, md5 }
}

/// MNIST (torchvision's mirrors and digests).
pub const MNIST_SOURCE: Source = Source {
    mirrors: &[
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ],
    files: &[
        f(
            "train-images-idx3-ubyte.gz",
            "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        ),
        f(
            "train-labels-idx1-ubyte.gz",
            "d53e105ee54ea40749a09fcbcd1e9432",
        ),
        f(
            "t10k-images-idx3-ubyte.gz",
            "9fb629c4189551a2d022fa330f9573f3",
        ),
        f(
            "t10k-labels-idx1-ubyte.gz",
            "ec29112dd5afa0611ce80d1b7f02629c",
        ),
    ],
};

/// Fashion-MNIST.
pub const FASHION_MNIST_SOURCE: Source = Source {
    mirrors: &["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
    files: &[
        f(
            "train-images-idx3-ubyte.gz",
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        ),
        f(
            "train-labels-idx1-ubyte.gz",
            "25c81989df183df01b3e8a0aad5dffbe",
        ),
        f(
            "t10k-images-idx3-ubyte.gz",
            "bef4ecab320f06d8554ea6380940ec79",
        ),
        f(
            "t10k-labels-idx1-ubyte.gz",
            "bb300cfdad3c16e7a12a480ee83cd310",
        ),
    ],
};

/// Kuzushiji-MNIST.
pub const KMNIST_SOURCE: Source = Source {
    mirrors: &["http://codh.rois.ac.jp/kmnist/dataset/kmnist/"],
    files: &[
        f(
            "train-images-idx3-ubyte.gz",
            "bdb82020997e1d708af4cf47b453dcf7",
        ),
        f(
            "train-labels-idx1-ubyte.gz",
            "e144d726b3acfaa3e44228e80efcd344",
        ),
        f(
            "t10k-images-idx3-ubyte.gz",
            "5c965bf0a639b31b8f53240b1b52f4d7",
        ),
        f(
            "t10k-labels-idx1-ubyte.gz",
            "7320c461ea6c1c855c0b718fb2a4b134",
        ),
    ],
};

/// CIFAR-10, binary version.
pub const CIFAR10_SOURCE: Source = Source {
    mirrors: &["https://www.cs.toronto.edu/~kriz/"],
    files: &[f(
        "cifar-10-binary.tar.gz",
        "c32a1d4ab5d03f1284b67883e8d87530",
    )],
};

/// CIFAR-100, binary version.
pub const CIFAR100_SOURCE: Source = Source {
    mirrors: &["https://www.cs.toronto.edu/~kriz/"],
    files: &[f(
        "cifar-100-binary.tar.gz",
        "03b5dce01913d631647c71ecec9e9cb8",
    )],
};

/// QMNIST (torchvision's URLs and digests; the `nist` set is not included).
pub const QMNIST_SOURCE: Source = Source {
    mirrors: &["https://raw.githubusercontent.com/facebookresearch/qmnist/master/"],
    files: &[
        f(
            "qmnist-train-images-idx3-ubyte.gz",
            "ed72d4157d28c017586c42bc6afe6370",
        ),
        f(
            "qmnist-train-labels-idx2-int.gz",
            "0058f8dd561b90ffdd0f734c6a30e5e4",
        ),
        f(
            "qmnist-test-images-idx3-ubyte.gz",
            "1394631089c404de565df7b7aeaf9412",
        ),
        f(
            "qmnist-test-labels-idx2-int.gz",
            "5b5b05890a5e13444e108efe57b788aa",
        ),
    ],
};

/// EMNIST: one zip archive (`gzip/emnist-<split>-{train,test}-*.gz` inside).
pub const EMNIST_SOURCE: Source = Source {
    mirrors: &["https://biometrics.nist.gov/cs_links/EMNIST/"],
    files: &[f("gzip.zip", "58c8d27c78d21e728a6bc7b3cc06412e")],
};

/// SVHN, cropped digits (`.mat` files, MATLAB v5).
pub const SVHN_SOURCE: Source = Source {
    mirrors: &["http://ufldl.stanford.edu/housenumbers/"],
    files: &[
        f("train_32x32.mat", "e26dedcc434d2e4c54c9b2d4a06d8373"),
        f("test_32x32.mat", "eb5a983be6a315427106f1b164d9cef3"),
        f("extra_32x32.mat", "a93ce644f1a588dc4d68dda5feec44a7"),
    ],
};

/// STL-10, binary version.
pub const STL10_SOURCE: Source = Source {
    mirrors: &["http://ai.stanford.edu/~acoates/stl10/"],
    files: &[f("stl10_binary.tar.gz", "91f7769df0f17e558f3565bffb0c7dfb")],
};

impl Source {
    /// The paths of `names` in `dir`, downloading the missing ones first when `download` (from
    /// `mirrors`, or the official ones when `None`). Errors: [`Error::MissingFiles`] for
    /// `dataset`, listing the exact paths and why downloading did not help.
    ///
    /// # Errors
    /// [`Error::MissingFiles`] for `dataset`, listing the exact paths and why: download disabled,
    /// or the download's error.
    pub fn fetch(
        &self,
        dataset: &str,
        names: &[&str],
        dir: &Path,
        download: Option<(Option<&[String]>, &DownloadOptions)>,
    ) -> Result<Vec<PathBuf>> {
        let paths: Vec<PathBuf> = names.iter().map(|n| dir.join(n)).collect();
        let missing = |reason: String| Error::MissingFiles {
            dataset: dataset.to_string(),
            expected: paths.clone(),
            reason,
        };
        for (name, path) in names.iter().zip(&paths) {
            if path.is_file() {
                continue;
            }
            let Some((mirrors, opts)) = download else {
                return Err(missing("download disabled".into()));
            };
            let res = match mirrors {
                Some(m) => self.download_from(m, name, dir, opts),
                None => self.download(name, dir, opts),
            };
            res.map_err(|e| missing(format!("download failed: {e}")))?;
        }
        Ok(paths)
    }

    /// The published file called `name`, if any.
    pub fn file(&self, name: &str) -> Option<&RemoteFile> {
        self.files.iter().find(|f| f.name == name)
    }

    /// The URLs of file `name` on each mirror, in order.
    pub fn urls(&self, name: &str) -> Vec<String> {
        self.mirrors.iter().map(|m| format!("{m}{name}")).collect()
    }

    /// Downloads file `name` into `dir` from the official mirrors (skipped when already there
    /// and verified).
    ///
    /// # Errors
    /// [`Error::Invalid`] when `name` is not a published file; otherwise as
    /// [`crate::download::download_file`].
    pub fn download(&self, name: &str, dir: &Path, opts: &DownloadOptions) -> Result<PathBuf> {
        let mirrors: Vec<String> = self.mirrors.iter().map(|m| m.to_string()).collect();
        self.download_from(&mirrors, name, dir, opts)
    }

    /// Like [`download`](Self::download) but from other mirrors (base URLs; a missing trailing
    /// `/` is added), e.g. a local copy; the published checksum is still enforced.
    ///
    /// # Errors
    /// [`Error::Invalid`] when `name` is not a published file; otherwise as
    /// [`crate::download::download_file`] (the checksum is enforced).
    pub fn download_from(
        &self,
        mirrors: &[String],
        name: &str,
        dir: &Path,
        opts: &DownloadOptions,
    ) -> Result<PathBuf> {
        let file = self
            .file(name)
            .ok_or_else(|| Error::invalid(format!("no published file named `{name}`")))?;
        let urls: Vec<String> = mirrors
            .iter()
            .map(|m| {
                if m.ends_with('/') {
                    format!("{m}{name}")
                } else {
                    format!("{m}/{name}")
                }
            })
            .collect();
        download_file(&urls, &dir.join(name), Checksum::md5(file.md5), opts)
    }
}

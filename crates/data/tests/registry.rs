//! Datasets by name, metadata, and the offline messages.

use mlfw_data::{dataset_info, dataset_names, load_by_name, Dataset, Error, LoadOptions, Split};

#[test]
fn names_are_listed_and_resolve() {
    assert_eq!(
        dataset_names(),
        [
            "mnist-mini",
            "mnist",
            "fashion-mnist",
            "kmnist",
            "qmnist",
            "emnist-byclass",
            "emnist-bymerge",
            "emnist-balanced",
            "emnist-letters",
            "emnist-digits",
            "emnist-mnist",
            "cifar10",
            "cifar100",
            "svhn",
            "stl10",
            "fake"
        ]
    );
    for name in dataset_names() {
        let info = dataset_info(name).unwrap();
        assert_eq!(info.classes.len(), info.num_classes, "{name}");
        assert_eq!(info.mean.len(), info.channels, "{name}");
    }
    assert_eq!(dataset_info("MNIST").unwrap().mean, vec![0.1307]);
    assert_eq!(dataset_info("mnist").unwrap().std, vec![0.3081]);
    assert_eq!(dataset_info("cifar-10").unwrap().num_classes, 10);
    assert_eq!(dataset_info("Fashion_MNIST").unwrap().name, "fashion-mnist");
}

#[test]
fn unknown_name_lists_valid_ones() {
    let e = load_by_name("imagenet", Split::Train, &LoadOptions::default()).unwrap_err();
    assert!(matches!(e, Error::UnknownDataset { .. }));
    let msg = e.to_string();
    assert!(
        msg.contains("imagenet") && msg.contains("mnist-mini, mnist, fashion-mnist"),
        "{msg}"
    );
    assert!(dataset_info("nope").is_err());
}

#[test]
fn mnist_mini_and_fake_load_offline() {
    let opts = LoadOptions::default()
        .root("/nonexistent/never/created")
        .download(false);
    let ds = load_by_name("mnist-mini", Split::Test, &opts).unwrap();
    assert_eq!(ds.len(), 1000);
    assert_eq!(ds.info().unwrap().name, "mnist-mini");
    let fake = load_by_name("fake", Split::Train, &opts.clone().fake_len(100)).unwrap();
    assert_eq!(fake.len(), 100);
    let again = load_by_name("fake", Split::Train, &opts.fake_len(100)).unwrap();
    assert_eq!(fake.images(), again.images());
    assert!(!std::path::Path::new("/nonexistent").exists());
}

#[test]
fn missing_dataset_without_download_says_where_to_put_files() {
    let root = tempfile::tempdir().unwrap();
    let opts = LoadOptions::default().root(root.path()).download(false);
    let msg = load_by_name("kmnist", Split::Test, &opts)
        .unwrap_err()
        .to_string();
    let p = root.path().join("KMNIST/raw/t10k-images-idx3-ubyte.gz");
    assert!(
        msg.contains(&p.display().to_string()) && msg.contains("mnist-mini"),
        "{msg}"
    );
    let msg = load_by_name("cifar100", Split::Train, &opts)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("cifar-100-binary.tar.gz") && msg.contains("train.bin"),
        "{msg}"
    );
}

#[test]
fn data_dir_is_used_as_is() {
    let dir = tempfile::tempdir().unwrap();
    let opts = LoadOptions::default().data_dir(dir.path());
    let msg = load_by_name("mnist", Split::Train, &opts)
        .unwrap_err()
        .to_string();
    assert!(msg.contains(
        &dir.path()
            .join("train-images-idx3-ubyte.gz")
            .display()
            .to_string()
    ));
}

//! Every kernel module variant compiled with the real NVRTC (no GPU needed), through the
//! same `compile_module` the device uses: no errors and no warnings, as PTX for compute_90
//! and as a cubin for sm_90 (H100/H200). Skips with a notice when libnvrtc is absent, unless
//! `MLFW_REQUIRE_NVRTC=1` (set by `.ci/run` after installing it), which makes absence a failure.

use mlfw_cuda::compile::{compile_module, module_variants, nvrtc_available, nvrtc_version, Output};

#[test]
fn every_kernel_module_compiles_without_warnings() {
    if !nvrtc_available() {
        assert!(
            std::env::var("MLFW_REQUIRE_NVRTC").as_deref() != Ok("1"),
            "MLFW_REQUIRE_NVRTC=1 but libnvrtc cannot be opened (LD_LIBRARY_PATH={:?})",
            std::env::var("LD_LIBRARY_PATH")
        );
        eprintln!("skipping: libnvrtc not found (NVRTC kernel compilation not checked)");
        return;
    }
    let (major, minor) = nvrtc_version().unwrap();
    let variants = module_variants();
    assert_eq!(variants.len(), 51);
    let mut kernels = 0;
    for (module, dt) in variants {
        for output in [Output::Ptx, Output::Cubin] {
            let c = compile_module(module, dt, (9, 0), output)
                .unwrap_or_else(|e| panic!("NVRTC {major}.{minor}: {e}"));
            assert!(
                c.log.is_empty(),
                "NVRTC {major}.{minor}, {} ({output:?}) printed:\n{}",
                c.key,
                c.log
            );
            assert!(!c.image.is_empty(), "{}: empty image", c.key);
            if output == Output::Ptx {
                let ptx = String::from_utf8_lossy(&c.image);
                kernels += ptx.matches(".entry ").count();
            } else {
                assert_eq!(
                    &c.image[..4],
                    b"\x7fELF",
                    "{}: a cubin is an ELF image",
                    c.key
                );
            }
        }
    }
    eprintln!("NVRTC {major}.{minor}: 51 modules, {kernels} kernels, no warnings");
    assert!(kernels >= 249, "only {kernels} kernels");
}

#[test]
fn unknown_modules_are_errors_not_panics() {
    if !nvrtc_available() {
        eprintln!("skipping: libnvrtc not found");
        return;
    }
    let e = compile_module("nope", None, (9, 0), Output::Ptx).unwrap_err();
    assert!(e.to_string().contains("unknown kernel module nope"), "{e}");
}

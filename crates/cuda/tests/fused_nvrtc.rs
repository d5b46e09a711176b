//! The CUDA kernels generated for a compiled plan's fused groups compile with the real NVRTC
//! (no GPU needed), without warnings, as PTX and as a cubin for sm_90; a second compilation
//! of the same signature comes from the on-disk cache. Skips with a notice when libnvrtc is
//! absent, unless `MLFW_REQUIRE_NVRTC=1`.

use mlfw_core::graph::{compile, Capture, FusedGroup};
use mlfw_core::{CmpOp, DType, Device, Result, Tensor};
use mlfw_cuda::compile::{nvrtc_available, Output};
use mlfw_cuda::fused::{compile_fused, fused_source};

/// Fused groups covering every fusable op kind, contiguous, scalar and strided loads, and
/// bool inputs and outputs.
fn groups() -> Result<Vec<FusedGroup>> {
    let dev = Device::Cpu;
    let x = Tensor::randn(0.0, 1.0, [4, 6, 5, 5], DType::F32, &dev)?;
    let b = Tensor::randn(0.0, 1.0, [1, 6, 1, 1], DType::F32, &dev)?;
    let g = Capture::new().input("x", &x).param("b", &b).run(|xs| {
        let h = xs[0].add(&b)?.relu()?;
        let mask = h.cmp_scalar(0.0, CmpOp::Le)?;
        let gx = mask.where_cond(&h.scalar_like(0.0)?, &h.mul_scalar(0.5)?)?;
        let u = gx
            .abs()?
            .affine(2.0, 1.0)?
            .sqrt()?
            .log()?
            .tanh()?
            .sigmoid()?
            .neg()?
            .leaky_relu(0.1)?
            .clamp(-0.5, 0.5)?
            .square()?
            .powf(1.5)?
            .sin()?
            .cos()?
            .erf()?
            .recip()?;
        let v = u
            .maximum(&h)?
            .minimum(&gx)?
            .div(&u.add_scalar(3.0)?)?
            .sub(&h)?;
        Ok(vec![
            v.sum_all()?,
            mask.permute(&[0, 2, 3, 1])?.to_dtype(DType::F32)?,
        ])
    })?;
    Ok(compile(&g)?.fused_groups())
}

#[test]
fn generated_sources_are_stable_and_named_by_signature() -> Result<()> {
    let gs = groups()?;
    assert!(!gs.is_empty());
    for g in &gs {
        let (a, b) = (fused_source(g)?, fused_source(g)?);
        assert_eq!(a, b);
        assert!(a.source.contains(&a.name));
    }
    let names: Vec<String> = gs
        .iter()
        .map(|g| fused_source(g).map(|s| s.name))
        .collect::<Result<_>>()?;
    let mut uniq = names.clone();
    uniq.dedup();
    assert_eq!(names.len(), uniq.len());
    Ok(())
}

#[test]
fn generated_kernels_compile_with_nvrtc_and_are_cached_on_disk() -> Result<()> {
    if !nvrtc_available() {
        assert!(
            std::env::var("MLFW_REQUIRE_NVRTC").as_deref() != Ok("1"),
            "MLFW_REQUIRE_NVRTC=1 but libnvrtc cannot be opened"
        );
        eprintln!("skipping: libnvrtc not found (fused kernel compilation not checked)");
        return Ok(());
    }
    let cache = tempfile::tempdir().map_err(|e| mlfw_core::Error::msg(e.to_string()))?;
    let gs = groups()?;
    let mut ops = 0;
    for g in &gs {
        ops += g.instrs.len();
        for output in [Output::Ptx, Output::Cubin] {
            let first = compile_fused(g, (9, 0), output, cache.path())?;
            assert!(!first.from_cache);
            assert!(
                first.module.log.is_empty(),
                "NVRTC printed:\n{}",
                first.module.log
            );
            assert!(!first.module.image.is_empty());
            if output == Output::Ptx {
                let ptx = String::from_utf8_lossy(&first.module.image);
                assert!(ptx.contains(&format!(".entry {}", first.module.key)));
            }
            let again = compile_fused(g, (9, 0), output, cache.path())?;
            assert!(again.from_cache);
            assert_eq!(again.module.image, first.module.image);
        }
    }
    eprintln!("{} fused kernels ({ops} ops) compiled and cached", gs.len());
    assert!(ops >= 20, "only {ops} fused ops");
    Ok(())
}

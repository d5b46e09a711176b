//! A generated fused kernel run on the host (g++ with `device/cuda_shim.h`, one thread),
//! called the way the CUDA launcher calls it: an array of pointers to the arguments built from
//! [`launch_args`] and [`walk_of`] (cuLaunchKernel's `kernelParams`), unpacked by a C wrapper
//! written from the same argument list. Its results are compared with the eager CPU ops on
//! contiguous, broadcast, permuted and bool inputs. This checks the argument order, the
//! `Walk` layout and the walks themselves without a GPU; it cannot check NVRTC or the GPU.
//! Skips with a notice when g++ is missing.

use libloading::Library;
use mlfw_core::graph::{FusedGroup, FusedInstr, LoadKind};
use mlfw_core::{BinaryOp, CmpOp, DType, Device, Result, Tensor, UnaryOp};
use mlfw_cuda::fused::fused_source;
use mlfw_cuda::fused_run::{launch_args, walk_of, Arg, Walk};

/// The C wrapper `call(void** a)` that unpacks the arguments as the driver would.
fn wrapper(g: &FusedGroup, name: &str) -> String {
    let c = |d: DType| if d == DType::Bool { "bool" } else { "float" };
    let args: Vec<String> = launch_args(g)
        .into_iter()
        .enumerate()
        .map(|(k, a)| match a {
            Arg::Count => format!("*(unsigned long long*)a[{k}]"),
            Arg::Input(_, d) => format!("*(const {}**)a[{k}]", c(d)),
            Arg::Walk(_) => format!("*(Walk*)a[{k}]"),
            Arg::Output(_, d) => format!("*({}**)a[{k}]", c(d)),
        })
        .collect();
    format!(
        "extern \"C\" void call(void** a) {{ {name}({}); }}\n",
        args.join(", ")
    )
}

fn build(src: &str) -> Option<Library> {
    let dir = tempfile::tempdir().ok()?;
    let (cu, so) = (dir.path().join("k.cpp"), dir.path().join("k.so"));
    std::fs::write(&cu, src).ok()?;
    let out = mlfw_cuda::host_build::compile_shared(&cu, &so);
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!("g++ failed:\n{}\n{src}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => {
            println!("skipping: g++ not available ({e})");
            return None;
        }
    }
    // SAFETY: a library just built from generated kernel source; no constructors.
    let lib = unsafe { Library::new(&so) }.ok()?;
    std::mem::forget(dir); // the library stays mapped for the test
    Some(lib)
}

fn f32_ptr(t: &Tensor) -> u64 {
    let s = t.storage();
    match s.as_any().downcast_ref::<mlfw_core::CpuStorage>() {
        Some(mlfw_core::CpuStorage::F32(v)) => v.as_ptr() as u64,
        Some(mlfw_core::CpuStorage::Bool(v)) => v.as_ptr() as u64,
        _ => panic!("a CPU f32/bool tensor"),
    }
}

#[test]
fn a_generated_kernel_called_through_its_launch_arguments_matches_eager() -> Result<()> {
    let cpu = Device::Cpu;
    let shape = vec![2usize, 3, 4, 5];
    let x = Tensor::randn(0.0, 1.0, shape.clone(), DType::F32, &cpu)?;
    let b = Tensor::randn(0.0, 1.0, [1, 3, 1, 1], DType::F32, &cpu)?;
    let xt = Tensor::randn(0.0, 1.0, [2, 3, 5, 4], DType::F32, &cpu)?.permute(&[0, 1, 3, 2])?;
    let m = Tensor::randn(0.0, 1.0, shape.clone(), DType::F32, &cpu)?.cmp_scalar(0.0, CmpOp::Gt)?;
    let s = Tensor::from_vec(vec![0.25f32], [1], &cpu)?;
    let inputs = [&x, &b, &xt, &m, &s];
    // Registers 0..5 are the loads; then one per instruction.
    use FusedInstr as I;
    let instrs = vec![
        I::Binary(5, 0, 1, BinaryOp::Add), // h = x + b
        I::Unary(6, 5, UnaryOp::Relu),     // r = relu(h)
        I::Cmp(7, 6, 2, CmpOp::Gt),        // c = r > xt
        I::Binary(8, 6, 4, BinaryOp::Mul), // q = r * s
        I::Where(9, 3, 8, 2),              // w = m ? q : xt
        I::Unary(10, 9, UnaryOp::Affine(2.0, -1.0)),
        I::Binary(11, 10, 0, BinaryOp::Maximum),
    ];
    let mut loads = Vec::new();
    let mut walks: Vec<Walk> = Vec::new();
    for t in inputs {
        let (k, w) = walk_of(t.layout(), &shape)?;
        loads.push((t.dtype(), k));
        walks.push(w);
    }
    assert_eq!(
        loads.iter().map(|l| l.1).collect::<Vec<_>>(),
        [
            LoadKind::Contiguous,
            LoadKind::Strided { rank: 4 },
            LoadKind::Strided { rank: 4 },
            LoadKind::Contiguous,
            LoadKind::Scalar
        ]
    );
    let g = FusedGroup {
        shape: shape.clone(),
        loads,
        instrs,
        stores: vec![(7, DType::Bool), (9, DType::F32), (11, DType::F32)],
    };
    let src = fused_source(&g)?;
    let Some(lib) = build(&format!("{}\n{}", src.source, wrapper(&g, &src.name))) else {
        return Ok(());
    };
    let n: usize = shape.iter().product();
    let outs = [
        Tensor::zeros(shape.clone(), DType::Bool, &cpu)?,
        Tensor::zeros(shape.clone(), DType::F32, &cpu)?,
        Tensor::zeros(shape.clone(), DType::F32, &cpu)?,
    ];
    // The argument values, then one pointer to each, in `launch_args` order.
    let count = n as u64;
    let ptrs: Vec<u64> = inputs.iter().map(|t| f32_ptr(t)).collect();
    let optrs: Vec<u64> = outs.iter().map(f32_ptr).collect();
    let mut args: Vec<*const std::ffi::c_void> = Vec::new();
    for a in launch_args(&g) {
        args.push(match a {
            Arg::Count => &count as *const u64 as *const _,
            Arg::Input(i, _) => &ptrs[i] as *const u64 as *const _,
            Arg::Walk(i) => &walks[i] as *const Walk as *const _,
            Arg::Output(j, _) => &optrs[j] as *const u64 as *const _,
        });
    }
    // SAFETY: `call` unpacks exactly these arguments; every pointer covers `n` elements
    // (or the elements its walk reaches).
    unsafe {
        let call: libloading::Symbol<unsafe extern "C" fn(*const *const std::ffi::c_void)> =
            lib.get(b"call").expect("the wrapper");
        call(args.as_ptr());
    }
    // The same computation with the eager CPU ops.
    let r = x.add(&b)?.relu()?;
    let c = r.gt(&xt)?;
    let w = m.where_cond(&r.mul(&s)?, &xt)?;
    let out = w.affine(2.0, -1.0)?.maximum(&x)?;
    assert_eq!(outs[0].to_vec::<bool>()?, c.to_vec::<bool>()?);
    assert_eq!(outs[1].to_vec::<f32>()?, w.to_vec::<f32>()?);
    assert_eq!(outs[2].to_vec::<f32>()?, out.to_vec::<f32>()?);
    Ok(())
}

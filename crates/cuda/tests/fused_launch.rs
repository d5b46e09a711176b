//! The launch side of the fused CUDA kernels, checked on the CPU (no GPU needed): the
//! argument list the launcher pushes ([`launch_args`]) matches the parameter list of the
//! generated source, `struct Walk` has the same size and field order in Rust and C, and
//! [`walk_of`] reaches every element of broadcast and permuted views where the layout says.

use mlfw_core::graph::{compile, Capture, FusedGroup, LoadKind};
use mlfw_core::{DType, Device, Layout, Result, Shape, Tensor};
use mlfw_cuda::fused::fused_source;
use mlfw_cuda::fused_run::{launch_args, walk_of, Arg, Walk, WALK_DIMS};

/// The parameter declarations of the generated kernel, as written in its source.
fn params(src: &str) -> Vec<String> {
    let head = src
        .split("__global__ void ")
        .nth(1)
        .expect("a __global__ kernel");
    let open = head.find('(').expect("(");
    let close = head.find(')').expect(")");
    head[open + 1..close]
        .split(", ")
        .map(|p| p.trim().to_string())
        .collect()
}

/// What each argument must be declared as (written out here, independently of the generator).
fn expected_decl(a: Arg) -> String {
    let c = |d: DType| if d == DType::Bool { "bool" } else { "float" };
    match a {
        Arg::Count => "unsigned long long n".into(),
        Arg::Input(i, d) => format!("const {}* __restrict__ in{i}", c(d)),
        Arg::Walk(i) => format!("Walk w{i}"),
        Arg::Output(j, d) => format!("{}* __restrict__ out{j}", c(d)),
    }
}

/// Groups with contiguous, scalar and strided loads, bool loads and bool stores.
fn groups() -> Result<Vec<FusedGroup>> {
    let dev = Device::Cpu;
    let x = Tensor::randn(0.0, 1.0, [2, 3, 4, 4], DType::F32, &dev)?;
    let b = Tensor::randn(0.0, 1.0, [1, 3, 1, 1], DType::F32, &dev)?;
    let g = Capture::new().input("x", &x).param("b", &b).run(|xs| {
        let h = xs[0].add(&b)?.relu()?;
        let mask = h.cmp_scalar(0.0, mlfw_core::CmpOp::Gt)?;
        let y = mask.where_cond(&h.mul_scalar(2.0)?, &h.scalar_like(0.0)?)?;
        Ok(vec![y.abs()?.add_scalar(1.0)?.sum_all()?, mask])
    })?;
    Ok(compile(&g)?.fused_groups())
}

#[test]
fn launch_arguments_match_the_generated_parameter_list() -> Result<()> {
    let gs = groups()?;
    assert!(!gs.is_empty());
    let mut kinds = std::collections::HashSet::new();
    for g in &gs {
        let src = fused_source(g)?;
        let got = params(&src.source);
        let want: Vec<String> = launch_args(g).into_iter().map(expected_decl).collect();
        assert_eq!(got, want, "kernel {}", src.name);
        assert_eq!(got.len(), 1 + 2 * g.loads.len() + g.stores.len());
        for (d, k) in &g.loads {
            kinds.insert(format!("{d}{k:?}"));
        }
        for (_, d) in &g.stores {
            kinds.insert(format!("store{d}"));
        }
    }
    // The groups cover more than one load kind and both store dtypes.
    assert!(kinds.len() >= 3, "{kinds:?}");
    assert!(kinds.contains("storebool"), "{kinds:?}");
    Ok(())
}

#[test]
fn walk_struct_has_the_c_layout() -> Result<()> {
    let g = &groups()?[0];
    let src = fused_source(g)?.source;
    let decl = src
        .split("struct Walk {")
        .nth(1)
        .and_then(|s| s.split("};").next())
        .expect("struct Walk in the source");
    let fields: Vec<&str> = decl
        .split(';')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .collect();
    assert_eq!(
        fields,
        [
            format!("unsigned long long dims[{WALK_DIMS}]"),
            format!("unsigned long long strides[{WALK_DIMS}]"),
            "unsigned long long offset".to_string(),
            "int rank".to_string(),
        ]
    );
    // C: 8 + 8 u64, one u64, one int, padded to the u64 alignment.
    let c_size = (2 * WALK_DIMS + 1) * 8 + 4;
    assert_eq!(std::mem::size_of::<Walk>(), c_size.next_multiple_of(8));
    assert_eq!(std::mem::align_of::<Walk>(), 8);
    let w = Walk {
        dims: [0; WALK_DIMS],
        strides: [0; WALK_DIMS],
        offset: 0,
        rank: 0,
        pad: 0,
    };
    let base = &w as *const Walk as usize;
    assert_eq!(&w.strides as *const _ as usize - base, WALK_DIMS * 8);
    assert_eq!(&w.offset as *const _ as usize - base, 2 * WALK_DIMS * 8);
    assert_eq!(&w.rank as *const _ as usize - base, (2 * WALK_DIMS + 1) * 8);
    Ok(())
}

/// The position the generated `walk()` computes for element `i` (a copy of its loop).
fn walk_pos(w: &Walk, mut i: u64) -> u64 {
    let mut p = w.offset;
    for d in (0..w.rank as usize).rev() {
        p += (i % w.dims[d]) * w.strides[d];
        i /= w.dims[d];
    }
    p
}

/// Every element of `l` read as `shape` through its walk lands where the layout puts it.
fn check_walk(l: &Layout, shape: &[usize], want_kind: LoadKind) -> Result<()> {
    let (kind, w) = walk_of(l, shape)?;
    assert_eq!(kind, want_kind, "{l:?} as {shape:?}");
    let b = l.broadcast_as(&Shape::new(shape.to_vec()))?;
    let n: usize = shape.iter().product();
    for i in 0..n {
        // Row-major coordinates of i, then the layout's own position.
        let (mut rem, mut pos) = (i, b.offset());
        for d in (0..shape.len()).rev() {
            pos += (rem % shape[d]) * b.strides()[d];
            rem /= shape[d];
        }
        let got = match kind {
            LoadKind::Contiguous => w.offset + i as u64,
            LoadKind::Scalar => w.offset,
            LoadKind::Strided { .. } => walk_pos(&w, i as u64),
        };
        assert_eq!(got, pos as u64, "element {i} of {l:?} as {shape:?}");
    }
    Ok(())
}

#[test]
fn walks_reach_every_element_of_views() -> Result<()> {
    let x = Tensor::zeros([2, 3, 4, 5], DType::F32, &Device::Cpu)?;
    let shape = [2, 3, 4, 5];
    check_walk(x.layout(), &shape, LoadKind::Contiguous)?;
    // A bias [1, 3, 1, 1] broadcast to the group.
    let b = Tensor::zeros([1, 3, 1, 1], DType::F32, &Device::Cpu)?;
    check_walk(b.layout(), &shape, LoadKind::Strided { rank: 4 })?;
    // One element everywhere.
    let s = Tensor::zeros([1], DType::F32, &Device::Cpu)?;
    check_walk(s.layout(), &shape, LoadKind::Scalar)?;
    // A permuted view, and one narrowed (offset, non-mergeable strides).
    let p = Tensor::zeros([2, 4, 5, 3], DType::F32, &Device::Cpu)?.permute(&[0, 3, 1, 2])?;
    check_walk(p.layout(), &shape, LoadKind::Strided { rank: 4 })?;
    let big = Tensor::zeros([2, 3, 6, 5], DType::F32, &Device::Cpu)?;
    let nar = big.narrow(2, 1, 4)?;
    check_walk(nar.layout(), &shape, LoadKind::Strided { rank: 4 })?;
    // A row vector broadcast over rows of a 2-D group.
    let r = Tensor::zeros([7], DType::F32, &Device::Cpu)?;
    check_walk(r.layout(), &[3, 7], LoadKind::Strided { rank: 2 })?;
    // Contiguous with an offset (the second half of a buffer).
    let flat = Tensor::zeros([2, 3, 4, 5], DType::F32, &Device::Cpu)?;
    check_walk(
        flat.narrow(0, 1, 1)?.layout(),
        &[1, 3, 4, 5],
        LoadKind::Contiguous,
    )?;
    Ok(())
}

#[test]
fn views_that_do_not_broadcast_are_refused() -> Result<()> {
    let x = Tensor::zeros([3, 4], DType::F32, &Device::Cpu)?;
    assert!(walk_of(x.layout(), &[4, 3]).is_err());
    Ok(())
}

//! index_select, gather, scatter_add, index_add over dtypes and layouts.

mod common;

use common::non_contiguous;
use mlfw_core::{DType, Device, Tensor};

fn ids(v: Vec<i64>, dims: Vec<usize>) -> Tensor {
    Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
}

fn arange(dims: &[usize]) -> Tensor {
    let n: usize = dims.iter().product();
    Tensor::from_vec(
        (0..n).map(|v| v as f32).collect(),
        dims.to_vec(),
        &Device::Cpu,
    )
    .unwrap()
}

#[test]
fn index_select_dims_and_layouts() {
    let x = arange(&[3, 4]);
    let i = ids(vec![2, 0, 2], vec![3]);
    let r = x.index_select(&i, 0).unwrap();
    assert_eq!(
        r.to_vec::<f32>().unwrap(),
        vec![8., 9., 10., 11., 0., 1., 2., 3., 8., 9., 10., 11.]
    );
    let r = x.index_select(&i, 1).unwrap();
    assert_eq!(r.dims(), &[3, 3]);
    assert_eq!(
        r.to_vec::<f32>().unwrap(),
        vec![2., 0., 2., 6., 4., 6., 10., 8., 10.]
    );
    // Transposed input and strided indices.
    let xt = x.t().unwrap();
    let r = xt.index_select(&i, 1).unwrap();
    assert_eq!(
        r.to_vec::<f32>().unwrap(),
        x.index_select(&i, 0)
            .unwrap()
            .t()
            .unwrap()
            .to_vec::<f32>()
            .unwrap()
    );
    let is = ids(vec![1, 9, 3, 9], vec![4]).narrow(0, 0, 4).unwrap();
    let strided = Tensor::stack(&[ids(vec![1, 3], vec![2]), ids(vec![0, 0], vec![2])], 1)
        .unwrap()
        .select(1, 0)
        .unwrap();
    assert!(!strided.is_contiguous());
    assert_eq!(
        x.index_select(&strided, 1)
            .unwrap()
            .to_vec::<f32>()
            .unwrap(),
        vec![1., 3., 5., 7., 9., 11.]
    );
    assert!(x.index_select(&is, 0).is_err(), "out of range");
    // Every dtype, empty ids, embedding.
    for dt in [
        DType::U8,
        DType::Bool,
        DType::I64,
        DType::F16,
        DType::BF16,
        DType::F64,
    ] {
        let xd = x.to_dtype(dt).unwrap();
        let r = xd.index_select(&i, 1).unwrap();
        assert_eq!(r.dtype(), dt);
        assert_eq!(
            r.to_dtype(DType::F32).unwrap().to_vec::<f32>().unwrap(),
            x.index_select(&i, 1)
                .unwrap()
                .to_dtype(dt)
                .unwrap()
                .to_dtype(DType::F32)
                .unwrap()
                .to_vec::<f32>()
                .unwrap()
        );
    }
    assert_eq!(
        x.index_select(&ids(vec![], vec![0]), 0).unwrap().dims(),
        &[0, 4]
    );
    let e = x.embedding(&ids(vec![1, 2, 0, 1], vec![2, 2])).unwrap();
    assert_eq!(e.dims(), &[2, 2, 4]);
    // Large enough for the parallel path.
    let big = arange(&[64, 1024]);
    let sel = ids((0..1024).rev().collect(), vec![1024]);
    let r = big.index_select(&sel, 1).unwrap().to_vec::<f32>().unwrap();
    assert_eq!(r[0], 1023.0);
    assert_eq!(r[1024 * 63 + 1023], (63 * 1024) as f32);
}

#[test]
fn gather_matches_definition() {
    let x = arange(&[3, 4]);
    let i = ids(vec![0, 2, 1, 1, 3, 0], vec![3, 2]);
    // dim 1: out[r][c] = x[r][i[r][c]]
    assert_eq!(
        x.gather(&i, 1).unwrap().to_vec::<f32>().unwrap(),
        vec![0., 2., 5., 5., 11., 8.]
    );
    // dim 0 with smaller ids: out[r][c] = x[i[r][c]][c]
    let i0 = ids(vec![2, 0, 1, 1], vec![2, 2]);
    assert_eq!(
        x.gather(&i0, 0).unwrap().to_vec::<f32>().unwrap(),
        vec![8., 1., 4., 5.]
    );
    // Non-contiguous input and ids.
    let xn = non_contiguous(&x);
    let inn = non_contiguous(&i);
    assert_eq!(
        xn.gather(&inn, 1).unwrap().to_vec::<f32>().unwrap(),
        vec![0., 2., 5., 5., 11., 8.]
    );
    let xi = x.to_dtype(DType::I64).unwrap();
    assert_eq!(
        xi.gather(&i0, 0).unwrap().to_vec::<i64>().unwrap(),
        vec![8, 1, 4, 5]
    );
    assert!(x.gather(&ids(vec![4], vec![1, 1]), 1).is_err());
}

#[test]
fn scatter_add_accumulates_duplicates() {
    let z = Tensor::zeros([2, 3], DType::F32, &Device::Cpu).unwrap();
    let i = ids(vec![0, 0, 2, 1, 1, 1], vec![2, 3]);
    let src = arange(&[2, 3]).add_scalar(1.0).unwrap();
    let r = z.scatter_add(&i, &src, 1).unwrap();
    assert_eq!(r.to_vec::<f32>().unwrap(), vec![3., 0., 3., 0., 15., 0.]);
    // dim 0, src larger than ids, non-contiguous self and src.
    let base = arange(&[3, 2]);
    let i0 = ids(vec![2, 0], vec![1, 2]);
    let src = arange(&[2, 3]).add_scalar(10.0).unwrap();
    let r = non_contiguous(&base)
        .scatter_add(&i0, &non_contiguous(&src), 0)
        .unwrap();
    assert_eq!(r.to_vec::<f32>().unwrap(), vec![0., 12., 2., 3., 14., 5.]);
    for dt in [DType::U8, DType::I64, DType::F16, DType::BF16, DType::F64] {
        let r = z
            .to_dtype(dt)
            .unwrap()
            .scatter_add(&i, &arange(&[2, 3]).to_dtype(dt).unwrap(), 1)
            .unwrap();
        assert_eq!(
            r.to_dtype(DType::F32).unwrap().to_vec::<f32>().unwrap(),
            vec![1., 0., 2., 0., 12., 0.]
        );
    }
    let b = Tensor::zeros([2, 3], DType::Bool, &Device::Cpu).unwrap();
    let ones = Tensor::ones([2, 3], DType::Bool, &Device::Cpu).unwrap();
    let r = b
        .scatter_add(&i, &ones, 1)
        .unwrap()
        .to_vec::<bool>()
        .unwrap();
    assert_eq!(r, vec![true, false, true, false, true, false]);
    let oh = ids(vec![2, 0], vec![2]).one_hot(3, DType::F32).unwrap();
    assert_eq!(oh.to_vec::<f32>().unwrap(), vec![0., 0., 1., 1., 0., 0.]);
    assert!(z
        .scatter_add(&i, &arange(&[2, 3]).to_dtype(DType::F64).unwrap(), 1)
        .is_err());
}

#[test]
fn index_add_rows_and_columns() {
    let x = Tensor::ones([3, 2], DType::F32, &Device::Cpu).unwrap();
    let i = ids(vec![2, 0, 2], vec![3]);
    let src = arange(&[3, 2]);
    let r = x.index_add(&i, &src, 0).unwrap();
    assert_eq!(r.to_vec::<f32>().unwrap(), vec![3., 4., 1., 1., 5., 7.]);
    let i1 = ids(vec![1, 1], vec![2]);
    let src = arange(&[3, 2]);
    let r = non_contiguous(&x)
        .index_add(&i1, &non_contiguous(&src), 1)
        .unwrap();
    assert_eq!(r.to_vec::<f32>().unwrap(), vec![1., 2., 1., 6., 1., 10.]);
    let xi = x.to_dtype(DType::I64).unwrap();
    let r = xi
        .index_add(&i, &arange(&[3, 2]).to_dtype(DType::I64).unwrap(), 0)
        .unwrap();
    assert_eq!(r.to_vec::<i64>().unwrap(), vec![3, 4, 1, 1, 5, 7]);
    // Large, parallel path: every row adds into row 0.
    let big = Tensor::zeros([4, 256, 64], DType::F32, &Device::Cpu).unwrap();
    let all0 = ids(vec![0; 256], vec![256]);
    let src = Tensor::ones([4, 256, 64], DType::F32, &Device::Cpu).unwrap();
    let r = big.index_add(&all0, &src, 1).unwrap();
    let s = r.sum(&[1], false).unwrap().to_vec::<f32>().unwrap();
    assert!(s.iter().all(|&v| v == 256.0));
    assert_eq!(
        r.narrow(1, 0, 1)
            .unwrap()
            .sum_all()
            .unwrap()
            .item::<f32>()
            .unwrap(),
        256.0 * 256.0
    );
}

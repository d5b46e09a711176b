use mlfw_core::{DType, Device, Tensor};

#[test]
fn broadcasting_views_and_reductions() {
    let d = Device::Cpu;
    let a = Tensor::from_vec((0..6).map(|x| x as f32).collect(), [2, 3], &d).unwrap();
    let b = Tensor::from_vec(vec![10f32, 20., 30.], [3], &d).unwrap();
    assert_eq!(
        a.add(&b).unwrap().to_vec::<f32>().unwrap(),
        vec![10., 21., 32., 13., 24., 35.]
    );
    let at = a.t().unwrap();
    assert_eq!(at.to_vec::<f32>().unwrap(), vec![0., 3., 1., 4., 2., 5.]);
    assert_eq!(
        at.sum(&[1], false).unwrap().to_vec::<f32>().unwrap(),
        vec![3., 5., 7.]
    );
    assert_eq!(a.sum(&[0], true).unwrap().dims(), &[1, 3]);
    assert_eq!(
        a.max(&[1], false).unwrap().to_vec::<f32>().unwrap(),
        vec![2., 5.]
    );
    assert_eq!(
        a.argmax(1, false).unwrap().to_vec::<i64>().unwrap(),
        vec![2, 2]
    );
    let m = a.matmul(&at).unwrap();
    assert_eq!(m.to_vec::<f32>().unwrap(), vec![5., 14., 14., 50.]);
    let v = Tensor::from_vec(vec![1f32, 1., 1.], [3], &d).unwrap();
    assert_eq!(
        a.matmul(&v).unwrap().to_vec::<f32>().unwrap(),
        vec![3., 12.]
    );
    let s = a
        .softmax(-1)
        .unwrap()
        .sum(&[-1], false)
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    assert!(s.iter().all(|x| (x - 1.0).abs() < 1e-6));
    let r = at.reshape([6]).unwrap();
    assert_eq!(r.to_vec::<f32>().unwrap(), vec![0., 3., 1., 4., 2., 5.]);
    let c = Tensor::cat(&[a.clone(), a.clone()], 0).unwrap();
    assert_eq!(c.dims(), &[4, 3]);
    let z = Tensor::zeros([0, 3], DType::F32, &d).unwrap();
    assert_eq!(
        z.sum(&[0], false).unwrap().to_vec::<f32>().unwrap(),
        vec![0., 0., 0.]
    );
    assert!(a.add(&Tensor::zeros([4], DType::F32, &d).unwrap()).is_err());
}

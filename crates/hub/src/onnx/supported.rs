//! The list of ONNX operators the importer runs, kept below both operator families
//! (`ops.rs`, `ops_shape.rs`) and the model loader, which all name it.

/// The operators (default domain) the importer runs.
#[rustfmt::skip]
pub const SUPPORTED: &[&str] = &[
    "Conv", "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Exp", "Log", "Erf",
    "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Gelu", "Softmax", "LogSoftmax", "MaxPool",
    "AveragePool", "GlobalAveragePool", "BatchNormalization", "LayerNormalization", "Flatten",
    "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Concat", "Slice", "Gather", "Shape",
    "Constant", "ConstantOfShape", "Identity", "Dropout", "ReduceMean", "ReduceSum", "Clip",
    "Cast",
    // Beyond the list: what mlfw's own exporter may write.
    "Neg", "Abs", "Reciprocal", "Sin", "Cos", "Sign", "Max", "Min", "Where", "Equal", "Less",
    "LessOrEqual", "Greater", "GreaterOrEqual", "Not", "ReduceMax", "ReduceMin", "ArgMax",
    "ArgMin", "Expand", "GatherElements",
];

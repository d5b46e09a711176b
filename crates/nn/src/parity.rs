//! PyTorch parity runner (pending autograd).

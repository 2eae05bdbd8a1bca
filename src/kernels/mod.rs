//! The compute floor beneath `models` and `analysis`: the CPU kernels of the network layers
//! (element-wise, pooling, convolution and linear layers, their fused epilogues, a
//! processor-independent matrix product), the SIMD loops of the analyses, neuroscope's CUDA
//! kernels with their launch code and CPU emulation, and candle's thread-pool set-up.
//!
//! Why a floor of its own: the pipeline's stages say what is computed (a ResNet block, a t-SNE
//! step); this says how, once, in the few places where neuroscope does not leave the
//! arithmetic to candle. Every `unsafe` block of the crate is here (the crate root denies
//! `unsafe_code` elsewhere), each with a `SAFETY` comment, and `unsafe_op_in_unsafe_fn` is
//! denied so that an `unsafe fn` names each unsafe operation it performs.
//!
//! The interface is narrow and crate-private: the functions re-exported below, the
//! [`simd`] loops, [`set_up_process`], [`release_freed_memory`] and, with the `cuda` feature,
//! `cuda::knn_candidates` and `cuda::tsne::TsneGpu`.

#![allow(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]

mod attention;
mod conv;
mod cpu;
pub(crate) mod cuda;
mod elementwise;
mod epilogue;
mod exp_glibc;
mod gemm;
#[cfg(target_arch = "x86_64")]
mod gemm512;
mod matmul;
mod memory;
mod norm;
mod pool;
pub(crate) mod simd;
pub(crate) mod threads;
mod transpose;
mod vector_state;

pub(crate) use attention::{attention_probs, attention_values, Heads};
pub(crate) use conv::{conv2d_bias, conv2d_fused, linear, linear_fused};
pub(crate) use elementwise::{add, add_relu, channel_affine, gelu_erf, relu, relu6};
pub(crate) use epilogue::{with_guided_relu, Epilogue};
pub(crate) use matmul::matmul;
pub(crate) use memory::{keep_freed_memory, release_freed_memory};
pub(crate) use norm::{layer_norm_channels, layer_norm_last, softmax_last};
pub(crate) use pool::{max_pool2d, max_pool2d_padded};
pub(crate) use transpose::permute_channels;
#[cfg(test)]
pub(crate) use vector_state::upper_state_in_use;
pub(crate) use vector_state::{clear_upper_everywhere, clear_upper_here};

/// The process-wide set-up that neuroscope's network work needs before its first candle
/// operation (loading a model, every forward pass, training, feature visualisation): candle's
/// element-wise pool ([`threads::set_up_candle_pool`]) and an allocator that keeps the large
/// blocks a pass frees ([`keep_freed_memory`]). Once per process; later calls cost atomic loads.
pub(crate) fn set_up_process() {
    threads::set_up_candle_pool();
    keep_freed_memory();
}

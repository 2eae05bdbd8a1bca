// neuroscope's own CUDA kernels: exact nearest neighbours (the selection after a cuBLAS product)
// and t-SNE's optimisation. `cuda.rs` compiles them at run time with NVRTC (so a `cuda` build
// needs no CUDA compiler beyond candle's) and launches them.
//
// The same file also compiles as plain C++ (the tests in `emulation.rs`): then `NS_KERNEL` is an
// ordinary function and `NS_THREAD` a variable the test harness loops over. The kernels use no
// shared memory, no barriers and no atomics, each thread writes only its own outputs, so running
// the threads one after another gives what the GPU computes (up to the compiler's fused
// multiply-adds): the kernels' arithmetic is tested on machines without a GPU.
//
// Determinism: every sum has one fixed order (per point over j, per partial over a fixed range,
// the partials in index order), so the same seed gives bit-identical embeddings run after run on
// the same GPU.

#ifdef __CUDACC_RTC__
#define NS_KERNEL extern "C" __global__ void
#define NS_THREAD ((long long)blockIdx.x * blockDim.x + threadIdx.x)
#define NS_DBL_MIN 2.2250738585072014e-308
// correctly rounded, as 1.0f / x is in IEEE arithmetic, but cheaper than a full division
#define NS_RCP(x) __frcp_rn(x)
#else
#include <math.h>
static long long ns_thread;
#define NS_KERNEL static void
#define NS_THREAD ns_thread
#define NS_DBL_MIN 2.2250738585072014e-308
#define NS_RCP(x) (1.0f / (x))
#endif

// How many j a thread sums in float before adding the tile to its double totals: keeps the
// float rounding of 70,000-term sums at the level of 1,024-term ones.
#define NS_TILE 1024

// Exact repulsion of point i: sum_j q_ij^2 (y_i - y_j) and sum_j q_ij, q_ij = 1 / (1 + |y_i - y_j|^2),
// over all j != i. O(N) per thread, O(N^2) per launch: at 70,000 points 4.9e9 pairs, a few ms on
// a current GPU. `y` is the float copy of the embedding (N x d, row-major, d = 2 or 3).
NS_KERNEL tsne_repulsion(const float* y, int n, int d, float* rep, double* sum_q) {
    long long i = NS_THREAD;
    if (i >= n) return;
    double fx = 0.0, fy = 0.0, fz = 0.0, s = 0.0;
    if (d == 2) {
        float a0 = y[2 * i], a1 = y[2 * i + 1];
        for (int start = 0; start < n; start += NS_TILE) {
            int end = start + NS_TILE < n ? start + NS_TILE : n;
            float tx = 0.0f, ty = 0.0f, ts = 0.0f;
            for (int j = start; j < end; ++j) {
                float dx = a0 - y[2 * j], dy = a1 - y[2 * j + 1];
                float q = NS_RCP(1.0f + dx * dx + dy * dy);
                q = (j == i) ? 0.0f : q;
                ts += q;
                float q2 = q * q;
                tx += q2 * dx;
                ty += q2 * dy;
            }
            fx += tx; fy += ty; s += ts;
        }
    } else {
        float a0 = y[3 * i], a1 = y[3 * i + 1], a2 = y[3 * i + 2];
        for (int start = 0; start < n; start += NS_TILE) {
            int end = start + NS_TILE < n ? start + NS_TILE : n;
            float tx = 0.0f, ty = 0.0f, tz = 0.0f, ts = 0.0f;
            for (int j = start; j < end; ++j) {
                float dx = a0 - y[3 * j], dy = a1 - y[3 * j + 1], dz = a2 - y[3 * j + 2];
                float q = NS_RCP(1.0f + dx * dx + dy * dy + dz * dz);
                q = (j == i) ? 0.0f : q;
                ts += q;
                float q2 = q * q;
                tx += q2 * dx;
                ty += q2 * dy;
                tz += q2 * dz;
            }
            fx += tx; fy += ty; fz += tz; s += ts;
        }
        rep[3 * i + 2] = (float)fz;
    }
    rep[d * i] = (float)fx;
    rep[d * i + 1] = (float)fy;
    sum_q[i] = s;
}

// Partial sums: thread t adds x[t * chunk .. (t + 1) * chunk) in index order.
NS_KERNEL tsne_partial_sums(const double* x, int n, int chunk, int parts, double* partial) {
    long long t = NS_THREAD;
    if (t >= parts) return;
    long long start = t * (long long)chunk;
    long long end = start + chunk < n ? start + chunk : n;
    double s = 0.0;
    for (long long k = start; k < end; ++k) s += x[k];
    partial[t] = s;
}

// One thread adds the partials in index order: out[0] = sum.
NS_KERNEL tsne_final_sum(const double* partial, int parts, double* out) {
    if (NS_THREAD != 0) return;
    double s = 0.0;
    for (int t = 0; t < parts; ++t) s += partial[t];
    out[0] = s;
}

// One gradient-descent step of point i, as the CPU solver takes it: the attractive force over
// i's row of the sparse symmetric P (CSR), the gradient 4 (exag * attr - rep / Z) (scikit-learn's
// factor 4), the gains (+0.2 / x0.8, minimum 0.01), momentum, the new position (double, and its
// float copy for the next repulsion), the gradient's squared norm, and when asked i's term of
// the KL divergence of the un-exaggerated P.
NS_KERNEL tsne_step(const int* indptr, const int* indices, const double* pval, const double* y,
                    int n, int d, const float* rep, const double* z, double exag,
                    double momentum, double lr, int want_kl, double* update, double* gains,
                    double* y_next, float* y_next_f, double* grad_sq, double* kl) {
    long long i = NS_THREAD;
    if (i >= n) return;
    double zz = z[0] > NS_DBL_MIN ? z[0] : NS_DBL_MIN;
    double f[3] = {0.0, 0.0, 0.0};
    double kl_i = 0.0;
    for (int e = indptr[i]; e < indptr[i + 1]; ++e) {
        int j = indices[e];
        double pij = pval[e];
        double diff[3] = {0.0, 0.0, 0.0};
        double d2 = 0.0;
        for (int c = 0; c < d; ++c) {
            diff[c] = y[d * i + c] - y[(long long)d * j + c];
            d2 += diff[c] * diff[c];
        }
        double q = 1.0 / (1.0 + d2);
        double m = exag * pij * q;
        for (int c = 0; c < d; ++c) f[c] += m * diff[c];
        if (want_kl && pij > 0.0) {
            double qn = q / zz;
            if (qn < NS_DBL_MIN) qn = NS_DBL_MIN;
            kl_i += pij * log(pij / qn);
        }
    }
    double g2 = 0.0;
    for (int c = 0; c < d; ++c) {
        long long k = d * i + c;
        double g = 4.0 * (f[c] - (double)rep[k] / zz);
        double u = update[k], gain = gains[k];
        if (u * g < 0.0) {
            gain += 0.2;
        } else {
            gain *= 0.8;
        }
        if (gain < 0.01) gain = 0.01;
        u = momentum * u - lr * (g * gain);
        update[k] = u;
        gains[k] = gain;
        double yn = y[k] + u;
        y_next[k] = yn;
        y_next_f[k] = (float)yn;
        g2 += g * g;
    }
    grad_sq[i] = g2;
    if (want_kl) kl[i] = kl_i;
}

// The kk nearest candidates of query first + r among all n points, from one block of the
// product m = X X_block^T (n x b, row-major: element (j, r) at j * b + r, so the threads of a warp
// read consecutive addresses) and the squared norms: d = |x_j|^2 + |x_q|^2 - 2 m, in float.
// Sorted ascending by insertion, ties kept in index order; the query itself is skipped. The host
// recomputes the candidates' distances exactly and checks that no other point can be closer.
NS_KERNEL knn_select(const float* m, const float* norms, int n, int b, int first, int kk,
                     float* best_d, int* best_i) {
    long long r = NS_THREAD;
    if (r >= b) return;
    int q = first + (int)r;
    float nq = norms[q];
    float* bd = best_d + r * kk;
    int* bi = best_i + r * kk;
    int count = 0;
    for (int j = 0; j < n; ++j) {
        if (j == q) continue;
        float v = (norms[j] + nq) - 2.0f * m[(long long)j * b + r];
        if (count == kk && !(v < bd[kk - 1])) continue;
        int pos = count < kk ? count : kk - 1;
        if (count < kk) ++count;
        while (pos > 0 && bd[pos - 1] > v) {
            bd[pos] = bd[pos - 1];
            bi[pos] = bi[pos - 1];
            --pos;
        }
        bd[pos] = v;
        bi[pos] = j;
    }
}

// cpp_smoke.cpp -- the public header used from C++ (C++11, -Wall -Wextra
// -pedantic -Werror): a Pattention forward checked against the formula, and
// a tiny model's forward.  Exits 0 on success, 1 with a message otherwise.
//
//   g++ -std=c++11 -Wall -Wextra -pedantic -Werror -Iinclude tests/cpp_smoke.cpp
//       -Lbuild -ltokenformer -o cpp_smoke        (make check builds and runs it)
#include "tokenformer.h"

#include <cmath>
#include <cstdio>
#include <vector>

namespace {

int failures = 0;

void expect(bool ok, const char *what, const char *detail)
{
    if (!ok) {
        std::fprintf(stderr, "cpp_smoke: FAIL: %s: %s\n", what, detail);
        failures++;
    }
}

// A C++ owner for a library handle: the free function is part of the type.
template <typename T, void (*Free)(T *)>
class handle {
public:
    handle() : p_(0) {}
    ~handle() { Free(p_); }
    T **out() { return &p_; }
    T *get() const { return p_; }

private:
    handle(const handle &);
    handle &operator=(const handle &);
    T *p_;
};

double gelu(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }

void pattention_forward()
{
    tf_pattention_params p = tf_pattention_default_params();
    p.n = 5;
    p.d_in = 3;
    p.d_out = 2;
    p.norm = TF_NORM_L2_NORM_GELU;
    handle<tf_pattention, tf_pattention_free> set;
    tf_status st = tf_pattention_create(&p, set.out());
    expect(st == TF_OK, "tf_pattention_create", tf_last_error());
    if (st != TF_OK)
        return;
    std::vector<float> K(5 * 3), V(5 * 2), X(4 * 3), Y(4 * 2);
    for (size_t i = 0; i < K.size(); i++)
        K[i] = 0.1f * static_cast<float>(i % 7) - 0.3f;
    for (size_t i = 0; i < V.size(); i++)
        V[i] = 0.05f * static_cast<float>(i) - 0.2f;
    for (size_t i = 0; i < X.size(); i++)
        X[i] = 0.25f * static_cast<float>(i % 5) - 0.5f;
    st = tf_pattention_set_keys(set.get(), K.data(), K.size());
    expect(st == TF_OK, "set_keys", tf_pattention_errmsg(set.get()));
    st = tf_pattention_set_values(set.get(), V.data(), V.size());
    expect(st == TF_OK, "set_values", tf_pattention_errmsg(set.get()));
    st = tf_pattention_forward(set.get(), 4, X.data(), Y.data());
    expect(st == TF_OK, "tf_pattention_forward", tf_pattention_errmsg(set.get()));
    // Y = gelu(A / ||A|| * sqrt(n)) V with A = X K^T, in double
    double tau = std::sqrt(5.0), worst = 0.0;
    for (int r = 0; r < 4; r++) {
        double a[5], norm = 0.0;
        for (int j = 0; j < 5; j++) {
            a[j] = 0.0;
            for (int k = 0; k < 3; k++)
                a[j] += static_cast<double>(X[r * 3 + k]) * K[j * 3 + k];
            norm += a[j] * a[j];
        }
        norm = std::sqrt(norm);
        for (int c = 0; c < 2; c++) {
            double y = 0.0;
            for (int j = 0; j < 5; j++)
                y += (norm > 0.0 ? gelu(a[j] / norm * tau) : 0.0) * V[j * 2 + c];
            double e = std::fabs(y - Y[r * 2 + c]);
            worst = e > worst ? e : worst;
        }
    }
    char detail[64];
    std::snprintf(detail, sizeof detail, "max |error| %.3g", worst);
    expect(worst < 1e-5, "Pattention output", detail);
    // a wrong size is an error with a message, not a crash
    st = tf_pattention_set_keys(set.get(), K.data(), K.size() - 1);
    expect(st == TF_ERR_SHAPE, "shape error status", tf_status_name(st));
}

void model_forward()
{
    tf_model_params p = tf_model_default_params();
    p.num_layers = 1;
    p.hidden_size = 16;
    p.num_attention_heads = 2;
    p.qkv_slot_num = 8;
    p.proj_slot_num = 8;
    p.ffn_slot_num = 16;
    p.seq_length = 8;
    handle<tf_model, tf_model_free> model;
    tf_status st = tf_model_create(&p, model.out());
    expect(st == TF_OK, "tf_model_create", tf_last_error());
    if (st != TF_OK)
        return;
    const int B = 2, T = 8;
    std::vector<int32_t> tokens(B * T), targets(B * T);
    for (int i = 0; i < B * T; i++) {
        tokens[i] = (i * 37) % 256;
        targets[i] = (i * 37 + 11) % 256;
    }
    std::vector<float> logits(static_cast<size_t>(B) * T * p.vocab_size);
    float loss = 0.0f;
    st = tf_model_forward(model.get(), B, T, tokens.data(), targets.data(), logits.data(), &loss);
    expect(st == TF_OK, "tf_model_forward", tf_model_errmsg(model.get()));
    // a freshly initialised byte model is close to uniform: loss ~ ln 256
    char detail[64];
    std::snprintf(detail, sizeof detail, "loss %g", static_cast<double>(loss));
    expect(std::isfinite(loss) && std::fabs(loss - std::log(256.0)) < 0.5, "initial loss", detail);
    st = tf_model_backward(model.get());
    expect(st == TF_OK, "tf_model_backward", tf_model_errmsg(model.get()));
}

} // namespace

int main()
{
    if (tf_version_number() / 1000000 != TF_VERSION_MAJOR) {
        std::fprintf(stderr, "cpp_smoke: library %s, header %s\n", tf_version_string(),
                     TF_VERSION_STRING);
        return 1;
    }
    tf_info info = tf_info();
    info.struct_size = sizeof info;
    tf_status st = tf_get_info(&info);
    expect(st == TF_OK, "tf_get_info", tf_last_error());
    pattention_forward();
    model_forward();
    if (failures)
        return 1;
    std::printf("cpp_smoke: OK (libtokenformer %s, BLIS kernels %s)\n", tf_version_string(),
                info.blis_arch);
    return 0;
}

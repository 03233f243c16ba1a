/*
 * fuzz_config.c -- libFuzzer target: a YAML configuration from untrusted
 * bytes, read into model and optimizer parameters and queried by dotted
 * keys, as a trainer would.
 */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tf_config *cfg = NULL;
    if (tf_config_parse((const char *)data, size, &cfg) != TF_OK)
        return 0;
    tf_model_params mp = tf_model_default_params();
    tf_config_model_params(cfg, &mp);
    tf_optimizer_params op = tf_optimizer_default_params();
    tf_config_optimizer_params(cfg, &op);
    static const char *keys[] = {"num_layers", "optimizer.params.betas.1", "optimizer.params.lr",
                                 "data_path", "grow_schedule.0.step", "a.b.c.d"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        int64_t iv;
        double dv;
        int bv;
        const char *sv;
        tf_config_has(cfg, keys[i]);
        tf_config_get_int(cfg, keys[i], &iv);
        tf_config_get_double(cfg, keys[i], &dv);
        tf_config_get_bool(cfg, keys[i], &bv);
        tf_config_get_string(cfg, keys[i], &sv);
    }
    for (int i = 0, n = tf_config_num_ignored(cfg); i < n; i++)
        if (!tf_config_ignored_key(cfg, i))
            abort();
    tf_config_free(cfg);
    return 0;
}

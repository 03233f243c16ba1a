/*
 * fuzz_dataset.c -- libFuzzer target: token files (raw bytes, nanoGPT
 * uint16 .bin, llm.c shards) from untrusted bytes.  The first input byte
 * picks the format, the vocabulary and the opening call (one file with a
 * tail split, or the file as a set of training and validation shards,
 * streamed one at a time); the rest is the file.  Whatever opens is
 * sampled and batched.
 */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const tf_data_format formats[] = {TF_DATA_AUTO, TF_DATA_BYTES, TF_DATA_U16,
                                             TF_DATA_LLMC};
    tf_data_format fmt = formats[data[0] & 3];
    int64_t vocab = (data[0] & 4) ? 50304 : 256;
    double val = (data[0] & 8) ? 0.1 : 0.0;
    const char *path = fuzz_input_file(data + 1, size - 1);
    if (!path)
        return 0;
    tf_dataset *ds = NULL;
    if (data[0] & 16) {
        const char *paths[2] = {path, path};
        tf_dataset_params p = tf_dataset_default_params();
        p.format = fmt;
        p.vocab_size = vocab;
        p.max_resident = 1;
        if (tf_dataset_open_files(paths, 2, paths, 1, &p, &ds) != TF_OK)
            return 0;
    } else if (tf_dataset_open(path, fmt, vocab, val, &ds) != TF_OK) {
        return 0;
    }
    for (int i = 0, n = tf_dataset_num_sources(ds, TF_SPLIT_TRAIN); i < n; i++) {
        tf_data_source src;
        src.struct_size = sizeof src;
        if (tf_dataset_source(ds, TF_SPLIT_TRAIN, i, &src) != TF_OK)
            abort();
    }
    int32_t tokens[8], targets[8];
    for (int split = TF_SPLIT_TRAIN; split <= TF_SPLIT_VAL; split++) {
        tf_dataset_sample(ds, (tf_split)split, 7, 3, 2, 4, tokens, targets);
        if (tf_dataset_num_batches(ds, (tf_split)split, 2, 4) > 0)
            tf_dataset_batch(ds, (tf_split)split, 0, 2, 4, tokens, targets);
    }
    tf_dataset_free(ds);
    return 0;
}

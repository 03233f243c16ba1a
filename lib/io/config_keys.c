/*
 * config_keys.c -- which top-level keys of a config are used: the
 * library's own (listed next to their readers, io/config.h) and the ones a
 * program declares with tf_config_use_keys.  Every other top-level key is
 * reported as ignored, and tf_config_suggest_key names the used key a
 * misspelt one was probably meant to be.
 */
#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "io/config.h"
#include "io/config_tree.h"

static int in_list(const char *const *keys, int count, const char *key, size_t len)
{
    for (int i = 0; count < 0 ? keys[i] != NULL : i < count; i++)
        if (tfc_key_eq(keys[i], key, len))
            return 1;
    return 0;
}

static int is_used(const tf_config *cfg, const char *key)
{
    size_t len = strlen(key);
    return in_list(tfi_config_model_keys, -1, key, len) ||
           in_list(tfi_config_optimizer_keys, -1, key, len) ||
           in_list((const char *const *)cfg->declared, cfg->num_declared, key, len);
}

tf_status tfc_update_ignored(tf_config *cfg)
{
    const tfc_node *root = cfg->root;
    const char **ignored = malloc((root->count ? root->count : 1) * sizeof *ignored);
    if (!ignored)
        return TF_ERR_NOMEM;
    int n = 0;
    for (size_t i = 0; i < root->count && n < INT_MAX; i++)
        if (!is_used(cfg, root->entries[i].key))
            ignored[n++] = root->entries[i].key;
    free(cfg->ignored);
    cfg->ignored = ignored;
    cfg->num_ignored = n;
    return TF_OK;
}

TF_API tf_status tf_config_use_keys(tf_config *cfg, const char *const *keys, int count)
{
    if (!cfg)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "tf_config_use_keys: cfg is NULL");
    if (count < 0 || (count > 0 && !keys))
        return tfi_config_fail(cfg, TF_ERR_ARGUMENT, 0,
                               "tf_config_use_keys: %d keys at %p", count, (const void *)keys);
    for (int i = 0; i < count; i++)
        if (!keys[i] || !keys[i][0])
            return tfi_config_fail(cfg, TF_ERR_ARGUMENT, 0,
                                   "tf_config_use_keys: key %d is NULL or empty", i);
    if (count > INT_MAX - cfg->num_declared)
        return tfi_config_fail(cfg, TF_ERR_ARGUMENT, 0, "tf_config_use_keys: too many keys");
    /* copy everything first, so that a failure changes nothing */
    const int before = cfg->num_declared;
    char **declared = realloc(cfg->declared, (size_t)(before + count) * sizeof *declared + 1);
    if (!declared)
        return tfi_config_fail(cfg, TF_ERR_NOMEM, 0, "tf_config_use_keys: out of memory");
    cfg->declared = declared;
    int ok = 1;
    for (int i = 0; i < count && ok; i++)
        ok = (declared[before + i] = strdup(keys[i])) != NULL;
    cfg->num_declared = before + count;
    if (ok && tfc_update_ignored(cfg) == TF_OK)
        return TF_OK;
    for (int i = before; i < before + count; i++)
        free(declared[i]);
    cfg->num_declared = before;
    return tfi_config_fail(cfg, TF_ERR_NOMEM, 0, "tf_config_use_keys: out of memory");
}

TF_API int tf_config_num_ignored(const tf_config *cfg)
{
    return cfg ? cfg->num_ignored : 0;
}

TF_API const char *tf_config_ignored_key(const tf_config *cfg, int i)
{
    if (!cfg || i < 0 || i >= cfg->num_ignored)
        return NULL;
    return cfg->ignored[i];
}

/* ---- did you mean ------------------------------------------------------- */

#define SUGGEST_MAX_LEN 64

static int fold(char c)
{
    return tolower(tfc_key_char(c));
}

/* Edits (insert, delete, substitute, swap two neighbours) from a to b,
 * ignoring case and '-' versus '_'; keys are short (at most
 * SUGGEST_MAX_LEN characters, checked by the caller). */
static int distance(const char *a, const char *b)
{
    const int n = (int)strlen(a), m = (int)strlen(b);
    int d[SUGGEST_MAX_LEN + 1][SUGGEST_MAX_LEN + 1];
    for (int i = 0; i <= n; i++)
        d[i][0] = i;
    for (int j = 0; j <= m; j++)
        d[0][j] = j;
    for (int i = 1; i <= n; i++)
        for (int j = 1; j <= m; j++) {
            int cost = fold(a[i - 1]) != fold(b[j - 1]);
            int best = d[i - 1][j - 1] + cost;
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && fold(a[i - 1]) == fold(b[j - 2]) &&
                fold(a[i - 2]) == fold(b[j - 1]) && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[n][m];
}

/* The closest of keys within limit edits, improving on *best_d. */
static void closest(const char *const *keys, int count, const char *key, int *best_d,
                    const char **best)
{
    for (int i = 0; count < 0 ? keys[i] != NULL : i < count; i++) {
        if (strlen(keys[i]) > SUGGEST_MAX_LEN)
            continue;
        int dist = distance(key, keys[i]);
        if (dist < *best_d) {
            *best_d = dist;
            *best = keys[i];
        }
    }
}

TF_API const char *tf_config_suggest_key(const tf_config *cfg, const char *key)
{
    if (!cfg || !key)
        return NULL;
    size_t len = strlen(key);
    if (len == 0 || len > SUGGEST_MAX_LEN || is_used(cfg, key))
        return NULL;
    /* a few edits, fewer for short keys: "seed" is not a typo of "seq" */
    int best_d = (len <= 4 ? 1 : len <= 10 ? 2 : 3) + 1;
    const char *best = NULL;
    closest(tfi_config_model_keys, -1, key, &best_d, &best);
    closest(tfi_config_optimizer_keys, -1, key, &best_d, &best);
    closest((const char *const *)cfg->declared, cfg->num_declared, key, &best_d, &best);
    return best;
}

/* rollout_state — see rollout_state.h. */
#include "controlplane/rollout_state.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STATE_FILE "rollout.json"
#define AUDIT_FILE "audit.log"

static int path_in(char *buf, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(buf, cap, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int rstate_load(const char *state_dir, unsigned pct[FEAT_COUNT], char *why, size_t why_len)
{
    char path[PATH_MAX];
    int ret = path_in(path, sizeof path, state_dir, STATE_FILE);
    if (ret < 0)
        return ret;
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    json_error_t jerr;
    json_t *root = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
    fclose(f);
    if (!root) {
        snprintf(why, why_len, "%s:%d: %s", path, jerr.line, jerr.text);
        return -EINVAL;
    }
    unsigned tmp[FEAT_COUNT];
    memcpy(tmp, pct, sizeof tmp);
    json_t *feats = json_object_get(root, "features");
    json_t *ver = json_object_get(root, "version");
    ret = 0;
    if (!json_is_integer(ver) || json_integer_value(ver) != 1 || !json_is_object(feats)) {
        snprintf(why, why_len, "%s: not a version 1 rollout state", path);
        ret = -EINVAL;
        goto out;
    }
    const char *name;
    json_t *val;
    json_object_foreach (feats, name, val) {
        enum rollout_feature fe;
        if (rollout_parse(name, &fe) < 0) {
            /* A feature this build does not know (a newer state file):
             * ignored, so that a downgrade still starts. */
            continue;
        }
        json_int_t v = json_is_integer(val) ? json_integer_value(val) : -1;
        if (v < 0 || v > 100) {
            snprintf(why, why_len, "%s: %s is not a percentage", path, name);
            ret = -EINVAL;
            goto out;
        }
        tmp[fe] = (unsigned)v;
    }
    memcpy(pct, tmp, sizeof tmp);
out:
    json_decref(root);
    return ret;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int ret = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return ret;
}

int rstate_save(const char *state_dir, const unsigned pct[FEAT_COUNT])
{
    char path[PATH_MAX], tmp[PATH_MAX];
    int ret = path_in(path, sizeof path, state_dir, STATE_FILE);
    if (ret == 0)
        ret = path_in(tmp, sizeof tmp, state_dir, STATE_FILE ".tmp");
    if (ret < 0)
        return ret;
    if (mkdir(state_dir, 0750) < 0 && errno != EEXIST)
        return -errno;
    json_t *feats = json_object();
    json_t *root = json_pack("{s:i, s:o}", "version", 1, "features", feats);
    if (!root)
        return -ENOMEM;
    for (unsigned i = 0; i < FEAT_COUNT; i++)
        json_object_set_new(feats, rollout_name((enum rollout_feature)i), json_integer(pct[i]));
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!text)
        return -ENOMEM;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
        ret = -errno;
        goto out;
    }
    size_t len = strlen(text);
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            ret = -errno;
            break;
        }
        off += (size_t)w;
    }
    if (ret == 0 && (write(fd, "\n", 1) != 1 || fsync(fd) < 0))
        ret = -errno;
    if (close(fd) < 0 && ret == 0)
        ret = -errno;
    if (ret == 0 && rename(tmp, path) < 0)
        ret = -errno;
    if (ret == 0)
        ret = fsync_dir(state_dir);
    if (ret < 0)
        (void)unlink(tmp);
out:
    free(text);
    return ret;
}

int rstate_audit(const char *state_dir, const char *what)
{
    char path[PATH_MAX];
    int ret = path_in(path, sizeof path, state_dir, AUDIT_FILE);
    if (ret < 0)
        return ret;
    if (mkdir(state_dir, 0750) < 0 && errno != EEXIST)
        return -errno;
    char line[1024];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%SZ ", &tm);
    int m = snprintf(line + n, sizeof line - n, "%s\n", what);
    if (m < 0)
        return -EINVAL;
    size_t len = n + ((size_t)m < sizeof line - n ? (size_t)m : sizeof line - n - 1);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    /* One write with O_APPEND: lines from concurrent writers never mix. */
    ret = write(fd, line, len) == (ssize_t)len ? 0 : -EIO;
    if (fsync(fd) < 0 && ret == 0)
        ret = -errno;
    close(fd);
    return ret;
}

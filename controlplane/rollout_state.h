/*
 * rollout_state — the rollout percentages on disk, and the audit log.
 *
 * <state_dir>/rollout.json holds {"version":1,"features":{"NAME":PERCENT}}.
 * It is replaced atomically (written to a temporary file in the same
 * directory, fsync'd, renamed over the old one, the directory fsync'd), so
 * after a crash it is the old state or the new, never half of either.
 * <state_dir>/audit.log gets one line per change, appended with O_APPEND:
 *   2026-12-07T12:00:00Z uid=0 pid=4242 rollout set adaptive_governor 0 -> 50
 * Blocking file I/O: the control plane only, never a worker.
 */
#ifndef SLUICE_ROLLOUT_STATE_H
#define SLUICE_ROLLOUT_STATE_H

#include <stddef.h>

#include "shared/rollout.h"

/* Reads the state.  0; -ENOENT when there is none yet (pct untouched);
 * -EINVAL with a message in <why> when the file is damaged; -errno. */
int rstate_load(const char *state_dir, unsigned pct[FEAT_COUNT], char *why, size_t why_len);

/* Writes the state atomically (creating state_dir if needed).  0 or -errno. */
int rstate_save(const char *state_dir, const unsigned pct[FEAT_COUNT]);

/* Appends "<UTC time> <what>\n" to the audit log.  0 or -errno. */
int rstate_audit(const char *state_dir, const char *what);

#endif

/* The SMP groups this runtime answers, and what they share. */
#ifndef TINYOPS_GROUPS_H
#define TINYOPS_GROUPS_H

#include "smp.h"

#define GROUP_OS 0
#define GROUP_STAT 2
#define GROUP_FS 8
#define GROUP_ENUM 10
#define GROUP_RUNTIME 64

#define FS_PATH_MAX 64 /* file names, "/lfs/..." */

void os_mgmt_register(void);
void enum_mgmt_register(void);
void fs_mgmt_register(void);
void stat_mgmt_register(void);
void runtime_mgmt_register(void);

/* fs_mgmt: whether `path` is a name this board's storage takes ("/lfs/<name>"). */
bool fs_path_ok(const char *path);

#endif

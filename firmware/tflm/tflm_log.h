/* TFLM's log, as the glue watches it: the port's DebugLog hands every formatted message to
 * tflm_log_text(); while a build is watched, an arena shortfall ("... missing: N") is noted,
 * so a failed AllocateTensors() is reported as MR_ARENA_TOO_SMALL rather than MR_BAD_MODEL. */
#ifndef TINYOPS_TFLM_LOG_H
#define TINYOPS_TFLM_LOG_H
#include <stdbool.h>
#ifdef __cplusplus
extern "C" {
#endif
void tflm_log_text(const char *text);
/* start (true): forget earlier messages, returns false; stop (false): was a shortfall logged? */
bool tflm_log_watch(bool start);
#ifdef __cplusplus
}
#endif
#endif

// See tflm_log.h.
#include "tflm_log.h"

#include <string.h>

namespace {
bool g_watching = false;
bool g_shortfall = false;
}  // namespace

extern "C" void tflm_log_text(const char* text) {
  if (g_watching && strstr(text, "missing:") != nullptr) g_shortfall = true;
}

extern "C" bool tflm_log_watch(bool start) {
  bool seen = g_shortfall;
  g_watching = start;
  g_shortfall = false;
  return start ? false : seen;
}

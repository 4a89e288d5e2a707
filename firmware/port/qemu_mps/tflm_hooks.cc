// The hooks TFLM expects from a target (instead of its host versions): the log goes to the
// host's stderr through semihosting (never the UART, which carries SMP), and is shown to the
// glue (tflm_log.h); time is the port's microsecond clock.
#include <stdarg.h>
#include <stdio.h>

#include "semihost.h"
#include "tensorflow/lite/micro/debug_log.h"
#include "tensorflow/lite/micro/micro_time.h"
#include "tensorflow/lite/micro/system_setup.h"
#include "tflm_log.h"

extern "C" {
#include "tinyops/port.h"
}

extern "C" void DebugLog(const char* format, va_list args) {
  char text[192];
  vsnprintf(text, sizeof(text), format, args);
  tflm_log_text(text);
  semihost_stderr(text);
}

extern "C" int DebugVsnprintf(char* buffer, size_t buf_size, const char* format,
                              va_list vlist) {
  return vsnprintf(buffer, buf_size, format, vlist);
}

namespace tflite {
uint32_t ticks_per_second() { return 1000000u; }
uint32_t GetCurrentTimeTicks() { return static_cast<uint32_t>(port_micros()); }
void InitializeTarget() { port_init(); }
}  // namespace tflite

// Pure virtual calls and deletes of TFLM's classes (no heap objects are ever deleted).
extern "C" void __cxa_pure_virtual() {
  semihost_stderr("tinyops-fw: pure virtual call\n");
  for (;;) {
  }
}
void operator delete(void*) noexcept {}
void operator delete(void*, unsigned int) noexcept {}

// The TFLM glue: two model buffers and two interpreters, so that a load is atomic.
//
// A load copies the model into the slot the running model does not use, verifies the
// FlatBuffer (TFLM itself does not), builds a MicroInterpreter beside the running one and
// switches only when AllocateTensors() succeeded. On any failure the running model is
// untouched. Implements firmware/include/tinyops/model_runtime.h.

#include <string.h>

#include <new>

#include "flatbuffers/flatbuffers.h"
#include "tensorflow/lite/micro/memory_helpers.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"
#include "tflm_log.h"

extern "C" {
#include "tinyops/model_runtime.h"
#include "tinyops/port.h"
}

#ifndef TINYOPS_MODEL_CAPACITY
#define TINYOPS_MODEL_CAPACITY (1024 * 1024)
#endif
#ifndef TINYOPS_ARENA_SIZE
#define TINYOPS_ARENA_SIZE (1024 * 1024)
#endif
#ifndef TINYOPS_TFLM_COMMIT
#define TINYOPS_TFLM_COMMIT "unknown"
#endif
#ifndef TINYOPS_KERNELS
#define TINYOPS_KERNELS "reference"
#endif
#ifndef TINYOPS_FW_VERSION
#define TINYOPS_FW_VERSION "0.1.0"
#endif
// The port may place the large buffers in a memory region of its own (linker section).
#ifndef TINYOPS_BIG_SECTION
#define TINYOPS_BIG_SECTION ".bss.tinyops_big"
#endif

namespace {

constexpr int kNumOps = 0
#define TINYOPS_OP(name, add, srcs) +1
#include "ops.def"
#undef TINYOPS_OP
    ;

using Resolver = tflite::MicroMutableOpResolver<kNumOps>;

const char* const kOpNames[] = {
#define TINYOPS_OP(name, add, srcs) #name,
#include "ops.def"
#undef TINYOPS_OP
};

struct Slot {
  alignas(16) uint8_t model[TINYOPS_MODEL_CAPACITY];
  alignas(16) uint8_t arena[TINYOPS_ARENA_SIZE];
};

Slot g_slots[2] __attribute__((section(TINYOPS_BIG_SECTION)));
alignas(tflite::MicroInterpreter) uint8_t g_interp_mem[2][sizeof(tflite::MicroInterpreter)];
tflite::MicroInterpreter* g_interp[2] = {nullptr, nullptr};
size_t g_len[2] = {0, 0};
size_t g_arena_used[2] = {0, 0};  // without preserve_all_tensors: the figure a board needs
int g_active = -1;
bool g_preserve = false;          // what the host asked for
bool g_preserving = false;        // what the running interpreter does
bool g_alloc_failed = false;      // TFLM logged an arena shortfall during the last build

// Built in place on first use and never destroyed (no atexit registration on a board).
alignas(Resolver) uint8_t g_resolver_mem[sizeof(Resolver)];
Resolver* g_resolver = nullptr;

Resolver& resolver() {
  if (g_resolver == nullptr) {
    Resolver* r = new (g_resolver_mem) Resolver();
#define TINYOPS_OP(name, add, srcs) r->add();
#include "ops.def"
#undef TINYOPS_OP
    g_resolver = r;
  }
  return *g_resolver;
}

void destroy(int slot) {
  if (g_interp[slot] != nullptr) {
    g_interp[slot]->~MicroInterpreter();
    g_interp[slot] = nullptr;
  }
}

// Build slot's interpreter over its model buffer; MR_OK or why not.
mr_rc build(int slot, bool preserve) {
  destroy(slot);
  const tflite::Model* model = tflite::GetModel(g_slots[slot].model);
  g_alloc_failed = false;
  tflm_log_watch(true);
  auto* interp = new (g_interp_mem[slot]) tflite::MicroInterpreter(
      model, resolver(), g_slots[slot].arena, TINYOPS_ARENA_SIZE, nullptr, nullptr, preserve);
  g_interp[slot] = interp;
  TfLiteStatus st = interp->initialization_status();
  if (st == kTfLiteOk) st = interp->AllocateTensors();
  g_alloc_failed = tflm_log_watch(false);
  if (st != kTfLiteOk) {
    destroy(slot);
    return g_alloc_failed ? MR_ARENA_TOO_SMALL : MR_BAD_MODEL;
  }
  return MR_OK;
}

mr_rc verify(const uint8_t* buf, size_t len) {
  if (len < 16) return MR_BAD_MODEL;
  if (!tflite::ModelBufferHasIdentifier(buf)) return MR_BAD_MODEL;
  flatbuffers::Verifier::Options opts;
  opts.max_tables = 10 * 1000 * 1000;
  flatbuffers::Verifier verifier(buf, len, opts);
  if (!tflite::VerifyModelBuffer(verifier)) return MR_BAD_MODEL;
  const tflite::Model* model = tflite::GetModel(buf);
  if (model->version() != TFLITE_SCHEMA_VERSION) return MR_BAD_MODEL;
  if (model->subgraphs() == nullptr || model->subgraphs()->size() < 1) return MR_BAD_MODEL;
  return MR_OK;
}

// The model in the spare slot (already copied) becomes the running one, or nothing changes.
mr_rc commit_spare(int spare, size_t len) {
  mr_rc rc = verify(g_slots[spare].model, len);
  if (rc != MR_OK) return rc;
  rc = build(spare, false);
  if (rc != MR_OK) return rc;
  g_arena_used[spare] = g_interp[spare]->arena_used_bytes();
  if (g_preserve && build(spare, true) != MR_OK) {
    build(spare, false);  // succeeded a moment ago on the same bytes
  }
  g_preserving = g_preserve && g_interp[spare] != nullptr &&
                 g_interp[spare]->preserve_all_tensors();
  g_len[spare] = len;
  int old = g_active;
  g_active = spare;
  if (old >= 0) destroy(old);  // the old slot becomes the next spare
  return MR_OK;
}

int spare_slot() { return g_active == 0 ? 1 : 0; }

mr_dtype to_dtype(TfLiteType t) {
  switch (t) {
    case kTfLiteInt8: return MR_INT8;
    case kTfLiteUInt8: return MR_UINT8;
    case kTfLiteInt16: return MR_INT16;
    case kTfLiteInt32: return MR_INT32;
    default: return MR_FLOAT32;
  }
}

const tflite::SubGraph* subgraph0() {
  return tflite::GetModel(g_slots[g_active].model)->subgraphs()->Get(0);
}

void fill_shape(mr_tensor_spec* out, TfLiteType type, const TfLiteIntArray* dims) {
  out->dtype = to_dtype(type);
  size_t elem = 4;
  size_t type_size = 0;
  if (tflite::TfLiteTypeSizeOf(type, &type_size) == kTfLiteOk) elem = type_size;
  int n = dims ? dims->size : 0;
  out->ndim = static_cast<uint8_t>(n > MR_MAX_DIMS ? MR_MAX_DIMS : n);
  size_t count = 1;
  for (int i = 0; i < n; i++) {
    if (i < MR_MAX_DIMS) out->shape[i] = dims->data[i];
    count *= static_cast<size_t>(dims->data[i]);
  }
  out->bytes = count * elem;
}

// Name and quantization from the model; shape and type from the interpreter's tensor
// (`tensor` for inputs/outputs, else the preserved eval tensor).
bool spec_of(int tensor_index, const TfLiteTensor* tensor, mr_tensor_spec* out) {
  const tflite::SubGraph* sg = subgraph0();
  if (tensor_index < 0 || sg->tensors() == nullptr ||
      static_cast<size_t>(tensor_index) >= sg->tensors()->size()) {
    return false;
  }
  const tflite::Tensor* t = sg->tensors()->Get(tensor_index);
  memset(out, 0, sizeof(*out));
  if (t->name() != nullptr) {
    strncpy(out->name, t->name()->c_str(), MR_MAX_NAME - 1);
  }
  if (tensor != nullptr) {
    fill_shape(out, tensor->type, tensor->dims);
  } else {
    TfLiteEvalTensor* ev = g_preserving ? g_interp[g_active]->GetTensor(tensor_index) : nullptr;
    if (ev == nullptr) return false;
    fill_shape(out, ev->type, ev->dims);
  }
  const tflite::QuantizationParameters* q = t->quantization();
  if (q != nullptr && q->scale() != nullptr && q->scale()->size() > 0) {
    out->scale = q->scale()->Get(0);
    if (q->zero_point() != nullptr && q->zero_point()->size() > 0) {
      out->zero_point = static_cast<int32_t>(q->zero_point()->Get(0));
    }
  }
  return true;
}

}  // namespace

extern "C" {

enum mr_rc mr_load(const uint8_t* model, size_t len) {
  if (len > TINYOPS_MODEL_CAPACITY) return MR_TOO_LARGE;
  int spare = spare_slot();
  destroy(spare);
  memcpy(g_slots[spare].model, model, len);
  return commit_spare(spare, len);
}

enum mr_rc mr_load_file(const char* path, size_t* size_out) {
  size_t size = 0;
  if (port_storage_size(path, &size) != 0) return MR_NOT_FOUND;
  if (size_out != nullptr) *size_out = size;
  if (size > TINYOPS_MODEL_CAPACITY) return MR_TOO_LARGE;
  int spare = spare_slot();
  destroy(spare);
  const size_t piece = 4096;
  for (size_t off = 0; off < size; off += piece) {
    size_t n = size - off < piece ? size - off : piece;
    if (port_storage_read(path, off, g_slots[spare].model + off, n) != 0) return MR_NOT_FOUND;
  }
  return commit_spare(spare, size);
}

bool mr_loaded(void) { return g_active >= 0 && g_interp[g_active] != nullptr; }
size_t mr_model_capacity(void) { return TINYOPS_MODEL_CAPACITY; }
size_t mr_arena_size(void) { return TINYOPS_ARENA_SIZE; }
size_t mr_arena_used(void) { return mr_loaded() ? g_arena_used[g_active] : 0; }
size_t mr_num_inputs(void) { return mr_loaded() ? g_interp[g_active]->inputs_size() : 0; }
size_t mr_num_outputs(void) { return mr_loaded() ? g_interp[g_active]->outputs_size() : 0; }

bool mr_input_spec(size_t i, mr_tensor_spec* out) {
  if (i >= mr_num_inputs()) return false;
  return spec_of(g_interp[g_active]->inputs()[i], g_interp[g_active]->input(i), out);
}

bool mr_output_spec(size_t i, mr_tensor_spec* out) {
  if (i >= mr_num_outputs()) return false;
  return spec_of(g_interp[g_active]->outputs()[i], g_interp[g_active]->output(i), out);
}

enum mr_rc mr_infer(const uint8_t* in, size_t in_len, uint8_t* out, size_t out_cap,
                    size_t* out_len, uint32_t* latency_us) {
  if (!mr_loaded()) return MR_NO_MODEL;
  tflite::MicroInterpreter* interp = g_interp[g_active];
  TfLiteTensor* input = interp->input(0);
  if (input == nullptr || input->bytes != in_len) return MR_BAD_INPUT;
  memcpy(input->data.raw, in, in_len);
  uint64_t t0 = port_micros();
  TfLiteStatus st = interp->Invoke();
  uint64_t t1 = port_micros();
  if (latency_us != nullptr) *latency_us = static_cast<uint32_t>(t1 - t0);
  if (st != kTfLiteOk) return MR_BAD_INPUT;
  TfLiteTensor* output = interp->output(0);
  if (output == nullptr || output->bytes > out_cap) return MR_BAD_INPUT;
  memcpy(out, output->data.raw, output->bytes);
  if (out_len != nullptr) *out_len = output->bytes;
  return MR_OK;
}

void mr_set_preserve(bool on) {
  g_preserve = on;
  if (!mr_loaded() || g_preserving == on) return;
  if (build(g_active, on) != MR_OK) build(g_active, false);  // too big to preserve: run on
  g_preserving = g_interp[g_active] != nullptr && g_interp[g_active]->preserve_all_tensors();
}

size_t mr_num_operators(void) {
  if (!mr_loaded()) return 0;
  const tflite::SubGraph* sg = subgraph0();
  return sg->operators() ? sg->operators()->size() : 0;
}

bool mr_operator_output(size_t op, mr_tensor_spec* spec, const uint8_t** data) {
  if (!g_preserving || op >= mr_num_operators()) return false;
  const tflite::Operator* o = subgraph0()->operators()->Get(op);
  if (o->outputs() == nullptr || o->outputs()->size() < 1) return false;
  int index = o->outputs()->Get(0);
  if (!spec_of(index, nullptr, spec)) return false;
  TfLiteEvalTensor* ev = g_interp[g_active]->GetTensor(index);
  if (ev == nullptr || ev->data.data == nullptr) return false;
  *data = static_cast<const uint8_t*>(ev->data.data);
  return true;
}

size_t mr_num_registered_ops(void) { return sizeof(kOpNames) / sizeof(kOpNames[0]); }

const char* mr_registered_op(size_t i) {
  return i < mr_num_registered_ops() ? kOpNames[i] : nullptr;
}

const char* mr_version(void) {
  return "tinyops-fw " TINYOPS_FW_VERSION " tflm " TINYOPS_TFLM_COMMIT " " TINYOPS_KERNELS;
}

}  // extern "C"

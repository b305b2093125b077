#include "model.h"
#include <atomic>
#include <cmath>
#include <mutex>
#include "addon-state.h"
#include "args.h"
#include "native-construct.h"
#include "context.h"
#include "js-signal.h"
#include "log.h"
#include "lora.h"
#include "promise-worker.h"
#include "release.h"
#include "trainer.h"

namespace understudy {
namespace {

class LoadModelWorker : public PromiseWorker {
 public:
  LoadModelWorker(Napi::Env env, std::string path, llama_model_params params,
                  Napi::Function on_progress, SharedFlag abort)
      : PromiseWorker(env, "understudy.loadModel", Napi::Object()),
        path_(std::move(path)), params_(params), abort_(std::move(abort)),
        progress_(std::make_shared<Progress>()) {
    if (!on_progress.IsEmpty()) {
      auto progress = progress_;
      signal_ = std::make_unique<JsSignal>(env, on_progress, "understudy.loadProgress",
          [progress](Napi::Env env, Napi::Function cb) {
            float value = progress->value.load();
            if (value > progress->reported) {
              progress->reported = value;
              cb.Call({Napi::Number::New(env, value)});
            }
          });
    }
  }

 protected:
  void Run() override {
    params_.progress_callback = [](float p, void* self) {
      auto* w = static_cast<LoadModelWorker*>(self);
      w->progress_->value.store(p);
      if (w->signal_) w->signal_->Notify();
      return !w->abort_->load();  // false tells llama.cpp to stop loading
    };
    params_.progress_callback_user_data = this;
    log::BeginCapture();
    llama_model* model = llama_model_load_from_file(path_.c_str(), params_);
    std::string why = log::TakeCaptured();
    if (abort_->load()) {
      if (model) llama_model_free(model);
      throw Failure("ABORTED", "model load was aborted");
    }
    if (!model) {
      throw Failure("INVALID_MODEL_FILE", "llama.cpp could not load " + path_ + (why.empty() ? "" : ": " + why));
    }
    handle_ = std::make_shared<ModelHandle>(model);
    handle_->path = path_;
    handle_->vocab_only = params_.vocab_only;
  }

  Napi::Value Result(Napi::Env env) override { return Model::Wrap(env, handle_); }

  void Settle(Napi::Env env) override {
    if (signal_) signal_->Close(env);
  }

 private:
  struct Progress {
    std::atomic<float> value{0};
    float reported = -1;  // JS thread only
  };
  std::string path_;
  llama_model_params params_;
  SharedFlag abort_;
  std::shared_ptr<Progress> progress_;
  std::unique_ptr<JsSignal> signal_;
  std::shared_ptr<ModelHandle> handle_;
};

std::string MetaString(const llama_model* model, const char* key) {
  char buf[512];
  int n = llama_model_meta_val_str(model, key, buf, sizeof buf);
  return n < 0 ? std::string() : std::string(buf, std::min<size_t>(n, sizeof buf - 1));
}

Napi::Value TokenOrNull(Napi::Env env, llama_token t) {
  return t == LLAMA_TOKEN_NULL ? env.Null() : Napi::Number::New(env, t);
}

const char* VocabTypeName(enum llama_vocab_type t) {
  switch (t) {
    case LLAMA_VOCAB_TYPE_NONE: return "none";
    case LLAMA_VOCAB_TYPE_SPM: return "spm";
    case LLAMA_VOCAB_TYPE_BPE: return "bpe";
    case LLAMA_VOCAB_TYPE_WPM: return "wpm";
    case LLAMA_VOCAB_TYPE_UGM: return "ugm";
    case LLAMA_VOCAB_TYPE_RWKV: return "rwkv";
    default: return "other";
  }
}

}  // namespace

Napi::Function Model::Define(Napi::Env env) {
  return DefineClass(env, "Model", {
    InstanceMethod<&Model::Guarded<&Model::Tokenize>>("tokenize"),
    InstanceMethod<&Model::Guarded<&Model::Detokenize>>("detokenize"),
    InstanceMethod<&Model::Guarded<&Model::TokenPiece>>("tokenPiece"),
    InstanceMethod<&Model::Guarded<&Model::Info>>("info"),
    InstanceMethod<&Model::Guarded<&Model::CreateContext>>("createContext"),
    InstanceMethod<&Model::Guarded<&Model::LoadLora>>("loadLora"),
    InstanceMethod<&Model::Guarded<&Model::CreateTrainer>>("createTrainer"),
    InstanceMethod<&Model::Guarded<&Model::ApplyChatTemplate>>("applyChatTemplate"),
    InstanceMethod<&Model::Guarded<&Model::Dispose>>("dispose"),
    InstanceAccessor<&Model::Guarded<&Model::Disposed>>("disposed"),
  });
}

Model::Model(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<Model>(info), handle_(NativeConstruct<ModelHandle>::Take(info.Env(), "Model cannot be constructed directly: use loadModel()")) {}

Napi::Object Model::Wrap(Napi::Env env, std::shared_ptr<ModelHandle> handle) {
  return NativeConstruct<ModelHandle>::New(env, AddonState::kModel, std::move(handle));
}

std::shared_ptr<ModelHandle> Model::Handle(Napi::Env env) const {
  if (!handle_) ThrowError(env, "DISPOSED", "the model has been disposed");
  return handle_;
}

Napi::Value Model::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = args::String(info, 0, "path");
  Napi::Object opts = args::OptionsAt(info, 1);
  llama_model_params params = llama_model_default_params();
  params.n_gpu_layers = static_cast<int32_t>(args::Integer(opts, "gpuLayers", 0, -1, 100000));
  params.vocab_only = args::Bool(opts, "vocabOnly", false);
  params.load_mode = args::Bool(opts, "mmap", true) ? LLAMA_LOAD_MODE_MMAP : LLAMA_LOAD_MODE_NONE;
  params.check_tensors = args::Bool(opts, "checkTensors", false);
  // A model to train keeps its weights in plain CPU buffers: repacked weights
  // (faster CPU inference) and GPU-resident ones have no backward pass here.
  static ggml_backend_dev_t no_gpu[] = {nullptr};
  if (args::Bool(opts, "trainable", false)) {
    params.use_extra_bufts = false;
    params.devices = no_gpu;
    params.n_gpu_layers = 0;
  }
  Napi::Function on_progress = args::OptionalFunction(info, 2, "onProgress");
  SharedFlag abort = AbortFlag::From(env, info.Length() > 3 ? info[3] : env.Undefined());
  auto* worker = new LoadModelWorker(env, std::move(path), params, on_progress, std::move(abort));
  return worker->Start();
}

Napi::Value Model::Tokenize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto h = Handle(env);
  std::string text = args::String(info, 0, "text");
  bool add_special = info.Length() > 1 && info[1].ToBoolean();
  bool parse_special = info.Length() > 2 && info[2].ToBoolean();
  if (text.size() > static_cast<size_t>(INT32_MAX / 2)) ThrowError(env, "INVALID_ARGUMENT", "text is too long to tokenize");
  std::vector<llama_token> tokens(text.size() + 8);
  int32_t n = llama_tokenize(h->vocab, text.data(), static_cast<int32_t>(text.size()), tokens.data(),
                             static_cast<int32_t>(tokens.size()), add_special, parse_special);
  if (n < 0) {
    if (n == INT32_MIN) ThrowError(env, "INVALID_ARGUMENT", "tokenization result is too large");
    tokens.resize(-n);
    n = llama_tokenize(h->vocab, text.data(), static_cast<int32_t>(text.size()), tokens.data(),
                       static_cast<int32_t>(tokens.size()), add_special, parse_special);
    if (n < 0) ThrowError(env, "NATIVE_ERROR", "llama_tokenize failed");
  }
  Napi::Int32Array out = Napi::Int32Array::New(env, n);
  std::copy(tokens.begin(), tokens.begin() + n, out.Data());
  return out;
}

// Token ids come from JS, so each is checked before llama.cpp indexes with it.
static void CheckTokens(Napi::Env env, const llama_vocab* vocab, const int32_t* tokens, size_t n) {
  const int32_t n_vocab = llama_vocab_n_tokens(vocab);
  for (size_t i = 0; i < n; i++) {
    if (tokens[i] < 0 || tokens[i] >= n_vocab) {
      ThrowError(env, "INVALID_ARGUMENT", "token " + std::to_string(tokens[i]) + " at index " + std::to_string(i) +
                 " is outside the vocabulary (0.." + std::to_string(n_vocab - 1) + ")");
    }
  }
}

Napi::Value Model::Detokenize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto h = Handle(env);
  Napi::Int32Array tokens = args::Tokens(info, 0);
  bool remove_special = info.Length() > 1 && info[1].ToBoolean();
  bool unparse_special = info.Length() > 2 && info[2].ToBoolean();
  CheckTokens(env, h->vocab, tokens.Data(), tokens.ElementLength());
  const int32_t n_tokens = static_cast<int32_t>(tokens.ElementLength());
  std::string text(static_cast<size_t>(n_tokens) * 8 + 16, '\0');
  int32_t n = llama_detokenize(h->vocab, tokens.Data(), n_tokens, text.data(), static_cast<int32_t>(text.size()),
                               remove_special, unparse_special);
  if (n < 0) {
    text.resize(-n);
    n = llama_detokenize(h->vocab, tokens.Data(), n_tokens, text.data(), static_cast<int32_t>(text.size()),
                         remove_special, unparse_special);
    if (n < 0) ThrowError(env, "NATIVE_ERROR", "llama_detokenize failed");
  }
  text.resize(n);
  return Napi::String::New(env, text);
}

// The bytes a token renders to (may be part of a UTF-8 character, so bytes, not text).
Napi::Value Model::TokenPiece(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto h = Handle(env);
  const double value = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1.0;
  if (!(value >= 0 && value <= INT32_MAX && value == static_cast<double>(static_cast<int32_t>(value)))) {
    ThrowTypeError(env, "Expected integer for token");
  }
  int32_t token = static_cast<int32_t>(value);
  CheckTokens(env, h->vocab, &token, 1);
  bool special = info.Length() > 1 && info[1].ToBoolean();
  char buf[256];
  int32_t n = llama_token_to_piece(h->vocab, token, buf, sizeof buf, 0, special);
  if (n < 0) ThrowError(env, "NATIVE_ERROR", "token piece is longer than 256 bytes");
  return Napi::Buffer<char>::Copy(env, buf, n);
}

Napi::Value Model::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto h = Handle(env);
  const llama_model* m = h->model;
  const llama_vocab* v = h->vocab;
  Napi::Object out = Napi::Object::New(env);
  out.Set("architecture", MetaString(m, "general.architecture"));
  out.Set("name", MetaString(m, "general.name"));
  // A vocab-only load has no hyperparameters, and llama.cpp aborts the process
  // when asked for per-layer ones, so those stay null.
  if (h->vocab_only) {
    for (const char* key : {"description", "parameters", "sizeBytes", "trainContextSize", "embeddingSize",
                            "layers", "heads", "headsKv", "hasEncoder", "hasDecoder"}) {
      out.Set(key, env.Null());
    }
  } else {
    char desc[256];
    llama_model_desc(m, desc, sizeof desc);
    out.Set("description", desc);
    out.Set("parameters", Napi::Number::New(env, static_cast<double>(llama_model_n_params(m))));
    out.Set("sizeBytes", Napi::Number::New(env, static_cast<double>(llama_model_size(m))));
    out.Set("trainContextSize", llama_model_n_ctx_train(m));
    out.Set("embeddingSize", llama_model_n_embd(m));
    out.Set("layers", llama_model_n_layer(m));
    out.Set("heads", llama_model_n_head(m));
    out.Set("headsKv", llama_model_n_head_kv(m));
    out.Set("hasEncoder", llama_model_has_encoder(m));
    out.Set("hasDecoder", llama_model_has_decoder(m));
  }
  Napi::Object vocab = Napi::Object::New(env);
  vocab.Set("type", VocabTypeName(llama_vocab_type(v)));
  vocab.Set("size", llama_vocab_n_tokens(v));
  vocab.Set("addBos", llama_vocab_get_add_bos(v));
  vocab.Set("addEos", llama_vocab_get_add_eos(v));
  Napi::Object special = Napi::Object::New(env);
  special.Set("bos", TokenOrNull(env, llama_vocab_bos(v)));
  special.Set("eos", TokenOrNull(env, llama_vocab_eos(v)));
  special.Set("eot", TokenOrNull(env, llama_vocab_eot(v)));
  special.Set("sep", TokenOrNull(env, llama_vocab_sep(v)));
  special.Set("nl", TokenOrNull(env, llama_vocab_nl(v)));
  special.Set("pad", TokenOrNull(env, llama_vocab_pad(v)));
  vocab.Set("special", special);
  out.Set("vocab", vocab);
  const char* tmpl = llama_model_chat_template(m, nullptr);
  out.Set("chatTemplate", tmpl ? Napi::String::New(env, tmpl) : env.Null());
  Napi::Object meta = Napi::Object::New(env);
  const int32_t count = llama_model_meta_count(m);
  std::vector<char> key(256), val(4096);
  for (int32_t i = 0; i < count; i++) {
    int32_t kn = llama_model_meta_key_by_index(m, i, key.data(), key.size());
    int32_t vn = llama_model_meta_val_str_by_index(m, i, val.data(), val.size());
    if (vn >= static_cast<int32_t>(val.size())) {
      val.resize(vn + 1);
      vn = llama_model_meta_val_str_by_index(m, i, val.data(), val.size());
    }
    if (kn < 0 || vn < 0) continue;
    meta.Set(std::string(key.data(), std::min<size_t>(kn, key.size() - 1)), std::string(val.data(), vn));
  }
  out.Set("metadata", meta);
  return out;
}

Napi::Value Model::CreateContext(const Napi::CallbackInfo& info) {
  return Context::Create(info, Handle(info.Env()), Value());
}

Napi::Value Model::LoadLora(const Napi::CallbackInfo& info) {
  return LoraAdapter::Load(info, Handle(info.Env()), Value());
}

Napi::Value Model::CreateTrainer(const Napi::CallbackInfo& info) {
  return Trainer::Create(info, Handle(info.Env()), Value());
}

// applyChatTemplate(messages: {role, content}[], template: string | null, addAssistant: boolean) -> string
// With no template given, the model's own (tokenizer.chat_template) is used.
// llama.cpp recognises its built-in templates by name or by their Jinja text.
Napi::Value Model::ApplyChatTemplate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto h = Handle(env);
  return GuardNative(env, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsArray()) ThrowTypeError(env, "Expected array for messages");
    Napi::Array list = info[0].As<Napi::Array>();
    // Grown message by message, never sized by the array's length: a sparse
    // array may claim 2^32 - 1 elements and hold one.
    std::vector<std::string> roles, contents;
    size_t total = 0;
    for (uint32_t i = 0; i < list.Length(); i++) {
      Napi::Value m = list.Get(i);
      if (!m.IsObject() || !m.As<Napi::Object>().Get("role").IsString() || !m.As<Napi::Object>().Get("content").IsString()) {
        ThrowTypeError(env, "Expected {role: string, content: string} for messages[" + std::to_string(i) + "]");
      }
      roles.push_back(m.As<Napi::Object>().Get("role").As<Napi::String>().Utf8Value());
      contents.push_back(m.As<Napi::Object>().Get("content").As<Napi::String>().Utf8Value());
      total += roles.back().size() + contents.back().size();
    }
    std::vector<llama_chat_message> messages;
    messages.reserve(roles.size());
    for (size_t i = 0; i < roles.size(); i++) messages.push_back({roles[i].c_str(), contents[i].c_str()});
    std::string tmpl;
    if (info.Length() > 1 && info[1].IsString()) {
      tmpl = info[1].As<Napi::String>().Utf8Value();
    } else if (const char* own = llama_model_chat_template(h->model, nullptr)) {
      tmpl = own;
    } else {
      ThrowError(env, "TEMPLATE_MISSING",
                 "the model has no chat template (no tokenizer.chat_template in its GGUF): pass a template, by name "
                 "(such as 'chatml', 'llama3', 'gemma') or as Jinja text, or format the prompt yourself and call generate()");
    }
    bool add_assistant = info.Length() > 2 && info[2].ToBoolean();
    if (total > static_cast<size_t>(INT32_MAX / 4)) ThrowError(env, "INVALID_ARGUMENT", "the messages are too long to format");
    std::vector<char> buf(total * 2 + 1024);
    int32_t n = llama_chat_apply_template(tmpl.c_str(), messages.data(), messages.size(), add_assistant, buf.data(),
                                          static_cast<int32_t>(buf.size()));
    if (n > static_cast<int32_t>(buf.size())) {
      buf.resize(n);
      n = llama_chat_apply_template(tmpl.c_str(), messages.data(), messages.size(), add_assistant, buf.data(),
                                    static_cast<int32_t>(buf.size()));
    }
    if (n < 0) {
      ThrowError(env, "TEMPLATE_UNSUPPORTED",
                 "llama.cpp does not recognise this chat template; pass one of its built-in names (such as 'chatml') instead");
    }
    return Napi::String::New(env, buf.data(), n);
  });
}

// dispose() -> Promise<void>, resolved once the model's memory is freed: after
// every context and adapter made from it (they hold it) is gone too.
Napi::Value Model::Dispose(const Napi::CallbackInfo& info) {
  Napi::Promise promise;
  auto signal = ReleaseSignal::New(info.Env(), &promise);
  if (handle_) handle_->released.Add(std::move(signal));
  else signal->Fire();
  DropLater(info.Env(), std::move(handle_));
  handle_.reset();
  return promise;
}

Napi::Value Model::Disposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !handle_);
}

}  // namespace understudy

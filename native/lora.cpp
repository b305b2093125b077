#include "lora.h"
#include "addon-state.h"
#include "args.h"
#include "log.h"
#include "native-construct.h"
#include "promise-worker.h"
#include "release.h"

namespace understudy {
namespace {

class LoadLoraWorker : public PromiseWorker {
 public:
  LoadLoraWorker(Napi::Env env, Napi::Object owner, std::shared_ptr<ModelHandle> model, std::string path)
      : PromiseWorker(env, "understudy.loadLora", owner), model_(std::move(model)), path_(std::move(path)) {}

 protected:
  void Run() override {
    log::BeginCapture();
    llama_adapter_lora* adapter;
    {
      std::lock_guard<std::mutex> lock(model_->adapters_mutex);
      adapter = llama_adapter_lora_init(model_->model, path_.c_str());
    }
    std::string why = log::TakeCaptured();
    if (!adapter) {
      throw Failure("INVALID_ADAPTER", "llama.cpp could not load the LoRA adapter " + path_ + " for this model" +
                    (why.empty() ? "" : ": " + why));
    }
    handle_ = std::make_shared<AdapterHandle>(model_, adapter, path_);
  }

  Napi::Value Result(Napi::Env env) override { return LoraAdapter::Wrap(env, handle_); }

 private:
  std::shared_ptr<ModelHandle> model_;
  std::string path_;
  std::shared_ptr<AdapterHandle> handle_;
};

}  // namespace

Napi::Function LoraAdapter::Define(Napi::Env env) {
  return DefineClass(env, "LoraAdapter", {
    InstanceMethod<&LoraAdapter::Guarded<&LoraAdapter::Metadata>>("metadata"),
    InstanceMethod<&LoraAdapter::Guarded<&LoraAdapter::Dispose>>("dispose"),
    InstanceAccessor<&LoraAdapter::Guarded<&LoraAdapter::Disposed>>("disposed"),
  });
}

LoraAdapter::LoraAdapter(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<LoraAdapter>(info),
      handle_(NativeConstruct<AdapterHandle>::Take(info.Env(), "LoraAdapter cannot be constructed directly: use model.loadLora()")) {}

Napi::Object LoraAdapter::Wrap(Napi::Env env, std::shared_ptr<AdapterHandle> handle) {
  return NativeConstruct<AdapterHandle>::New(env, AddonState::kLoraAdapter, std::move(handle));
}

Napi::Value LoraAdapter::Load(const Napi::CallbackInfo& info, std::shared_ptr<ModelHandle> model, Napi::Value owner) {
  std::string path = args::String(info, 0, "path");
  auto* worker = new LoadLoraWorker(info.Env(), owner.As<Napi::Object>(), std::move(model), std::move(path));
  return worker->Start();
}

std::shared_ptr<AdapterHandle> LoraAdapter::From(Napi::Env env, const Napi::Value& value) {
  if (!AddonState::Get(env).IsInstance(value, AddonState::kLoraAdapter)) {
    ThrowTypeError(env, "Expected LoraAdapter for adapter but received another value");
  }
  auto handle = Unwrap(value.As<Napi::Object>())->handle_;
  if (!handle) ThrowError(env, "DISPOSED", "the LoRA adapter has been disposed");
  return handle;
}

Napi::Value LoraAdapter::Metadata(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!handle_) ThrowError(env, "DISPOSED", "the LoRA adapter has been disposed");
  Napi::Object out = Napi::Object::New(env);
  const llama_adapter_lora* a = handle_->adapter;
  std::vector<char> key(256), val(1024);
  for (int32_t i = 0; i < llama_adapter_meta_count(a); i++) {
    int32_t kn = llama_adapter_meta_key_by_index(a, i, key.data(), key.size());
    int32_t vn = llama_adapter_meta_val_str_by_index(a, i, val.data(), val.size());
    if (kn < 0 || vn < 0) continue;
    out.Set(std::string(key.data(), std::min<size_t>(kn, key.size() - 1)),
            std::string(val.data(), std::min<size_t>(vn, val.size() - 1)));
  }
  return out;
}

// dispose() -> Promise<void>, resolved once the adapter's memory is freed: when
// no context applies it any more.
Napi::Value LoraAdapter::Dispose(const Napi::CallbackInfo& info) {
  Napi::Promise promise;
  auto signal = ReleaseSignal::New(info.Env(), &promise);
  if (handle_) handle_->released.Add(std::move(signal));
  else signal->Fire();
  DropLater(info.Env(), std::move(handle_));
  handle_.reset();
  return promise;
}

Napi::Value LoraAdapter::Disposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !handle_);
}

}  // namespace understudy

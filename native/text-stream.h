// Turns the bytes of generated tokens into text that is safe to hand out: it never
// splits a UTF-8 character and never releases text that may turn out to be the
// start of a stop string. Used on the generation thread, once per token.
#pragma once
#include <string>
#include <vector>

namespace understudy {

class TextStream {
 public:
  explicit TextStream(std::vector<std::string> stops) : stops_(std::move(stops)) {}

  // Adds one token's bytes. Returns true once a stop string has appeared; the
  // text before it is then ready and everything from it on is dropped.
  bool Push(const char* bytes, size_t n);
  // Takes the text that is ready to emit.
  std::string TakeReady();
  // Generation ended without a stop string: whatever is held back is released.
  std::string Finish();

 private:
  size_t HeldBack() const;
  std::vector<std::string> stops_;
  std::string pending_;  // bytes not yet released
  std::string ready_;
  bool stopped_ = false;
};

}  // namespace understudy

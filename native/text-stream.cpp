#include "text-stream.h"
#include <algorithm>

namespace understudy {
namespace {

// Number of bytes at the end of `s` that begin a UTF-8 character whose remaining
// bytes have not arrived yet.
size_t IncompleteUtf8Tail(const std::string& s) {
  const size_t n = s.size();
  for (size_t back = 1; back <= std::min<size_t>(4, n); back++) {
    unsigned char c = static_cast<unsigned char>(s[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    size_t need = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
    return need > back ? back : 0;
  }
  return 0;
}

}  // namespace

bool TextStream::Push(const char* bytes, size_t n) {
  if (stopped_) return true;
  pending_.append(bytes, n);
  size_t cut = std::string::npos;
  for (const auto& stop : stops_) {
    size_t at = pending_.find(stop);
    if (at != std::string::npos) cut = std::min(cut, at);
  }
  if (cut != std::string::npos) {
    ready_.append(pending_, 0, cut);
    pending_.clear();
    stopped_ = true;
    return true;
  }
  size_t keep = HeldBack();
  ready_.append(pending_, 0, pending_.size() - keep);
  pending_.erase(0, pending_.size() - keep);
  return false;
}

// How many trailing bytes must wait: the longest tail that could still grow into
// a stop string, or an unfinished UTF-8 character.
size_t TextStream::HeldBack() const {
  size_t keep = IncompleteUtf8Tail(pending_);
  for (const auto& stop : stops_) {
    for (size_t len = std::min(stop.size() - 1, pending_.size()); len > keep; len--) {
      if (pending_.compare(pending_.size() - len, len, stop, 0, len) == 0) {
        keep = len;
        break;
      }
    }
  }
  return keep;
}

std::string TextStream::TakeReady() {
  std::string out;
  out.swap(ready_);
  return out;
}

std::string TextStream::Finish() {
  if (!stopped_) ready_ += pending_;
  pending_.clear();
  return TakeReady();
}

}  // namespace understudy

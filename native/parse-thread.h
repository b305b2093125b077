// Where grammars are parsed: a few threads of our own, each with a stack of a
// known, large size. llama.cpp's grammar parser recurses once per nesting level
// (and once per rule in its left-recursion check), and a big grammar can take
// seconds to parse, so it runs neither on the JS thread nor on a context's
// scheduler thread (where it would hold up the other sequences), nor on libuv's
// pool (whose stack size follows `ulimit -s`).
#pragma once
#include <cstddef>
#include <functional>

namespace understudy {

// Stack of each parse thread. The TypeScript grammar check bounds nesting depth
// and rule count so that a parse needs a small fraction of it.
constexpr size_t kParseStackBytes = size_t{64} << 20;

// Queues `job`; at most a few run at once. `job` must not throw (anything that
// escapes is swallowed). Throws Failure("NATIVE_ERROR") if no thread can start.
void RunOnParseThread(std::function<void()> job);

}  // namespace understudy

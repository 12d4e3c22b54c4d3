// CAIRN_CHECK: a broken invariant is a crash, never a returned error (STYLE 2).
#pragma once

namespace cairn::internal {
[[noreturn]] void CheckFailed(const char* file, int line, const char* expr, const char* msg);
}  // namespace cairn::internal

#define CAIRN_CHECK(cond)                                                        \
  do {                                                                           \
    if (__builtin_expect(!(cond), 0))                                            \
      ::cairn::internal::CheckFailed(__FILE__, __LINE__, #cond, nullptr);        \
  } while (0)
#define CAIRN_CHECK_MSG(cond, msg)                                               \
  do {                                                                           \
    if (__builtin_expect(!(cond), 0))                                            \
      ::cairn::internal::CheckFailed(__FILE__, __LINE__, #cond, (msg));          \
  } while (0)
#ifdef NDEBUG
#define CAIRN_DCHECK(cond) \
  do {                     \
  } while (0)
#else
#define CAIRN_DCHECK(cond) CAIRN_CHECK(cond)
#endif

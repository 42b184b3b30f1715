// Internal to security/: owning pointers for OpenSSL objects and the rendering
// of OpenSSL's error queue. Names no OpenSSL type, so it stays harmless even if
// included elsewhere; only the .cpp files of this folder use it.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

struct asn1_string_st;  // OpenSSL's ASN1_INTEGER, declared only

namespace tsunagu::security::detail {

// std::unique_ptr whose deleter is an OpenSSL *_free function:
//   Owned<X509, X509_free> cert(X509_new());
template <auto free_function>
struct FreeWith {
  template <class T>
  void operator()(T* p) const {
    free_function(p);
  }
};
template <class T, auto free_function>
using Owned = std::unique_ptr<T, FreeWith<free_function>>;

// Renders and empties this thread's OpenSSL error queue ("error:...:reason; ...").
// Returns `fallback` when the queue is empty.
std::string take_openssl_errors(std::string_view fallback = "no detail from OpenSSL");

// For failures callers cannot handle (a cipher that will not initialise, out of
// memory): prints "tsunagu: <where>: <what>: <OpenSSL's errors>" and aborts.
[[noreturn]] void abort_with_openssl_errors(std::string_view where, std::string_view what);

// Empties this thread's OpenSSL error queue without rendering it.
void discard_openssl_errors();

// A certificate serial number as uppercase hex ("3F0A..."), the form revocations name.
std::optional<std::string> serial_hex(const asn1_string_st* serial);

}  // namespace tsunagu::security::detail

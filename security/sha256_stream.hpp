// Incremental SHA-256 for files and streams that do not fit in memory.
#pragma once

#include <memory>

#include "base/bytes.hpp"

struct evp_md_ctx_st;

namespace tsunagu::security {

class Sha256Stream {
 public:
  Sha256Stream();
  ~Sha256Stream();
  Sha256Stream(const Sha256Stream&) = delete;
  Sha256Stream& operator=(const Sha256Stream&) = delete;
  void update(ByteView data);
  Bytes finish();  // 32 bytes; the stream cannot be updated afterwards

 private:
  evp_md_ctx_st* context_;
};

}  // namespace tsunagu::security

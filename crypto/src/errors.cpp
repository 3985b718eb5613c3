#include "haven/crypto/errors.hpp"

#include <string>

namespace haven::crypto {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "haven.crypto"; }
  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::invalid_argument: return "invalid argument";
      case errc::malformed_message: return "malformed message";
      case errc::unsupported_version: return "unsupported version";
      case errc::bad_signature: return "bad signature";
      case errc::weak_key: return "weak (low-order) public key";
      case errc::decryption_failed: return "decryption failed";
      case errc::duplicate_message: return "duplicate message or message key no longer held";
      case errc::too_many_skipped: return "too many skipped messages";
      case errc::no_sending_chain: return "no sending chain yet";
      case errc::session_mismatch: return "prekey message for another session";
      case errc::missing_prekey: return "missing prekey";
      case errc::identity_mismatch: return "sender identity mismatch";
      case errc::unknown_sender_chain: return "unknown sender chain";
      case errc::bad_padding: return "bad padding";
      case errc::too_large: return "too large";
      case errc::weak_parameters: return "key derivation parameters out of range";
      case errc::wrong_passphrase: return "wrong passphrase or damaged vault";
      case errc::out_of_memory: return "out of memory";
    }
    return "unknown haven.crypto error";
  }
};

}  // namespace

const std::error_category& crypto_category() noexcept {
  static const category instance;
  return instance;
}

std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), crypto_category()}; }

}  // namespace haven::crypto

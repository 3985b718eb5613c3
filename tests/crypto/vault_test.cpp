#include <catch2/catch.hpp>

#include "e2e.pb.h"
#include "haven/crypto/vault.hpp"
#include "test_support.hpp"

using namespace haven::crypto;
using namespace haven::crypto::test;

TEST_CASE("a vault opens with its passphrase and refuses a wrong one", "[vault]") {
  auto rnd = seeded(70);
  auto keys = derive_vault_keys("correct horse battery staple", new_vault_header(rnd)).value();
  auto sealed = seal_vault(keys, bytes("identity keys and sessions"), rnd).value();
  auto opened = open_vault("correct horse battery staple", sealed);
  REQUIRE(opened);
  CHECK(std::string(opened->view().begin(), opened->view().end()) == "identity keys and sessions");
  auto wrong = open_vault("correct horse battery stapler", sealed);
  REQUIRE_FALSE(wrong);
  CHECK(wrong.error() == errc::wrong_passphrase);
}

TEST_CASE("vault parameters are recorded and cannot be swapped or lowered", "[vault]") {
  auto rnd = seeded(71);
  auto keys = derive_vault_keys("pw", new_vault_header(rnd, {3, 64ull << 20})).value();
  auto sealed = seal_vault(keys, bytes("x"), rnd).value();
  auto header = read_vault_header(sealed).value();
  CHECK(header.parameters.opslimit == 3);
  CHECK(header.parameters.memlimit == 64ull << 20);
  haven::e2e::SealedVault v;
  REQUIRE(v.ParseFromArray(sealed.data(), static_cast<int>(sealed.size())));
  v.set_opslimit(1);  // a server trying to make k_auth cheap to brute-force
  std::string weak = v.SerializeAsString();
  CHECK(read_vault_header(ascii(weak)).error() == errc::weak_parameters);
  CHECK(open_vault("pw", ascii(weak)).error() == errc::weak_parameters);
  v.set_opslimit(2);  // in range, but not what the vault was sealed with
  std::string swapped = v.SerializeAsString();
  CHECK(open_vault(keys, ascii(swapped)).error() == errc::wrong_passphrase);
}

TEST_CASE("the auth key and the encryption key differ and the verifier hides both", "[vault]") {
  auto rnd = seeded(72);
  auto keys = derive_vault_keys("pw", new_vault_header(rnd)).value();
  CHECK_FALSE(keys.auth_key == keys.enc_key);
  auto verifier = vault_auth_verifier(keys);
  CHECK_FALSE(equal_constant_time(verifier, keys.auth_key.view()));
  CHECK(derive_vault_keys("pw", {keys.header.salt, {1, 64ull << 20}}).error() == errc::weak_parameters);
}

TEST_CASE("a tampered vault is refused", "[vault]") {
  auto rnd = seeded(73);
  auto keys = derive_vault_keys("pw", new_vault_header(rnd)).value();
  auto sealed = seal_vault(keys, bytes("secret"), rnd).value();
  auto bad = sealed;
  bad[bad.size() - 3] ^= 1;
  CHECK(open_vault(keys, bad).error() == errc::wrong_passphrase);
}

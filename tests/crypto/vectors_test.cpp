// The committed tests/vectors/*.json: they match the generator, and they can
// be replayed from their own contents alone (as the browser client does).
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <unistd.h>

#include "haven/crypto/aead.hpp"
#include "haven/crypto/hkdf.hpp"
#include "haven/crypto/identity.hpp"
#include "haven/crypto/padding.hpp"
#include "haven/crypto/safety_number.hpp"
#include "haven/crypto/sealed_sender.hpp"
#include "haven/crypto/sender_keys.hpp"
#include "haven/crypto/session.hpp"
#include "haven/crypto/vault.hpp"
#include "test_support.hpp"
#include "vectors/generate.hpp"

using namespace haven::crypto;
using haven::crypto::test::hex;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

const fs::path vectors_dir = HAVEN_VECTORS_DIR;

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json load(const char* name) { return json::parse(read_text(vectors_dir / name)); }

std::vector<std::uint8_t> h(const json& v) { return hex(v.get<std::string>()); }

identity_key_pair identity_from(const json& j) {
  const auto seed = h(j["signing_seed"]);
  const auto dh = h(j["dh_secret"]);
  auto id = identity_key_pair::from_secrets(std::span<const std::uint8_t, 32>(seed.data(), 32),
                                            std::span<const std::uint8_t, 32>(dh.data(), 32));
  REQUIRE(to_hex(id.public_keys().signing_key) == j["signing_key"].get<std::string>());
  REQUIRE(to_hex(id.public_keys().dh_key) == j["dh_key"].get<std::string>());
  REQUIRE(to_hex(id.public_keys().dh_key_signature) == j["dh_key_signature"].get<std::string>());
  return id;
}

std::vector<std::string> draws(const json& j) { return j.get<std::vector<std::string>>(); }

std::string error_name(const std::error_code& e) {
  // Names as in the vector files: the enumerator names.
  static const char* names[] = {"",
                                "invalid_argument",
                                "malformed_message",
                                "unsupported_version",
                                "bad_signature",
                                "weak_key",
                                "decryption_failed",
                                "duplicate_message",
                                "too_many_skipped",
                                "no_sending_chain",
                                "session_mismatch",
                                "missing_prekey",
                                "identity_mismatch",
                                "unknown_sender_chain",
                                "bad_padding",
                                "too_large",
                                "weak_parameters",
                                "wrong_passphrase",
                                "out_of_memory"};
  return names[e.value()];
}

}  // namespace

TEST_CASE("the committed vector files are exactly what the generator writes", "[vectors]") {
  const fs::path tmp = fs::temp_directory_path() / ("haven-vectors-" + std::to_string(::getpid()));
  fs::create_directories(tmp);
  for (const auto& [name, text] : vectors::generate_all()) {
    std::ofstream(tmp / name, std::ios::binary) << text;
    INFO(name << ": regenerate with `haven_crypto_vectors tests/vectors` and review the diff");
    REQUIRE(fs::exists(vectors_dir / name));
    CHECK(read_text(vectors_dir / name) == read_text(tmp / name));
  }
  fs::remove_all(tmp);
}

TEST_CASE("HKDF, X25519, Ed25519 and XChaCha20-Poly1305 vector files pass", "[vectors][hkdf][x25519]") {
  // Keep each parsed file in a named variable: a range-for over a member of
  // a temporary would dangle.
  const auto hk = load("hkdf_sha256.json");
  for (const auto& c : hk["cases"]) {
    CHECK(to_hex(hkdf_extract(h(c["salt"]), h(c["ikm"])).view()) == c["prk"].get<std::string>());
    CHECK(to_hex(hkdf(h(c["salt"]), h(c["ikm"]), h(c["info"]), c["length"].get<std::size_t>())->view()) ==
          c["okm"].get<std::string>());
  }
  const auto x = load("x25519.json");
  for (const auto& c : x["scalar_multiplication"]) {
    const auto s = h(c["scalar"]);
    auto k = x25519_key_pair::from_secret(std::span<const std::uint8_t, 32>(s.data(), 32));
    CHECK(to_hex(x25519(k, h(c["u"]))->view()) == c["output"].get<std::string>());
  }
  for (const auto& c : x["diffie_hellman"]) {
    const auto a = h(c["alice_private"]);
    auto k = x25519_key_pair::from_secret(std::span<const std::uint8_t, 32>(a.data(), 32));
    CHECK(to_hex(k.public_key()) == c["alice_public"].get<std::string>());
    CHECK(to_hex(x25519(k, h(c["bob_public"]))->view()) == c["shared"].get<std::string>());
  }
  for (const auto& c : x["iterated_from_9"]) {
    std::vector<std::uint8_t> k(32, 0), u(32, 0);
    k[0] = u[0] = 9;
    for (int i = 0; i < c["iterations"].get<int>(); ++i) {
      auto key = x25519_key_pair::from_secret(std::span<const std::uint8_t, 32>(k.data(), 32));
      const auto next = x25519(key, u).value();
      u = k;
      k.assign(next.view().begin(), next.view().end());
    }
    CHECK(to_hex(k) == c["output"].get<std::string>());
  }
  auto any = x25519_key_pair::generate(test::seeded(1));
  for (const auto& c : x["low_order"]) {
    auto r = x25519(any, h(c["public_key"]));
    REQUIRE_FALSE(r);
    CHECK(error_name(r.error()) == c["error"].get<std::string>());
  }
  const auto ed = load("ed25519.json");
  for (const auto& c : ed["cases"]) {
    const auto seed = h(c["secret_key"]);
    auto k = signing_key::from_seed(std::span<const std::uint8_t, 32>(seed.data(), 32));
    CHECK(to_hex(k.public_key()) == c["public_key"].get<std::string>());
    CHECK(to_hex(k.sign(h(c["message"]))) == c["signature"].get<std::string>());
  }
  const auto xc = load("xchacha20poly1305.json");
  for (const auto& c : xc["cases"]) {
    CHECK(to_hex(aead_seal(h(c["key"]), h(c["nonce"]), h(c["aad"]), h(c["plaintext"]))) ==
          c["ciphertext"].get<std::string>());
    CHECK(aead_open(h(c["key"]), h(c["nonce"]), h(c["aad"]), h(c["ciphertext"])).value() == h(c["plaintext"]));
  }
  const auto p = load("padding.json");
  for (const auto& c : p["sizes"])
    CHECK(padded_size(c["length"].get<std::size_t>()) == c["padded_length"].get<std::size_t>());
  for (const auto& c : p["examples"]) CHECK(pad(h(c["data"])).value() == h(c["padded"]));
}

TEST_CASE("the X3DH and ratchet transcript replays from the file alone", "[vectors][ratchet][x3dh]") {
  const auto v = load("x3dh_ratchet.json");
  auto alice = identity_from(v["alice"]["identity"]);
  auto bob = identity_from(v["bob"]["identity"]);
  const auto& spk_j = v["bob"]["signed_prekey"];
  auto spk = generate_signed_prekey(bob, spk_j["id"].get<std::uint32_t>(), prekey_kind::signed_prekey,
                                    vectors::replay({spk_j["secret"].get<std::string>()}));
  REQUIRE(to_hex(spk.signature) == spk_j["signature"].get<std::string>());
  const auto otk_secret = h(v["bob"]["one_time_prekey"]["secret"]);
  auto otk = x25519_key_pair::from_secret(std::span<const std::uint8_t, 32>(otk_secret.data(), 32));
  REQUIRE(to_hex(otk.public_key()) == v["bob"]["one_time_prekey"]["public_key"].get<std::string>());

  haven::wire::DevicePrekeys device;
  device.set_device_id(1);
  *device.mutable_signed_prekey() = spk.public_part().to_wire();
  device.mutable_one_time()->set_id(v["bob"]["one_time_prekey"]["id"].get<std::uint32_t>());
  device.mutable_one_time()->set_public_key(std::string(otk.public_key().begin(), otk.public_key().end()));
  auto bundle = verify_bundle(bob.public_keys().to_wire(), device).value();

  auto alice_random = vectors::replay(draws(v["alice"]["random_draws"]));
  auto bob_random = vectors::replay(draws(v["bob"]["random_draws"]));
  auto a = session::initiate(alice, bundle, alice_random).value();
  std::optional<session> b;
  std::vector<encrypted_message> messages;
  for (const auto& step : v["steps"]) {
    const bool is_alice = step["party"] == "alice";
    const auto op = step["op"].get<std::string>();
    INFO("step " << step.dump());
    if (op == "encrypt") {
      session& s = is_alice ? a : *b;
      auto m = s.encrypt(h(step["plaintext"])).value();
      CHECK(to_hex(m.bytes) == step["message"].get<std::string>());
      CHECK((m.type == message_type::prekey ? "prekey" : "ratchet") == step["message_type"].get<std::string>());
      messages.push_back(m);
    } else if (op == "respond") {
      auto header = parse_prekey_message(messages.at(step["message_index"].get<std::size_t>()).bytes).value();
      b = session::respond(bob, spk, &otk, header).value();
    } else {
      session& s = is_alice ? a : *b;
      auto m = messages.at(step["message_index"].get<std::size_t>());
      if (step.contains("flip_byte")) m.bytes.at(step["flip_byte"].get<std::size_t>()) ^= 0x01;
      auto p = s.decrypt(m, is_alice ? alice_random : bob_random);
      if (step.contains("error")) {
        REQUIRE_FALSE(p);
        CHECK(error_name(p.error()) == step["error"].get<std::string>());
      } else {
        REQUIRE(p);
        CHECK(*p == h(step["plaintext"]));
      }
    }
  }
}

TEST_CASE("the sealed sender vector seals and opens byte for byte", "[vectors][sealed]") {
  const auto v = load("sealed_sender.json");
  auto alice = identity_from(v["sender"]);
  auto bob = identity_from(v["recipient"]);
  auto carol = identity_from(v["other_recipient"]["identity"]);
  mailbox_id mailbox{};
  const auto mb = h(v["certificate"]["mailbox_id"]);
  std::copy(mb.begin(), mb.end(), mailbox.begin());
  auto cert = sender_certificate::issue(alice, mailbox, v["certificate"]["device_id"].get<std::uint32_t>());
  CHECK(to_hex(cert.signature) == v["certificate"]["signature"].get<std::string>());
  auto sealed = seal(alice, cert, bob.public_keys(), static_cast<content_type>(v["content_type"].get<int>()),
                     h(v["message"]), vectors::replay(draws(v["random_draws"])))
                    .value();
  CHECK(to_hex(sealed) == v["sealed"].get<std::string>());
  auto opened = open_sealed(bob, h(v["sealed"])).value();
  CHECK(opened.sender == cert);
  CHECK(opened.message == h(v["message"]));
  auto wrong = open_sealed(carol, h(v["sealed"]));
  REQUIRE_FALSE(wrong);
  CHECK(error_name(wrong.error()) == v["other_recipient"]["error"].get<std::string>());
}

TEST_CASE("the sender key vector replays, including rotation", "[vectors][sender_keys]") {
  const auto v = load("sender_keys.json");
  distribution_id group{};
  const auto g = h(v["distribution_id"]);
  std::copy(g.begin(), g.end(), group.begin());
  auto rnd = vectors::replay(draws(v["random_draws"]));
  auto sender = group_sender::create(group, rnd);
  CHECK(to_hex(sender.distribution_message().view()) == v["distribution_message"].get<std::string>());
  for (const auto& m : v["messages"])
    CHECK(to_hex(sender.encrypt(h(m["plaintext"])).value()) == m["message"].get<std::string>());
  auto receiver = group_receiver::from_distribution(h(v["distribution_message"])).value();
  for (const auto& i : v["receive_order"]) {
    const auto& m = v["messages"][i.get<std::size_t>()];
    CHECK(receiver.decrypt(h(m["message"])).value() == h(m["plaintext"]));
  }
  auto rotated = group_sender::create(group, rnd);
  CHECK(to_hex(rotated.distribution_message().view()) == v["rotation"]["distribution_message"].get<std::string>());
  CHECK(to_hex(rotated.encrypt(h(v["rotation"]["plaintext"])).value()) == v["rotation"]["message"].get<std::string>());
  auto r = receiver.decrypt(h(v["rotation"]["message"]));
  REQUIRE_FALSE(r);
  CHECK(error_name(r.error()) == v["rotation"]["error"].get<std::string>());
}

TEST_CASE("the safety number and vault vectors replay", "[vectors][safety_number][vault]") {
  const auto s = load("safety_number.json");
  public_identity a, b;
  const auto as = h(s["a"]["signing_key"]), ad = h(s["a"]["dh_key"]);
  const auto bs = h(s["b"]["signing_key"]), bd = h(s["b"]["dh_key"]);
  std::copy(as.begin(), as.end(), a.signing_key.begin());
  std::copy(ad.begin(), ad.end(), a.dh_key.begin());
  std::copy(bs.begin(), bs.end(), b.signing_key.begin());
  std::copy(bd.begin(), bd.end(), b.dh_key.begin());
  CHECK(fingerprint_digits(a) == s["a"]["digits"].get<std::string>());
  CHECK(safety_number(b, a) == s["safety_number"].get<std::string>());
  CHECK(format_safety_number(s["safety_number"].get<std::string>()) == s["display"].get<std::string>());

  const auto v = load("vault.json");
  const auto pass = h(v["passphrase"]);
  const std::string passphrase(pass.begin(), pass.end());
  auto rnd = vectors::replay(draws(v["random_draws"]));
  auto header = new_vault_header(rnd, {v["opslimit"].get<std::uint64_t>(), v["memlimit"].get<std::uint64_t>()});
  CHECK(to_hex(header.salt) == v["salt"].get<std::string>());
  auto keys = derive_vault_keys(passphrase, header).value();
  CHECK(to_hex(keys.auth_key.view()) == v["k_auth"].get<std::string>());
  CHECK(to_hex(keys.enc_key.view()) == v["k_enc"].get<std::string>());
  CHECK(to_hex(vault_auth_verifier(keys)) == v["auth_verifier"].get<std::string>());
  CHECK(to_hex(seal_vault(keys, h(v["contents"]), rnd).value()) == v["sealed"].get<std::string>());
  auto opened = open_vault(passphrase, h(v["sealed"])).value();
  CHECK(std::vector<std::uint8_t>(opened.view().begin(), opened.view().end()) == h(v["contents"]));
  const auto wrong = h(v["wrong_passphrase"]["passphrase"]);
  auto r = open_vault(std::string(wrong.begin(), wrong.end()), h(v["sealed"]));
  REQUIRE_FALSE(r);
  CHECK(error_name(r.error()) == v["wrong_passphrase"]["error"].get<std::string>());
}

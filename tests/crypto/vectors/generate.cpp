#include "generate.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <functional>
#include <string_view>

#include "haven/crypto/aead.hpp"
#include "haven/crypto/encoding.hpp"
#include "haven/crypto/hkdf.hpp"
#include "haven/crypto/identity.hpp"
#include "haven/crypto/padding.hpp"
#include "haven/crypto/safety_number.hpp"
#include "haven/crypto/sealed_sender.hpp"
#include "haven/crypto/sender_keys.hpp"
#include "haven/crypto/session.hpp"
#include "haven/crypto/vault.hpp"

namespace haven::crypto::vectors {

using json = nlohmann::ordered_json;

recorder::recorder(random_source inner) : draws_(std::make_shared<std::vector<std::vector<std::uint8_t>>>()) {
  source_ = [inner = std::move(inner), draws = draws_](std::span<std::uint8_t> out) {
    inner(out);
    draws->emplace_back(out.begin(), out.end());
  };
}

std::vector<std::string> recorder::draws_hex() const {
  std::vector<std::string> out;
  for (const auto& d : *draws_) out.push_back(to_hex(d));
  return out;
}

random_source replay(const std::vector<std::string>& draws_hex) {
  auto draws = std::make_shared<std::vector<std::vector<std::uint8_t>>>();
  for (const auto& h : draws_hex) {
    auto b = from_hex(h);
    if (!b) throw std::runtime_error("replay: bad hex");
    draws->push_back(*b);
  }
  auto next = std::make_shared<std::size_t>(0);
  return [draws, next](std::span<std::uint8_t> out) {
    if (*next >= draws->size()) throw std::runtime_error("replay: more draws than recorded");
    const auto& d = (*draws)[(*next)++];
    if (d.size() != out.size()) throw std::runtime_error("replay: draw of another size");
    std::copy(d.begin(), d.end(), out.begin());
  };
}

namespace {

void expect(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error("vector check failed: " + what);
}

std::vector<std::uint8_t> unhex(std::string_view h) {
  auto b = from_hex(h);
  if (!b) throw std::runtime_error("bad hex constant");
  return *b;
}

std::string hex_of(std::string_view ascii_text) { return to_hex(ascii(ascii_text)); }

std::string dump(const json& j) { return j.dump(2) + "\n"; }

random_source seeded(std::string_view label) {
  // Seeds are BLAKE2b-256 of a readable label, so each file names its seeds.
  const auto seed = hash256(ascii(label));
  return deterministic_random(seed);
}

std::string error_name(const std::error_code& e) {
  switch (static_cast<errc>(e.value())) {
    case errc::invalid_argument: return "invalid_argument";
    case errc::malformed_message: return "malformed_message";
    case errc::unsupported_version: return "unsupported_version";
    case errc::bad_signature: return "bad_signature";
    case errc::weak_key: return "weak_key";
    case errc::decryption_failed: return "decryption_failed";
    case errc::duplicate_message: return "duplicate_message";
    case errc::too_many_skipped: return "too_many_skipped";
    case errc::no_sending_chain: return "no_sending_chain";
    case errc::session_mismatch: return "session_mismatch";
    case errc::missing_prekey: return "missing_prekey";
    case errc::identity_mismatch: return "identity_mismatch";
    case errc::unknown_sender_chain: return "unknown_sender_chain";
    case errc::bad_padding: return "bad_padding";
    case errc::too_large: return "too_large";
    case errc::weak_parameters: return "weak_parameters";
    case errc::wrong_passphrase: return "wrong_passphrase";
    case errc::out_of_memory: return "out_of_memory";
  }
  return "unknown";
}

json identity_json(const identity_key_pair& k) {
  const auto seed = k.signing().seed();
  const auto& p = k.public_keys();
  return {{"signing_seed", to_hex(seed.view())},
          {"dh_secret", to_hex(k.dh().secret())},
          {"signing_key", to_hex(p.signing_key)},
          {"dh_key", to_hex(p.dh_key)},
          {"dh_key_signature", to_hex(p.dh_key_signature)}};
}

identity_key_pair make_identity(std::string_view label) { return identity_key_pair::generate(seeded(label)); }

// ---------------------------------------------------------------- primitives

std::string hkdf_file() {
  struct c {
    const char* name;
    const char* ikm;
    const char* salt;
    const char* info;
    std::size_t length;
    const char* prk;
    const char* okm;
  };
  const c cases[] = {
      {"RFC 5869 A.1", "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "000102030405060708090a0b0c",
       "f0f1f2f3f4f5f6f7f8f9", 42, "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
       "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"},
      {"RFC 5869 A.2",
       "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334"
       "35363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f",
       "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f9091929394"
       "95969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
       "b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4"
       "e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
       82, "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
       "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f0"
       "9b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87"},
      {"RFC 5869 A.3", "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "", "", 42,
       "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
       "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"},
  };
  json out = {{"description", "HKDF-SHA256 (RFC 5869 appendix A, SHA-256 cases). An empty salt means 32 zero bytes."},
              {"cases", json::array()}};
  for (const auto& k : cases) {
    const auto prk = hkdf_extract(unhex(k.salt), unhex(k.ikm));
    const auto okm = hkdf(unhex(k.salt), unhex(k.ikm), unhex(k.info), k.length).value();
    expect(to_hex(prk.view()) == k.prk && to_hex(okm.view()) == k.okm, k.name);
    out["cases"].push_back({{"name", k.name},
                            {"ikm", k.ikm},
                            {"salt", k.salt},
                            {"info", k.info},
                            {"length", k.length},
                            {"prk", k.prk},
                            {"okm", k.okm}});
  }
  return dump(out);
}

std::string x25519_file() {
  json out = {{"description",
               "X25519 (RFC 7748 sections 5.2 and 6.1). low_order: public keys whose shared secret is all zero; "
               "Haven refuses them (error weak_key)."},
              {"scalar_multiplication", json::array()},
              {"diffie_hellman", json::array()},
              {"low_order", json::array()}};
  const std::array<std::array<const char*, 3>, 2> mult = {{
      {"a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
       "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
       "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"},
      {"4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
       "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
       "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957"},
  }};
  for (const auto& [scalar, u, output] : mult) {
    const auto s = unhex(scalar);
    auto k = x25519_key_pair::from_secret(std::span<const std::uint8_t, 32>(s.data(), 32));
    expect(to_hex(x25519(k, unhex(u)).value().view()) == output, "RFC 7748 5.2");
    out["scalar_multiplication"].push_back({{"scalar", scalar}, {"u", u}, {"output", output}});
  }
  // RFC 7748 5.2 iterated: k = u = 9 initially; each round k, u = X25519(k, u), k.
  {
    std::vector<std::uint8_t> k(32, 0), u(32, 0);
    k[0] = 9;
    u[0] = 9;
    json iterated = json::array();
    for (int round = 1; round <= 1000; ++round) {
      auto key = x25519_key_pair::from_secret(std::span<const std::uint8_t, 32>(k.data(), 32));
      const auto next = x25519(key, u).value();
      u = k;
      k.assign(next.view().begin(), next.view().end());
      if (round == 1 || round == 1000) iterated.push_back({{"iterations", round}, {"output", to_hex(k)}});
    }
    expect(iterated[0]["output"] == "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079" &&
               iterated[1]["output"] == "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51",
           "RFC 7748 5.2 iterated");
    out["iterated_from_9"] = iterated;
  }
  const char* a_priv = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
  const char* a_pub = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
  const char* b_priv = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
  const char* b_pub = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
  const char* shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";
  const auto ap = unhex(a_priv), bp = unhex(b_priv);
  auto a = x25519_key_pair::from_secret(std::span<const std::uint8_t, 32>(ap.data(), 32));
  auto b = x25519_key_pair::from_secret(std::span<const std::uint8_t, 32>(bp.data(), 32));
  expect(to_hex(a.public_key()) == a_pub && to_hex(b.public_key()) == b_pub, "RFC 7748 6.1 public keys");
  expect(to_hex(x25519(a, b.public_key()).value().view()) == shared &&
             to_hex(x25519(b, a.public_key()).value().view()) == shared,
         "RFC 7748 6.1 shared secret");
  out["diffie_hellman"].push_back({{"alice_private", a_priv},
                                   {"alice_public", a_pub},
                                   {"bob_private", b_priv},
                                   {"bob_public", b_pub},
                                   {"shared", shared}});
  const char* low_order[] = {
      "0000000000000000000000000000000000000000000000000000000000000000",
      "0100000000000000000000000000000000000000000000000000000000000000",
      "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
      "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
      "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
      "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
      "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  };
  for (const char* p : low_order) {
    auto r = x25519(a, unhex(p));
    expect(!r && r.error() == errc::weak_key, std::string("low order ") + p);
    out["low_order"].push_back({{"public_key", p}, {"error", "weak_key"}});
  }
  return dump(out);
}

std::string ed25519_file() {
  struct c {
    const char* name;
    const char* seed;
    const char* pub;
    const char* msg;
    const char* sig;
  };
  const c cases[] = {
      {"RFC 8032 7.1 TEST 1", "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
       "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
       "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe"
       "24655141438e7a100b"},
      {"RFC 8032 7.1 TEST 2", "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
       "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
       "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302a"
       "eeb00d291612bb0c00"},
      {"RFC 8032 7.1 TEST 3", "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
       "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
       "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed2"
       "8dc027beceea1ec40a"},
  };
  json out = {{"description", "Ed25519 (RFC 8032 section 7.1). secret_key is the 32-byte seed."},
              {"cases", json::array()}};
  for (const auto& k : cases) {
    const auto seed = unhex(k.seed);
    auto key = signing_key::from_seed(std::span<const std::uint8_t, 32>(seed.data(), 32));
    const auto msg = unhex(k.msg);
    expect(to_hex(key.public_key()) == k.pub && to_hex(key.sign(msg)) == k.sig, k.name);
    expect(verify_ed25519(key.public_key(), msg, unhex(k.sig)), k.name);
    out["cases"].push_back(
        {{"name", k.name}, {"secret_key", k.seed}, {"public_key", k.pub}, {"message", k.msg}, {"signature", k.sig}});
  }
  return dump(out);
}

std::string xchacha_file() {
  const char* key = "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f";
  const char* nonce = "404142434445464748494a4b4c4d4e4f5051525354555657";
  const char* aad = "50515253c0c1c2c3c4c5c6c7";
  const char* plaintext =
      "4c616469657320616e642047656e746c656d656e206f662074686520636c617373206f66202739393a204966204920636f756c64206f66"
      "6665722079"
      "6f75206f6e6c79206f6e652074697020666f7220746865206675747572652c2073756e73637265656e20776f756c642062652069742e";
  const char* ciphertext =
      "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c2"
      "16cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff921f9664c97637da9768812f615c6"
      "8b13b52ec0875924c1c7987947deafd8780acf49";
  const auto ct = aead_seal(unhex(key), unhex(nonce), unhex(aad), unhex(plaintext));
  expect(to_hex(ct) == ciphertext, "XChaCha20-Poly1305 A.3.1");
  json out = {{"description",
               "XChaCha20-Poly1305 IETF (draft-irtf-cfrg-xchacha-03 appendix A.3.1). ciphertext = encrypted "
               "plaintext || 16-byte tag."},
              {"cases",
               json::array({{{"name", "draft-irtf-cfrg-xchacha A.3.1"},
                             {"key", key},
                             {"nonce", nonce},
                             {"aad", aad},
                             {"plaintext", plaintext},
                             {"ciphertext", ciphertext}}})}};
  return dump(out);
}

std::string padding_file() {
  json out = {{"description",
               "Padding buckets: sodium_pad (ISO/IEC 7816-4: 0x80 then zeros) to the smallest bucket >= length + 1; "
               "buckets 256, 512, ... 65536, then multiples of 65536 up to 1048576."},
              {"sizes", json::array()},
              {"examples", json::array()}};
  for (std::size_t n : {0u, 1u, 255u, 256u, 511u, 512u, 1000u, 1023u, 1024u, 4095u, 65535u, 65536u, 100000u,
                        1048575u}) {
    out["sizes"].push_back({{"length", n}, {"padded_length", padded_size(n)}});
  }
  const auto data = ascii("hello");
  out["examples"].push_back({{"data", to_hex(data)}, {"padded", to_hex(pad(data).value())}});
  out["too_large_length"] = max_unpadded_size + 1;
  return dump(out);
}

// ---------------------------------------------------------------- protocol

std::string plaintext_hex(std::string_view s) { return hex_of(s); }

std::string message_type_name(message_type t) { return t == message_type::prekey ? "prekey" : "ratchet"; }

std::string ratchet_file() {
  auto alice = make_identity("haven vectors: alice identity");
  auto bob = make_identity("haven vectors: bob identity");
  auto bob_keys = seeded("haven vectors: bob prekeys");
  auto spk = generate_signed_prekey(bob, 1, prekey_kind::signed_prekey, bob_keys);
  auto otk = generate_one_time_prekeys(100, 1, bob_keys);
  recorder alice_random(seeded("haven vectors: alice session randomness"));
  recorder bob_random(seeded("haven vectors: bob session randomness"));

  wire::DevicePrekeys device;
  device.set_device_id(1);
  *device.mutable_signed_prekey() = spk.public_part().to_wire();
  *device.mutable_one_time() = otk[0].public_part().to_wire();
  auto bundle = verify_bundle(bob.public_keys().to_wire(), device).value();

  auto a = session::initiate(alice, bundle, alice_random.source()).value();
  std::optional<session> b;

  std::vector<encrypted_message> messages;
  json steps = json::array();
  auto enc = [&](const char* who, std::string_view text) {
    session& s = std::string_view(who) == "alice" ? a : *b;
    auto m = s.encrypt(ascii(text)).value();
    steps.push_back({{"op", "encrypt"},
                     {"party", who},
                     {"plaintext", plaintext_hex(text)},
                     {"message_index", messages.size()},
                     {"message_type", message_type_name(m.type)},
                     {"message", to_hex(m.bytes)}});
    messages.push_back(m);
  };
  auto dec = [&](const char* who, std::size_t index, std::string_view expected) {
    const bool is_alice = std::string_view(who) == "alice";
    if (!is_alice && !b) {
      auto header = parse_prekey_message(messages[index].bytes).value();
      b = session::respond(bob, spk, &otk[0].key, header).value();
      steps.push_back({{"op", "respond"}, {"party", who}, {"message_index", index}});
    }
    session& s = is_alice ? a : *b;
    auto p = s.decrypt(messages[index], is_alice ? alice_random.source() : bob_random.source());
    expect(p && std::string(p->begin(), p->end()) == expected, "ratchet transcript decrypt");
    steps.push_back({{"op", "decrypt"}, {"party", who}, {"message_index", index}, {"plaintext", plaintext_hex(expected)}});
  };
  auto refuse = [&](const char* who, std::size_t index, std::optional<std::size_t> flip, errc expected) {
    const bool is_alice = std::string_view(who) == "alice";
    session& s = is_alice ? a : *b;
    auto m = messages[index];
    if (flip) m.bytes[*flip] ^= 0x01;
    auto p = s.decrypt(m, is_alice ? alice_random.source() : bob_random.source());
    expect(!p && p.error() == expected, "ratchet transcript refusal");
    json step = {{"op", "decrypt"}, {"party", who}, {"message_index", index}};
    if (flip) step["flip_byte"] = *flip;
    step["error"] = error_name(p.error());
    steps.push_back(step);
  };

  enc("alice", "Hello, this is Alice.");               // 0 prekey
  enc("alice", "Are you there?");                      // 1 prekey
  dec("bob", 1, "Are you there?");                     // out of order, starts Bob's session
  dec("bob", 0, "Hello, this is Alice.");
  enc("bob", "Hi Alice, Bob here.");                   // 2
  enc("bob", "Yes, it is safe to talk.");              // 3
  enc("bob", "Take your time.");                       // 4
  dec("alice", 4, "Take your time.");
  dec("alice", 2, "Hi Alice, Bob here.");
  enc("alice", "Thank you.");                          // 5 ratchet
  dec("bob", 5, "Thank you.");
  enc("bob", "Talk tomorrow at 10?");                  // 6
  dec("alice", 6, "Talk tomorrow at 10?");
  dec("alice", 3, "Yes, it is safe to talk.");         // from the previous chain
  enc("alice", "Yes.");                                // 7
  enc("alice", "Bye for now.");                        // 8
  dec("bob", 8, "Bye for now.");
  refuse("bob", 7, messages[7].bytes.size() - 1, errc::decryption_failed);  // tampered tag
  dec("bob", 7, "Yes.");
  refuse("alice", 6, std::nullopt, errc::duplicate_message);               // replay

  json out = {
      {"description",
       "X3DH + Double Ratchet transcript (docs/PROTOCOL.md). Replay: rebuild the identities from their secrets, "
       "Bob's prekeys from theirs, then run `steps` in order. Each party's session randomness is `random_draws`, "
       "consumed in order (initiate: base key then first ratchet key; decrypt with a new ratchet key: next ratchet "
       "key). encrypt steps must produce `message` byte for byte; a `respond` step runs X3DH as responder with the "
       "prekey message `message_index`; decrypt steps must yield `plaintext`, or refuse with `error` after flipping "
       "the low bit of byte `flip_byte` if given, leaving the session unchanged."},
      {"alice", {{"identity", identity_json(alice)}, {"random_draws", alice_random.draws_hex()}}},
      {"bob",
       {{"identity", identity_json(bob)},
        {"signed_prekey",
         {{"id", spk.id},
          {"secret", to_hex(spk.key.secret())},
          {"public_key", to_hex(spk.key.public_key())},
          {"signature", to_hex(spk.signature)}}},
        {"one_time_prekey",
         {{"id", otk[0].id}, {"secret", to_hex(otk[0].key.secret())}, {"public_key", to_hex(otk[0].key.public_key())}}},
        {"random_draws", bob_random.draws_hex()}}},
      {"associated_data", to_hex(byte_view(alice.public_keys().encoded())) + to_hex(byte_view(bob.public_keys().encoded()))},
      {"steps", steps}};
  return dump(out);
}

std::string sealed_file() {
  auto alice = make_identity("haven vectors: alice identity");
  auto bob = make_identity("haven vectors: bob identity");
  auto carol = make_identity("haven vectors: carol identity");
  recorder r(seeded("haven vectors: sealed sender randomness"));
  mailbox_id mailbox{};
  for (std::size_t i = 0; i < mailbox.size(); ++i) mailbox[i] = static_cast<std::uint8_t>(0xa0 + i);
  auto cert = sender_certificate::issue(alice, mailbox, 2);
  const auto message = ascii("an opaque ratchet message");
  auto sealed = seal(alice, cert, bob.public_keys(), content_type::ratchet_message, message, r.source()).value();
  auto opened = open_sealed(bob, sealed).value();
  expect(opened.sender == cert && opened.message == std::vector<std::uint8_t>(message.begin(), message.end()),
         "sealed open");
  auto wrong = open_sealed(carol, sealed);
  expect(!wrong && wrong.error() == errc::decryption_failed, "sealed wrong recipient");
  json out = {
      {"description",
       "Sealed sender (docs/PROTOCOL.md). The sender seals `message` of `content_type` (2 = ratchet message) with "
       "`certificate` to the recipient; `random_draws` is the ephemeral X25519 secret. Sealing must give `sealed` "
       "byte for byte; the recipient opens it to the same certificate and message; `other_recipient` must refuse "
       "it with `error`."},
      {"sender", identity_json(alice)},
      {"recipient", identity_json(bob)},
      {"certificate",
       {{"mailbox_id", to_hex(cert.mailbox)}, {"device_id", cert.device_id}, {"signature", to_hex(cert.signature)}}},
      {"content_type", 2},
      {"message", to_hex(message)},
      {"random_draws", r.draws_hex()},
      {"sealed", to_hex(sealed)},
      {"other_recipient", {{"identity", identity_json(carol)}, {"error", error_name(wrong.error())}}}};
  return dump(out);
}

std::string sender_keys_file() {
  recorder r(seeded("haven vectors: sender key randomness"));
  distribution_id group{};
  for (std::size_t i = 0; i < group.size(); ++i) group[i] = static_cast<std::uint8_t>(0x10 + i);
  auto sender = group_sender::create(group, r.source());
  auto dist = sender.distribution_message();
  auto receiver = group_receiver::from_distribution(dist.view()).value();
  json messages = json::array();
  std::vector<std::vector<std::uint8_t>> sent;
  const char* texts[] = {"Welcome to the group.", "Meeting is on Thursday.", "Remember: first names only."};
  for (const char* t : texts) {
    sent.push_back(sender.encrypt(ascii(t)).value());
    messages.push_back({{"plaintext", plaintext_hex(t)}, {"message", to_hex(sent.back())}});
  }
  for (std::size_t i : {2u, 0u, 1u}) {
    auto p = receiver.decrypt(sent[i]).value();
    expect(std::string(p.begin(), p.end()) == texts[i], "sender key decrypt");
  }
  auto removed_member = group_receiver::from_distribution(dist.view()).value();
  auto rotated = group_sender::create(group, r.source());
  auto dist2 = rotated.distribution_message();
  auto after = rotated.encrypt(ascii("After rotation.")).value();
  auto refused = removed_member.decrypt(after);
  expect(!refused && refused.error() == errc::unknown_sender_chain, "rotation refusal");
  json out = {
      {"description",
       "Sender keys (docs/PROTOCOL.md). `random_draws` feeds two group_sender creations in order (each: chain id "
       "4 bytes, chain key 32, signing seed 32). The first chain's distribution message and messages must match "
       "byte for byte; a receiver built from `distribution_message` decrypts messages in `receive_order`. After "
       "rotation, a receiver holding only the first chain refuses `rotation.message` with `rotation.error`."},
      {"distribution_id", to_hex(group)},
      {"random_draws", r.draws_hex()},
      {"distribution_message", to_hex(dist.view())},
      {"messages", messages},
      {"receive_order", json::array({2, 0, 1})},
      {"rotation",
       {{"distribution_message", to_hex(dist2.view())},
        {"plaintext", plaintext_hex("After rotation.")},
        {"message", to_hex(after)},
        {"error", error_name(refused.error())}}}};
  return dump(out);
}

std::string safety_number_file() {
  auto alice = make_identity("haven vectors: alice identity");
  auto bob = make_identity("haven vectors: bob identity");
  const auto n = safety_number(alice.public_keys(), bob.public_keys());
  expect(n == safety_number(bob.public_keys(), alice.public_keys()), "safety number symmetric");
  json out = {{"description",
               "Safety number (docs/PROTOCOL.md): 30 digits per identity from 5200 iterations of SHA-512, the two "
               "in ascending order."},
              {"iterations", safety_number_iterations},
              {"a", {{"signing_key", to_hex(alice.public_keys().signing_key)},
                     {"dh_key", to_hex(alice.public_keys().dh_key)},
                     {"digits", fingerprint_digits(alice.public_keys())}}},
              {"b", {{"signing_key", to_hex(bob.public_keys().signing_key)},
                     {"dh_key", to_hex(bob.public_keys().dh_key)},
                     {"digits", fingerprint_digits(bob.public_keys())}}},
              {"safety_number", n},
              {"display", format_safety_number(n)}};
  return dump(out);
}

std::string vault_file() {
  recorder r(seeded("haven vectors: vault randomness"));
  const std::string passphrase = "correct horse battery staple";
  auto header = new_vault_header(r.source());
  auto keys = derive_vault_keys(passphrase, header).value();
  const auto contents = ascii("identity secrets and sessions");
  auto sealed = seal_vault(keys, contents, r.source()).value();
  auto opened = open_vault(passphrase, sealed).value();
  expect(std::equal(opened.view().begin(), opened.view().end(), contents.begin(), contents.end()), "vault open");
  auto wrong = open_vault("correct horse battery stapler", sealed);
  expect(!wrong && wrong.error() == errc::wrong_passphrase, "vault wrong passphrase");
  const auto verifier = vault_auth_verifier(keys);
  json out = {{"description",
               "Key vault (docs/PROTOCOL.md). `random_draws`: the salt (16) then the nonce (24). Argon2id13 with "
               "opslimit/memlimit gives 32 bytes; k_auth and k_enc are HKDF of it; auth_verifier = BLAKE2b-256(k_auth). "
               "Sealing `contents` must give `sealed`; `wrong_passphrase` must be refused."},
              {"passphrase", hex_of(passphrase)},
              {"algorithm", vault_algorithm_argon2id13},
              {"opslimit", header.parameters.opslimit},
              {"memlimit", header.parameters.memlimit},
              {"random_draws", r.draws_hex()},
              {"salt", to_hex(header.salt)},
              {"k_auth", to_hex(keys.auth_key.view())},
              {"k_enc", to_hex(keys.enc_key.view())},
              {"auth_verifier", to_hex(verifier)},
              {"contents", to_hex(contents)},
              {"sealed", to_hex(sealed)},
              {"wrong_passphrase", {{"passphrase", hex_of("correct horse battery stapler")},
                                    {"error", error_name(wrong.error())}}}};
  return dump(out);
}

}  // namespace

std::vector<std::pair<std::string, std::string>> generate_all() {
  return {
      {"hkdf_sha256.json", hkdf_file()},
      {"x25519.json", x25519_file()},
      {"ed25519.json", ed25519_file()},
      {"xchacha20poly1305.json", xchacha_file()},
      {"padding.json", padding_file()},
      {"x3dh_ratchet.json", ratchet_file()},
      {"sealed_sender.json", sealed_file()},
      {"sender_keys.json", sender_keys_file()},
      {"safety_number.json", safety_number_file()},
      {"vault.json", vault_file()},
  };
}

}  // namespace haven::crypto::vectors

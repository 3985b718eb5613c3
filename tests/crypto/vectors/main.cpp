// haven_crypto_vectors <dir>: writes tests/vectors/*.json into <dir>.
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>

#include "generate.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <output directory, normally tests/vectors>\n", argv[0]);
    return 2;
  }
  try {
    const std::filesystem::path dir = argv[1];
    std::filesystem::create_directories(dir);
    for (const auto& [name, text] : haven::crypto::vectors::generate_all()) {
      std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
      out << text;
      if (!out) throw std::runtime_error("cannot write " + (dir / name).string());
      std::printf("wrote %s\n", (dir / name).c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "haven_crypto_vectors: %s\n", e.what());
    return 1;
  }
  return 0;
}

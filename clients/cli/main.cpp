// haven: the command-line client. `haven --help` lists the commands.

#include <termios.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <fstream>
#include <iostream>

#include "haven/client/client.hpp"
#include "haven/crypto/verify.hpp"

namespace {

using namespace haven;
using nlohmann::json;

// Exit codes scripts can tell apart.
enum exit_code : int {
  k_ok = 0,
  k_failed = 1,       // the server refused, or something else went wrong
  k_usage = 2,        // wrong arguments
  k_no_profile = 3,   // no profile at --profile
  k_passphrase = 4,   // wrong passphrase
  k_unreachable = 5,  // the server cannot be reached (or, over wss://, not trusted)
};

int exit_for(std::error_code ec) {
  if (ec == client::errc::no_profile) return k_no_profile;
  if (ec == client::errc::wrong_passphrase) return k_passphrase;
  if (ec == client::errc::server_unreachable || ec == client::errc::timeout ||
      ec == client::errc::tls_failed)
    return k_unreachable;
  return k_failed;
}

int fail(std::error_code ec) {
  std::cerr << "haven: " << ec.message() << "\n";
  return exit_for(ec);
}

// HAVEN_PASSPHRASE for scripts, else asked on the terminal without echo.
std::string passphrase(bool confirm) {
  if (const char* env = std::getenv("HAVEN_PASSPHRASE")) return env;
  const auto ask = [](const char* prompt) {
    std::cerr << prompt << std::flush;
    termios old{};
    const bool tty = tcgetattr(STDIN_FILENO, &old) == 0;
    if (tty) {
      termios quiet = old;
      quiet.c_lflag &= static_cast<tcflag_t>(~ECHO);
      tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
    }
    std::string line;
    std::getline(std::cin, line);
    if (tty) tcsetattr(STDIN_FILENO, TCSANOW, &old);
    std::cerr << "\n";
    return line;
  };
  auto first = ask("Passphrase: ");
  if (confirm && ask("Repeat passphrase: ") != first) {
    std::cerr << "haven: the passphrases differ\n";
    std::exit(k_usage);
  }
  return first;
}

json to_json(const client::message& m) {
  return {{"contact", m.contact}, {"outgoing", m.outgoing}, {"text", m.text},
          {"sent_at", m.sent_at}, {"received_at", m.received_at}};
}

void print(const client::message& m, bool as_json) {
  if (as_json) {
    std::cout << to_json(m).dump() << std::endl;
    return;
  }
  std::cout << (m.outgoing ? "to " : "from ") << m.contact << ": " << m.text << std::endl;
}

}  // namespace

int main(int argc, char** argv) {
  crypto::ensure_sodium();
  CLI::App app{
      "haven: end-to-end encrypted messages through a Haven relay.\n"
      "The profile (keys, contacts, messages) lives in one encrypted file under --profile,\n"
      "unlocked by a passphrase (asked, or HAVEN_PASSPHRASE). Exit codes: 0 ok, 1 failed,\n"
      "2 usage, 3 no profile, 4 wrong passphrase, 5 server unreachable or not trusted (TLS)."};
  std::string profile_dir;
  bool as_json = false;
  app.add_option("--profile", profile_dir, "Profile directory")->required()->envname("HAVEN_PROFILE");
  app.add_flag("--json", as_json, "Machine-readable output (one JSON value per line)");
  client::connection_options connection;
  app.add_option("--ca-file", connection.ca_file,
                 "wss:// only: trust this PEM CA file for the relay's certificate instead of the "
                 "system's trust store (a service's private CA). Give it to every command")
      ->envname("HAVEN_CA_FILE")
      ->check(CLI::ExistingFile);
  app.require_subcommand(1);
  app.fallthrough();  // --json and --profile work after the command too

  std::string server, invite, name;
  auto* init = app.add_subcommand("init", "Create a profile and register with an invite");
  init->add_option("--server", server,
                   "Relay URL: wss://host[:port] (TLS 1.3, the certificate checked), or ws://host:port "
                   "for a relay on this machine")
      ->required();
  init->add_option("--invite", invite, "Invite token from the service")->required();
  init->add_option("--name", name, "Your name as this profile shows it (stays on this device)")
      ->required();

  auto* code = app.add_subcommand("code", "Print your contact code (one line; share it in person)");

  auto* contact = app.add_subcommand("contact", "Manage contacts");
  contact->require_subcommand(1);
  std::string contact_name, contact_code;
  auto* contact_add = contact->add_subcommand("add", "Add a contact from their contact code");
  contact_add->add_option("NAME", contact_name, "Name for the contact")->required();
  contact_add->add_option("CODE", contact_code, "Their contact code")->required();
  auto* contact_list = contact->add_subcommand("list", "List contacts");

  std::string text;
  auto* send = app.add_subcommand("send", "Send a message (TEXT, or standard input)");
  send->add_option("NAME", contact_name, "Contact")->required();
  send->add_option("TEXT", text, "The message; read from standard input when omitted");

  auto* inbox = app.add_subcommand("inbox", "Fetch, print and acknowledge waiting messages");

  int listen_count = 0, listen_seconds = 0;
  auto* listen = app.add_subcommand("listen", "Stay connected and print messages as they arrive");
  listen->add_option("--count", listen_count, "Exit after this many messages (0: never)");
  listen->add_option("--seconds", listen_seconds, "Exit after this many seconds (0: never)");

  auto* history = app.add_subcommand("history", "Show the conversation with a contact");
  history->add_option("NAME", contact_name, "Contact")->required();

  auto* safety = app.add_subcommand("safety-number",
                                    "Show the safety number to compare with a contact in person");
  safety->add_option("NAME", contact_name, "Contact")->required();

  app.add_subcommand("panic", "Erase this profile at once, without asking");

  CLI11_PARSE(app, argc, argv);
  const auto& command = *app.get_subcommands().front();

  if (command.get_name() == "panic") {
    client::profile_store::erase(profile_dir);
    return k_ok;
  }

  if (*init) {
    auto made = client::client::init(profile_dir, passphrase(true), server, invite, name,
                                     connection);
    if (!made) return fail(made.error());
    if (as_json)
      std::cout << json{{"mailbox_registered", true}, {"organisation", made->profile().organisation()}}.dump()
                << "\n";
    else
      std::cout << "Profile created. Connected to " << made->profile().organisation()
                << ". Share your contact code with: haven --profile " << profile_dir << " code\n";
    return k_ok;
  }

  auto opened = client::client::open(profile_dir, passphrase(false), connection);
  if (!opened) return fail(opened.error());
  auto& me = *opened;

  if (*code) {
    if (as_json) std::cout << json{{"code", me.contact_code()}}.dump() << "\n";
    else std::cout << me.contact_code() << "\n";
    return k_ok;
  }
  if (*contact_add) {
    if (auto added = me.add_contact(contact_name, contact_code); !added) return fail(added.error());
    if (!as_json) std::cout << "Added " << contact_name << ".\n";
    return k_ok;
  }
  if (*contact_list) {
    for (const auto& c : me.contacts()) {
      if (as_json) std::cout << json{{"name", c.name}, {"can_send", c.can_send}}.dump() << "\n";
      else std::cout << c.name << (c.can_send ? "" : "  (no contact code yet: cannot reply)") << "\n";
    }
    return k_ok;
  }
  if (*send) {
    if (send->count("TEXT") == 0) {
      std::ostringstream in;
      in << std::cin.rdbuf();
      text = in.str();
      while (!text.empty() && text.back() == '\n') text.pop_back();
    }
    if (text.empty()) {
      std::cerr << "haven: nothing to send\n";
      return k_usage;
    }
    if (auto sent = me.send(contact_name, text); !sent) return fail(sent.error());
    if (as_json) std::cout << json{{"sent", true}}.dump() << "\n";
    return k_ok;
  }
  if (*inbox) {
    auto messages = me.fetch();
    if (!messages) return fail(messages.error());
    for (const auto& m : *messages) print(m, as_json);
    if (!as_json && messages->empty()) std::cerr << "No new messages.\n";
    return k_ok;
  }
  if (*listen) {
    // Ctrl-C simply ends the process: every message is saved before its ack.
    int received = 0;
    const auto until = listen_seconds > 0
                           ? std::chrono::steady_clock::now() + std::chrono::seconds(listen_seconds)
                           : std::chrono::steady_clock::time_point::max();
    auto done = me.listen(
        [&](const client::message& m) {
          print(m, as_json);
          ++received;
          return listen_count == 0 || received < listen_count;
        },
        until);
    if (!done) return fail(done.error());
    return k_ok;
  }
  if (*history) {
    auto messages = me.history(contact_name);
    if (!messages) return fail(messages.error());
    for (const auto& m : *messages) print(m, as_json);
    return k_ok;
  }
  if (*safety) {
    auto number = me.safety_number(contact_name);
    if (!number) return fail(number.error());
    if (as_json) std::cout << json{{"safety_number", *number}}.dump() << "\n";
    else std::cout << *number << "\n";
    return k_ok;
  }
  return k_usage;
}

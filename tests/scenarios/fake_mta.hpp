#pragma once
// A fake MTA for the server-role tests: a blocking line client that delivers one
// message to two recipients, pipelined, counting replies; then QUITs (good) or goes on
// with another transaction on the same connection (bad: the Postfix bug class).
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <string>

namespace lockstep::test {
// A blocking line client for the test's fake MTA.
struct Mta {
  explicit Mta(const std::string& address) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<std::uint16_t>(std::stoi(address.substr(address.rfind(':') + 1))));
    ::inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    ok = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
  }
  ~Mta() { ::close(fd); }
  void send(const std::string& s) { (void)::send(fd, s.data(), s.size(), MSG_NOSIGNAL); }
  // One reply line, "" on EOF or after 5 s.
  std::string line() {
    for (;;) {
      const auto lf = buf.find('\n');
      if (lf != std::string::npos) {
        std::string l = buf.substr(0, lf + 1);
        buf.erase(0, lf + 1);
        return l;
      }
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 5000) <= 0) return "";
      char b[4096];
      const ssize_t n = ::recv(fd, b, sizeof b, 0);
      if (n <= 0) return "";
      buf.append(b, static_cast<std::size_t>(n));
    }
  }
  // A reply (multi-line replies read whole).
  std::string reply() {
    std::string l;
    do l = line();
    while (l.size() > 3 && l[3] == '-');
    return l;
  }
  int fd;
  bool ok = false;
  std::string buf;
};

// Delivers one message to two recipients, pipelined, counting replies; then either
// QUITs (good) or goes on with another transaction on the same connection (bad).
inline void mta(const std::string& address, bool reuse) {
  Mta m(address);
  if (!m.ok) return;
  m.reply();
  m.send("LHLO mta.test\r\n");
  m.reply();
  m.send("MAIL FROM:<s@x.test>\r\nRCPT TO:<alice@lab.test>\r\nRCPT TO:<bob@lab.test>\r\nDATA\r\n");
  for (int i = 0; i < 4; ++i) m.reply();
  m.send("Subject: t\r\n\r\nhi\r\n.\r\n");
  m.reply();
  m.reply();
  if (reuse) {
    m.send("RSET\r\n");
    m.reply();
    m.send("MAIL FROM:<s@x.test>\r\n");
    m.reply();
  }
  m.send("QUIT\r\n");
  m.reply();
}

}  // namespace lockstep::test

#pragma once
// A wait for the relay: until a socket has something to read, on the reactor's
// edge-triggered readiness, with no system call of its own.
//
// Asio waits for a socket either with async_wait (an epoll_ctl(2) that re-arms the
// descriptor, on every wait) or with async_read_some (a speculative recv(2) first, which
// after a short read only says EAGAIN). Either costs a system call per read on top of the
// recv itself, and per relayed 1 KB message that is 8 of about 33 system calls. The
// descriptor is registered edge-triggered once, so neither is needed: a read that returned
// fewer octets than asked has emptied the socket, and any octet that arrives later raises
// a new edge. The relay reads by itself; after a short read it says so (drained()), and the
// reactor then queues the next wait without trying it and ends it on the next edge. An
// edge that comes while no wait is queued makes the reactor end the next wait at once, so
// nothing is missed. The end of the stream that comes in the same wake-up as the last
// octets raises no edge of its own: the registration asks for EPOLLRDHUP, and a short
// read after a wake-up that had it leaves the next wait to end at once.
//
// It uses Asio's reactor interface (boost/asio/detail), which is internal: it is built
// for the Boost versions whose epoll reactor it was checked against (1.81, Debian 12's),
// and kEdgeRead is false elsewhere, where the relay waits with async_wait. Its completion
// runs on whichever thread runs the io_context, not on a strand: the relay runs each
// io_context on one thread.
#include <cstddef>

#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/system/error_code.hpp>
#include <boost/version.hpp>

#if BOOST_VERSION >= 108100 && BOOST_VERSION < 108200 && defined(__linux__) && \
    !defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT) && !defined(BOOST_ASIO_DISABLE_EPOLL)
#define LOCKSTEP_EDGE_READ 1
#else
#define LOCKSTEP_EDGE_READ 0
#endif

namespace lockstep::proxy {

inline constexpr bool kEdgeRead = LOCKSTEP_EDGE_READ != 0;

// A socket that came from accept(2) is the only descriptor of its file, but Asio, which
// cannot know that, closes it with an EPOLL_CTL_DEL of its own. Saying so leaves the
// removal to close(2), as for the sockets Asio opens itself. A no-op where kEdgeRead is
// false.
void accepted(boost::asio::generic::stream_protocol::socket& socket);

// Around an async_connect: a connect that does not complete at once makes an
// epoll_ctl(2) of its own (adding EPOLLOUT), which then asks for EPOLLRDHUP as well and
// spares EdgeRead its own. after_connect() takes the request back when no such call was
// made, and EdgeRead then makes its own. No-ops where kEdgeRead is false.
void before_connect(boost::asio::generic::stream_protocol::socket& socket);
void after_connect(boost::asio::generic::stream_protocol::socket& socket);

// The waits of one direction of a relayed connection: at most one in flight.
class EdgeRead {
 public:
  using Socket = boost::asio::generic::stream_protocol::socket;
  // Called when a wait ends: the socket may be read (ec clear), or it was closed
  // (operation_aborted) or is gone (bad_descriptor).
  using Done = void (*)(void* ctx, const boost::system::error_code& ec);

  // A wait of its own for `socket`; asks the reactor for EPOLLRDHUP too.
  EdgeRead(Socket& socket, Done done, void* ctx);
  // A wait still in flight is left to the reactor, which frees it when it ends.
  ~EdgeRead();
  EdgeRead(const EdgeRead&) = delete;
  EdgeRead& operator=(const EdgeRead&) = delete;

  // The last read emptied the socket: a short read (octets true) or EAGAIN (false). The
  // next wait waits for the next edge, unless the short read followed a wake-up that
  // also brought the end of the stream.
  void drained(bool octets);
  // Starts the next wait. Its completion comes through the io_context, never from here.
  void wait();

  struct Op;  // the reactor operation (edge_read.cpp)

 private:
  Op* op_;
};

}  // namespace lockstep::proxy

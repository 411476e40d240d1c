#pragma once
// A read for the relay that waits on the reactor's edge-triggered readiness with no system
// call of its own.
//
// Asio waits for a socket either with async_wait (an epoll_ctl(2) that re-arms the
// descriptor, on every wait) or with async_read_some (a speculative recv(2) first, which
// after a short read only says EAGAIN). Either costs a system call per read on top of the
// recv itself, and per relayed 1 KB message that is 8 of about 33 system calls. The
// descriptor is registered edge-triggered once, so neither is needed: a read that returned
// fewer octets than asked has emptied the socket, and any octet that arrives later raises
// a new edge. EdgeRead is an Asio reactor operation that does the recv(2) itself and
// reports such a short read as "done and exhausted": the reactor then queues the next read
// without trying it, and performs it when the next edge comes. An edge that comes while no
// read is queued makes the reactor try the next read at once, so nothing is missed.
//
// It uses Asio's reactor interface (boost/asio/detail), which is internal: it is built
// for the Boost versions whose epoll reactor it was checked against (1.81, Debian 12's),
// and kEdgeRead is false elsewhere, where the relay waits with async_wait. Its completion
// runs on whichever thread runs the io_context, not on a strand: the relay uses it only
// with one thread.
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

// The reads of one direction of a relayed connection: at most one in flight.
class EdgeRead {
 public:
  using Socket = boost::asio::generic::stream_protocol::socket;
  // Called when a read ends: n octets (n > 0, ec clear), or the end (ec set: eof, a
  // reset, operation_aborted when the socket was closed).
  using Done = void (*)(void* ctx, const boost::system::error_code& ec, std::size_t n);

  // An operation of its own for `socket`, reading into buf[0, size).
  EdgeRead(Socket& socket, char* buf, std::size_t size, Done done, void* ctx);
  // A read still in flight is left to the reactor, which frees it when it ends.
  ~EdgeRead();
  EdgeRead(const EdgeRead&) = delete;
  EdgeRead& operator=(const EdgeRead&) = delete;

  // Starts the next read. Its completion comes through the io_context, never from here.
  void start();

  struct Op;  // the reactor operation (edge_read.cpp)

 private:
  Op* op_;
};

}  // namespace lockstep::proxy

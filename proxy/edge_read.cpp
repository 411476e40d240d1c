#include "proxy/edge_read.hpp"

#include <cerrno>
#include <cstdint>
#include <stdexcept>

#include <sys/epoll.h>

#include <boost/asio/error.hpp>

#if LOCKSTEP_EDGE_READ
#include <boost/asio/detail/reactor.hpp>
#include <boost/asio/detail/reactor_op.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/query.hpp>
#endif

namespace lockstep::proxy {

#if LOCKSTEP_EDGE_READ

namespace detail = boost::asio::detail;

namespace {
// The socket's reactor registration: basic_socket keeps it in a protected member, which a
// pointer to member formed through a derived class reaches.
struct SocketAccess : EdgeRead::Socket {
  static auto& impl(EdgeRead::Socket& s) { return (s.*(&SocketAccess::impl_)).get_implementation(); }
};

// The reactor's private members EdgeRead needs: its epoll descriptor, a registration's
// events and whether it may try an operation at once, and the events of the last wake-up. An explicit instantiation may name
// private members, and hands out pointers to them.
template <typename Tag, auto Member>
struct Expose {
  friend constexpr auto member(Tag) { return Member; }
};
struct EpollFd {
  friend constexpr auto member(EpollFd);
};
struct Registered {
  friend constexpr auto member(Registered);
};
struct TaskResult {
  friend constexpr auto member(TaskResult);
};
struct Speculative {
  friend constexpr auto member(Speculative);
};
template struct Expose<EpollFd, &detail::epoll_reactor::epoll_fd_>;
template struct Expose<Registered, &detail::epoll_reactor::descriptor_state::registered_events_>;
template struct Expose<TaskResult, &detail::scheduler_operation::task_result_>;
template struct Expose<Speculative, &detail::epoll_reactor::descriptor_state::try_speculative_>;

// The events of the descriptor's last wake-up (set before its operations are performed).
unsigned events_of(detail::epoll_reactor::per_descriptor_data d) {
  // Only a C-style cast reaches the private base.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast"
  return ((detail::scheduler_operation*)d)->*member(TaskResult{});
#pragma GCC diagnostic pop
}
}  // namespace

struct EdgeRead::Op : detail::reactor_op {
  Op(EdgeRead::Socket& s, Done d, void* c)
      : reactor_op(boost::system::error_code(), &Op::perform, &Op::complete),
        socket(s),
        reactor(boost::asio::use_service<detail::reactor>(
            boost::asio::query(s.get_executor(), boost::asio::execution::context))),
        on_done(d),
        ctx(c) {}

  EdgeRead::Socket& socket;
  detail::reactor& reactor;
  Done on_done;
  void* ctx;
  bool pending = false;  // the reactor holds it (queued, or its completion posted)
  bool orphan = false;   // its EdgeRead is gone: free it when the reactor lets go

  // Performed at once when the reactor may try (an edge came, or the last read did not
  // empty the socket), else on the next edge: either way the socket may be read now. The
  // read itself is the caller's, in its completion, where the octets are used at once.
  static status perform(reactor_op*) { return done; }

  static void complete(void* owner, detail::operation* base, const boost::system::error_code&, std::size_t) {
    auto* o = static_cast<Op*>(base);
    o->pending = false;
    if (o->orphan) {
      delete o;
      return;
    }
    if (!owner) return;  // the io_context is being destroyed: nothing runs
    const boost::system::error_code ec = o->ec_;
    o->on_done(o->ctx, ec);  // last: it may start the next wait, or destroy the EdgeRead
  }
};

EdgeRead::EdgeRead(Socket& socket, Done done, void* ctx) : op_(new Op(socket, done, ctx)) {
  // The registration also asks for EPOLLRDHUP, the peer's end (and keeps it: Asio's own
  // changes start from the registered events).
  auto& impl = SocketAccess::impl(socket);
  if (impl.socket_ == detail::invalid_socket || !impl.reactor_data_) return;
  std::uint32_t& registered = impl.reactor_data_->*member(Registered{});
  if (registered == 0 || (registered & EPOLLRDHUP)) return;
  epoll_event ev{};
  ev.events = registered | EPOLLRDHUP;
  ev.data.ptr = impl.reactor_data_;
  if (::epoll_ctl(op_->reactor.*member(EpollFd{}), EPOLL_CTL_MOD, impl.socket_, &ev) == 0) registered = ev.events;
}

void accepted(EdgeRead::Socket& socket) {
  auto& impl = SocketAccess::impl(socket);
  impl.state_ &= static_cast<detail::socket_ops::state_type>(~detail::socket_ops::possible_dup);
}

void before_connect(EdgeRead::Socket& socket) {
  auto& impl = SocketAccess::impl(socket);
  if (impl.socket_ == detail::invalid_socket || !impl.reactor_data_) return;
  std::uint32_t& registered = impl.reactor_data_->*member(Registered{});
  // The connect's call registers the events as recorded here, EPOLLOUT added.
  if (registered != 0 && !(registered & EPOLLOUT)) registered |= EPOLLRDHUP;
}

void after_connect(EdgeRead::Socket& socket) {
  auto& impl = SocketAccess::impl(socket);
  if (impl.socket_ == detail::invalid_socket || !impl.reactor_data_) return;
  std::uint32_t& registered = impl.reactor_data_->*member(Registered{});
  if (!(registered & EPOLLOUT)) registered &= ~static_cast<std::uint32_t>(EPOLLRDHUP);
}

EdgeRead::~EdgeRead() {
  if (op_->pending) op_->orphan = true;
  else delete op_;
}

void EdgeRead::drained(bool octets) {
  auto& impl = SocketAccess::impl(op_->socket);
  if (impl.socket_ == detail::invalid_socket || !impl.reactor_data_) return;
  // An end that came with the last octets in one wake-up raises no edge of its own: then
  // the next wait ends at once, and the read finds it. Only after octets: EAGAIN says no
  // end is waiting (it would have read as one), and the events may be those of a closed
  // socket whose registration this one reuses, which would make every wait end at once.
  if (octets && (events_of(impl.reactor_data_) & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) return;
  // Nothing of the reactor runs between the caller's read and this (one thread per
  // io_context): an edge that comes later sets it again.
  (impl.reactor_data_->*member(Speculative{}))[detail::reactor::read_op] = false;
}

void EdgeRead::wait() {
  Op& o = *op_;
  o.ec_ = boost::system::error_code();
  o.bytes_transferred_ = 0;
  o.pending = true;
  auto& impl = SocketAccess::impl(o.socket);
  if (impl.socket_ == detail::invalid_socket) {
    // Closed: end as an asio wait would.
    o.ec_ = boost::asio::error::bad_descriptor;
    o.reactor.post_immediate_completion(&o, true);
    return;
  }
  // Ends at once when the last read did not empty the socket or an edge came since;
  // otherwise on the next edge, with no system call.
  o.reactor.start_op(detail::reactor::read_op, impl.socket_, impl.reactor_data_, &o, true, true);
}

#else

struct EdgeRead::Op {};

EdgeRead::EdgeRead(Socket&, Done, void*) : op_(nullptr) {
  throw std::logic_error("EdgeRead: not available with this Boost");
}
void accepted(EdgeRead::Socket&) {}
void before_connect(EdgeRead::Socket&) {}
void after_connect(EdgeRead::Socket&) {}
EdgeRead::~EdgeRead() = default;
void EdgeRead::drained(bool) {}
void EdgeRead::wait() {}

#endif

}  // namespace lockstep::proxy

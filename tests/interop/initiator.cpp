// A QuickFIX C++ initiator that drives one scripted scenario against fixgw.
//
// Built and run by tests/test_quickfix_interop.py. Usage:
//
//   initiator SETTINGS.cfg SCENARIO [--next-sender-seq N] [--next-target-seq N]
//                                   [--timeout SECONDS]
//
// SETTINGS.cfg is an ordinary QuickFIX settings file with exactly one
// initiator session. SCENARIO is one of:
//
//   basic          log on, wait for a Heartbeat, TestRequest round trip, log out
//   order          log on, send a NewOrderSingle, wait for the gateway's
//                  application-level answer, log out
//   gap-client     like basic; combine with --next-sender-seq to make our
//                  Logon's MsgSeqNum too high: the gateway must send a
//                  ResendRequest, which QuickFIX answers with a GapFill
//   gap-client-app log on, skip 3 of our MsgSeqNums, send a NewOrderSingle:
//                  the gateway asks for the gap, QuickFIX gap-fills and
//                  resends the order (PossDupFlag=Y); one answer expected
//   gap-gateway    like basic; combine with --next-target-seq to make the
//                  gateway's messages look too high: QuickFIX sends a
//                  ResendRequest, the gateway must fill the gap
//   await-logout   log on and stay until the gateway logs us out
//   reports        log on and drive every kind of report the venue sends
//                  (stop, stop-limit, iceberg, GTD expiry, FOK/IOC/market
//                  cancels, replace, status, rejects, mass cancel) on the
//                  symbol QFX; each must reach the application, i.e. pass
//                  QuickFIX's validation against the data dictionary
//
// Every callback and every QuickFIX log entry becomes one line on stdout so
// the Python test can assert on the whole conversation (SOH shown as '|'):
//
//   CREATE <session id>        LOGON        LOGOUT
//   FROM_ADMIN <35> <raw>      TO_ADMIN <35> <raw>
//   FROM_APP <35> <raw>        TO_APP <35> <raw>
//   QF_IN <raw>  QF_OUT <raw>  QF_EVENT <text>    (QuickFIX's own log)
//   SEQ next_sender=<n> next_target=<n>
//   STEP <what the scenario does next>
//   PASS | FAIL <reason>
//
// Exit status: 0 PASS, 1 FAIL, 2 usage or configuration error.
//
// Note: FROM_ADMIN / FROM_APP only fire for messages QuickFIX accepted and
// processed in sequence; messages it queued or rejected show up as QF_IN only.

#include <quickfix/Application.h>
#include <quickfix/FileStore.h>
#include <quickfix/Log.h>
#include <quickfix/Session.h>
#include <quickfix/SessionSettings.h>
#include <quickfix/SocketInitiator.h>
#include <quickfix/fix44/NewOrderSingle.h>
#include <quickfix/fix44/OrderCancelReplaceRequest.h>
#include <quickfix/fix44/OrderCancelRequest.h>
#include <quickfix/fix44/OrderMassCancelRequest.h>
#include <quickfix/fix44/OrderStatusRequest.h>
#include <quickfix/fix44/TestRequest.h>

// QuickFIX up to 1.15 declares its callbacks with dynamic exception
// specifications (removed in C++17, hence -std=c++14); later releases wrap
// them in an EXCEPT macro. An override must repeat whichever is in use.
#ifdef EXCEPT
#define QF_THROWS(...) EXCEPT(__VA_ARGS__)
#else
#define QF_THROWS(...) throw(__VA_ARGS__)
#endif

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <iostream>
#include <mutex>
#include <set>
#include <string>
#include <unistd.h>
#include <utility>
#include <vector>

namespace {

const char SOH = '\x01';

std::mutex g_out_mutex;  // one line at a time from QuickFIX's thread and ours

std::string printable(std::string raw) {
  for (char& c : raw)
    if (c == SOH) c = '|';
  return raw;
}

void emit(const std::string& line) {
  std::lock_guard<std::mutex> lock(g_out_mutex);
  std::cout << line << std::endl;  // endl flushes: the test may read us live
}

// Value of `tag` in a raw FIX message, or "" when absent.
std::string field(const std::string& raw, int tag) {
  const std::string key = std::to_string(tag) + "=";
  std::string::size_type pos = 0;
  while ((pos = raw.find(key, pos)) != std::string::npos) {
    if (pos == 0 || raw[pos - 1] == SOH) {
      const auto start = pos + key.size();
      const auto end = raw.find(SOH, start);
      return raw.substr(start, end == std::string::npos ? std::string::npos : end - start);
    }
    pos += key.size();
  }
  return "";
}

struct Event {
  std::string kind;  // FROM_ADMIN, TO_ADMIN, FROM_APP, TO_APP, LOGON, LOGOUT
  std::string raw;   // the message with SOH separators; empty for LOGON/LOGOUT

  std::string type() const { return field(raw, 35); }
  std::string get(int tag) const { return field(raw, tag); }
};

// Everything the Application sees, kept for the scenario thread to wait on.
class Recorder {
 public:
  void add(Event event) {
    {
      std::lock_guard<std::mutex> lock(m_mutex);
      m_events.push_back(std::move(event));
    }
    m_changed.notify_all();
  }

  // Wait until an event after position `from` satisfies `pred`; returns its
  // index, or -1 once `deadline` has passed.
  long wait_for(std::size_t from, const std::function<bool(const Event&)>& pred,
                std::chrono::steady_clock::time_point deadline) {
    std::unique_lock<std::mutex> lock(m_mutex);
    for (;;) {
      for (std::size_t i = from; i < m_events.size(); ++i)
        if (pred(m_events[i])) return static_cast<long>(i);
      from = m_events.size();
      if (m_changed.wait_until(lock, deadline) == std::cv_status::timeout) {
        for (std::size_t i = from; i < m_events.size(); ++i)
          if (pred(m_events[i])) return static_cast<long>(i);
        return -1;
      }
    }
  }

  std::vector<Event> snapshot() {
    std::lock_guard<std::mutex> lock(m_mutex);
    return m_events;
  }

 private:
  std::mutex m_mutex;
  std::condition_variable m_changed;
  std::vector<Event> m_events;
};

class App : public FIX::Application {
 public:
  explicit App(Recorder& recorder) : m_recorder(recorder) {}

  void onCreate(const FIX::SessionID& id) override { emit("CREATE " + id.toString()); }
  void onLogon(const FIX::SessionID&) override { record("LOGON", ""); }
  void onLogout(const FIX::SessionID&) override { record("LOGOUT", ""); }
  void toAdmin(FIX::Message& msg, const FIX::SessionID&) override {
    record("TO_ADMIN", msg.toString());
  }
  void toApp(FIX::Message& msg, const FIX::SessionID&) QF_THROWS(FIX::DoNotSend) override {
    record("TO_APP", msg.toString());
  }
  void fromAdmin(const FIX::Message& msg, const FIX::SessionID&) QF_THROWS(
      FIX::FieldNotFound, FIX::IncorrectDataFormat, FIX::IncorrectTagValue,
      FIX::RejectLogon) override {
    record("FROM_ADMIN", msg.toString());
  }
  void fromApp(const FIX::Message& msg, const FIX::SessionID&) QF_THROWS(
      FIX::FieldNotFound, FIX::IncorrectDataFormat, FIX::IncorrectTagValue,
      FIX::UnsupportedMessageType) override {
    // Returning normally: QuickFIX must not answer the gateway's application
    // messages with a Reject of its own; we only observe them.
    record("FROM_APP", msg.toString());
  }

 private:
  void record(const std::string& kind, const std::string& raw) {
    Event event{kind, raw};
    emit(raw.empty() ? kind : kind + " " + event.type() + " " + printable(raw));
    m_recorder.add(std::move(event));
  }

  Recorder& m_recorder;
};

// QuickFIX's own log (raw wire traffic and session-layer events) on stdout.
class StdoutLog : public FIX::Log {
 public:
  void clear() override {}
  void backup() override {}
  void onIncoming(const std::string& s) override { emit("QF_IN " + printable(s)); }
  void onOutgoing(const std::string& s) override { emit("QF_OUT " + printable(s)); }
  void onEvent(const std::string& s) override { emit("QF_EVENT " + s); }
};

class StdoutLogFactory : public FIX::LogFactory {
 public:
  FIX::Log* create() override { return new StdoutLog; }
  FIX::Log* create(const FIX::SessionID&) override { return new StdoutLog; }
  void destroy(FIX::Log* log) override { delete log; }
};

struct Options {
  std::string settings;
  std::string scenario;
  int next_sender_seq = 0;  // 0: leave the store's value alone
  int next_target_seq = 0;
  int timeout = 10;  // seconds for the whole scenario
};

struct Failure {
  std::string reason;
};

class Scenario {
 public:
  Scenario(const Options& options, Recorder& recorder, FIX::Session& session)
      : m_recorder(recorder),
        m_session(session),
        m_id(session.getSessionID()),
        m_deadline(std::chrono::steady_clock::now() + std::chrono::seconds(options.timeout)) {}

  void step(const std::string& what) { emit("STEP " + what); }

  // Index of the first event from `from` on that matches; throws on timeout.
  std::size_t expect(std::size_t from, const std::string& what,
                     const std::function<bool(const Event&)>& pred) {
    const long at = m_recorder.wait_for(from, pred, m_deadline);
    if (at < 0) throw Failure{"timed out waiting for " + what};
    return static_cast<std::size_t>(at);
  }

  std::size_t expect_message(std::size_t from, const std::string& kind, const std::string& type,
                             const std::string& what) {
    return expect(from, what, [&](const Event& e) { return e.kind == kind && e.type() == type; });
  }

  std::size_t logged_on() { return expect(0, "Logon", is("LOGON")) + 1; }

  // TestRequest with a fresh id; the gateway's Heartbeat must echo it.
  std::size_t test_request_round_trip(std::size_t from, const std::string& id) {
    step("TestRequest " + id);
    FIX44::TestRequest request{FIX::TestReqID(id)};
    FIX::Session::sendToTarget(request, m_id);
    return expect(from, "Heartbeat(112=" + id + ")", [&](const Event& e) {
             return e.kind == "FROM_ADMIN" && e.type() == "0" && e.get(112) == id;
           }) + 1;
  }

  // Our Logout, then the gateway's Logout in reply and the disconnect.
  void logout(std::size_t from) {
    step("Logout");
    m_session.logout("interop scenario done");
    const std::size_t at = expect_message(from, "FROM_ADMIN", "5", "the gateway's Logout");
    expect(at, "disconnect after Logout", is("LOGOUT"));
  }

  // A session-level Reject in either direction means the engines disagree.
  void no_session_rejects() {
    for (const Event& e : m_recorder.snapshot())
      if ((e.kind == "FROM_ADMIN" || e.kind == "TO_ADMIN") && e.type() == "3")
        throw Failure{e.kind + " Reject: " + printable(e.raw)};
  }

  static std::function<bool(const Event&)> is(const std::string& kind) {
    return [kind](const Event& e) { return e.kind == kind; };
  }

  void basic() {
    std::size_t at = logged_on();
    step("wait for a Heartbeat from the gateway");
    at = expect_message(at, "FROM_ADMIN", "0", "a Heartbeat from the gateway") + 1;
    at = test_request_round_trip(at, "QF-TR-1");
    logout(at);
  }

  // Sends a NewOrderSingle; returns its ClOrdID.
  std::string send_order() {
    const std::string cl_ord_id =
        "QF-ORD-" + std::to_string(::getpid()) + "-" + std::to_string(std::time(nullptr));
    step("NewOrderSingle 11=" + cl_ord_id);
    FIX44::NewOrderSingle order(FIX::ClOrdID(cl_ord_id), FIX::Side(FIX::Side_BUY),
                                FIX::TransactTime(), FIX::OrdType(FIX::OrdType_LIMIT));
    order.set(FIX::Symbol("INTEROP"));
    order.set(FIX::OrderQty(100));
    order.set(FIX::Price(10.25));
    order.set(FIX::TimeInForce(FIX::TimeInForce_DAY));
    FIX::Session::sendToTarget(order, m_id);
    return cl_ord_id;
  }

  // Whatever the gateway's application does with an order (BusinessMessageReject
  // today, an ExecutionReport once orders are accepted), the answer must name it.
  std::size_t expect_answer(std::size_t from, const std::string& cl_ord_id) {
    return expect(from, "an answer naming ClOrdID " + cl_ord_id, [&](const Event& e) {
      return e.kind == "FROM_APP" && ((e.type() == "j" && e.get(379) == cl_ord_id) ||
                                      (e.type() == "8" && e.get(11) == cl_ord_id));
    });
  }

  void order() {
    std::size_t at = logged_on();
    at = expect_answer(at, send_order()) + 1;
    logout(at);
  }

  void gap_client() {
    logged_on();
    step("wait for the gateway's ResendRequest");
    std::size_t at = expect_message(0, "FROM_ADMIN", "2", "the gateway's ResendRequest");
    step("wait for our SequenceReset-GapFill");
    expect(at, "our SequenceReset-GapFill", [](const Event& e) {
      return e.kind == "TO_ADMIN" && e.type() == "4" && e.get(123) == "Y";
    });
    // The gateway answers a TestRequest only once it has processed every
    // message before it, i.e. once the gap fill closed its gap.
    at = test_request_round_trip(at, "QF-TR-GAP-CLIENT");
    step("wait for a Heartbeat after recovery");
    at = expect_message(at, "FROM_ADMIN", "0", "a Heartbeat after the gap fill") + 1;
    logout(at);
  }

  // Mid-session, skip a few of our own MsgSeqNums before an order: the
  // gateway must queue the order, ask for the gap, and act on the order once,
  // although QuickFIX answers the ResendRequest with a gap fill *and* a
  // PossDup copy of the order.
  void gap_client_app() {
    std::size_t at = logged_on();
    const int skip_to = m_session.getExpectedSenderNum() + 3;
    step("skip our next MsgSeqNum to " + std::to_string(skip_to));
    m_session.setNextSenderMsgSeqNum(skip_to);
    const std::string cl_ord_id = send_order();
    step("wait for the gateway's ResendRequest");
    at = expect_message(at, "FROM_ADMIN", "2", "the gateway's ResendRequest");
    step("wait for our gap fill and PossDup resend of the order");
    expect(at, "our SequenceReset-GapFill", [](const Event& e) {
      return e.kind == "TO_ADMIN" && e.type() == "4" && e.get(123) == "Y";
    });
    expect(at, "our PossDup copy of the order", [&](const Event& e) {
      return e.kind == "TO_APP" && e.type() == "D" && e.get(43) == "Y" &&
             e.get(11) == cl_ord_id;
    });
    at = expect_answer(at, cl_ord_id) + 1;
    // The echo comes after anything the gateway does with the copy, so a
    // second answer would be on record by then.
    at = test_request_round_trip(at, "QF-TR-GAP-APP");
    logout(at);
  }

  void gap_gateway() {
    logged_on();
    step("wait for our ResendRequest");
    // Sent while QuickFIX handles the gateway's Logon, before onLogon.
    std::size_t at = expect_message(0, "TO_ADMIN", "2", "our ResendRequest");
    step("wait for the gateway's SequenceReset-GapFill");
    at = expect(at, "the gateway's SequenceReset-GapFill", [](const Event& e) {
      return e.kind == "FROM_ADMIN" && e.type() == "4" && e.get(123) == "Y";
    });
    // QuickFIX passes the echo to fromAdmin only when it is in sequence, so
    // this proves the gap is closed on our side.
    at = test_request_round_trip(at, "QF-TR-GAP-GATEWAY");
    logout(at);
  }

  void await_logout() {
    std::size_t at = logged_on();
    step("wait for the gateway to log us out");
    at = expect_message(at, "FROM_ADMIN", "5", "a Logout from the gateway");
    expect(at, "disconnect after the gateway's Logout", is("LOGOUT"));
  }

  // --- the reports scenario ----------------------------------------------------------

  using Fields = std::vector<std::pair<int, std::string>>;

  std::string order_id(const std::string& name) {
    return "QF-" + std::to_string(::getpid()) + "-" + name;
  }

  // A NewOrderSingle on QFX with the given extra fields; returns its ClOrdID.
  std::string new_order(const std::string& name, char side, char ord_type, int qty,
                        const Fields& extra) {
    const std::string id = order_id(name);
    step("NewOrderSingle 11=" + id);
    FIX44::NewOrderSingle message{FIX::ClOrdID(id), FIX::Side(side), FIX::TransactTime(),
                                  FIX::OrdType(ord_type)};
    message.set(FIX::Symbol("QFX"));
    message.set(FIX::OrderQty(qty));
    for (const auto& f : extra) message.setField(f.first, f.second);
    FIX::Session::sendToTarget(message, m_id);
    return id;
  }

  // The ExecutionReport for `cl_ord_id` with `exec_type`, received (and so validated)
  // after position `from`.
  std::size_t expect_report(std::size_t from, const std::string& cl_ord_id,
                            const std::string& exec_type) {
    return expect(from, "ExecutionReport 11=" + cl_ord_id + " 150=" + exec_type,
                  [&](const Event& e) {
                    return e.kind == "FROM_APP" && e.type() == "8" && e.get(11) == cl_ord_id &&
                           e.get(150) == exec_type;
                  });
  }

  std::size_t expect_app(std::size_t from, const std::string& type, const std::string& cl_ord_id) {
    return expect(from, "35=" + type + " 11=" + cl_ord_id, [&](const Event& e) {
      return e.kind == "FROM_APP" && e.type() == type && e.get(11) == cl_ord_id;
    });
  }

  void reports() {
    const std::size_t start = logged_on();
    const char buy = FIX::Side_BUY, sell = FIX::Side_SELL;
    // Resting stops, an iceberg, and a GTD order that expires in a few seconds.
    const std::string stop = new_order("STOP", buy, FIX::OrdType_STOP, 10, {{99, "101.00"}});
    expect_report(start, stop, "0");
    const std::string stop_limit = new_order("STOPLMT", buy, FIX::OrdType_STOP_LIMIT, 10,
                                             {{99, "101.00"}, {44, "102.00"}});
    expect_report(start, stop_limit, "0");
    const std::string ice =
        new_order("ICE", sell, FIX::OrdType_LIMIT, 100, {{44, "101.00"}, {111, "20"}});
    expect_report(start, ice, "0");
    FIX::UtcTimeStamp expire;
    expire += 3;
    const std::string gtd = new_order(
        "GTD", buy, FIX::OrdType_LIMIT, 5,
        {{44, "90.00"}, {59, "6"}, {126, FIX::UtcTimeStampConvertor::convert(expire)}});
    expect_report(start, gtd, "0");
    // A trade at 101 fires both stops: each is restated, then trades with the iceberg.
    const std::string cross = new_order("CROSS", buy, FIX::OrdType_LIMIT, 10, {{44, "101.00"}});
    expect_report(start, cross, "F");
    expect_report(expect_report(start, stop, "D"), stop, "F");
    expect_report(expect_report(start, stop_limit, "D"), stop_limit, "F");
    expect_report(start, ice, "F");
    // Orders that end at once without a fill: one Canceled each.
    expect_report(start, new_order("FOK", buy, FIX::OrdType_LIMIT, 1000,
                                   {{44, "101.00"}, {59, "4"}}), "4");
    expect_report(start, new_order("IOC", buy, FIX::OrdType_LIMIT, 10,
                                   {{44, "100.00"}, {59, "3"}}), "4");
    // Replace (150=5), status of a known and an unknown order (150=I).
    const std::string gtd2 = order_id("GTD2");
    step("OrderCancelReplaceRequest 11=" + gtd2);
    FIX44::OrderCancelReplaceRequest replace{FIX::OrigClOrdID(gtd), FIX::ClOrdID(gtd2),
                                             FIX::Side(buy), FIX::TransactTime(),
                                             FIX::OrdType(FIX::OrdType_LIMIT)};
    replace.set(FIX::Symbol("QFX"));
    replace.set(FIX::OrderQty(4));
    replace.setField(44, "90.00");
    FIX::Session::sendToTarget(replace, m_id);
    expect_report(start, gtd2, "5");
    for (const std::string& id : {ice, order_id("NOPE")}) {
      step("OrderStatusRequest 11=" + id);
      FIX44::OrderStatusRequest status{FIX::ClOrdID(id), FIX::Side(sell)};
      status.set(FIX::Symbol("QFX"));
      FIX::Session::sendToTarget(status, m_id);
      expect_report(start, id, "I");
    }
    // Cancel the iceberg (150=4); a market order then finds no sellers (one 150=4).
    const std::string ice_cancel = order_id("ICE-X");
    step("OrderCancelRequest 11=" + ice_cancel);
    FIX44::OrderCancelRequest cancel{FIX::OrigClOrdID(ice), FIX::ClOrdID(ice_cancel),
                                     FIX::Side(sell), FIX::TransactTime()};
    cancel.set(FIX::Symbol("QFX"));
    FIX::Session::sendToTarget(cancel, m_id);
    expect_report(start, ice_cancel, "4");
    expect_report(start, new_order("MKT", buy, FIX::OrdType_MARKET, 10, {}), "4");
    // A business reject (price off the tick) and an OrderCancelReject.
    expect_report(start, new_order("OFFTICK", buy, FIX::OrdType_LIMIT, 10,
                                   {{44, "100.001"}}), "8");
    const std::string cancel_unknown = order_id("CXL-NOPE");
    step("OrderCancelRequest 11=" + cancel_unknown);
    FIX44::OrderCancelRequest unknown{FIX::OrigClOrdID(order_id("NOPE")),
                                      FIX::ClOrdID(cancel_unknown), FIX::Side(buy),
                                      FIX::TransactTime()};
    unknown.set(FIX::Symbol("QFX"));
    FIX::Session::sendToTarget(unknown, m_id);
    expect_app(start, "9", cancel_unknown);
    // The GTD order expires (150=C); a mass cancel takes a resting order (150=4, 35=r).
    expect_report(start, gtd2, "C");
    const std::string rest = new_order("REST", buy, FIX::OrdType_LIMIT, 1, {{44, "50.00"}});
    expect_report(start, rest, "0");
    const std::string mass = order_id("MASS");
    step("OrderMassCancelRequest 11=" + mass);
    FIX44::OrderMassCancelRequest mass_cancel{
        FIX::ClOrdID(mass),
        FIX::MassCancelRequestType(FIX::MassCancelRequestType_CANCEL_ALL_ORDERS),
        FIX::TransactTime()};
    FIX::Session::sendToTarget(mass_cancel, m_id);
    expect_report(start, rest, "4");
    const std::size_t at = expect_app(start, "r", mass) + 1;
    logout(test_request_round_trip(at, "QF-TR-REPORTS"));
  }

  void run(const std::string& name) {
    if (name == "basic") basic();
    else if (name == "order") order();
    else if (name == "gap-client") gap_client();
    else if (name == "gap-client-app") gap_client_app();
    else if (name == "gap-gateway") gap_gateway();
    else if (name == "await-logout") await_logout();
    else if (name == "reports") reports();
    else throw Failure{"unknown scenario " + name};
    no_session_rejects();
  }

 private:
  Recorder& m_recorder;
  FIX::Session& m_session;
  FIX::SessionID m_id;
  std::chrono::steady_clock::time_point m_deadline;
};

bool is_scenario(const std::string& name) {
  return name == "basic" || name == "order" || name == "gap-client" ||
         name == "gap-client-app" || name == "gap-gateway" || name == "await-logout" ||
         name == "reports";
}

bool parse(int argc, char** argv, Options& options) {
  if (argc < 3) return false;
  options.settings = argv[1];
  options.scenario = argv[2];
  if (!is_scenario(options.scenario)) return false;
  for (int i = 3; i < argc; i += 2) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) return false;
    const int value = std::atoi(argv[i + 1]);
    if (value <= 0) return false;
    if (flag == "--next-sender-seq") options.next_sender_seq = value;
    else if (flag == "--next-target-seq") options.next_target_seq = value;
    else if (flag == "--timeout") options.timeout = value;
    else return false;
  }
  return true;
}

void print_seq(FIX::Session& session) {
  emit("SEQ next_sender=" + std::to_string(session.getExpectedSenderNum()) +
       " next_target=" + std::to_string(session.getExpectedTargetNum()));
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  if (!parse(argc, argv, options)) {
    std::cerr << "usage: " << argv[0]
              << " SETTINGS.cfg basic|order|gap-client|gap-client-app|gap-gateway|await-logout"
                 "|reports"
                 " [--next-sender-seq N] [--next-target-seq N] [--timeout SECONDS]\n";
    return 2;
  }

  Recorder recorder;
  App app(recorder);
  StdoutLogFactory logs;
  try {
    FIX::SessionSettings settings(options.settings);
    FIX::FileStoreFactory store(settings);
    FIX::SocketInitiator initiator(app, store, settings, logs);

    // The initiator creates (and registers) its session in the constructor,
    // so the store can be adjusted before start() opens the connection.
    const std::set<FIX::SessionID>& ids = initiator.getSessions();
    if (ids.size() != 1) {
      std::cerr << "expected exactly one session in " << options.settings << "\n";
      return 2;
    }
    FIX::Session* session = FIX::Session::lookupSession(*ids.begin());
    if (options.next_sender_seq) session->setNextSenderMsgSeqNum(options.next_sender_seq);
    if (options.next_target_seq) session->setNextTargetMsgSeqNum(options.next_target_seq);
    print_seq(*session);

    Scenario scenario(options, recorder, *session);
    initiator.start();
    int status = 0;
    try {
      scenario.run(options.scenario);
    } catch (const Failure& failure) {
      emit("FAIL " + failure.reason);
      status = 1;
    }
    // After a clean logout the session is disabled, so this returns at once;
    // after a failure, do not wait for a polite goodbye.
    initiator.stop(status != 0);
    print_seq(*session);
    if (status == 0) emit("PASS");
    return status;
  } catch (const FIX::ConfigError& e) {
    std::cerr << "QuickFIX configuration error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    emit(std::string("FAIL exception: ") + e.what());
    return 1;
  }
}

// A QuickFIX C++ venue, for measuring fixgw side by side with an established engine.
//
// Built and driven by bench/quickfix_load.py, which sends it the same order
// streams with the same C load client as bench/gateway_load.py. Usage:
//
//   quickfix_venue SETTINGS.cfg [executor]   (prints "quickfix venue listening on PORT")
//
// What it is: a FIX 4.4 acceptor (SocketAcceptor: one thread serves every
// session), QuickFIX's FileStore, validation against fixgw's dictionary
// (specs/FIX44.xml, as the settings file says), and a small price-time book
// per symbol so that it answers the load mix the way a venue does:
//
//   NewOrderSingle (limit, Day or IOC)  ER New; then ER Fill for both sides of
//                                       each match (at the resting price);
//                                       an IOC remainder gets ER Canceled
//   OrderCancelRequest                  ER Canceled, or OrderCancelReject
//                                       (102=1) when the order is not live
//
// With "executor" it keeps no book, like QuickFIX's executor example (the
// issue's reference figure): every order gets one ER Fill for its whole
// quantity at its price, every cancel an OrderCancelReject.
//
// What it leaves out, that fixgw does: self-trade prevention, an engine
// journal and recovery, drop copy, metrics, surveillance, per-session
// message logs. So it is an upper bound for a QuickFIX venue, like the
// executor and ordermatch examples it resembles (written for this
// benchmark, not copied from them).

#include <quickfix/Application.h>
#include <quickfix/FileStore.h>
#include <quickfix/MessageCracker.h>
#include <quickfix/Session.h>
#include <quickfix/SessionSettings.h>
#include <quickfix/SocketAcceptor.h>
#include <quickfix/fix44/ExecutionReport.h>
#include <quickfix/fix44/NewOrderSingle.h>
#include <quickfix/fix44/OrderCancelReject.h>
#include <quickfix/fix44/OrderCancelRequest.h>

// QuickFIX up to 1.15 declares its callbacks with dynamic exception
// specifications (hence -std=c++14); later releases wrap them in EXCEPT.
#ifdef EXCEPT
#define QF_THROWS(...) EXCEPT(__VA_ARGS__)
#else
#define QF_THROWS(...) throw(__VA_ARGS__)
#endif

#include <cmath>
#include <csignal>
#include <deque>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>

namespace {

struct Order {
  FIX::SessionID session;
  std::string cl_ord_id;
  std::string account;
  std::string symbol;
  char side;
  long long price;  // in 1/10000
  long long qty;
  long long leaves;
  long long cum = 0;
  double value = 0;  // sum of fill qty * price, for AvgPx
  long long id;
};

using Level = std::deque<std::shared_ptr<Order>>;

struct Book {
  // Keyed so that the best level comes first: asks by price, bids by -price.
  std::map<long long, Level> sides[2];  // [0] bids, [1] asks
};

class Venue : public FIX::Application, public FIX::MessageCracker {
 public:
  explicit Venue(bool executor) : executor_(executor) {}

  void onCreate(const FIX::SessionID&) override {}
  void onLogon(const FIX::SessionID&) override {}
  void onLogout(const FIX::SessionID&) override {}
  void toAdmin(FIX::Message&, const FIX::SessionID&) override {}
  void toApp(FIX::Message&, const FIX::SessionID&) QF_THROWS(FIX::DoNotSend) override {}
  void fromAdmin(const FIX::Message&, const FIX::SessionID&)
      QF_THROWS(FIX::FieldNotFound, FIX::IncorrectDataFormat, FIX::IncorrectTagValue,
                FIX::RejectLogon) override {}
  void fromApp(const FIX::Message& message, const FIX::SessionID& session)
      QF_THROWS(FIX::FieldNotFound, FIX::IncorrectDataFormat, FIX::IncorrectTagValue,
                FIX::UnsupportedMessageType) override {
    crack(message, session);
  }

  void onMessage(const FIX44::NewOrderSingle& msg, const FIX::SessionID& session) override {
    FIX::ClOrdID cl_ord_id;
    FIX::Symbol symbol;
    FIX::Side side;
    FIX::OrderQty qty;
    FIX::Price price;
    FIX::TimeInForce tif(FIX::TimeInForce_DAY);
    msg.get(cl_ord_id);
    msg.get(symbol);
    msg.get(side);
    msg.get(qty);
    msg.get(price);
    if (msg.isSetField(tif)) msg.get(tif);
    auto order = std::make_shared<Order>();
    order->session = session;
    order->cl_ord_id = cl_ord_id.getValue();
    FIX::Account account;
    if (msg.isSetField(account)) {
      msg.get(account);
      order->account = account.getValue();
    }
    order->symbol = symbol.getValue();
    order->side = side.getValue();
    order->price = std::llround(price.getValue() * 10000);
    order->qty = order->leaves = static_cast<long long>(qty.getValue());
    order->id = ++next_order_id_;
    if (executor_) {
      order->leaves = 0;
      order->cum = order->qty;
      order->value = static_cast<double>(order->qty) * order->price;
      report(*order, FIX::ExecType_TRADE, "", order->qty, order->price);
      return;
    }
    report(*order, FIX::ExecType_NEW, "", 0, 0);
    match(order);
    if (order->leaves == 0) return;
    if (tif.getValue() == FIX::TimeInForce_IMMEDIATE_OR_CANCEL) {
      order->leaves = 0;
      report(*order, FIX::ExecType_CANCELED, "", 0, 0);
      return;
    }
    Book& book = books_[order->symbol];
    bool buy = order->side == FIX::Side_BUY;
    book.sides[buy ? 0 : 1][buy ? -order->price : order->price].push_back(order);
    live_[key(session, order->cl_ord_id)] = order;
  }

  void onMessage(const FIX44::OrderCancelRequest& msg, const FIX::SessionID& session) override {
    FIX::ClOrdID cl_ord_id;
    FIX::OrigClOrdID orig;
    msg.get(cl_ord_id);
    msg.get(orig);
    auto found = live_.find(key(session, orig.getValue()));
    if (found == live_.end()) {
      FIX44::OrderCancelReject reject(FIX::OrderID("NONE"), cl_ord_id, orig,
                                      FIX::OrdStatus(FIX::OrdStatus_REJECTED),
                                      FIX::CxlRejResponseTo(FIX::CxlRejResponseTo_ORDER_CANCEL_REQUEST));
      reject.set(FIX::CxlRejReason(FIX::CxlRejReason_UNKNOWN_ORDER));
      FIX::Session::sendToTarget(reject, session);
      return;
    }
    std::shared_ptr<Order> order = found->second;
    live_.erase(found);
    bool buy = order->side == FIX::Side_BUY;
    auto& side = books_[order->symbol].sides[buy ? 0 : 1];
    auto level = side.find(buy ? -order->price : order->price);
    for (auto it = level->second.begin(); it != level->second.end(); ++it) {
      if (*it == order) {
        level->second.erase(it);
        break;
      }
    }
    if (level->second.empty()) side.erase(level);
    order->leaves = 0;
    report(*order, FIX::ExecType_CANCELED, cl_ord_id.getValue(), 0, 0);
  }

 private:
  static std::string key(const FIX::SessionID& session, const std::string& cl_ord_id) {
    return session.getTargetCompID().getValue() + '\x01' + cl_ord_id;
  }

  // Fill `order` against the other side while prices cross, oldest first.
  void match(const std::shared_ptr<Order>& order) {
    bool buy = order->side == FIX::Side_BUY;
    auto& opposite = books_[order->symbol].sides[buy ? 1 : 0];
    while (order->leaves > 0 && !opposite.empty()) {
      auto level = opposite.begin();
      long long price = buy ? level->first : -level->first;
      if (buy ? price > order->price : price < order->price) break;
      while (order->leaves > 0 && !level->second.empty()) {
        std::shared_ptr<Order> resting = level->second.front();
        long long qty = std::min(order->leaves, resting->leaves);
        for (Order* side : {order.get(), resting.get()}) {
          side->leaves -= qty;
          side->cum += qty;
          side->value += static_cast<double>(qty) * price;
        }
        report(*order, FIX::ExecType_TRADE, "", qty, price);
        report(*resting, FIX::ExecType_TRADE, "", qty, price);
        if (resting->leaves == 0) {
          live_.erase(key(resting->session, resting->cl_ord_id));
          level->second.pop_front();
        }
      }
      if (level->second.empty()) opposite.erase(level);
    }
  }

  void report(const Order& order, char exec_type, const std::string& cancel_id, long long last_qty,
              long long last_px) {
    char status = order.leaves == 0
                      ? (order.cum == order.qty ? FIX::OrdStatus_FILLED : FIX::OrdStatus_CANCELED)
                      : (order.cum > 0 ? FIX::OrdStatus_PARTIALLY_FILLED : FIX::OrdStatus_NEW);
    double avg = order.cum > 0 ? order.value / order.cum / 10000 : 0;
    FIX44::ExecutionReport er(FIX::OrderID(std::to_string(order.id)),
                              FIX::ExecID(std::to_string(++next_exec_id_)),
                              FIX::ExecType(exec_type), FIX::OrdStatus(status),
                              FIX::Side(order.side), FIX::LeavesQty(order.leaves),
                              FIX::CumQty(order.cum), FIX::AvgPx(avg));
    if (cancel_id.empty()) {
      er.set(FIX::ClOrdID(order.cl_ord_id));
    } else {
      er.set(FIX::ClOrdID(cancel_id));
      er.set(FIX::OrigClOrdID(order.cl_ord_id));
    }
    if (!order.account.empty()) er.set(FIX::Account(order.account));
    er.set(FIX::Symbol(order.symbol));
    er.set(FIX::OrderQty(order.qty));
    er.set(FIX::OrdType(FIX::OrdType_LIMIT));
    er.set(FIX::Price(order.price / 10000.0));
    if (last_qty > 0) {
      er.set(FIX::LastQty(last_qty));
      er.set(FIX::LastPx(last_px / 10000.0));
    }
    er.set(FIX::TransactTime());
    FIX::Session::sendToTarget(er, order.session);
  }

  bool executor_;
  std::unordered_map<std::string, Book> books_;
  std::unordered_map<std::string, std::shared_ptr<Order>> live_;
  long long next_order_id_ = 0;
  long long next_exec_id_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  bool executor = argc == 3 && std::string(argv[2]) == "executor";
  if (argc != 2 && !executor) {
    std::cerr << "usage: quickfix_venue SETTINGS.cfg [executor]" << std::endl;
    return 2;
  }
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  // Blocked here, so QuickFIX's thread inherits the mask and sigwait gets them.
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  try {
    FIX::SessionSettings settings(argv[1]);
    Venue venue(executor);
    FIX::FileStoreFactory store(settings);
    FIX::SocketAcceptor acceptor(venue, store, settings);
    acceptor.start();
    std::cout << "quickfix venue listening on "
              << settings.get().getInt("SocketAcceptPort") << std::endl;
    int signal = 0;
    sigwait(&stop_signals, &signal);
    acceptor.stop();
  } catch (const std::exception& e) {
    std::cerr << "quickfix_venue: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}

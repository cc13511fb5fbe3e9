# Declarations that make engine/engine.py, compiled as engine.compiled.engine, call
# its own methods and read the book's orders and levels as C: MatchingEngine is a
# final extension type, its helpers C functions, the quantities in the matching
# loop C integers. Names and semantics are the pure module's; only speed differs.
# Quantities, ids and sequence numbers fit 64 bits (the order entry bounds them);
# prices, times and money stay Python ints (None is "no price", cum_value may not
# fit 64 bits, and expiry starts below any 64-bit time).

cimport cython

from engine.compiled.book cimport BookSide, Level, Order, OrderBook


cdef _keep_older(Order order)

@cython.locals(resting=Order)
cdef bint _fires(Order order, object last_price)

@cython.locals(resting=Order, total=cython.longlong, shown=cython.longlong,
               level_total=cython.longlong, blocking=bint)
cdef long long _executable(Order order, BookSide opp, object limit, long long need,
                           object stp)


@cython.final
cdef class MatchingEngine:
    cdef public long long _max_slices
    cdef public dict _instruments
    cdef public dict _quick_check
    cdef public dict _books
    cdef public object _stp
    cdef public object _end_of_day
    cdef public long long _done_kept
    cdef public long long _next_order_id
    cdef public long long _seq
    cdef public long long _next_match_id
    cdef public object _next_eod
    cdef public object _next_expiry
    cdef public list _gtd
    cdef public dict _orders
    cdef public object _done
    cdef public dict _cl_ord_ids
    cdef public object _rejected_ids
    cdef public dict _handlers

    @cython.locals(order=Order, book=OrderBook, own=BookSide, best=Level, level=Level,
                   tail=Order, order_id=cython.longlong, seq=cython.longlong,
                   shown=cython.longlong, ids=dict)
    cpdef _new_order(self, object cmd, list events)
    cdef _reject(self, object cmd, object error, list events)
    @cython.locals(order=Order, prev=Order, nxt=Order, level=Level, ids=dict,
                   seq=cython.longlong)
    cpdef _cancel_order(self, object cmd, list events)
    @cython.locals(order=Order, book=OrderBook, leaves=cython.longlong,
                   shown=cython.longlong, level=Level)
    cpdef _replace_order(self, object cmd, list events)
    @cython.locals(order=Order)
    cpdef _status_request(self, object cmd, list events)
    @cython.locals(order=Order)
    cpdef _mass_cancel(self, object cmd, list events)
    cpdef _reject_order(self, object cmd, list events)
    cpdef _advance_time(self, object cmd, list events)

    @cython.locals(opp=BookSide, own=BookSide, level=Level, resting=Order, nxt=Order,
                   leaves=cython.longlong, cum=cython.longlong, qty=cython.longlong,
                   resting_leaves=cython.longlong, need=cython.longlong,
                   seq=cython.longlong, match_id=cython.longlong, keep=cython.longlong,
                   stp_stopped=bint, done=object)
    cdef _execute(self, Order order, OrderBook book, object ts, list events, bint entry)
    @cython.locals(order=Order, seq=cython.longlong)
    cdef _run_triggered(self, OrderBook book, list fired, object ts, list events)
    @cython.locals(order=Order, seq=cython.longlong, orders=dict, heap=list, due=list)
    cdef _expire_due(self, object ts, list events)
    @cython.locals(book=OrderBook, live=list)
    cdef list _live_orders(self)
    cdef Order _find(self, object session, object cl_ord_id)
    cdef _amend_rejected(self, object cmd, Order order, object response_to, list events)
    @cython.locals(seq=cython.longlong)
    cdef _cancel_reject(self, object cmd, Order order, object response_to, object reason,
                        object text, list events)
    cdef _rename(self, Order order, object cl_ord_id)
    @cython.locals(seq=cython.longlong)
    cdef _emit_replaced(self, Order order, object ts, list events)
    @cython.locals(book=OrderBook)
    cdef _take_out(self, Order order)
    @cython.locals(seq=cython.longlong)
    cdef _close(self, Order order, object status, object ts, object request_cl_ord_id,
                object reason, list events)
    cdef _retire(self, Order order)
    @cython.locals(order=Order, ids=dict)
    cdef _forget(self, object order_id)

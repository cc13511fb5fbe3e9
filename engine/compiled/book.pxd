# Declarations that make engine/book.py, compiled as engine.compiled.book, a set of
# C structs: every field of an order and a level is a C field (no per-instance
# dict), and the queue operations are C calls. Quantities and ids fit 64 bits (the
# order entry bounds them, MAX_ORDER_QTY); prices stay Python ints, since None
# means "no price", and so does cum_value (a sum of quantity * price may not fit).

cimport cython


@cython.final
cdef class Order:
    cdef public object account
    cdef public object cl_ord_id
    cdef public long long cum_qty
    cdef public object cum_value
    cdef public long long displayed
    cdef public object expire_time
    cdef public long long leaves_qty
    cdef public Level level
    cdef public long long max_floor
    cdef public long long min_qty
    cdef public Order next
    cdef public object older
    cdef public object ord_type
    cdef public long long order_id
    cdef public object orig_cl_ord_id
    cdef public Order prev
    cdef public object price
    cdef public long long qty
    cdef public object session
    cdef public object side
    cdef public object status
    cdef public object stop_price
    cdef public object symbol
    cdef public object tif

    cpdef state(self)
    @cython.locals(leaves=cython.longlong, floor=cython.longlong)
    cpdef long long slice_size(self)


@cython.final
cdef class Level:
    cdef public long long displayed
    cdef public Order head
    cdef public long long key
    cdef public object price
    cdef public Order tail

    @cython.locals(order=Order)
    cpdef list orders(self)
    @cython.locals(order=Order, n=cython.longlong)
    cpdef long long count(self)


@cython.final
cdef class BookSide:
    cdef public Level best
    cdef public object keys
    cdef public dict levels
    cdef public long long sign

    @cython.locals(level=Level, best=Level, tail=Order, key=cython.longlong)
    cpdef add(self, Order order)
    @cython.locals(level=Level, prev=Order, nxt=Order)
    cpdef remove(self, Order order)
    @cython.locals(order=Order, tail=Order, nxt=Order)
    cpdef requeue_head(self, Level level)
    @cython.locals(key=cython.longlong)
    cpdef drop(self, Level level)


@cython.final
cdef class OrderBook:
    cdef public BookSide asks
    cdef public BookSide bids
    cdef public object buy_stops
    cdef public object last_price
    cdef public object sell_stops
    cdef public tuple sides
    cdef public dict stops
    cdef public object symbol

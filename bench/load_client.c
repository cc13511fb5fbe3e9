/* fixgw load client: pipelines pre-encoded FIX messages over TCP and times
 * the first answer to each ClOrdID. Built and driven by bench/gateway_load.py
 * (which writes the message streams); see that file for what is measured.
 *
 *   load_client run HOST PORT max   WINDOW TIMEOUT_S STREAM...
 *   load_client run HOST PORT paced WINDOW TIMEOUT_S RATE STREAM...
 *   load_client respond PORT      (a trivial FIX responder: the client's own ceiling)
 *
 * A STREAM file holds one session's messages, already framed, with two
 * 21-byte timestamp slots (SendingTime 52, TransactTime 60) that are filled
 * at send time from a clock cached per millisecond; the checksum is then
 * base_sum + the slots' bytes, so no message is re-scanned. ClOrdIDs are
 * PREFIX + 8 digits = the order's index in its stream, so an answer maps to
 * its order with one memmem for "\x0111=" and eight digits.
 *
 * One thread drives every socket (non-blocking recv/send). When there is
 * nothing to do it sleeps in ppoll until an answer arrives or the next paced
 * send is due (timer slack 1 ns), which leaves its core free for others on a
 * shared machine and adds a few microseconds of wake-up to each latency;
 * LOAD_CLIENT_SPIN=1 busy-polls instead (a core of its own, ~1 us reaction).
 * Output: one JSON line.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#define SOH '\x01'
#define NO_SLOT 0xFFFF
#define RBUF (8 << 20)
#define MAX_SESSIONS 64
#define MAX_BATCH_BYTES (256 << 10)

enum { K_LOGON = 0, K_ORDER = 1, K_LOGOUT = 2 };

typedef struct {
    uint8_t kind;
    uint8_t pad[3];
    uint32_t off, len;
    uint16_t ts1, ts2;
    uint32_t base_sum;
} __attribute__((packed)) Rec;

typedef struct {
    int fd;
    char prefix[16];
    int prefix_len;
    uint32_t nrec;
    Rec *recs;
    char *blob;
    uint32_t first_order, n_orders; /* orders are recs [first_order, first_order+n_orders) */
    uint32_t logout_rec;
    /* progress */
    uint32_t next;      /* next order index to send */
    uint32_t acked;     /* orders with a first answer */
    uint8_t *seen;
    int64_t *sent_ns;   /* send time per order */
    int64_t *lat_ns;    /* first-answer latency per order (-1: none yet) */
    /* pending write: [wpos, wend) of blob */
    uint64_t wpos, wend;
    /* receive buffer */
    char *rbuf;
    size_t rlen;
    int logged_on, logged_out;
} Sess;

static Sess S[MAX_SESSIONS];
static int NS;

/* counters */
static uint64_t c_first_new, c_first_fill, c_first_cancel, c_first_reject, c_first_cxlrej,
    c_first_other, c_er, c_fills, c_cxlrej, c_heartbeat, c_testreq, c_sess_reject, c_bizrej,
    c_logout, c_unknown_id, c_window_stalls, c_late_sends;
static char first_error[512];
static uint64_t g_io; /* bytes moved either way: progress marker */
static int g_spin;    /* busy-poll instead of blocking in ppoll when idle */

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* --- UTC timestamp cache: "YYYYMMDD-HH:MM:SS.sss" ------------------------------------ */
static char ts_text[22];
static unsigned ts_sum;
static int64_t ts_ms = -1;
static time_t ts_sec = -1;

static void refresh_ts(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    if (ms == ts_ms) return;
    ts_ms = ms;
    if (ts.tv_sec != ts_sec) {
        struct tm tm;
        ts_sec = ts.tv_sec;
        gmtime_r(&ts_sec, &tm);
        char tmp[96];
        snprintf(tmp, sizeof tmp, "%04d%02d%02d-%02d:%02d:%02d.", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        memcpy(ts_text, tmp, 18);
    }
    int m = (int)(ms % 1000);
    ts_text[18] = '0' + m / 100;
    ts_text[19] = '0' + (m / 10) % 10;
    ts_text[20] = '0' + m % 10;
    unsigned s = 0;
    for (int i = 0; i < 21; i++) s += (unsigned char)ts_text[i];
    ts_sum = s;
}

/* Fill a record's timestamp slots and checksum in place. */
static void stamp(Sess *s, uint32_t r) {
    Rec *rec = &s->recs[r];
    char *m = s->blob + rec->off;
    unsigned sum = rec->base_sum;
    if (rec->ts1 != NO_SLOT) { memcpy(m + rec->ts1, ts_text, 21); sum += ts_sum; }
    if (rec->ts2 != NO_SLOT) { memcpy(m + rec->ts2, ts_text, 21); sum += ts_sum; }
    sum &= 255;
    char *ck = m + rec->len - 4; /* "10=XXX\x01": digits at len-4 .. len-2 */
    ck[0] = '0' + sum / 100;
    ck[1] = '0' + (sum / 10) % 10;
    ck[2] = '0' + sum % 10;
}

static void die(const char *what) {
    perror(what);
    exit(2);
}

static void *xmalloc(size_t n) {
    void *p = calloc(1, n ? n : 1);
    if (!p) die("calloc");
    return p;
}

static void load_stream(Sess *s, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) die(path);
    char magic[4];
    uint32_t nrec, plen;
    uint64_t blob_len;
    if (fread(magic, 1, 4, f) != 4 || memcmp(magic, "FXLD", 4) != 0) {
        fprintf(stderr, "%s: not a stream file\n", path);
        exit(2);
    }
    if (fread(&nrec, 4, 1, f) != 1 || fread(&plen, 4, 1, f) != 1 || plen >= sizeof s->prefix)
        die("stream header");
    if (fread(s->prefix, 1, plen, f) != plen) die("stream prefix");
    s->prefix_len = (int)plen;
    if (fread(&blob_len, 8, 1, f) != 1) die("stream header");
    s->nrec = nrec;
    s->recs = xmalloc(sizeof(Rec) * nrec);
    if (fread(s->recs, sizeof(Rec), nrec, f) != nrec) die("stream index");
    s->blob = xmalloc(blob_len);
    if (fread(s->blob, 1, blob_len, f) != blob_len) die("stream blob");
    fclose(f);
    s->first_order = UINT32_MAX;
    s->n_orders = 0;
    s->logout_rec = UINT32_MAX;
    for (uint32_t i = 0; i < nrec; i++) {
        if (s->recs[i].kind == K_ORDER) {
            if (s->first_order == UINT32_MAX) s->first_order = i;
            s->n_orders++;
        } else if (s->recs[i].kind == K_LOGOUT) {
            s->logout_rec = i;
        }
    }
    if (s->recs[0].kind != K_LOGON || s->first_order != 1) {
        fprintf(stderr, "%s: stream must be logon, orders..., logout\n", path);
        exit(2);
    }
    s->seen = xmalloc(s->n_orders);
    s->sent_ns = xmalloc(sizeof(int64_t) * s->n_orders);
    s->lat_ns = xmalloc(sizeof(int64_t) * s->n_orders);
    for (uint32_t i = 0; i < s->n_orders; i++) s->lat_ns[i] = -1;
    s->rbuf = xmalloc(RBUF);
}

static int connect_to(const char *host, const char *port) {
    struct addrinfo hints = {0}, *res;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc) {
        fprintf(stderr, "getaddrinfo: %s\n", gai_strerror(rc));
        exit(2);
    }
    int fd = socket(res->ai_family, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    if (connect(fd, res->ai_addr, res->ai_addrlen) < 0) die("connect");
    freeaddrinfo(res);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int sz = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

/* Push the pending write; returns 0, or -1 if the connection failed. */
static int flush_write(Sess *s) {
    while (s->wpos < s->wend) {
        ssize_t n = send(s->fd, s->blob + s->wpos, s->wend - s->wpos, MSG_NOSIGNAL);
        if (n > 0) {
            s->wpos += (uint64_t)n;
            g_io += (uint64_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
        if (n < 0 && errno == EINTR) continue;
        if (!first_error[0]) snprintf(first_error, sizeof first_error, "send: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* Queue records [a, b) (contiguous in the blob) for sending, stamped now. */
static void queue_records(Sess *s, uint32_t a, uint32_t b) {
    refresh_ts();
    for (uint32_t r = a; r < b; r++) stamp(s, r);
    uint64_t start = s->recs[a].off, end = (uint64_t)s->recs[b - 1].off + s->recs[b - 1].len;
    if (s->wpos < s->wend) {
        /* still sending an earlier range: it must end where this one starts */
        if (s->wend != start) {
            fprintf(stderr, "internal: non-contiguous queue\n");
            exit(2);
        }
        s->wend = end;
    } else {
        s->wpos = start;
        s->wend = end;
    }
}

static int64_t parse_digits(const char *p, const char *end, int n) {
    int64_t v = 0;
    if (end - p < n) return -1;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

static void note_error(const char *what, const char *m, size_t len) {
    if (first_error[0]) return;
    int k = snprintf(first_error, sizeof first_error, "%s: ", what);
    for (size_t i = 0; i < len && k < (int)sizeof first_error - 1; i++)
        first_error[k++] = m[i] == SOH ? '|' : (m[i] >= 32 && m[i] < 127 ? m[i] : '?');
    first_error[k] = 0;
}

/* Handle one complete frame m[0..len). */
static void on_frame(Sess *s, const char *m, size_t len, int64_t t) {
    const char *end = m + len;
    const char *p = memmem(m, len, "\x01" "35=", 4);
    if (!p) return;
    p += 4;
    char type = *p;
    int type_len = (p + 1 < end && p[1] != SOH) ? 2 : 1;
    if (type_len == 1 && (type == '8' || type == '9')) {
        if (type == '8') c_er++; else c_cxlrej++;
        char exec_type = 0;
        if (type == '8') {
            const char *e = memmem(p, end - p, "\x01" "150=", 5);
            if (e) exec_type = e[5];
            if (exec_type == 'F') c_fills++;
        }
        const char *q = memmem(p, end - p, "\x01" "11=", 4);
        if (!q) return;
        q += 4;
        if (end - q < s->prefix_len + 8 || memcmp(q, s->prefix, s->prefix_len) != 0) {
            c_unknown_id++; /* an order from another run, or not ours */
            return;
        }
        int64_t idx = parse_digits(q + s->prefix_len, end, 8);
        if (idx < 0 || (uint64_t)idx >= s->n_orders || idx >= (int64_t)s->next) {
            c_unknown_id++;
            return;
        }
        if (s->seen[idx]) return;
        s->seen[idx] = 1;
        s->acked++;
        s->lat_ns[idx] = t - s->sent_ns[idx];
        if (type == '9') c_first_cxlrej++;
        else if (exec_type == '0') c_first_new++;
        else if (exec_type == 'F') c_first_fill++;
        else if (exec_type == '4') c_first_cancel++;
        else if (exec_type == '8') c_first_reject++;
        else c_first_other++;
        return;
    }
    if (type_len == 1) {
        switch (type) {
        case '0': c_heartbeat++; return;
        case '1': c_testreq++; note_error("TestRequest (we cannot answer in-stream)", m, len); return;
        case '3': c_sess_reject++; note_error("session Reject", m, len); return;
        case 'j': c_bizrej++; note_error("BusinessMessageReject", m, len); return;
        case '5': c_logout++; s->logged_out = 1;
            if (!first_error[0] && s->next < s->n_orders) note_error("Logout", m, len);
            return;
        case 'A': s->logged_on = 1; return;
        }
    }
    note_error("unexpected message", m, len);
}

/* Read what is there and handle every complete frame. Returns -1 on EOF/error. */
static int pump_read(Sess *s) {
    for (;;) {
        if (s->rlen == RBUF) {
            fprintf(stderr, "receive buffer full\n");
            exit(2);
        }
        ssize_t n = recv(s->fd, s->rbuf + s->rlen, RBUF - s->rlen, 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            if (errno == EINTR) continue;
            if (!first_error[0]) snprintf(first_error, sizeof first_error, "recv: %s", strerror(errno));
            return -1;
        }
        if (n == 0) {
            if (!first_error[0] && !s->logged_out)
                snprintf(first_error, sizeof first_error, "connection closed by the gateway");
            return -1;
        }
        int64_t t = now_ns();
        g_io += (uint64_t)n;
        s->rlen += (size_t)n;
        size_t pos = 0;
        while (s->rlen - pos >= 16) {
            char *m = s->rbuf + pos;
            char *lim = s->rbuf + s->rlen;
            /* "8=FIX.4.4\x019=NNN\x01" */
            char *nine = memchr(m, SOH, lim - m);
            if (!nine || lim - nine < 4) break;
            if (nine[1] != '9' || nine[2] != '=') {
                note_error("garbled frame", m, 40);
                return -1;
            }
            char *q = nine + 3;
            size_t body = 0;
            while (q < lim && *q != SOH) body = body * 10 + (size_t)(*q++ - '0');
            if (q >= lim) break;
            size_t total = (size_t)(q + 1 - m) + body + 7;
            if (pos + total > s->rlen) break;
            on_frame(s, m, total, t);
            pos += total;
        }
        if (pos) {
            memmove(s->rbuf, s->rbuf + pos, s->rlen - pos);
            s->rlen -= pos;
        }
        if ((size_t)n < (size_t)(RBUF - s->rlen) / 2) return 0; /* drained */
    }
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double pct(int64_t *sorted, size_t n, double p) {
    if (!n) return 0;
    size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
    if (i >= n) i = n - 1;
    return sorted[i] / 1000.0;
}

static void logon_all(void) {
    for (int i = 0; i < NS; i++) {
        queue_records(&S[i], 0, 1);
        if (flush_write(&S[i]) < 0) { fprintf(stderr, "logon: %s\n", first_error); exit(2); }
    }
    int64_t deadline = now_ns() + 5000000000LL;
    for (;;) {
        int all = 1;
        for (int i = 0; i < NS; i++) {
            if (!S[i].logged_on) {
                all = 0;
                if (pump_read(&S[i]) < 0) { fprintf(stderr, "logon failed: %s\n", first_error); exit(2); }
            }
        }
        if (all) break;
        if (first_error[0]) { fprintf(stderr, "logon failed: %s\n", first_error); exit(2); }
        if (now_ns() > deadline) { fprintf(stderr, "logon: no answer in 5 s\n"); exit(2); }
        usleep(200);
    }
}

static void logout_all(void) {
    for (int i = 0; i < NS; i++) {
        Sess *s = &S[i];
        if (s->logout_rec == UINT32_MAX || s->logged_out) continue;
        if (s->wpos < s->wend && s->wend != s->recs[s->logout_rec].off) s->wpos = s->wend;
        queue_records(s, s->logout_rec, s->logout_rec + 1);
    }
    int64_t deadline = now_ns() + 3000000000LL;
    while (now_ns() < deadline) {
        int pending = 0;
        for (int i = 0; i < NS; i++) {
            Sess *s = &S[i];
            if (s->logged_out) continue;
            pending = 1;
            flush_write(s);
            if (pump_read(s) < 0) s->logged_out = 1;
        }
        if (!pending) break;
        usleep(200);
    }
    for (int i = 0; i < NS; i++) close(S[i].fd);
}

static int cmd_run(int argc, char **argv) {
    if (argc < 8) return -1;
    const char *host = argv[2], *port = argv[3], *mode = argv[4];
    int paced = strcmp(mode, "paced") == 0;
    if (!paced && strcmp(mode, "max") != 0) return -1;
    uint32_t window = (uint32_t)atol(argv[5]);
    const char *spin = getenv("LOAD_CLIENT_SPIN");
    g_spin = spin && *spin && strcmp(spin, "0") != 0;
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0); /* wake on time: no 50 us timer slack */
    double timeout_s = atof(argv[6]);
    int a = 7;
    double rate = 0;
    if (paced) rate = atof(argv[a++]);
    NS = argc - a;
    if (NS < 1 || NS > MAX_SESSIONS || window < 1) return -1;
    uint64_t total = 0;
    for (int i = 0; i < NS; i++) {
        load_stream(&S[i], argv[a + i]);
        total += S[i].n_orders;
    }
    for (int i = 0; i < NS; i++) S[i].fd = connect_to(host, port);
    logon_all();

    int64_t t0 = now_ns(), last_progress = t0, last_ack = t0, t_end_send = 0;
    uint64_t acked = 0, sent = 0, gseq = 0, stalled_gseq = UINT64_MAX;
    double period_ns = paced ? 1e9 / rate : 0;
    int failed = 0;
    while (acked < total && !failed) {
        int64_t t = now_ns();
        uint64_t io_before = g_io, sent_before = sent;
        if (paced) {
            /* global schedule: order k is due at t0 + k * period, sessions in turn */
            while (sent < total) {
                int64_t due = t0 + (int64_t)((double)gseq * period_ns);
                if (due > t) break;
                Sess *s = &S[gseq % NS];
                if (s->next >= s->n_orders) { gseq++; continue; }
                if (s->next - s->acked >= window) {
                    if (gseq != stalled_gseq) { c_window_stalls++; stalled_gseq = gseq; }
                    break;
                }
                if (t - due > 1000000) c_late_sends++;
                uint32_t r = s->first_order + s->next;
                queue_records(s, r, r + 1);
                s->sent_ns[s->next] = now_ns();
                s->next++;
                sent++;
                gseq++;
            }
        } else {
            for (int i = 0; i < NS; i++) {
                Sess *s = &S[i];
                uint32_t room = window - (s->next - s->acked);
                if (s->next >= s->n_orders || room == 0) continue;
                if (s->wpos < s->wend) continue; /* previous batch still going out */
                uint32_t k = s->n_orders - s->next;
                if (k > room) k = room;
                uint32_t r = s->first_order + s->next;
                /* cap one batch's bytes */
                uint64_t start = s->recs[r].off;
                while (k > 1 && (uint64_t)s->recs[r + k - 1].off - start > MAX_BATCH_BYTES) k /= 2;
                queue_records(s, r, r + k);
                int64_t ts = now_ns();
                for (uint32_t j = 0; j < k; j++) s->sent_ns[s->next + j] = ts;
                s->next += k;
                sent += k;
            }
        }
        if (sent == total && !t_end_send) t_end_send = now_ns();
        for (int i = 0; i < NS; i++) {
            Sess *s = &S[i];
            if (flush_write(s) < 0) { failed = 1; break; }
            uint32_t before = s->acked;
            if (pump_read(s) < 0) { failed = 1; break; }
            if (s->acked != before) {
                acked += s->acked - before;
                last_ack = last_progress = now_ns();
            }
        }
        if (first_error[0] && (c_sess_reject || c_bizrej || c_logout)) failed = 1;
        if (!g_spin && !failed && g_io == io_before && sent == sent_before) {
            /* idle: sleep until an answer arrives, the socket drains, or the next send is due */
            int64_t wait = 100000000; /* 100 ms, to check the timeout */
            if (paced && sent < total) {
                Sess *s = &S[gseq % NS];
                if (s->next - s->acked < window) {
                    wait = t0 + (int64_t)((double)gseq * period_ns) - now_ns();
                }
            }
            if (wait > 0) {
                struct pollfd pfd[MAX_SESSIONS];
                for (int i = 0; i < NS; i++) {
                    pfd[i].fd = S[i].fd;
                    pfd[i].events = POLLIN | (S[i].wpos < S[i].wend ? POLLOUT : 0);
                    pfd[i].revents = 0;
                }
                struct timespec ts = {wait / 1000000000, wait % 1000000000};
                ppoll(pfd, NS, &ts, NULL);
            }
        }
        if (now_ns() - last_progress > (int64_t)(timeout_s * 1e9)) {
            if (!first_error[0])
                snprintf(first_error, sizeof first_error,
                         "no answer for %.0f s: %llu of %llu orders answered", timeout_s,
                         (unsigned long long)acked, (unsigned long long)total);
            failed = 1;
        }
    }
    int64_t t_done = last_ack;
    logout_all();

    /* latencies, all sessions */
    int64_t *lat = xmalloc(sizeof(int64_t) * (total ? total : 1));
    size_t n = 0;
    for (int i = 0; i < NS; i++)
        for (uint32_t j = 0; j < S[i].n_orders; j++)
            if (S[i].lat_ns[j] >= 0) lat[n++] = S[i].lat_ns[j];
    qsort(lat, n, sizeof(int64_t), cmp_i64);
    double mean = 0;
    for (size_t i = 0; i < n; i++) mean += (double)lat[i];
    mean = n ? mean / (double)n / 1000.0 : 0;
    double elapsed = (double)(t_done - t0) / 1e9;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
                 ru.ru_stime.tv_usec / 1e6;
    char err[600] = "";
    for (size_t i = 0, k = 0; first_error[i] && k < sizeof err - 2; i++) {
        char c = first_error[i];
        if (c == '"' || c == '\\') err[k++] = '\\';
        err[k++] = c;
    }
    printf("{\"mode\":\"%s\",\"sessions\":%d,\"window\":%u,\"rate\":%.1f,\"orders\":%llu,"
           "\"sent\":%llu,\"answered\":%llu,\"elapsed_s\":%.6f,\"send_s\":%.6f,"
           "\"orders_per_s\":%.1f,"
           "\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,"
           "\"mean_us\":%.1f,\"first_new\":%llu,\"first_fill\":%llu,\"first_cancel\":%llu,"
           "\"first_reject\":%llu,\"first_cxl_reject\":%llu,\"first_other\":%llu,"
           "\"execution_reports\":%llu,\"fills\":%llu,\"cancel_rejects\":%llu,"
           "\"heartbeats\":%llu,\"test_requests\":%llu,\"session_rejects\":%llu,"
           "\"business_rejects\":%llu,\"other_ids\":%llu,\"window_stalls\":%llu,"
           "\"late_sends\":%llu,\"spin\":%d,\"client_cpu_s\":%.3f,\"failed\":%s,\"error\":\"%s\"}\n",
           mode, NS, window, rate, (unsigned long long)total, (unsigned long long)sent,
           (unsigned long long)acked, elapsed,
           t_end_send ? (double)(t_end_send - t0) / 1e9 : 0.0, elapsed > 0 ? acked / elapsed : 0,
           pct(lat, n, 50), pct(lat, n, 90), pct(lat, n, 99), pct(lat, n, 99.9),
           n ? lat[n - 1] / 1000.0 : 0, mean, (unsigned long long)c_first_new,
           (unsigned long long)c_first_fill, (unsigned long long)c_first_cancel,
           (unsigned long long)c_first_reject, (unsigned long long)c_first_cxlrej,
           (unsigned long long)c_first_other, (unsigned long long)c_er,
           (unsigned long long)c_fills, (unsigned long long)c_cxlrej,
           (unsigned long long)c_heartbeat, (unsigned long long)c_testreq,
           (unsigned long long)c_sess_reject, (unsigned long long)c_bizrej,
           (unsigned long long)c_unknown_id, (unsigned long long)c_window_stalls,
           (unsigned long long)c_late_sends, g_spin, cpu, failed ? "true" : "false", err);
    fflush(stdout);
    return failed ? 1 : 0;
}

/* --- respond: a trivial FIX peer, to measure the client alone ---------------------- */

typedef struct {
    int fd;
    char *in;
    size_t inlen;
    char *out;
    size_t outlen, outcap;
    uint64_t seq;
    char them[64];
    int themlen;
    uint64_t execs;
} Peer;

static void out_append(Peer *p, const char *d, size_t n) {
    if (p->outlen + n > p->outcap) {
        p->outcap = (p->outlen + n) * 2;
        p->out = realloc(p->out, p->outcap);
        if (!p->out) die("realloc");
    }
    memcpy(p->out + p->outlen, d, n);
    p->outlen += n;
}

/* Frame body (everything after 9=...|, before 10=) and append it. */
static void out_frame(Peer *p, const char *body, size_t blen) {
    char head[32];
    int h = snprintf(head, sizeof head, "8=FIX.4.4\x01" "9=%zu\x01", blen);
    unsigned sum = 0;
    for (int i = 0; i < h; i++) sum += (unsigned char)head[i];
    for (size_t i = 0; i < blen; i++) sum += (unsigned char)body[i];
    char tail[8];
    snprintf(tail, sizeof tail, "10=%03u\x01", sum & 255);
    out_append(p, head, h);
    out_append(p, body, blen);
    out_append(p, tail, 7);
}

static const char *field(const char *m, size_t len, const char *tag, size_t *vlen) {
    char pat[16];
    int k = snprintf(pat, sizeof pat, "\x01%s=", tag);
    const char *q = memmem(m, len, pat, k);
    if (!q) return NULL;
    q += k;
    const char *e = memchr(q, SOH, m + len - q);
    if (!e) return NULL;
    *vlen = (size_t)(e - q);
    return q;
}

static void respond_frame(Peer *p, const char *m, size_t len) {
    size_t tl, vl;
    const char *type = field(m, len, "35", &tl);
    if (!type) return;
    const char *sender = field(m, len, "49", &vl);
    if (sender && vl < sizeof p->them) { memcpy(p->them, sender, vl); p->themlen = (int)vl; }
    refresh_ts();
    char body[512];
    int b;
    if (tl == 1 && type[0] == 'A') {
        b = snprintf(body, sizeof body, "35=A\x01" "34=%llu\x01" "49=FIXGW\x01" "52=%s\x01"
                     "56=%.*s\x01" "98=0\x01" "108=30\x01" "141=Y\x01",
                     (unsigned long long)++p->seq, ts_text, p->themlen, p->them);
        out_frame(p, body, b);
    } else if (tl == 1 && (type[0] == 'D' || type[0] == 'F')) {
        size_t cl, sl, sdl;
        const char *id = field(m, len, "11", &cl);
        const char *sym = field(m, len, "55", &sl);
        const char *side = field(m, len, "54", &sdl);
        if (!id || !sym || !side) return;
        p->execs++;
        /* about the size of the gateway's ack */
        b = snprintf(body, sizeof body,
                     "35=8\x01" "34=%llu\x01" "49=FIXGW\x01" "52=%s\x01" "56=%.*s\x01"
                     "1=ACC\x01" "6=0\x01" "11=%.*s\x01" "14=0\x01" "17=E%llu\x01"
                     "37=O%llu\x01" "38=100\x01" "39=0\x01" "40=2\x01" "44=100.00\x01"
                     "54=%.*s\x01" "55=%.*s\x01" "59=0\x01" "60=%s\x01" "150=0\x01"
                     "151=100\x01",
                     (unsigned long long)++p->seq, ts_text, p->themlen, p->them, (int)cl, id,
                     (unsigned long long)p->execs, (unsigned long long)p->execs, (int)sdl, side,
                     (int)sl, sym, ts_text);
        out_frame(p, body, b);
    } else if (tl == 1 && type[0] == '5') {
        b = snprintf(body, sizeof body, "35=5\x01" "34=%llu\x01" "49=FIXGW\x01" "52=%s\x01"
                     "56=%.*s\x01", (unsigned long long)++p->seq, ts_text, p->themlen, p->them);
        out_frame(p, body, b);
    }
}

static int cmd_respond(int argc, char **argv) {
    if (argc < 3) return -1;
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)atoi(argv[2]));
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0) die("bind");
    if (listen(lfd, 64) < 0) die("listen");
    socklen_t sl = sizeof sa;
    getsockname(lfd, (struct sockaddr *)&sa, &sl);
    printf("responder listening on 127.0.0.1:%d\n", ntohs(sa.sin_port));
    fflush(stdout);
    enum { MAXP = 64 };
    Peer peers[MAXP];
    struct pollfd pfd[MAXP + 1];
    int np = 0;
    for (;;) {
        pfd[0].fd = lfd;
        pfd[0].events = POLLIN;
        for (int i = 0; i < np; i++) {
            pfd[i + 1].fd = peers[i].fd;
            pfd[i + 1].events = POLLIN | (peers[i].outlen ? POLLOUT : 0);
        }
        if (poll(pfd, np + 1, -1) < 0) {
            if (errno == EINTR) continue;
            die("poll");
        }
        if ((pfd[0].revents & POLLIN) && np < MAXP) {
            int fd = accept(lfd, NULL, NULL);
            if (fd >= 0) {
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
                pfd[np + 1].fd = -1; /* not polled this round */
                pfd[np + 1].revents = 0;
                Peer *p = &peers[np++];
                memset(p, 0, sizeof *p);
                p->fd = fd;
                p->in = xmalloc(RBUF);
            }
        }
        for (int i = 0; i < np; i++) {
            Peer *p = &peers[i];
            short re = pfd[i + 1].revents;
            if (pfd[i + 1].fd != p->fd) continue; /* a peer accepted this round */
            int closed = 0;
            if (re & (POLLIN | POLLHUP | POLLERR)) {
                ssize_t n = recv(p->fd, p->in + p->inlen, RBUF - p->inlen, 0);
                if (n < 0 && (errno == EAGAIN || errno == EINTR)) n = -2;
                if (n == 0 || n == -1) closed = 1;
                else if (n == -2) {}
                else {
                    p->inlen += (size_t)n;
                    size_t pos = 0;
                    while (p->inlen - pos >= 16) {
                        char *m = p->in + pos, *lim = p->in + p->inlen;
                        char *nine = memchr(m, SOH, lim - m);
                        if (!nine || lim - nine < 4) break;
                        char *q = nine + 3;
                        size_t body = 0;
                        while (q < lim && *q != SOH) body = body * 10 + (size_t)(*q++ - '0');
                        if (q >= lim) break;
                        size_t total = (size_t)(q + 1 - m) + body + 7;
                        if (pos + total > p->inlen) break;
                        respond_frame(p, m, total);
                        pos += total;
                    }
                    memmove(p->in, p->in + pos, p->inlen - pos);
                    p->inlen -= pos;
                }
            }
            if (p->outlen && !closed) {
                ssize_t n = send(p->fd, p->out, p->outlen, MSG_NOSIGNAL);
                if (n > 0) {
                    memmove(p->out, p->out + n, p->outlen - (size_t)n);
                    p->outlen -= (size_t)n;
                } else if (n < 0 && errno != EAGAIN) closed = 1;
            }
            if (closed) {
                close(p->fd);
                free(p->in);
                free(p->out);
                peers[i] = peers[--np];
                pfd[i + 1] = pfd[np + 1];
                i--;
            }
        }
    }
}

int main(int argc, char **argv) {
    int rc = -1;
    if (argc >= 2 && strcmp(argv[1], "run") == 0) rc = cmd_run(argc, argv);
    else if (argc >= 2 && strcmp(argv[1], "respond") == 0) rc = cmd_respond(argc, argv);
    if (rc == -1) {
        fprintf(stderr,
                "usage: %s run HOST PORT max WINDOW TIMEOUT_S STREAM...\n"
                "       %s run HOST PORT paced WINDOW TIMEOUT_S RATE STREAM...\n"
                "       %s respond PORT\n", argv[0], argv[0], argv[0]);
        return 2;
    }
    return rc;
}

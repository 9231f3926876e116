/* src/http/static.c -- static files under a root: no path leaves the root
 * (openat2 with RESOLVE_BENEATH: `..`, encoded or not, and symlinks that
 * lead out are refused by the kernel, not by string checks alone;
 * RESOLVE_NO_SYMLINKS unless symlinks are followed), ETag and
 * Last-Modified with 304 (If-None-Match, If-Modified-Since with the dates
 * of httpdate.c), byte ranges with 206 (several: multipart/byteranges)
 * or 416 (If-Range), a Content-Type by extension, and the bytes sent
 * with sendfile on plain connections (read and write through TLS). */
#define _GNU_SOURCE /* O_PATH */
#include "http_int.h"
#include "../io/io_int.h"
#include "corio/loop.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

struct corio__http_static {
    int root;               /* O_PATH directory */
    char *root_real;        /* its real path (the fallback below) */
    bool follow_symlinks;
    char *index;
};

struct corio__http_static *corio__http_static_new(const char *root,
                                                  const corio_http_static_opts *o)
{
    struct corio__http_static *st = calloc(1, sizeof(*st));

    if (st == NULL)
        return NULL;
    st->root = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (st->root == -1 || (st->root_real = realpath(root, NULL)) == NULL ||
        (o && o->index && (st->index = strdup(o->index)) == NULL)) {
        int err = errno;

        corio__http_static_free(st);
        errno = err;
        return NULL;
    }
    st->follow_symlinks = o && o->follow_symlinks;
    return st;
}

void corio__http_static_free(struct corio__http_static *st)
{
    if (st == NULL)
        return;
    if (st->root >= 0)
        close(st->root);
    free(st->root_real);
    free(st->index);
    free(st);
}

static const struct {
    const char *ext, *type;
} types[] = {
    {"html", "text/html; charset=utf-8"}, {"htm", "text/html; charset=utf-8"},
    {"txt", "text/plain; charset=utf-8"}, {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"}, {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"}, {"xml", "application/xml"},
    {"svg", "image/svg+xml"}, {"png", "image/png"}, {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"}, {"gif", "image/gif"}, {"webp", "image/webp"},
    {"ico", "image/x-icon"}, {"pdf", "application/pdf"},
    {"wasm", "application/wasm"}, {"woff2", "font/woff2"}, {"woff", "font/woff"},
    {"mp4", "video/mp4"}, {"mp3", "audio/mpeg"}, {"zip", "application/zip"},
    {"gz", "application/gzip"}, {"md", "text/markdown; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"},
};

static const char *content_type(const char *path)
{
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');

    if (dot != NULL && (slash == NULL || dot > slash))
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
            if (strcasecmp(dot + 1, types[i].ext) == 0)
                return types[i].type;
    return "application/octet-stream";
}

/* openat2 is missing (Linux before 5.6, valgrind): the same rules by
 * hand. Without symlinks: each segment opened with O_NOFOLLOW from its
 * directory (a symlink anywhere is ELOOP). With them: the real path must
 * stay under the root's. Dot segments were refused before. */
static int open_fallback(const struct corio__http_static *st, const char *path,
                         int flags)
{
    if (st->follow_symlinks) {
        char full[PATH_MAX], *real;
        size_t rl = strlen(st->root_real);
        int fd;

        if ((size_t)snprintf(full, sizeof(full), "%s/%s", st->root_real, path) >=
            sizeof(full)) {
            errno = ENAMETOOLONG;
            return -1;
        }
        real = realpath(full, NULL);
        if (real == NULL)
            return -1;
        if (strncmp(real, st->root_real, rl) != 0 ||
            (real[rl] != '/' && real[rl] != '\0')) {
            free(real);
            errno = EXDEV; /* out of the root */
            return -1;
        }
        fd = open(real, flags);
        free(real);
        return fd;
    }
    {
        int dir = st->root, fd = -1;
        const char *p = *path ? path : ".";

        for (;;) {
            size_t n = strcspn(p, "/");
            char seg[NAME_MAX + 1];
            struct stat sb;

            if (n > NAME_MAX) {
                errno = ENAMETOOLONG;
                break;
            }
            memcpy(seg, p, n);
            seg[n] = '\0';
            if (p[n] == '\0' || (p[n] == '/' && p[n + 1] == '\0')) {
                fd = openat(dir, n ? seg : ".", flags | O_NOFOLLOW);
            } else {
                fd = openat(dir, seg, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            }
            if (fd == -1 && (errno == ENOTDIR || errno == ELOOP) &&
                fstatat(dir, seg, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(sb.st_mode))
                errno = ELOOP;
            if (dir != st->root) {
                int err = errno;

                close(dir);
                errno = err;
            }
            if (fd == -1 || p[n] == '\0' || p[n + 1] == '\0')
                return fd;
            dir = fd;
            p += n + 1;
        }
        if (dir != st->root)
            close(dir);
        return -1;
    }
}

/* Open path beneath the root. -1 with errno: EXDEV or ENOENT (outside),
 * ELOOP (a symlink, not followed), ENOENT. */
static int open_beneath(const struct corio__http_static *st, const char *path)
{
    int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    struct open_how how = {
        .flags = (uint64_t)flags,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS |
                   (st->follow_symlinks ? 0 : RESOLVE_NO_SYMLINKS),
    };
    int fd;

    if (*path == '\0')
        path = ".";
    fd = (int)syscall(SYS_openat2, st->root, path, &how, sizeof(how));
    if (fd == -1 && errno == ENOSYS)
        fd = open_fallback(st, path, flags);
    return fd;
}

/* True if a path segment is "." or ".." (refused before the kernel sees
 * them, so that the answer does not depend on the tree). */
static bool has_dot_segment(const char *p)
{
    while (*p) {
        size_t n = strcspn(p, "/");

        if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return true;
        p += n;
        if (*p == '/')
            p++;
    }
    return false;
}

/* The conditions of RFC 9110 13.2.2 on a GET or HEAD: true if the answer
 * is 304. If-None-Match decides when it is there (weak comparison: W/ is
 * ignored; "*" matches); else If-Modified-Since, when it is one field
 * holding one valid HTTP-date (anything else is ignored): 304 when the
 * file's mtime in whole seconds is not after it. A date in the future is
 * a date like any other (RFC 9110 no longer calls it invalid). */
static bool not_modified(const corio_http_request *req, const char *etag,
                         time_t mtime)
{
    const corio_http_headers *h = req->c->hin;
    const char *inm = corio_http_headers_get(h, "If-None-Match"), *ims;
    size_t pos = 0;
    int64_t since;

    if (inm != NULL)
        return strstr(inm, etag) != NULL || strcmp(inm, "*") == 0;
    ims = corio_http_headers_next(h, "If-Modified-Since", &pos);
    if (ims == NULL || corio_http_headers_next(h, "If-Modified-Since", &pos) != NULL ||
        corio__http_date_parse(ims, time(NULL), &since) == -1)
        return false;
    return (int64_t)mtime <= since;
}

/* If-Range (RFC 9110 13.1.5): true if the Range is to be applied (no
 * If-Range, or one that matches), false for the whole file. An entity
 * tag matches by strong comparison (a weak one never does); a date when
 * it is exactly the file's mtime and that is a strong validator (8.8.2.2:
 * a second or more in the past, else the file may change again within
 * that same second); anything else does not match. */
static bool if_range_ok(const corio_http_request *req, const char *etag,
                        time_t mtime)
{
    const char *ifr = corio_http_headers_get(req->c->hin, "If-Range");
    int64_t date;

    if (ifr == NULL)
        return true;
    if (ifr[0] == '"' || strncmp(ifr, "W/", 2) == 0)
        return strcmp(ifr, etag) == 0;
    return corio__http_date_parse(ifr, time(NULL), &date) == 0 &&
           date == (int64_t)mtime && (int64_t)mtime < (int64_t)time(NULL);
}

/* Ranges (RFC 9110 14.1.1 and 14.2): more than this many in one Range,
 * or ranges adding up to more bytes than the file, get the whole file
 * (200): a small request must not make the server send much more than
 * the file (range amplification). */
#define MAX_RANGES 16

struct range {
    int64_t off, len;
};

/* Digits at *p (at least one); saturates at INT64_MAX. */
static bool range_num(const char **p, int64_t *v)
{
    const char *q = *p;

    *v = 0;
    for (; *q >= '0' && *q <= '9'; q++)
        *v = *v > (INT64_MAX - 9) / 10 ? INT64_MAX : *v * 10 + (*q - '0');
    if (q == *p)
        return false;
    *p = q;
    return true;
}

/* Parse the Range field s, "bytes=" and a comma-separated list of
 * "a-b", "a-" and "-n" (spaces around the commas, empty elements
 * skipped), against a file of size bytes: the satisfiable ranges go to r
 * (room for MAX_RANGES) in the order asked, the others are dropped.
 * Returns how many there are (1 or more), 0 to send the whole file
 * (another unit, bad syntax, too many ranges, more bytes than the file),
 * or -1 when none is satisfiable (416). */
static int parse_ranges(const char *s, int64_t size, struct range *r)
{
    int n = 0, specs = 0;
    int64_t total = 0;

    if (strncasecmp(s, "bytes=", 6) != 0)
        return 0;
    s += 6;
    for (;;) {
        int64_t a, b = -1;

        while (*s == ' ' || *s == '\t')
            s++;
        if (*s == ',') {
            s++;
            continue;
        }
        if (*s == '\0')
            break;
        if (++specs > MAX_RANGES)
            return 0;
        if (*s == '-') {                    /* the last b bytes */
            s++;
            if (!range_num(&s, &b))
                return 0;
            if (b > 0 && size > 0) {
                r[n].len = b < size ? b : size;
                r[n].off = size - r[n].len;
                total += r[n++].len;
            }
        } else {                            /* from a, to b or the end */
            if (!range_num(&s, &a) || *s++ != '-')
                return 0;
            if (*s >= '0' && *s <= '9' && (!range_num(&s, &b) || b < a))
                return 0;
            if (a < size) {
                r[n].off = a;
                r[n].len = (b < 0 || b >= size ? size - 1 : b) - a + 1;
                total += r[n++].len;
            }
        }
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s != ',' && *s != '\0')
            return 0;
    }
    if (specs == 0 || total > size)
        return 0;
    return n > 0 ? n : -1;
}

/* Send len bytes of fd from off after the head. */
static int send_file(corio_http_response *res, int fd, int64_t off,
                     int64_t len, int64_t deadline)
{
    corio_stream *s = res->c->s;

    if (s->t == &s->fdt) {
        int sock = corio_stream_fd(s);
        off_t o = off;
        int64_t left = len;

        if (corio__stream_drain_to(s, 0, deadline) == -1)
            return -1;
        while (left > 0) {
            ssize_t n = sendfile(sock, fd, &o, left > (1 << 20) ? (1 << 20) : (size_t)left);

            if (n > 0) {
                left -= n;
                continue;
            }
            if (n == 0) {
                errno = EIO; /* the file shrank */
                return -1;
            }
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN || corio_fd_wait(sock, CORIO_WRITE, deadline) == -1)
                return -1;
        }
        res->sent += len; /* as _write counts on the TLS path */
        res->c->bytes_out += (uint64_t)len;
        return 0;
    }
    while (len > 0) { /* TLS: through the stream */
        char buf[16384];
        ssize_t n = pread(fd, buf, len > (int64_t)sizeof(buf) ? sizeof(buf) : (size_t)len, off);

        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            return -1;
        }
        if (corio_http_response_write(res, buf, (size_t)n, deadline) == -1)
            return -1;
        off += n;
        len -= n;
    }
    return 0;
}

/* A random multipart boundary (RFC 2046: it must not occur in the parts;
 * 64 random bits make that as good as certain). */
static void make_boundary(char out[32])
{
    static __thread uint64_t count;
    uint64_t v;

    if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v))
        v = ((uint64_t)time(NULL) << 20 ^ (uint64_t)getpid() << 40 ^ ++count) *
            0x9e3779b97f4a7c15u;
    snprintf(out, 32, "corio-%016" PRIx64, v);
}

/* The head of part i of a multipart/byteranges body in buf (room for
 * size); returns its length. */
static size_t part_head(char *buf, size_t size, int i, const char *boundary,
                        const char *type, const struct range *r, int64_t total)
{
    int k = snprintf(buf, size,
                     "%s--%s\r\nContent-Type: %s\r\nContent-Range: bytes %lld-%lld/%lld\r\n\r\n",
                     i ? "\r\n" : "", boundary, type, (long long)r->off,
                     (long long)(r->off + r->len - 1), (long long)total);

    return k < 0 ? 0 : (size_t)k;
}

/* Several ranges: 206 with a multipart/byteranges body (RFC 9110 14.6),
 * each part with the file's Content-Type and its Content-Range, and an
 * exact Content-Length. */
static int send_parts(corio_http_response *res, int fd, const struct range *r,
                      int n, int64_t size, const char *type, int64_t deadline)
{
    char boundary[32], head[256], ctype[64];
    int64_t length = 0;
    int k;

    make_boundary(boundary);
    snprintf(ctype, sizeof(ctype), "multipart/byteranges; boundary=%s", boundary);
    if (corio_http_response_header(res, "Content-Type", ctype) == -1)
        return -1;
    for (int i = 0; i < n; i++)
        length += (int64_t)part_head(head, sizeof(head), i, boundary, type, &r[i], size) +
                  r[i].len;
    k = snprintf(head, sizeof(head), "\r\n--%s--\r\n", boundary);
    length += k;
    if (corio_http_response_prepare(res, length, deadline) == -1)
        return -1;
    if (res->no_body)
        return 0;
    for (int i = 0; i < n; i++) {
        size_t hl = part_head(head, sizeof(head), i, boundary, type, &r[i], size);

        if (corio_http_response_write(res, head, hl, deadline) == -1 ||
            send_file(res, fd, r[i].off, r[i].len, deadline) == -1)
            return -1;
    }
    k = snprintf(head, sizeof(head), "\r\n--%s--\r\n", boundary);
    return corio_http_response_write(res, head, (size_t)k, deadline);
}

int corio__http_static_handler(corio_http_request *req, corio_http_response *res,
                               void *arg)
{
    const struct corio__http_static *st = arg;
    const char *path = corio_http_request_param(req, "path");
    const char *range;
    char etag[64], lm[30], cr[96];
    struct range ranges[MAX_RANGES];
    int64_t wd;
    struct stat sb;
    int fd, rc, nr;

    if (path == NULL || has_dot_segment(path) || strchr(path, '\\')) {
        corio_http_response_status(res, 404);
        return corio_http_response_printf(res, "404: Not Found\n");
    }
    fd = open_beneath(st, path);
    if (fd >= 0 && fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        int dir = fd;

        /* the index file itself, never a symlink */
        fd = st->index ? openat(dir, st->index,
                                O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW)
                       : -1;
        close(dir);
        errno = ENOENT;
        if (fd >= 0 && fstat(fd, &sb) == -1) {
            close(fd);
            fd = -1;
        }
    }
    if (fd < 0 || !S_ISREG(sb.st_mode)) {
        int status = fd < 0 && errno == ELOOP ? 403 : 404;

        if (fd >= 0)
            close(fd);
        corio_http_response_status(res, status);
        return corio_http_response_printf(res, "%d: %s\n", status,
                                          corio_http_status_reason(status));
    }
    snprintf(etag, sizeof(etag), "\"%" PRIx64 "-%" PRIx64 "\"",
             (uint64_t)sb.st_size,
             (uint64_t)sb.st_mtim.tv_sec * 1000000000u + (uint64_t)sb.st_mtim.tv_nsec);
    corio__http_date(sb.st_mtime, lm);
    corio_http_response_header(res, "ETag", etag);
    corio_http_response_header(res, "Last-Modified", lm);
    corio_http_response_header(res, "Accept-Ranges", "bytes");
    if (not_modified(req, etag, sb.st_mtime)) {
        close(fd);
        return corio_http_response_status(res, 304);
    }
    nr = 0;
    range = corio_http_request_header(req, "Range");
    if (range != NULL && if_range_ok(req, etag, sb.st_mtime)) {
        rc = parse_ranges(range, sb.st_size, ranges);
        if (rc == -1) {
            close(fd);
            snprintf(cr, sizeof(cr), "bytes */%lld", (long long)sb.st_size);
            corio_http_response_header(res, "Content-Range", cr);
            corio_http_response_status(res, 416);
            return corio_http_response_printf(res, "416: Range Not Satisfiable\n");
        }
        if (rc >= 1) {
            nr = rc;
            corio_http_response_status(res, 206);
        }
    }
    if (nr == 0) { /* the whole file */
        ranges[0].off = 0;
        ranges[0].len = sb.st_size;
    }
    wd = corio__http_write_deadline(req->c);
    if (nr > 1) {
        rc = send_parts(res, fd, ranges, nr, sb.st_size, content_type(path), wd);
    } else {
        if (nr == 1) {
            snprintf(cr, sizeof(cr), "bytes %lld-%lld/%lld", (long long)ranges[0].off,
                     (long long)(ranges[0].off + ranges[0].len - 1), (long long)sb.st_size);
            corio_http_response_header(res, "Content-Range", cr);
        }
        corio_http_response_header(res, "Content-Type", content_type(path));
        rc = corio_http_response_prepare(res, ranges[0].len, wd);
        if (rc == 0 && !res->no_body)
            rc = send_file(res, fd, ranges[0].off, ranges[0].len, wd);
    }
    close(fd);
    if (rc == -1)
        req->c->broken = true;
    return rc;
}
